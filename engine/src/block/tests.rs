//! Block tests end to end: write a block of a few hundred random series, read it all
//! back, select with every matcher kind against a brute-force model, and damage each
//! file to see open, reads and verification refuse it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::chunk::tests::Rng;
use crate::error::Error;
use crate::layout::{CHUNKS_FILE, INDEX_FILE, META_FILE};
use crate::model::{Label, Labels, Matcher, Sample};

const ULID: &str = "01JDQ8Z1W0T2B3C4D5E6F7G8H9";

/// Random series: metric names, jobs, instances, and an `env` label on some.
fn random_series(seed: u64, n: usize) -> Vec<SeriesChunks> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let mut pairs = vec![
                Label::new("__name__", ["cpu", "mem", "disk", "net"][i % 4]),
                Label::new("job", format!("job{}", i % 3)),
                Label::new("instance", format!("host{i}")),
            ];
            if i % 5 == 0 {
                pairs.push(Label::new("env", if i % 10 == 0 { "prod" } else { "dev" }));
            }
            let mut t = rng.below(50_000) as i64 - 20_000;
            let chunks = (0..1 + rng.below(3))
                .map(|_| {
                    let samples: Vec<Sample> = (0..1 + rng.below(120))
                        .map(|_| {
                            t += 1 + rng.below(20_000) as i64;
                            Sample::new(t, (rng.below(10_000) as f64) / 100.0)
                        })
                        .collect();
                    // A gap between chunks, so time ranges can fall between them.
                    t += rng.below(100_000) as i64;
                    ChunkData::from_samples(&samples)
                })
                .collect();
            SeriesChunks {
                labels: Labels::new(pairs).unwrap(),
                chunks,
            }
        })
        .collect()
}

/// Writes a block of `series` under a fresh temp dir.
fn write(series: Vec<SeriesChunks>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let block = encode_block(ULID, 3, 1, vec![], vec![], series);
    let dir = write_block_dir(&blocks, &block).unwrap();
    (tmp, dir)
}

fn model(series: &[SeriesChunks]) -> BTreeMap<Labels, Vec<Sample>> {
    series
        .iter()
        .map(|s| {
            let samples = s.chunks.iter().flat_map(|c| c.decode().unwrap()).collect();
            (s.labels.clone(), samples)
        })
        .collect()
}

fn same_samples(a: &[Sample], b: &[Sample]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.timestamp_ms == y.timestamp_ms && x.value.to_bits() == y.value.to_bits()
        })
}

#[test]
fn a_written_block_reads_back_equal() {
    let series = random_series(1, 300);
    let want = model(&series);
    let mut input_chunks: BTreeMap<Labels, Vec<ChunkData>> = BTreeMap::new();
    for s in &series {
        input_chunks.insert(s.labels.clone(), s.chunks.clone());
    }
    let (_tmp, dir) = write(series);
    assert_eq!(dir.file_name().unwrap(), ULID);
    assert!(!dir.with_file_name(format!("{ULID}.tmp")).exists());

    let block = Block::open(&dir).unwrap();
    assert_eq!(block.dir(), dir);
    assert_eq!(block.num_series(), 300);
    let meta = block.meta();
    assert_eq!((meta.ulid.as_str(), meta.shard, meta.version), (ULID, 3, 1));
    assert_eq!(meta.compaction.level, 1);
    assert_eq!(meta.compaction.sources, [ULID]);
    let all: Vec<Sample> = want.values().flatten().copied().collect();
    assert_eq!(meta.stats.num_samples, all.len() as u64);
    assert_eq!(meta.stats.num_series, 300);
    assert_eq!(
        meta.min_time,
        all.iter().map(|s| s.timestamp_ms).min().unwrap()
    );
    assert_eq!(
        meta.max_time,
        all.iter().map(|s| s.timestamp_ms).max().unwrap()
    );

    // Series come back in label order, which is the model's order.
    let refs: Vec<SeriesRef> = block.all_series().collect();
    assert_eq!(refs.len(), 300);
    for (r, (labels, samples)) in refs.iter().zip(&want) {
        assert_eq!(block.labels(*r), labels);
        let got = block.read_samples(*r, i64::MIN, i64::MAX).unwrap();
        assert!(same_samples(&got, samples), "{labels}");
        // The writer merges the given chunks (at most 3 × 120 samples here) into one.
        let chunks = block.read_chunks(*r).unwrap();
        assert_eq!(chunks.len(), 1, "{labels}");
        let c = &chunks[0];
        assert_eq!(c.num_samples as usize, samples.len());
        let given = &input_chunks[labels];
        assert_eq!(c.min_time, given.first().unwrap().min_time);
        assert_eq!(c.max_time, given.last().unwrap().max_time);
        assert!(same_samples(&c.decode().unwrap(), samples), "{labels}");
    }

    assert_eq!(block.label_names(), ["__name__", "env", "instance", "job"]);
    assert_eq!(block.label_values("job"), ["job0", "job1", "job2"]);
    assert_eq!(block.label_values("env"), ["dev", "prod"]);
    assert!(block.label_values("nope").is_empty());
    let files: u64 = [META_FILE, INDEX_FILE, CHUNKS_FILE]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    assert_eq!(block.size_bytes(), files);
    assert_eq!(verify_block(&dir).unwrap(), meta.stats);
}

#[test]
fn select_agrees_with_brute_force_for_every_matcher_kind() {
    let series = random_series(2, 200);
    let (_tmp, dir) = write(series);
    let block = Block::open(&dir).unwrap();
    let m = |n: &str, k: &str, v: &str| Matcher::new(n, k, v).unwrap();
    let cases: Vec<Vec<Matcher>> = vec![
        vec![],
        vec![m("__name__", "=", "cpu")],
        vec![m("__name__", "=", "cpu"), m("job", "=", "job1")],
        vec![m("job", "!=", "job1")],
        vec![m("__name__", "=", "mem"), m("job", "!=", "job1")],
        vec![m("instance", "=~", "host1.*")],
        vec![m("instance", "!~", "host1.*")],
        vec![m("instance", "=~", "host1.*"), m("job", "=~", "job[02]")],
        vec![m("env", "=", "")],
        vec![m("env", "!=", "")],
        vec![m("env", "=~", "prod|")],
        vec![m("env", "=~", "p.*")],
        vec![m("env", "!~", "p.*")],
        vec![m("env", "!~", "")],
        vec![m("nope", "=", "x")],
        vec![m("nope", "=", "")],
        vec![m("job", "=~", ".*")],
        vec![m("job", "=~", ".+")],
        vec![m("job", "!~", ".*")],
        vec![
            m("__name__", "=", "net"),
            m("env", "=", ""),
            m("job", "!~", "job0"),
        ],
    ];
    let mut non_empty = 0;
    for matchers in &cases {
        for (min, max) in [(i64::MIN, i64::MAX), (0, 300_000), (1_000_000, 1_000_100)] {
            let got = block.select(matchers, min, max);
            let want: Vec<SeriesRef> = block
                .all_series()
                .filter(|&r| {
                    crate::model::matches_all(matchers, block.labels(r))
                        && block
                            .read_chunks(r)
                            .unwrap()
                            .iter()
                            .any(|c| c.min_time <= max && c.max_time >= min)
                })
                .collect();
            assert_eq!(got, want, "{matchers:?} over {min}..={max}");
            non_empty += usize::from(!got.is_empty());
        }
    }
    // The cases must actually select something most of the time to test anything.
    assert!(non_empty > 30, "{non_empty}");
    assert_eq!(block.select(&[], i64::MIN, i64::MAX).len(), 200);
    assert!(block.select(&[], i64::MAX - 1, i64::MAX).is_empty());
}

#[test]
fn reads_filter_to_the_time_range() {
    let series = random_series(3, 50);
    let want = model(&series);
    let (_tmp, dir) = write(series);
    let block = Block::open(&dir).unwrap();
    let mut rng = Rng::new(4);
    for (r, samples) in block.all_series().zip(want.values()) {
        for _ in 0..10 {
            let a = samples[rng.below(samples.len() as u64) as usize].timestamp_ms;
            let b = samples[rng.below(samples.len() as u64) as usize].timestamp_ms;
            let (min, max) = (
                a.min(b) - rng.below(3) as i64,
                a.max(b) + rng.below(3) as i64,
            );
            let filtered: Vec<Sample> = samples
                .iter()
                .filter(|s| (min..=max).contains(&s.timestamp_ms))
                .copied()
                .collect();
            assert!(same_samples(
                &block.read_samples(r, min, max).unwrap(),
                &filtered
            ));
        }
        let last = samples.last().unwrap().timestamp_ms;
        assert!(
            block
                .read_samples(r, last + 1, i64::MAX)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_damaged_chunk_fails_its_checksum() {
    let (_tmp, dir) = write(random_series(5, 20));
    let path = dir.join(CHUNKS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    // The file's last byte is data of the last chunk of the last series.
    *bytes.last_mut().unwrap() ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let block = Block::open(&dir).unwrap();
    let last = block.all_series().last().unwrap();
    let e = block.read_samples(last, i64::MIN, i64::MAX).unwrap_err();
    assert!(
        matches!(&e, Error::ChecksumMismatch { path: p, .. } if *p == path),
        "{e}"
    );
    assert!(matches!(
        block.read_chunks(last),
        Err(Error::ChecksumMismatch { .. })
    ));
    // Other series still read.
    block
        .read_samples(SeriesRef(0), i64::MIN, i64::MAX)
        .unwrap();
    assert!(matches!(
        verify_block(&dir),
        Err(Error::ChecksumMismatch { .. })
    ));
}

fn open_err(dir: &Path) -> Error {
    match Block::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn a_truncated_index_is_corrupt() {
    let (_tmp, dir) = write(random_series(6, 20));
    let path = dir.join(INDEX_FILE);
    let bytes = std::fs::read(&path).unwrap();
    for len in [bytes.len() - 1, bytes.len() / 2, 10, 0] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = open_err(&dir);
        assert!(
            matches!(&e, Error::Corrupt { path: p, .. } if *p == path),
            "{e}"
        );
        assert!(verify_block(&dir).is_err());
    }
}

#[test]
fn missing_or_inconsistent_files_fail_open() {
    let (_tmp, dir) = write(random_series(7, 20));
    let meta_path = dir.join(META_FILE);
    let meta = std::fs::read(&meta_path).unwrap();

    // Meta stats that disagree with the index.
    let mut m = BlockMeta::parse(&meta_path, &meta).unwrap();
    m.stats.num_samples += 1;
    std::fs::write(&meta_path, m.to_json()).unwrap();
    assert!(matches!(open_err(&dir), Error::Corrupt { .. }));

    // A directory not named by the meta's ULID.
    let moved = dir.with_file_name("elsewhere");
    std::fs::write(&meta_path, &meta).unwrap();
    std::fs::rename(&dir, &moved).unwrap();
    assert!(matches!(open_err(&moved), Error::Corrupt { .. }));
    std::fs::rename(&moved, &dir).unwrap();
    Block::open(&dir).unwrap();

    // A chunks file shorter than the chunks the index points into.
    let chunks_path = dir.join(CHUNKS_FILE);
    let chunks = std::fs::read(&chunks_path).unwrap();
    std::fs::write(&chunks_path, &chunks[..chunks.len() - 1]).unwrap();
    let e = open_err(&dir);
    assert!(
        matches!(&e, Error::Corrupt { .. }) && e.to_string().contains("index"),
        "{e}"
    );
    std::fs::write(&chunks_path, &chunks).unwrap();

    std::fs::remove_file(&meta_path).unwrap();
    let e = open_err(&dir);
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("meta.json"),
        "{e}"
    );
    assert!(verify_block(&dir).is_err());
}

#[test]
fn an_empty_block_round_trips() {
    let (_tmp, dir) = write(vec![]);
    let block = Block::open(&dir).unwrap();
    assert_eq!(block.num_series(), 0);
    assert_eq!(
        (block.meta().min_time, block.meta().max_time),
        (i64::MAX, i64::MIN)
    );
    assert!(block.select(&[], i64::MIN, i64::MAX).is_empty());
    assert!(block.label_names().is_empty());
    assert_eq!(verify_block(&dir).unwrap(), BlockStats::default());
}

#[test]
fn write_block_dir_replaces_a_stale_tmp_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = tmp.path().join("blocks");
    let stale = blocks.join(format!("{ULID}.tmp"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join(CHUNKS_FILE), b"torn").unwrap();
    let block = encode_block(
        ULID,
        0,
        2,
        vec!["A".into(), "B".into()],
        vec!["P".into()],
        random_series(8, 5),
    );
    let dir = write_block_dir(&blocks, &block).unwrap();
    assert!(!stale.exists());
    let meta = Block::open(&dir).unwrap().meta().clone();
    assert_eq!(meta.compaction.sources, ["A", "B"]);
    assert_eq!(meta.compaction.parents, ["P"]);
    assert_eq!(meta.compaction.level, 2);
    assert!(matches!(
        write_block_dir(&blocks, &block),
        Err(Error::Io { .. })
    ));
}

/// A series of `n` samples 10 s apart whose values come from `value`, as the head
/// hands it over: XOR chunks of 120.
fn head_series(name: &str, n: usize, value: impl Fn(usize) -> f64) -> SeriesChunks {
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample::new(1_700_000_000_000 + i as i64 * 10_000, value(i)))
        .collect();
    SeriesChunks {
        labels: Labels::new(vec![Label::new("__name__", name)]).unwrap(),
        chunks: crate::head::encode_chunks(&samples),
    }
}

#[test]
fn block_chunks_are_merged_and_packed_where_smaller() {
    use crate::chunk::Encoding;
    use crate::limits::BLOCK_CHUNK_SAMPLES_MAX;
    // Hundredths as an exporter writes them: integer ticks divided once.
    let counter = head_series("counter", 1500, |i| (i * 100 + i * i % 977) as f64 / 100.0);
    let stale = head_series("stale", 800, |i| {
        if i == 400 {
            f64::from_bits(crate::model::STALE_NAN_BITS)
        } else {
            i as f64
        }
    });
    let want = model(&[counter.clone(), stale.clone()]);
    let xor_bytes: usize = counter.chunks.iter().map(|c| c.data.len()).sum();
    let (_tmp, dir) = write(vec![counter, stale]);
    let block = Block::open(&dir).unwrap();
    let shapes = |r: SeriesRef| -> Vec<(u32, Encoding)> {
        let chunks = block.read_chunks(r).unwrap();
        chunks.iter().map(|c| (c.num_samples, c.encoding)).collect()
    };
    let max = BLOCK_CHUNK_SAMPLES_MAX as u32;
    assert_eq!(
        shapes(SeriesRef(0)),
        [
            (max, Encoding::Packed),
            (max, Encoding::Packed),
            (1500 - 2 * max, Encoding::Packed)
        ]
    );
    // The chunk holding the staleness marker stays XOR; the other is packed.
    assert_eq!(
        shapes(SeriesRef(1)),
        [(max, Encoding::Xor), (800 - max, Encoding::Packed)]
    );
    for (r, (labels, samples)) in block.all_series().zip(&want) {
        let got = block.read_samples(r, i64::MIN, i64::MAX).unwrap();
        assert!(same_samples(&got, samples), "{labels}");
    }
    let packed_bytes: usize = block
        .read_chunks(SeriesRef(0))
        .unwrap()
        .iter()
        .map(|c| c.data.len())
        .sum();
    assert!(
        packed_bytes * 3 < xor_bytes,
        "{packed_bytes} vs {xor_bytes}"
    );
    // Written again (a compaction copying them), packed chunks keep their bytes.
    let again = block.read_chunks(SeriesRef(0)).unwrap();
    let labels = block.labels(SeriesRef(0)).clone();
    let copy = encode_block(
        "01JDQ8Z1W0T2B3C4D5E6F7G8HA",
        3,
        2,
        vec![],
        vec![],
        vec![SeriesChunks {
            labels,
            chunks: again.clone(),
        }],
    );
    let offset = super::chunks::CHUNKS_HEADER_BYTES as usize + 9;
    let first = &again[0].data;
    assert_eq!(&copy.chunks[offset..offset + first.len()], &first[..]);
}

/// Blocks written before `chunks` version 2 (XOR records without an encoding byte)
/// still open, read and verify, and compacting one writes version 2.
#[test]
fn reads_a_version_1_block() {
    use crate::chunk::Encoding;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/blocks-v1")
        .join(ULID);
    assert_eq!(std::fs::read(dir.join(CHUNKS_FILE)).unwrap()[4], 1);
    let block = Block::open(&dir).unwrap();
    assert_eq!(verify_block(&dir).unwrap(), block.meta().stats);
    let s = |t, v| Sample::new(t, v);
    let a = block
        .read_samples(SeriesRef(0), i64::MIN, i64::MAX)
        .unwrap();
    let want_a = [s(1000, 1.0), s(2000, 1.0), s(3000, 2.0), s(3500, 2.5)];
    assert!(same_samples(&a, &want_a), "{a:?}");
    let b = block.read_chunks(SeriesRef(1)).unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|c| c.encoding == Encoding::Xor));
    let want_b = [s(1000, 1.0), s(2000, 1.0), s(3000, 7.0)];
    let got_b: Vec<Sample> = b.iter().flat_map(|c| c.decode().unwrap()).collect();
    assert!(same_samples(&got_b, &want_b));

    let merged = crate::compact::merge(&[&block]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ulid = "01JDQ8Z1W0T2B3C4D5E6F7G8HB";
    let encoded = encode_block(ulid, 0, 2, vec![ULID.into()], vec![ULID.into()], merged);
    assert_eq!(encoded.chunks[4], super::chunks::CHUNKS_VERSION);
    let out = write_block_dir(tmp.path(), &encoded).unwrap();
    let compacted = Block::open(&out).unwrap();
    for (r, want) in [(SeriesRef(0), &want_a[..]), (SeriesRef(1), &want_b[..])] {
        let chunks = compacted.read_chunks(r).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].encoding, Encoding::Packed);
        let got = compacted.read_samples(r, i64::MIN, i64::MAX).unwrap();
        assert!(same_samples(&got, want));
    }
}

#[test]
fn block_encoder_one_series_at_a_time_writes_what_encode_block_writes() {
    let series = random_series(11, 200);
    let whole = encode_block(ULID, 3, 1, vec![], vec![], series.clone());
    let mut sorted = series;
    sorted.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut encoder = BlockEncoder::new(0);
    assert!(encoder.is_empty());
    // A series without chunks is left out, as `encode_block` leaves it out.
    encoder.push(SeriesChunks {
        labels: Labels::new(vec![Label::new("__name__", "aaa")]).unwrap(),
        chunks: vec![],
    });
    assert!(encoder.is_empty());
    for s in sorted {
        encoder.push(s);
    }
    assert!(!encoder.is_empty());
    let streamed = encoder.finish(ULID, 3, 1, vec![], vec![]);
    assert_eq!(streamed.chunks, whole.chunks);
    assert_eq!(streamed.index, whole.index);
    assert_eq!(streamed.meta.to_json(), whole.meta.to_json());
    assert_eq!(streamed.meta.compaction.sources, vec![ULID.to_string()]);
}
