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
use tsdb_engine::storage::DiskStorage;
use tsdb_engine::wal::SyncMode;
use tsdb_engine::wal::reader::{self, Repair};
use tsdb_engine::wal::record::{self, Record, SeriesRef};
use tsdb_engine::wal::writer::WalWriter;

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
        assert!(
            replayed > 0 && replayed <= appended,
            "{replayed} of {appended}"
        );
    }
    group.finish();
}

criterion_group!(benches, encoding, appending);
criterion_main!(benches);
