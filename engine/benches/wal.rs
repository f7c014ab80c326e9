//! WAL micro-benchmarks: encoding the samples record of one 2,000-sample request
//! ([`record::encode_samples`]) and appending it with the real [`WalWriter`] on a temp
//! dir, through monoio's io_uring driver (its epoll fallback where io_uring is
//! blocked), once without a sync (`--wal-sync=never`/`interval`: the write alone) and
//! once with an fdatasync per append (`always`, a group of one). Throughput is in
//! samples.
//!
//! Segments are cut at 64 MiB and the older ones removed as the bench goes, so a long
//! run holds at most two segments on disk. After each run the WAL is replayed and every
//! record must decode to 2,000 samples. `cargo test --benches` runs each once.
//!
//! `wal/replay` replays a WAL shaped like one shard's after the bench harness' load
//! ([`tsdb_engine::shard::replay_head`]): node-exporter-like series, each request's
//! 1,000 series (the shard's half of 2,000) logged by a series record before their
//! first samples record, then one samples record per request and scrape, one sample
//! per series, 10 s apart. Throughput is in samples. `cargo bench` replays 50,000
//! series of 40 samples; `cargo test --benches` 2,000 of 5.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsdb_engine::Sample;
use tsdb_engine::shard::replay_head;
use tsdb_engine::storage::DiskStorage;
use tsdb_engine::wal::SyncMode;
use tsdb_engine::wal::reader::{self, Repair};
use tsdb_engine::wal::record::{self, Record, SeriesRef};
use tsdb_engine::wal::segment;
use tsdb_engine::wal::writer::WalWriter;

mod common;
use common::{measuring, node_labels};

/// Samples in one remote_write request (the bench harness' and the targets' size).
const REQUEST_SAMPLES: usize = 2_000;
const SEGMENT_BYTES_MAX: u64 = 64 << 20;
const SHARD: u32 = 0;

/// One request's samples: 2,000 series, one sample each, at one scrape time.
fn request() -> Vec<(SeriesRef, Sample)> {
    (0..REQUEST_SAMPLES)
        .map(|i| {
            let value = (i as f64 * 1_024.5).floor();
            (i as SeriesRef + 1, Sample::new(1_700_000_000_000, value))
        })
        .collect()
}

fn encode(samples: &[(SeriesRef, Sample)]) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_samples(&mut out, samples);
    out
}

fn encoding(c: &mut Criterion) {
    let samples = request();
    let bytes = encode(&samples);
    assert_eq!(
        bytes.len(),
        record::HEADER_BYTES + 1 + 4 + REQUEST_SAMPLES * record::SAMPLE_BYTES
    );
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(REQUEST_SAMPLES as u64));
    group.bench_function("encode_samples", |b| {
        b.iter(|| encode(black_box(&samples)));
    });
    group.finish();
}

/// Every record in `dir` from segment `first_seq` on is a samples record of the
/// request's size; returns how many.
fn replayed_records(dir: &Path, first_seq: u64) -> u64 {
    let mut bad = 0;
    let stats = reader::replay(dir, SHARD, first_seq, Repair::ReadOnly, |r| match r {
        Record::Samples(s) if s.len() == REQUEST_SAMPLES => {}
        _ => bad += 1,
    })
    .unwrap();
    assert!(stats.damage.is_empty(), "{:?}", stats.damage);
    assert_eq!(bad, 0, "records other than the request's samples");
    stats.records
}

fn appending(c: &mut Criterion) {
    let samples = request();
    // io_uring where the kernel allows it, else epoll (files then written by plain
    // syscalls), the same choice as `--io-driver=auto`.
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(REQUEST_SAMPLES as u64));
    for (name, mode) in [
        ("encode_append", SyncMode::Never),
        ("encode_append_fdatasync", SyncMode::Always),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let mut wal = rt
            .block_on(WalWriter::create(
                DiskStorage,
                &dir,
                SHARD,
                1,
                SEGMENT_BYTES_MAX,
                mode,
                0,
            ))
            .unwrap();
        let mut appended = 0u64;
        // The first segment still on disk.
        let mut kept_from = 1;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let seq = wal.segment_seq();
                        let started = Instant::now();
                        wal.append(encode(black_box(&samples))).await.unwrap();
                        spent += started.elapsed();
                        appended += 1;
                        if wal.segment_seq() != seq {
                            kept_from = wal.segment_seq();
                            wal.remove_before(kept_from).unwrap();
                        }
                    }
                    spent
                })
            });
        });
        rt.block_on(wal.close()).unwrap();
        // Segments already removed took their records with them.
        let replayed = replayed_records(&dir, kept_from);
        // Nothing is appended when a filter (`cargo bench -- wal/replay`) skips it.
        assert!(
            replayed <= appended && (replayed > 0 || appended == 0),
            "{replayed} of {appended}"
        );
    }
    group.finish();
}

/// Series in one shard's part of a request.
const REPLAY_RECORD_SERIES: usize = REQUEST_SAMPLES / 2;

/// Writes one segment of `series` series and `points` samples each, as the bench
/// harness' load leaves it; returns the samples written.
fn write_replay_wal(dir: &Path, series: usize, points: usize) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let labels: Vec<_> = (0..series).map(node_labels).collect();
    let mut buf = segment::header(SHARD).to_vec();
    let mut written = 0;
    for step in 0..points {
        for lo in (0..series).step_by(REPLAY_RECORD_SERIES) {
            let hi = (lo + REPLAY_RECORD_SERIES).min(series);
            if step == 0 {
                record::encode_series(&mut buf, (lo..hi).map(|i| (i as SeriesRef, &labels[i])));
            }
            let samples: Vec<_> = (lo..hi)
                .map(|i| {
                    // A counter growing by a few hundredths a scrape, as node_exporter's do.
                    let ticks = (step * (i % 97 + 3)) as f64;
                    let t = 1_700_000_000_000 + step as i64 * 10_000;
                    (i as SeriesRef, Sample::new(t, ticks / 100.0))
                })
                .collect();
            written += samples.len() as u64;
            record::encode_samples(&mut buf, &samples);
        }
    }
    std::fs::write(dir.join(tsdb_engine::layout::segment_name(1)), buf).unwrap();
    written
}

fn replaying(c: &mut Criterion) {
    let (series, points) = if measuring() {
        (50_000, 40)
    } else {
        (2_000, 5)
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written = write_replay_wal(&dir, series, points);
    let mut group = c.benchmark_group("wal");
    group.throughput(Throughput::Elements(written));
    group.sample_size(10);
    group.bench_function("replay", |b| {
        // The head is dropped outside the timing: start-up keeps it.
        b.iter_with_large_drop(|| {
            let replayed = replay_head(&DiskStorage, &dir, SHARD, 1, Repair::ReadOnly).unwrap();
            assert_eq!(replayed.samples, written);
            assert_eq!(replayed.head.num_series(), series);
            assert!(replayed.stats.damage.is_empty());
            replayed
        });
    });
    group.finish();
}

criterion_group!(benches, encoding, appending, replaying);
criterion_main!(benches);
