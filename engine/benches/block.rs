//! Block read micro-benchmarks on a block written by the block writer itself
//! ([`encode_block`], [`write_block_dir`]) into a temp dir: 10,000 node-exporter-like
//! series of one 120-sample chunk each (counters, two-decimal gauges and constants).
//! Measured: opening it ([`Block::open`]: `meta.json`, the whole index, the chunks
//! header), resolving selectors of one to three matchers through the postings (the
//! block's own intersection), and reading and decoding the chunks of one series and of
//! every series ([`Block::read_samples`]), plus reading every chunk without decoding
//! ([`Block::read_chunks`], what compaction copies). The files are in the page cache,
//! so reads cost `pread` and the checksums, not the disk.
//!
//! `cargo test --benches` runs each once on a block of 1,000 series.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsdb_engine::block::{Block, ChunkData, SeriesChunks, encode_block, write_block_dir};
use tsdb_engine::limits::CHUNK_SAMPLES_MAX;
use tsdb_engine::{Labels, Matcher, Sample};

mod common;
use common::{measuring, node_labels};

const ULID: &str = "01JDQ8Z1W0T2B3C4D5E6F7G8H9";
const START_MS: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 10_000;

/// 120 samples of series `i`: a counter, a gauge with two decimals or a constant,
/// after its metric name.
fn samples(i: usize, labels: &Labels) -> Vec<Sample> {
    let name = labels.metric_name().unwrap_or_default();
    let mut counter = (i * 1_000) as f64;
    (0..CHUNK_SAMPLES_MAX)
        .map(|k| {
            let t = START_MS + k as i64 * STEP_MS;
            let value = if name.ends_with("_total") {
                counter += (1_000 + (i * 7 + k * 13) % 4_096) as f64;
                counter
            } else if name == "node_filesystem_size_bytes" {
                1.0e12
            } else {
                ((i * 31 + k * 17) % 10_000) as f64 / 100.0
            };
            Sample::new(t, value)
        })
        .collect()
}

fn block_read(c: &mut Criterion) {
    let num_series = if measuring() { 10_000 } else { 1_000 };
    let series: Vec<SeriesChunks> = (0..num_series)
        .map(|i| {
            let labels = node_labels(i);
            let chunk = ChunkData::from_samples(&samples(i, &labels));
            SeriesChunks {
                labels,
                chunks: vec![chunk],
            }
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let encoded = encode_block(ULID, 0, 1, vec![], vec![], series);
    let dir = write_block_dir(&tmp.path().join("blocks"), &encoded).unwrap();
    let block = Block::open(&dir).unwrap();
    assert_eq!(block.num_series(), num_series);
    let total_samples = (num_series * CHUNK_SAMPLES_MAX) as u64;
    let (min_t, max_t) = (i64::MIN, i64::MAX);

    let mut group = c.benchmark_group("block");
    group.throughput(Throughput::Elements(num_series as u64));
    group.bench_function("open", |b| b.iter(|| Block::open(black_box(&dir)).unwrap()));

    let host = format!("host-{}:9100", num_series / 100 - 1);
    let selectors: [(&str, Vec<Matcher>, usize); 4] = [
        (
            "select/1_matcher",
            vec![Matcher::equal("__name__", "node_cpu_seconds_total")],
            num_series / 10,
        ),
        (
            "select/2_matchers",
            vec![
                Matcher::equal("__name__", "node_cpu_seconds_total"),
                Matcher::equal("cpu", "3"),
            ],
            num_series / 100,
        ),
        (
            "select/3_matchers",
            vec![
                Matcher::equal("__name__", "node_cpu_seconds_total"),
                Matcher::equal("cpu", "3"),
                Matcher::equal("instance", host),
            ],
            1,
        ),
        (
            "select/regex",
            vec![
                Matcher::new("__name__", "=~", "node_disk_.*").unwrap(),
                Matcher::equal("device", "3"),
            ],
            3 * num_series / 100,
        ),
    ];
    for (name, matchers, expected) in &selectors {
        let got = block.select(matchers, min_t, max_t);
        assert_eq!(got.len(), *expected, "{name} selects the wrong series");
        assert!(
            got.iter()
                .all(|&s| matchers.iter().all(|m| m.matches_labels(block.labels(s))))
        );
        group.throughput(Throughput::Elements(*expected as u64));
        group.bench_function(*name, |b| {
            b.iter(|| block.select(black_box(matchers), min_t, max_t));
        });
    }

    let one = block.select(&selectors[2].1, min_t, max_t)[0];
    assert_eq!(
        block.read_samples(one, min_t, max_t).unwrap().len(),
        CHUNK_SAMPLES_MAX
    );
    group.throughput(Throughput::Elements(CHUNK_SAMPLES_MAX as u64));
    group.bench_function("read_samples/one_series", |b| {
        b.iter(|| block.read_samples(black_box(one), min_t, max_t).unwrap());
    });

    let read_all = || {
        block
            .all_series()
            .map(|s| block.read_samples(s, min_t, max_t).unwrap().len())
            .sum::<usize>()
    };
    assert_eq!(read_all() as u64, total_samples);
    group.throughput(Throughput::Elements(total_samples));
    group.bench_function("read_samples/all_series", |b| b.iter(read_all));
    group.bench_function("read_chunks/all_series", |b| {
        b.iter(|| {
            block
                .all_series()
                .map(|s| block.read_chunks(s).unwrap().len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, block_read);
criterion_main!(benches);
