//! Black-box: damaged and half-written blocks. A data dir holds two flushed blocks of
//! one series and more samples in the WAL; each row damages a copy of it the way a
//! disk or a crash would: a flipped byte in a chunk, a truncated index, a missing
//! `meta.json`, a `<ULID>.tmp` left by a crash mid-flush, and the two states a
//! compaction killed by `kill -9` leaves. The server must start, set aside what it
//! cannot read (renamed `<ULID>.broken`, never deleted), log it naming the block, and
//! serve the rest with no sample lost and none stored twice: after a final flush the
//! blocks' sample counts must add up to exactly what is served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{Server, copy_dir, points, remote_write_body};

const T0: i64 = 1_700_000_000_000;
/// Compaction only when asked, so each row controls when blocks merge; the samples
/// are from 2023, so retention must not delete them.
const ARGS: &[&str] = &["--shards=1", "--compaction-interval=1h", "--retention=50y"];
const PER_BATCH: i64 = 200;

/// A data dir with blocks `b1` and `b2` (batches 1 and 2) and batch 3 in the WAL.
struct Base {
    dir: tempfile::TempDir,
    b1: String,
    b2: String,
    samples: Vec<(i64, f64)>,
}

fn batch(k: i64) -> Vec<(i64, f64)> {
    (0..PER_BATCH)
        .map(|i| {
            let n = k * PER_BATCH + i;
            (T0 + n * 1000, n as f64)
        })
        .collect()
}

fn write(s: &Server, samples: &[(i64, f64)]) {
    let body = remote_write_body(&[(vec![("__name__", "blk")], samples.to_vec())]);
    let (status, text) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204, "{text}");
}

fn blocks(data: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(data.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let s = Server::start(dir.path(), ARGS);
        write(&s, &batch(0));
        s.flush();
        let b1 = blocks(dir.path()).pop().unwrap();
        write(&s, &batch(1));
        s.flush();
        let b2 = blocks(dir.path()).into_iter().find(|b| *b != b1).unwrap();
        write(&s, &batch(2));
        let (status, out) = s.terminate();
        assert!(status.success(), "{out}");
        let samples = (0..3).flat_map(batch).collect();
        Base {
            dir,
            b1,
            b2,
            samples,
        }
    })
}

fn copy_of_base() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(base().dir.path(), d.path());
    d
}

fn block(data: &Path, ulid: &str) -> PathBuf {
    data.join("blocks").join(ulid)
}

fn exported(s: &Server) -> Vec<(i64, f64)> {
    let lines = s.export("blk");
    assert!(lines.len() <= 1, "one series");
    lines.first().map(points).unwrap_or_default()
}

/// Flushes the head, then checks that the blocks in place hold exactly `want` samples
/// in all (a sample stored twice would count twice) and that `want` is served.
fn assert_exactly(s: &Server, data: &Path, want: &[(i64, f64)]) {
    assert!(
        exported(s) == want,
        "served samples differ from the expected ones"
    );
    s.flush();
    let stored: u64 = blocks(data)
        .iter()
        .filter(|b| !b.contains('.'))
        .map(|b| {
            let meta = std::fs::read(block(data, b).join("meta.json")).unwrap();
            let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
            meta["stats"]["num_samples"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(stored, want.len() as u64, "samples stored in blocks");
    assert!(exported(s) == want, "after the flush");
}

fn without_batch(k: i64) -> Vec<(i64, f64)> {
    let gone = batch(k);
    base()
        .samples
        .iter()
        .copied()
        .filter(|p| !gone.contains(p))
        .collect()
}

/// Checks the start set `ulid` aside with an error line naming it, files intact.
fn assert_set_aside(s: &Server, data: &Path, ulid: &str, files_before: &[(String, Vec<u8>)]) {
    let line = s.wait_log(
        "cannot read block: set aside, not deleted; the rest is served",
        Duration::from_secs(10),
    );
    assert!(
        line["block"].as_str().unwrap().ends_with(ulid),
        "error line names the block: {line}"
    );
    let broken = block(data, &format!("{ulid}.broken"));
    assert!(!block(data, ulid).exists());
    for (name, bytes) in files_before {
        assert_eq!(
            &std::fs::read(broken.join(name)).unwrap(),
            bytes,
            "{name} kept as it was"
        );
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_str().unwrap().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn bad_chunk_checksum_fails_the_query_naming_the_block_then_serves_the_rest() {
    let b = base();
    let d = copy_of_base();
    let chunks = block(d.path(), &b.b1).join("chunks");
    let mut bytes = std::fs::read(&chunks).unwrap();
    // Inside the first chunk's data: past the 8-byte file header and the 8-byte
    // record header.
    bytes[8 + 8 + 5] ^= 0x01;
    std::fs::write(&chunks, &bytes).unwrap();
    let before = files(&block(d.path(), &b.b1));

    let s = Server::start(d.path(), ARGS);
    // Opening does not read every chunk; the first query that does fails loudly.
    let (status, body) = s.get("/api/v1/export?match[]=blk");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(&b.b1), "the error names the block: {body}");
    assert_set_aside(&s, d.path(), &b.b1, &before);
    assert_exactly(&s, d.path(), &without_batch(0));
    s.assert_no_unexpected_warnings(&[
        "cannot read block: set aside, not deleted; the rest is served",
        "internal",
        "request failed",
    ]);
}

#[test]
fn truncated_index_is_set_aside_at_start() {
    let b = base();
    let d = copy_of_base();
    let index = block(d.path(), &b.b2).join("index");
    let len = std::fs::metadata(&index).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let before = files(&block(d.path(), &b.b2));
    let s = Server::start(d.path(), ARGS);
    assert_set_aside(&s, d.path(), &b.b2, &before);
    // `b2` is the last flush's block, and its WAL segments are kept one flush
    // generation (for a live backup): with the block set aside, they are replayed, so
    // its samples are served again from the head.
    s.wait_log(
        "the block of the last flush is missing (a backup of blocks/ made before it?): replaying the WAL segments it held too",
        Duration::from_secs(10),
    );
    assert_exactly(&s, d.path(), &b.samples);
    s.assert_no_unexpected_warnings(&[
        "cannot read block: set aside, not deleted; the rest is served",
    ]);
}

#[test]
fn missing_meta_json_is_set_aside_at_start() {
    let b = base();
    let d = copy_of_base();
    std::fs::remove_file(block(d.path(), &b.b1).join("meta.json")).unwrap();
    let before = files(&block(d.path(), &b.b1));
    let s = Server::start(d.path(), ARGS);
    assert_set_aside(&s, d.path(), &b.b1, &before);
    assert_exactly(&s, d.path(), &without_batch(0));
    s.assert_no_unexpected_warnings(&[
        "cannot read block: set aside, not deleted; the rest is served",
    ]);
}

/// Copies a block's files into `<ULID>.tmp` with each file cut to half its length:
/// what a crash part-way through writing the directory leaves.
fn half_written(src: &Path, tmp: &Path) {
    std::fs::create_dir_all(tmp).unwrap();
    for (name, bytes) in files(src) {
        std::fs::write(tmp.join(name), &bytes[..bytes.len() / 2]).unwrap();
    }
}

#[test]
fn half_written_block_from_a_crash_mid_flush_is_dropped_and_the_wal_replayed() {
    let b = base();
    let d = copy_of_base();
    // The flush of batch 3 crashed before its rename: batch 3 is still in the WAL.
    let tmp = d
        .path()
        .join("blocks")
        .join("01JDQ8Z1W0T2B3C4D5E6F7G8H9.tmp");
    half_written(&block(d.path(), &b.b2), &tmp);
    let s = Server::start(d.path(), ARGS);
    s.wait_log(
        "removing half-written block left by a crash",
        Duration::from_secs(10),
    );
    assert!(!tmp.exists());
    assert_exactly(&s, d.path(), &b.samples);
    s.assert_no_unexpected_warnings(&["removing half-written block left by a crash"]);
}

/// Runs a real compaction of `b1` and `b2` on a copy of the base and returns the
/// merged block's ULID and its directory (in a dir kept alive by the caller).
fn merged_block() -> &'static (tempfile::TempDir, String) {
    static MERGED: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    MERGED.get_or_init(|| {
        let b = base();
        let d = copy_of_base();
        let s = Server::start(d.path(), ARGS);
        let (status, body) = s.post("/api/v1/admin/compact", "text/plain", b"");
        assert_eq!(status, 204, "{body}");
        let (status, out) = s.terminate();
        assert!(status.success(), "{out}");
        // The parents stay on disk for a grace period (for a live backup); the merged
        // block is the one the base did not have.
        let before = blocks(copy_of_base().path());
        let now = blocks(d.path());
        assert!(now.contains(&b.b1) && now.contains(&b.b2), "{now:?}");
        let merged: Vec<String> = now.into_iter().filter(|u| !before.contains(u)).collect();
        assert_eq!(merged.len(), 1, "{merged:?}");
        let merged = merged.into_iter().next().unwrap();
        (d, merged)
    })
}

#[test]
fn compaction_killed_after_the_rename_deletes_the_parents_on_start() {
    let b = base();
    let (compacted, merged) = merged_block();
    let d = copy_of_base();
    // The merged block is in place and its parents were not yet deleted.
    copy_dir(&block(compacted.path(), merged), &block(d.path(), merged));
    let s = Server::start(d.path(), ARGS);
    assert_eq!(blocks(d.path()), vec![merged.clone()]);
    assert_exactly(&s, d.path(), &b.samples);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn compaction_killed_before_the_rename_keeps_the_parents() {
    let b = base();
    let (compacted, merged) = merged_block();
    let d = copy_of_base();
    // The merged block was still being written when the process died.
    let tmp = d.path().join("blocks").join(format!("{merged}.tmp"));
    half_written(&block(compacted.path(), merged), &tmp);
    let s = Server::start(d.path(), ARGS);
    assert!(!tmp.exists());
    let mut want = vec![b.b1.clone(), b.b2.clone()];
    want.sort();
    assert_eq!(blocks(d.path()), want);
    assert_exactly(&s, d.path(), &b.samples);
    s.assert_no_unexpected_warnings(&["removing half-written block left by a crash"]);
}
