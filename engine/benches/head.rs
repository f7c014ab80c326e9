//! Head micro-benchmarks: the label hash every series of a request costs
//! ([`Labels::stable_hash`], which also picks the owner shard), the head's series
//! lookup by hash and labels in the steady state (every series already there), the
//! creation of new series, and the postings intersection the head's selects run
//! ([`head::intersect`]). Throughput is in series (ids for the intersection).
//!
//! `cargo bench` uses a request of 2,000 series and a head of 100,000; `cargo test
//! --benches` runs each benchmark once on a head of 5,000.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tsdb_engine::Labels;
use tsdb_engine::head::{self, Head};

mod common;
use common::{measuring, node_labels};

/// Series in one remote_write request (the bench harness' and the targets' size).
const REQUEST_SERIES: usize = 2_000;

fn hash_and_lookup(c: &mut Criterion) {
    let head_series = if measuring() { 100_000 } else { 5_000 };
    let mut head = Head::new();
    let all: Vec<Labels> = (0..head_series).map(node_labels).collect();
    for (r, labels) in all.iter().enumerate() {
        head.create(labels.clone(), labels.stable_hash(), r as u64);
    }
    // One request's worth of series spread over the whole head, as a fleet scraped in
    // turn sends them.
    let request: Vec<(Labels, u64)> = (0..REQUEST_SERIES)
        .map(|i| {
            let labels = all[i * (head_series / REQUEST_SERIES)].clone();
            let hash = labels.stable_hash();
            (labels, hash)
        })
        .collect();
    for (labels, hash) in &request {
        assert!(
            head.lookup(labels, *hash).is_some(),
            "{labels} is in the head"
        );
    }
    let unknown = node_labels(head_series + 1);
    assert_eq!(head.lookup(&unknown, unknown.stable_hash()), None);

    let mut group = c.benchmark_group("head");
    group.throughput(Throughput::Elements(REQUEST_SERIES as u64));
    group.bench_function("stable_hash", |b| {
        b.iter(|| {
            request
                .iter()
                .fold(0u64, |acc, (l, _)| acc ^ black_box(l).stable_hash())
        });
    });
    group.bench_function("lookup_existing", |b| {
        b.iter(|| {
            request
                .iter()
                .filter_map(|(l, h)| head.lookup(black_box(l), *h))
                .count()
        });
    });
    group.bench_function("hash_and_lookup_existing", |b| {
        b.iter(|| {
            request
                .iter()
                .filter_map(|(l, _)| head.lookup(black_box(l), l.stable_hash()))
                .count()
        });
    });
    // Creation into an empty head (the first request after a flush); the head and
    // the labels moved into it are made and dropped outside the timing.
    group.bench_function("create", |b| {
        b.iter_batched(
            || (Head::new(), request.clone()),
            |(mut head, request)| {
                for (r, (labels, hash)) in request.into_iter().enumerate() {
                    head.create(labels, hash, r as u64);
                }
                head
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// `n` ascending ids out of `0..universe`, each id in with probability `n / universe`
/// (independently of the other lists, like postings of unrelated labels).
fn postings(seed: u64, n: usize, universe: u32) -> Vec<u32> {
    let mut x = seed;
    let threshold = (u64::from(u32::MAX) * n as u64 / u64::from(universe)) as u32;
    (0..universe)
        .filter(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32 <= threshold
        })
        .collect()
}

fn intersection(c: &mut Criterion) {
    const UNIVERSE: u32 = 200_000;
    let big = postings(1, 100_000, UNIVERSE);
    let mid = postings(2, 10_000, UNIVERSE);
    let small = postings(3, 1_000, UNIVERSE);
    // A brute-force check of the kernel on these very lists.
    let expected: Vec<u32> = small
        .iter()
        .copied()
        .filter(|id| mid.binary_search(id).is_ok())
        .collect();
    assert_eq!(head::intersect(&mid, &small), expected);
    assert!(!expected.is_empty() && big.len() > 90_000 && small.len() > 800);

    let mut group = c.benchmark_group("postings");
    let pairs: [(&str, &[u32], &[u32]); 3] = [
        ("intersect/100k&10k", &big, &mid),
        ("intersect/10k&1k", &mid, &small),
        ("intersect/100k&1k", &big, &small),
    ];
    for (name, a, b) in pairs {
        group.throughput(Throughput::Elements((a.len() + b.len()) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| head::intersect(black_box(a), black_box(b)));
        });
    }
    group.throughput(Throughput::Elements(
        (big.len() + mid.len() + small.len()) as u64,
    ));
    // Three matchers: the head intersects in matcher order, each step with the last.
    group.bench_function("intersect/100k&10k&1k", |bench| {
        bench.iter(|| head::intersect(&head::intersect(black_box(&big), &mid), &small));
    });
    group.finish();
}

criterion_group!(benches, hash_and_lookup, intersection);
criterion_main!(benches);
