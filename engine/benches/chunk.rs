//! Chunk codec micro-benchmarks: encoding and decoding one head-sized chunk
//! (`limits::CHUNK_SAMPLES_MAX` = 120 samples, 10 s apart with a little jitter) of the
//! three shapes a node-exporter fleet is made of: an integer counter, a gauge with two
//! decimals, and a constant. Throughput is in samples.
//!
//! Only the codec's public entry points are called ([`chunk::encode`],
//! [`chunk::decode`]), so a new encoding can be benchmarked by swapping them.
//! `cargo test --benches` runs each once; before that, every chunk is checked to
//! round-trip, and its size is printed to stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsdb_engine::Sample;
use tsdb_engine::chunk;
use tsdb_engine::limits::CHUNK_SAMPLES_MAX;

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// 120 samples 10 s apart, one in eight a millisecond or two late (scrape jitter),
/// with values from `value(i, rng)`.
fn series(seed: u64, mut value: impl FnMut(usize, &mut Rng) -> f64) -> Vec<Sample> {
    let mut rng = Rng(seed);
    let start_ms = 1_700_000_000_000;
    (0..CHUNK_SAMPLES_MAX)
        .map(|i| {
            let jitter = if rng.below(8) == 0 { rng.below(3) } else { 0 };
            let t = start_ms + i as i64 * 10_000 + jitter as i64;
            Sample::new(t, value(i, &mut rng))
        })
        .collect()
}

/// The three shapes: a byte counter (integers, growing by a few KiB a scrape), a load
/// average (two decimals, drifting), and a constant (a memory size).
fn shapes() -> Vec<(&'static str, Vec<Sample>)> {
    let mut counter = 1.0e9;
    let mut gauge_hundredths: i64 = 150;
    vec![
        (
            "counter",
            series(1, |_, rng| {
                counter += (1024 + rng.below(8192)) as f64;
                counter
            }),
        ),
        (
            "gauge_2dp",
            series(2, |_, rng| {
                gauge_hundredths = (gauge_hundredths + rng.below(41) as i64 - 20).max(0);
                gauge_hundredths as f64 / 100.0
            }),
        ),
        ("constant", series(3, |_, _| 16_777_216_000.0)),
    ]
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Elements(CHUNK_SAMPLES_MAX as u64));
    for (shape, samples) in shapes() {
        let bytes = chunk::encode(&samples);
        let decoded = chunk::decode(&bytes).unwrap();
        assert_eq!(decoded, samples, "{shape} chunk does not round-trip");
        eprintln!(
            "chunk {shape}: {} bytes, {:.2} bytes/sample",
            bytes.len(),
            bytes.len() as f64 / samples.len() as f64
        );
        group.bench_function(format!("encode/{shape}"), |b| {
            b.iter(|| chunk::encode(black_box(&samples)));
        });
        group.bench_function(format!("decode/{shape}"), |b| {
            b.iter(|| chunk::decode(black_box(&bytes)).unwrap());
        });
        // Blocks keep the packed encoding where it is smaller; every shape here packs.
        let packed = chunk::packed::encode(&samples).unwrap();
        assert_eq!(
            chunk::packed::decode(&packed).unwrap(),
            samples,
            "{shape} packed chunk does not round-trip"
        );
        group.bench_function(format!("packed_encode/{shape}"), |b| {
            b.iter(|| chunk::packed::encode(black_box(&samples)).unwrap());
        });
        group.bench_function(format!("packed_decode/{shape}"), |b| {
            b.iter(|| chunk::packed::decode(black_box(&packed)).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
