//! Black-box: the WAL damage table. Data is written through the real server
//! (`--shards 1`, 1 MiB segments, SIGTERM), then the files are damaged, one case per
//! row: the last record cut at every byte offset, a zero-filled tail, a flipped bit in
//! the middle of a segment with later segments after it, a missing middle segment, and
//! a segment from another shard. For every row `tsdb inspect-wal` runs first and must
//! leave every file byte-identical; then the server must start and become ready, log
//! the damage with shard, segment, offset and bytes_dropped equal to what inspect-wal
//! reported, and serve every sample written before the damage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{Server, bare_command, copy_dir, points, remote_write_body, run_to_exit};

const T0: i64 = 1_700_000_000_000;
const ARGS: &[&str] = &["--shards=1", "--wal-segment-size=1MB"];
/// A samples record of one sample: len, crc, type, count and one 24-byte sample.
const ONE_SAMPLE_RECORD_BYTES: u64 = 4 + 4 + 1 + 4 + 24;
const SEGMENT_HEADER_BYTES: usize = 16;

/// A data dir written through the server and the samples it acknowledged, in order.
/// Samples are 10 ms apart so the head never spans the 2 h that would flush it.
struct Base {
    dir: tempfile::TempDir,
    samples: Vec<(i64, f64)>,
}

fn write(s: &Server, samples: &[(i64, f64)]) {
    let body = remote_write_body(&[(vec![("__name__", "wal_damage")], samples.to_vec())]);
    let (status, text) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204, "{text}");
}

fn build_base(requests: usize, per_request: usize) -> Base {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), ARGS);
    let mut samples = Vec::new();
    for r in 0..requests {
        let batch: Vec<(i64, f64)> = (0..per_request)
            .map(|i| {
                let n = (r * per_request + i) as i64;
                (T0 + n * 10, n as f64 * 0.5)
            })
            .collect();
        write(&s, &batch);
        samples.extend(batch);
    }
    // The last record: one sample of a known series, the smallest record there is.
    let last = (T0 + samples.len() as i64 * 10, -1.0);
    write(&s, &[last]);
    samples.push(last);
    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
    Base { dir, samples }
}

/// A few small records in one segment: fast to start on, for the per-offset rows.
fn small_base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| build_base(3, 10))
}

/// About 3.6 MB of samples records of 240 KB each: four or five 1 MiB segments.
fn big_base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| build_base(15, 10_000))
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

fn wal0(data: &Path) -> PathBuf {
    data.join("wal").join("0")
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(wal0(data))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    out.sort();
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// One damage as both the log and inspect-wal name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Damage {
    shard: u64,
    segment: String,
    offset: u64,
    bytes_dropped: u64,
}

impl Damage {
    fn of(v: &serde_json::Value) -> Damage {
        Damage {
            shard: v["shard"].as_u64().unwrap(),
            segment: v["segment"].as_str().unwrap().to_string(),
            offset: v["offset"].as_u64().unwrap(),
            bytes_dropped: v["bytes_dropped"].as_u64().unwrap(),
        }
    }
}

/// Runs `tsdb inspect-wal --json` on the WAL root and on shard 0's directory, checks
/// that neither changed a byte under `data` and that both agree, and returns the
/// report's damage and its exit code.
fn inspect(data: &Path) -> (Vec<Damage>, i32, serde_json::Value) {
    let before = snapshot(data);
    let run = |dir: PathBuf| {
        let mut cmd = bare_command();
        cmd.arg("inspect-wal").arg(&dir).arg("--json");
        let (code, out) = run_to_exit(cmd);
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        (code.unwrap(), report)
    };
    let (code, report) = run(data.join("wal"));
    let (code_shard, report_shard) = run(wal0(data));
    assert_eq!(code, code_shard);
    assert_eq!(report["shards"], report_shard["shards"]);
    assert_eq!(snapshot(data), before, "inspect-wal changed a file");
    let shards = report["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 1, "{report}");
    let damage = shards[0]["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(Damage::of)
        .collect();
    (damage, code, shards[0].clone())
}

/// Starts the server on the damaged copy, checks the log line `msg` names the damage
/// inspect-wal reported, and that the served samples are exactly `want`.
fn start_and_check(data: &Path, msg: &str, damage: &Damage, want: &[(i64, f64)]) {
    let s = Server::start(data, ARGS);
    let line = s.wait_log(msg, Duration::from_secs(10));
    assert_eq!(Damage::of(&line), *damage, "log line {line}");
    let got = s.export("wal_damage");
    assert_eq!(got.len(), 1, "one series");
    let got = points(&got[0]);
    assert_eq!(got.len(), want.len(), "served sample count");
    assert!(got == want, "served samples differ from the expected ones");
    s.assert_no_unexpected_warnings(&[msg]);
}

fn copy_of(base: &Base) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(base.dir.path(), d.path());
    d
}

#[test]
fn clean_wal_inspects_clean_with_exit_0() {
    let base = small_base();
    let d = copy_of(base);
    let (damage, code, report) = inspect(d.path());
    assert_eq!((damage.len(), code), (0, 0), "{report}");
    assert_eq!(report["samples"].as_u64(), Some(base.samples.len() as u64));
    assert_eq!(report["series"].as_u64(), Some(1));
    assert_eq!(report["min_time_ms"].as_i64(), Some(base.samples[0].0));
    let records: u64 = report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .sum();
    // One series record and one samples record per write.
    assert_eq!(records, 1 + 4);
    // The text form says the same and the same exit code.
    let mut cmd = bare_command();
    cmd.arg("inspect-wal").arg(d.path().join("wal"));
    let (code, out) = run_to_exit(cmd);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("samples: 31") && out.contains("clean"),
        "{out}"
    );
    // A directory that is not a WAL is exit 2.
    let mut cmd = bare_command();
    cmd.arg("inspect-wal").arg(d.path().join("blocks"));
    assert_eq!(run_to_exit(cmd).0, Some(2));
}

#[test]
fn last_record_cut_at_every_byte_offset() {
    let base = small_base();
    let all = &base.samples;
    for cut in 1..ONE_SAMPLE_RECORD_BYTES {
        let d = copy_of(base);
        let last = segments(d.path()).pop().unwrap();
        let len = std::fs::metadata(&last).unwrap().len();
        let start = len - ONE_SAMPLE_RECORD_BYTES;
        let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
        f.set_len(start + cut).unwrap();
        drop(f);
        let (damage, code, _) = inspect(d.path());
        let want = Damage {
            shard: 0,
            segment: name(&last),
            offset: start,
            bytes_dropped: cut,
        };
        assert_eq!((code, damage), (1, vec![want.clone()]), "cut {cut}");
        start_and_check(
            d.path(),
            "truncated damaged WAL tail",
            &want,
            &all[..all.len() - 1],
        );
    }
}

#[test]
fn zero_filled_tail() {
    let base = small_base();
    let d = copy_of(base);
    let last = segments(d.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let len = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&last, bytes).unwrap();
    let (damage, code, _) = inspect(d.path());
    let want = Damage {
        shard: 0,
        segment: name(&last),
        offset: len,
        bytes_dropped: 4096,
    };
    assert_eq!(code, 1);
    assert_eq!(damage, vec![want.clone()]);
    start_and_check(d.path(), "truncated damaged WAL tail", &want, &base.samples);
}

#[test]
fn segment_from_another_shard_is_reported_and_left_alone() {
    let base = small_base();
    let d = copy_of(base);
    let segs = segments(d.path());
    let last = segs.last().unwrap();
    // A copy of the first segment with a header naming shard 1, placed after the last
    // one, where a truncating repair would do the most harm.
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let seq: u64 = name(last).parse().unwrap();
    let foreign = wal0(d.path()).join(format!("{:08}", seq + 1));
    std::fs::write(&foreign, &bytes).unwrap();
    let (damage, code, _) = inspect(d.path());
    let want = Damage {
        shard: 0,
        segment: name(&foreign),
        offset: 0,
        bytes_dropped: bytes.len() as u64,
    };
    assert_eq!(code, 1);
    assert_eq!(damage, vec![want.clone()]);
    start_and_check(
        d.path(),
        "damaged WAL segment: replay of this segment stopped here; later segments are still replayed",
        &want,
        &base.samples,
    );
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        bytes,
        "foreign segment changed"
    );
}

/// `(offset, timestamps)` of every samples record of a segment, walking the framing.
fn records(seg: &[u8]) -> Vec<(usize, Vec<i64>)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    while at + 8 <= seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let body = &seg[at + 8..at + 8 + len];
        let mut ts = Vec::new();
        if body[0] == 2 {
            let count = u32::from_le_bytes(body[1..5].try_into().unwrap()) as usize;
            for i in 0..count {
                let p = 5 + i * 24 + 8;
                ts.push(i64::from_le_bytes(body[p..p + 8].try_into().unwrap()));
            }
        }
        out.push((at, ts));
        at += 8 + len;
    }
    out
}

fn without(all: &[(i64, f64)], lost: &[i64]) -> Vec<(i64, f64)> {
    let lost: std::collections::HashSet<i64> = lost.iter().copied().collect();
    all.iter()
        .copied()
        .filter(|(t, _)| !lost.contains(t))
        .collect()
}

#[test]
fn flipped_bit_in_the_middle_of_a_segment_with_later_segments() {
    let base = big_base();
    let d = copy_of(base);
    let segs = segments(d.path());
    assert!(segs.len() >= 4, "want several segments, got {segs:?}");
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let recs = records(&bytes);
    assert!(recs.len() >= 3, "{} records", recs.len());
    let (at, _) = recs[recs.len() / 2];
    let next = recs.get(recs.len() / 2 + 1).map_or(bytes.len(), |r| r.0);
    bytes[(at + next) / 2] ^= 0x10;
    std::fs::write(victim, &bytes).unwrap();
    // The damaged record and every record after it in the segment are lost.
    let lost: Vec<i64> = recs
        .iter()
        .filter(|(o, _)| *o >= at)
        .flat_map(|(_, ts)| ts.iter().copied())
        .collect();
    assert!(!lost.is_empty());
    let (damage, code, _) = inspect(d.path());
    let want = Damage {
        shard: 0,
        segment: name(victim),
        offset: at as u64,
        bytes_dropped: (bytes.len() - at) as u64,
    };
    assert_eq!(code, 1);
    assert_eq!(damage, vec![want.clone()]);
    start_and_check(
        d.path(),
        "damaged WAL segment: replay of this segment stopped here; later segments are still replayed",
        &want,
        &without(&base.samples, &lost),
    );
}

#[test]
fn missing_middle_segment() {
    let base = big_base();
    let d = copy_of(base);
    let segs = segments(d.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = &segs[1];
    let lost: Vec<i64> = records(&std::fs::read(victim).unwrap())
        .into_iter()
        .flat_map(|(_, ts)| ts)
        .collect();
    assert!(!lost.is_empty());
    std::fs::remove_file(victim).unwrap();
    let (damage, code, _) = inspect(d.path());
    let want = Damage {
        shard: 0,
        segment: name(victim),
        offset: 0,
        bytes_dropped: 0,
    };
    assert_eq!(code, 1);
    assert_eq!(damage, vec![want.clone()]);
    start_and_check(
        d.path(),
        "missing WAL segment: its records are lost; later segments are still replayed",
        &want,
        &without(&base.samples, &lost),
    );
}
