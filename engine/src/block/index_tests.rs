//! Tests of the index file: the documented example, round trips, and seeded loops of
//! garbage and of damaged-but-checksummed indexes that must never panic.

use super::*;
use crate::chunk::tests::Rng;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
}

fn example() -> Vec<SeriesEntry> {
    let block = super::super::example_block();
    parse(Path::new("index"), &block.index, block.chunks.len() as u64)
        .unwrap()
        .series
}

#[test]
fn doc_example_matches_encoder() {
    let doc = include_str!("../../docs/format/index.md");
    let want = super::super::doc_hex(doc);
    let block = super::super::example_block();
    let got = block.index.clone();
    assert_eq!(
        got,
        want,
        "index.md is out of date; the encoder writes:\n{}",
        super::super::hex_lines(&got)
    );
    let index = parse(Path::new("index"), &got, block.chunks.len() as u64).unwrap();
    assert_eq!(encode(&index.series), got);
    // The writer merged `up{job="b"}`'s two chunks into one.
    assert_eq!(index.series[1].chunks.len(), 1);
    let names: Vec<_> = index.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["__name__", "job"]);
    let job = &index.labels[1].values;
    assert_eq!(
        (job[0].value.as_str(), &job[0].postings[..]),
        ("a", &[0][..])
    );
    assert_eq!(
        (job[1].value.as_str(), &job[1].postings[..]),
        ("b", &[1][..])
    );
    assert_eq!(index.labels[0].values[0].postings, [0, 1]);
}

#[test]
fn extreme_times_round_trip() {
    let series = vec![SeriesEntry {
        labels: labels(&[("a", "b")]),
        chunks: vec![
            ChunkMeta {
                min_time: i64::MIN,
                max_time: i64::MIN + 1,
                num_samples: 2,
                offset: 8,
                len: 10,
            },
            ChunkMeta {
                min_time: 0,
                max_time: i64::MAX,
                num_samples: 65535,
                offset: 26,
                len: 10,
            },
        ],
    }];
    let bytes = encode(&series);
    assert_eq!(parse(Path::new("i"), &bytes, 44).unwrap().series, series);
    // A chunks file one byte short of the last chunk.
    assert!(matches!(
        parse(Path::new("i"), &bytes, 43),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn empty_index_round_trips() {
    let index = parse(Path::new("i"), &encode(&[]), 8).unwrap();
    assert!(index.series.is_empty() && index.labels.is_empty());
}

#[test]
fn damage_is_reported_with_the_path() {
    let good = encode(&example());
    let path = Path::new("blocks/X/index");
    for cut in [0, 1, 10, good.len() - 1] {
        let e = parse(path, &good[..cut], 1 << 10).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. } | Error::ChecksumMismatch { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("blocks/X/index"), "{e}");
    }
    let mut flipped = good.clone();
    flipped[20] ^= 1;
    assert!(matches!(
        parse(path, &flipped, 1 << 10),
        Err(Error::ChecksumMismatch { .. })
    ));
}

/// Rewrites the trailing checksum so damage reaches the structural checks.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= 4 {
        let body = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(0x1dec5);
    let mut good_series = example();
    for i in 0..40 {
        good_series.push(SeriesEntry {
            labels: labels(&[("__name__", "zz"), ("i", &format!("{i:03}"))]),
            chunks: vec![ChunkMeta {
                min_time: i,
                max_time: i + 5,
                num_samples: 3,
                offset: 8,
                len: 10,
            }],
        });
    }
    let good = encode(&good_series);
    let mut accepted = 0;
    for round in 0..5_000u32 {
        let bytes = match round % 3 {
            0 => {
                let len = rng.below(200) as usize;
                let mut b = rng.bytes(len);
                if rng.below(2) == 0 {
                    reseal(&mut b);
                }
                b
            }
            _ => {
                let mut b = good.clone();
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] = rng.next_u64() as u8;
                }
                if rng.below(5) == 0 {
                    b.truncate(rng.below(b.len() as u64) as usize);
                }
                reseal(&mut b);
                b
            }
        };
        if let Ok(index) = parse(Path::new("index"), &bytes, 1 << 20) {
            accepted += 1;
            // Whatever parses must satisfy the invariants the reader relies on.
            assert!(index.series.windows(2).all(|w| w[0].labels < w[1].labels));
            for l in &index.labels {
                for v in &l.values {
                    assert!(
                        v.postings
                            .iter()
                            .all(|&r| (r as usize) < index.series.len())
                    );
                }
            }
        }
    }
    // Some damage lands in values that stay valid (a label value's byte); most not.
    assert!(accepted < 2_500, "{accepted} damaged indexes accepted");
}
