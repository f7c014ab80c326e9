//! The engine's fuzz harnesses (`tsdb_engine::fuzz`) under the seeded loop of
//! `fuzz_driver`: at least 100,000 inputs per target, mutated from the valid inputs
//! built here. `TSDB_FUZZ_ITERS` runs more, `TSDB_FUZZ_SEED` picks another seed,
//! `TSDB_FUZZ_ITER` replays one input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "corpus building fails loudly on a broken encoder"
)]

mod fuzz_driver;

use fuzz_driver::{AllocBound, CountingAlloc, Target, peak_bytes};
use tsdb_engine::block::{ChunkData, SeriesChunks, encode_block};
use tsdb_engine::chunk;
use tsdb_engine::fuzz;
use tsdb_engine::model::{Label, Labels, STALE_NAN_BITS, Sample};
use tsdb_engine::wal::{record, segment};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// How much a codec of on-disk bytes may hold at once per input byte. The steepest
/// growth: a chunk stream packs up to four samples a byte (two bits each) into 16-byte
/// `Sample`s, 64×, and the harness holds `decode`'s result, the iterator's and a
/// re-decoded copy at once, 192×. A WAL label grows about 8× (6 bytes into a 48-byte
/// `Label`), a `meta.json` source list 8× (`"",` into a 24-byte `String`). 64 KiB
/// covers fixed costs (error messages, serde's buffers).
const CODEC: AllocBound = AllocBound {
    base_bytes: 64 << 10,
    per_input_byte: 256,
};

/// The packed chunk: a constant sequence of any length costs a few bytes, so a dozen
/// bytes may claim the most samples a chunk header counts (65,535), whatever the input
/// length. That bounds the decoder at about 48 bytes a sample (the samples, the
/// timestamp deltas and the integers with their running sums), 3 MiB, and the harness
/// decodes a second time while holding the first result; 8 MiB covers it.
const PACKED: AllocBound = AllocBound {
    base_bytes: 8 << 20,
    per_input_byte: 256,
};

/// The block index: each label reference (two varints, two bytes or more) becomes a
/// 48-byte `Label` holding copies of both symbols, so growth depends on symbol length;
/// the reader keeps the index in memory this way by design (a block's series cost what
/// they cost in the head). 1024× allows references to symbols of some 500 bytes.
const INDEX: AllocBound = AllocBound {
    base_bytes: 64 << 10,
    per_input_byte: 1024,
};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
}

fn series_record(series: &[(u64, Labels)]) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_series(&mut out, series.iter().map(|(r, l)| (*r, l)));
    out
}

fn samples_record(samples: &[(u64, Sample)]) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_samples(&mut out, samples);
    out
}

/// Framed records of both kinds, alone and in runs.
fn wal_records() -> Vec<Vec<u8>> {
    let up = labels(&[("__name__", "up"), ("job", "api"), ("instance", "a:9100")]);
    let long = labels(&[("__name__", "x"), ("v", &"é".repeat(40))]);
    let series = series_record(&[
        (0, up.clone()),
        (7, long),
        (u64::MAX, labels(&[("a", "b")])),
    ]);
    let samples = samples_record(&[
        (0, Sample::new(1_700_000_000_000, 1.0)),
        (7, Sample::new(i64::MIN, f64::from_bits(STALE_NAN_BITS))),
        (u64::MAX, Sample::new(i64::MAX, -0.0)),
    ]);
    let one = samples_record(&[(3, Sample::new(5, f64::INFINITY))]);
    let empty = samples_record(&[]);
    let mut run = series.clone();
    run.extend_from_slice(&samples);
    run.extend_from_slice(&one);
    let mut zero_tail = one.clone();
    zero_tail.extend_from_slice(&[0; 24]);
    let mut out = vec![series, samples, one, empty, run, zero_tail];
    // The same records without their frames, as the harness also decodes bodies.
    let bodies: Vec<Vec<u8>> = out
        .iter()
        .take(4)
        .map(|r| r[record::HEADER_BYTES..].to_vec())
        .collect();
    out.extend(bodies);
    out
}

/// Whole segments: header and records, clean and with the tails a crash leaves.
fn wal_segments() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (shard, body) in [0u32, 3, u32::MAX]
        .into_iter()
        .zip(wal_records().into_iter().take(6))
    {
        let mut seg = segment::header(shard).to_vec();
        seg.extend_from_slice(&body);
        out.push(seg.clone());
        seg.truncate(seg.len() - 5);
        out.push(seg);
    }
    let mut seg = segment::header(1).to_vec();
    for body in wal_records().into_iter().take(5) {
        seg.extend_from_slice(&body);
    }
    out.push(seg);
    out.push(segment::header(2).to_vec());
    out
}

fn regular(n: i64, start: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample::new(start + i * step, value(i)))
        .collect()
}

/// Chunks of the shapes a head seals: regular scrapes, jitter, counters, gauges,
/// special values, extreme timestamps, one sample, none.
fn chunk_samples() -> Vec<Vec<Sample>> {
    let jitter: Vec<Sample> = (0..120)
        .map(|i| {
            Sample::new(
                1_700_000_000_000 + i * 15_000 + (i * 7919) % 97,
                (i % 13) as f64,
            )
        })
        .collect();
    vec![
        regular(120, 1_700_000_000_000, 15_000, |i| i as f64),
        jitter,
        regular(60, 0, 1, |i| (i as f64).sin()),
        regular(30, -1_000_000, 999_999, |i| 1e300 * i as f64),
        vec![
            Sample::new(i64::MIN, f64::from_bits(STALE_NAN_BITS)),
            Sample::new(-1, f64::NAN),
            Sample::new(0, f64::INFINITY),
            Sample::new(1, -0.0),
            Sample::new(i64::MAX, f64::from_bits(0x7ff8_dead_beef_0001)),
        ],
        vec![Sample::new(42, 1.5)],
        vec![],
    ]
}

fn chunks() -> Vec<Vec<u8>> {
    chunk_samples().iter().map(|s| chunk::encode(s)).collect()
}

/// Packed chunks: the corpus' samples where they pack, and exporter-like series
/// (regular or jittered timestamps; constant, counting and wandering decimals).
fn packed_chunks() -> Vec<Vec<u8>> {
    let mut series = chunk_samples();
    for (step_ms, jitter) in [(10_000i64, 0i64), (15_000, 7)] {
        for shape in 0..3u64 {
            series.push(
                (0..300i64)
                    .map(|i| {
                        let t = 1_700_000_000_000 + i * step_ms + (i * 31) % (jitter + 1);
                        let ticks = match shape {
                            0 => 4096,
                            1 => 1_000_000 + i * 77 + (i * i) % 13,
                            _ => 500 + (i * 7919) % 41 - 20,
                        };
                        Sample::new(t, ticks as f64 / 100.0)
                    })
                    .collect(),
            );
        }
    }
    series
        .iter()
        .filter_map(|s| chunk::packed::encode(s))
        .collect()
}

/// Raw bytes for the samples generator: timestamps and values to start from, then
/// operation bytes of each kind.
fn sample_recipes() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for start in [0i64, 1_700_000_000_000, i64::MIN, i64::MAX - 100] {
        for ops in [
            &[0u8; 40][..],
            &[0x01, 9, 0x05, 3, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0x0f; 64],
        ] {
            let mut r = start.to_le_bytes().to_vec();
            r.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
            r.extend_from_slice(ops);
            out.push(r);
        }
    }
    out
}

fn blocks() -> Vec<tsdb_engine::block::EncodedBlock> {
    let chunk = |s: &[Sample]| ChunkData::from_samples(s);
    let small = vec![
        SeriesChunks {
            labels: labels(&[("__name__", "up"), ("job", "b")]),
            chunks: vec![
                chunk(&regular(2, 1000, 1000, |_| 1.0)),
                chunk(&regular(1, 3000, 1, |_| 7.0)),
            ],
        },
        SeriesChunks {
            labels: labels(&[("__name__", "up"), ("job", "a")]),
            chunks: vec![chunk(&regular(4, 1000, 500, |i| i as f64))],
        },
    ];
    let many: Vec<SeriesChunks> = (0..20)
        .map(|i| SeriesChunks {
            labels: labels(&[
                (
                    "__name__",
                    if i % 3 == 0 {
                        "a"
                    } else {
                        "node_cpu_seconds_total"
                    },
                ),
                ("cpu", &(i % 4).to_string()),
                ("i", &format!("{i:02}")),
            ]),
            chunks: vec![chunk(&regular(3, i * 100, 10, |x| x as f64))],
        })
        .collect();
    let extreme = vec![SeriesChunks {
        labels: labels(&[("z", "y")]),
        chunks: vec![
            chunk(&[Sample::new(i64::MIN, 0.0), Sample::new(i64::MIN + 1, 1.0)]),
            chunk(&[Sample::new(i64::MAX, 2.0)]),
        ],
    }];
    vec![
        encode_block("01JDQ8Z1W0T2B3C4D5E6F7G8H9", 0, 1, vec![], vec![], small),
        encode_block(
            "01JDQ8Z1W0T2B3C4D5E6F7G8HA",
            7,
            3,
            vec!["A".into(), "B".into()],
            vec!["P".into()],
            many,
        ),
        encode_block("X", u32::MAX, 1, vec![], vec![], extreme),
        encode_block("01JDQ8Z1W0T2B3C4D5E6F7G8HB", 1, 1, vec![], vec![], vec![]),
    ]
}

/// JSON tokens for `meta.json`: keys, delimiters and numbers on every boundary.
const META_DICT: &[&str] = &[
    "\"ulid\"",
    "\"min_time\"",
    "\"max_time\"",
    "\"stats\"",
    "\"num_samples\"",
    "\"num_series\"",
    "\"num_chunks\"",
    "\"compaction\"",
    "\"level\"",
    "\"sources\"",
    "\"parents\"",
    "\"version\"",
    "\"shard\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "0",
    "-1",
    "1",
    "1.0",
    "1e3",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    " ",
    "\n",
];

#[test]
fn wal_record() {
    Target {
        name: "wal_record",
        run: fuzz::wal_record,
        corpus: wal_records(),
        dict: &[],
        alloc: CODEC,
    }
    .fuzz();
}

#[test]
fn wal_segment() {
    Target {
        name: "wal_segment",
        run: fuzz::wal_segment,
        corpus: wal_segments(),
        dict: &[],
        alloc: CODEC,
    }
    .fuzz();
}

#[test]
fn chunk_decode() {
    Target {
        name: "chunk_decode",
        run: fuzz::chunk_decode,
        corpus: chunks(),
        dict: &[],
        alloc: CODEC,
    }
    .fuzz();
}

#[test]
fn packed_decode() {
    Target {
        name: "packed_decode",
        run: fuzz::packed_decode,
        corpus: packed_chunks(),
        dict: &[],
        alloc: PACKED,
    }
    .fuzz();
}

#[test]
fn chunk_round_trip() {
    Target {
        name: "chunk_round_trip",
        run: fuzz::chunk_round_trip,
        corpus: sample_recipes(),
        dict: &[],
        alloc: CODEC,
    }
    .fuzz();
}

#[test]
fn block_index() {
    Target {
        name: "block_index",
        run: fuzz::block_index,
        corpus: blocks().into_iter().map(|b| b.index).collect(),
        dict: &[],
        alloc: INDEX,
    }
    .fuzz();
}

#[test]
fn block_meta() {
    Target {
        name: "block_meta",
        run: fuzz::block_meta,
        corpus: blocks().into_iter().map(|b| b.meta.to_json()).collect(),
        dict: META_DICT,
        alloc: CODEC,
    }
    .fuzz();
}

/// A count or length that claims more than the input holds never sizes an allocation:
/// every decoder allocates by what the remaining bytes can hold.
#[test]
fn claimed_counts_do_not_size_allocations() {
    let small = |what: &str, f: &mut dyn FnMut()| {
        let peak = peak_bytes(f);
        assert!(peak < 4096, "{what}: held {peak} bytes");
    };
    // A chunk claiming 65,535 samples over four bytes of stream.
    small("chunk", &mut || {
        assert!(chunk::decode(&[0xff, 0xff, 0, 0, 0, 0]).is_err())
    });
    // WAL records claiming 2^32 - 1 samples, and series of 65,535 labels.
    let mut samples = vec![2, 0xff, 0xff, 0xff, 0xff];
    samples.extend_from_slice(&[0; 24]);
    small("wal samples", &mut || {
        assert!(record::decode(&samples).is_err())
    });
    let mut series = vec![1, 0xff, 0xff, 0xff, 0xff];
    series.extend_from_slice(&[7; 8]);
    series.extend_from_slice(&[0xff, 0xff, 1, 0, b'a']);
    small("wal series", &mut || {
        assert!(record::decode(&series).is_err())
    });
    // An index whose symbol count says 2^32 - 1, resealed so the count is read.
    let mut index = blocks()[0].index.clone();
    index[16..20].copy_from_slice(&[0xff; 4]);
    small("index", &mut || fuzz::block_index(&index));
}
