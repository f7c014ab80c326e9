//! Black-box: a full disk. The data dir lives on a small tmpfs mounted for the test,
//! filled with a ballast file; ingest runs until writes get 507. Then: everything
//! acknowledged is served, queries and `/-/healthy` work, `/metrics`,
//! `/api/v1/status/tsdb` and one log line per shard say the disk is full; once the
//! ballast is deleted the shards resume on their own, writes succeed, the operator's
//! read-only switch works, and a restart is clean and serves everything acknowledged.
//!
//! Mounting needs root (as CI runs); without it the test fails saying so.
//! `TSDB_TEST_FULL_DISK_FREE_MB` (default 3) is the space left for ingest before the
//! disk is full: larger means more acknowledged data to check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, agent, remote_write_body, urlencode};

const T0: i64 = 1_700_000_000_000;
const SERIES_PER_BATCH: usize = 50;
const SAMPLES_PER_SERIES: i64 = 20;

/// A tmpfs of `size_mb` MiB mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size_mb: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m"),
                "tsdb-test",
            ])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "tests/full_disk.rs needs root to mount a tmpfs for its full disk \
             (`mount -t tmpfs -o size={size_mb}m tsdb-test {}` failed: {}); run it as root, as CI does",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { _dir: dir, path }
    }

    fn free_bytes(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(&self.path).unwrap();
        st.blocks_available() * st.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it (a server a failed assertion left behind): detach
            // it now, the kernel frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fills the filesystem of `dir` up to `leave` free bytes.
fn ballast(dir: &Path, fs: &Tmpfs, leave: u64) -> PathBuf {
    let path = dir.join("ballast");
    let size = fs.free_bytes().saturating_sub(leave);
    let chunk = vec![0xa5u8; 1 << 20];
    let mut f = std::fs::File::create(&path).unwrap();
    let mut written = 0u64;
    while written < size {
        let n = (size - written).min(chunk.len() as u64) as usize;
        std::io::Write::write_all(&mut f, &chunk[..n]).unwrap();
        written += n as u64;
    }
    f.sync_all().unwrap();
    path
}

/// Batch `b` of writer `w`: `SERIES_PER_BATCH` series of its own (so the write that
/// fails on the full disk creates series, whose WAL records are lost with it) ×
/// `SAMPLES_PER_SERIES` samples, values that name the batch. Samples are
/// 1 ms apart so that even a large run spans far less than the 2 h that would flush the
/// head (a flush frees WAL segments, and the shards would resume while the test expects
/// them full).
fn batch(w: usize, b: i64) -> (Vec<String>, Vec<(i64, f64)>) {
    let hosts: Vec<String> = (0..SERIES_PER_BATCH)
        .map(|i| format!("w{w}-b{b}-s{i}"))
        .collect();
    let points = (0..SAMPLES_PER_SERIES)
        .map(|i| (T0 + b * SAMPLES_PER_SERIES + i, (b * 1000 + i) as f64))
        .collect();
    (hosts, points)
}

fn batch_body(w: usize, b: i64) -> Vec<u8> {
    let (hosts, points) = batch(w, b);
    let series: Vec<common::TestSeries<'_>> = hosts
        .iter()
        .map(|h| {
            (
                vec![("__name__", "disk_test"), ("host", h.as_str())],
                points.clone(),
            )
        })
        .collect();
    remote_write_body(&series)
}

/// Acknowledged batches per writer.
type Acked = Arc<Mutex<BTreeMap<usize, Vec<i64>>>>;

/// Asserts every acknowledged sample is served.
fn assert_acked_served(s: &Server, acked: &Acked) {
    let served: BTreeMap<String, BTreeMap<i64, f64>> = s
        .export("disk_test")
        .iter()
        .map(|l| {
            (
                l["metric"]["host"].as_str().unwrap().to_string(),
                common::points(l).into_iter().collect(),
            )
        })
        .collect();
    let mut checked = 0;
    for (&w, batches) in acked.lock().unwrap().iter() {
        for &b in batches {
            let (hosts, points) = batch(w, b);
            for h in hosts {
                let got = served.get(&h).unwrap_or_else(|| {
                    panic!(
                        "{h} not served ({} series served)\n{}",
                        served.len(),
                        s.output()
                    )
                });
                for (t, v) in &points {
                    assert_eq!(got.get(t), Some(v), "{h}: acknowledged ({t}, {v}) missing");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

/// Writes from `writers` connections until each has had a 507; returns the batch each
/// writer had refused, after checking the answer names a shard and the full disk.
fn ingest_until_full(s: &Server, writers: usize, acked: &Acked) -> Vec<(usize, i64)> {
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let url = s.url("/api/v1/write");
            let acked = acked.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let deadline = Instant::now() + Duration::from_secs(60);
                for b in 0.. {
                    assert!(Instant::now() < deadline, "the disk never filled");
                    let mut r = agent
                        .post(&url)
                        .header("Content-Type", "application/x-protobuf")
                        .send(&batch_body(w, b)[..])
                        .unwrap();
                    let status = r.status().as_u16();
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    match status {
                        204 => acked.lock().unwrap().entry(w).or_default().push(b),
                        507 => {
                            assert!(text.contains("read-only (disk_full)"), "{text}");
                            assert!(text.contains("shard "), "{text}");
                            assert!(text.contains("No space left on device"), "{text}");
                            return (w, b);
                        }
                        other => panic!("status {other}: {text}"),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn read_only_lines(s: &Server) -> Vec<serde_json::Value> {
    s.logs()
        .into_iter()
        .filter(|l| l["msg"] == "shard is now read-only: writes are refused")
        .collect()
}

#[test]
fn a_full_disk_refuses_writes_with_507_loses_nothing_and_resumes() {
    let free_mb: u64 = std::env::var("TSDB_TEST_FULL_DISK_FREE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let fs = Tmpfs::mount(free_mb + 21);
    let data = fs.path.join("data");
    let args = [
        "--shards=2",
        "--wal-sync=always",
        "--wal-segment-size=1MB",
        "--compaction-enabled=false",
    ];
    let s = Server::start(&data, &args);
    let ballast = ballast(&fs.path, &fs, free_mb << 20);
    let acked: Acked = Arc::default();
    let refused = ingest_until_full(&s, 4, &acked);
    assert_eq!(refused.len(), 4);
    let acked_batches: usize = acked.lock().unwrap().values().map(Vec::len).sum();
    eprintln!(
        "disk full after {acked_batches} acknowledged batches of {} samples",
        SERIES_PER_BATCH as i64 * SAMPLES_PER_SERIES
    );

    // Writes keep getting 507 (no shard resumes on its own while the disk is full),
    // and each refusal is not logged again: one line per shard at most.
    for _ in 0..5 {
        let (status, resp) = s.post(
            "/api/v1/write",
            "application/x-protobuf",
            &batch_body(99, 0),
        );
        assert_eq!(status, 507, "{resp}");
    }
    let lines = read_only_lines(&s);
    assert!(!lines.is_empty() && lines.len() <= 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["cause"], "disk_full", "{l}");
        assert_eq!(l["level"], "error", "{l}");
    }

    // Reads and probes still work, and everything acknowledged is there.
    assert_acked_served(&s, &acked);
    let v = s.api(&format!(
        "/api/v1/query?query={}&time={}",
        urlencode("count(count_over_time(disk_test[1h]))"),
        T0 / 1000 + 600
    ));
    assert!(
        v["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(s.get("/-/healthy").0, 200);
    let m = s.metrics();
    let full_shards: Vec<String> = lines
        .iter()
        .map(|l| l["shard"].as_u64().unwrap().to_string())
        .collect();
    for shard in &full_shards {
        assert_eq!(m.value("tsdb_shard_read_only", &[("shard", shard)]), 1.0);
        assert_eq!(
            m.value(
                "tsdb_shard_read_only_reason",
                &[("shard", shard), ("reason", "disk_full")]
            ),
            1.0
        );
        assert!(m.value("tsdb_wal_write_errors_total", &[("shard", shard)]) >= 1.0);
    }
    assert_eq!(m.sum("tsdb_wal_fsync_errors_total"), 0.0);
    assert!(m.value("tsdb_insert_errors_total", &[("reason", "disk_full")]) >= 9.0);
    let status = s.api("/api/v1/status/tsdb");
    assert!(status["headStats"]["numSeries"].as_u64().unwrap() > 0);
    for shard in status["shards"].as_array().unwrap() {
        let name = shard["shard"].to_string();
        if full_shards.contains(&name) {
            assert_eq!(shard["readOnly"], true, "{shard}");
            assert_eq!(shard["cause"], "disk_full", "{shard}");
            assert!(shard["reason"].as_str().unwrap().contains("No space left"));
        }
    }

    // Space freed: the probe resumes every shard within a few seconds.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.metrics().sum("tsdb_shard_read_only") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the shards did not resume:\n{}",
            s.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let resumed = s
        .logs()
        .into_iter()
        .filter(|l| l["msg"] == "shard is writable again")
        .count();
    assert_eq!(resumed, lines.len());
    // The refused batches, retried: their series were created by the write that failed
    // and are only in the WAL if their records are written again after the resume.
    for &(w, b) in &refused {
        let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", &batch_body(w, b));
        assert_eq!(status, 204, "{resp}");
        acked.lock().unwrap().entry(w).or_default().push(b);
    }
    for b in 1000..1010 {
        let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", &batch_body(0, b));
        assert_eq!(status, 204, "{resp}");
        acked.lock().unwrap().entry(0).or_default().push(b);
    }
    assert_acked_served(&s, &acked);

    // The operator's switch: 503 naming it, reads go on, /writable undoes it.
    let (status, resp) = s.post("/api/v1/admin/readonly", "text/plain", b"");
    assert_eq!(status, 204, "{resp}");
    let (status, resp) = s.post(
        "/api/v1/write",
        "application/x-protobuf",
        &batch_body(0, 2000),
    );
    assert_eq!(status, 503, "{resp}");
    assert!(resp.contains("read-only (operator)"), "{resp}");
    let m = s.metrics();
    assert_eq!(
        m.value(
            "tsdb_shard_read_only_reason",
            &[("shard", "0"), ("reason", "operator")]
        ),
        1.0
    );
    assert_eq!(
        s.api("/api/v1/status/tsdb")["shards"][1]["cause"],
        "operator"
    );
    assert_acked_served(&s, &acked);
    let (status, resp) = s.post("/api/v1/admin/writable", "text/plain", b"");
    assert_eq!(status, 204, "{resp}");
    let (status, resp) = s.post(
        "/api/v1/write",
        "application/x-protobuf",
        &batch_body(0, 2001),
    );
    assert_eq!(status, 204, "{resp}");
    acked.lock().unwrap().entry(0).or_default().push(2001);
    s.assert_no_unexpected_warnings(&["shard is now read-only: writes are refused"]);

    // A clean stop and a clean start on the same dir, with everything there.
    let (exit, out) = s.terminate();
    assert!(exit.success(), "{out}");
    let s = Server::start(&data, &args);
    s.wait_log("replaying WAL", Duration::from_secs(10));
    assert_acked_served(&s, &acked);
    assert_eq!(s.metrics().sum("tsdb_shard_read_only"), 0.0);
    s.assert_no_unexpected_warnings(&[]);
    let (exit, out) = s.terminate();
    assert!(exit.success(), "{out}");
}

#[test]
fn a_flush_onto_a_full_disk_leaves_no_half_written_block() {
    // The WAL on the ordinary temp dir, blocks on a small full tmpfs: the WAL takes
    // writes but the head cannot be flushed.
    let fs = Tmpfs::mount(8);
    let wal = tempfile::tempdir().unwrap();
    let data = fs.path.join("data");
    let wal_arg = format!("--wal-dir={}", wal.path().display());
    let args = ["--shards=1", wal_arg.as_str(), "--wal-segment-size=1MB"];
    let s = Server::start(&data, &args);
    let acked: Acked = Arc::default();
    for b in 0..20 {
        let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", &batch_body(0, b));
        assert_eq!(status, 204, "{resp}");
        acked.lock().unwrap().entry(0).or_default().push(b);
    }
    let ballast = ballast(&fs.path, &fs, 16 << 10);
    let (status, resp) = s.post("/api/v1/admin/flush", "text/plain", b"");
    assert_eq!(status, 507, "{resp}");
    let blocks: Vec<String> = std::fs::read_dir(data.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(blocks.is_empty(), "left behind: {blocks:?}");
    let (status, resp) = s.post(
        "/api/v1/write",
        "application/x-protobuf",
        &batch_body(0, 100),
    );
    assert_eq!(status, 507, "{resp}");
    assert!(resp.contains("writing block"), "{resp}");
    assert_acked_served(&s, &acked);

    std::fs::remove_file(&ballast).unwrap();
    s.wait_log("shard is writable again", Duration::from_secs(15));
    s.flush();
    let blocks = std::fs::read_dir(data.join("blocks")).unwrap().count();
    assert_eq!(blocks, 1);
    let (status, resp) = s.post(
        "/api/v1/write",
        "application/x-protobuf",
        &batch_body(0, 101),
    );
    assert_eq!(status, 204, "{resp}");
    acked.lock().unwrap().entry(0).or_default().push(101);
    assert_acked_served(&s, &acked);
    // The failed flush is an operating error: logged as one, once, with its cause.
    s.assert_no_unexpected_warnings(&[
        "shard is now read-only: writes are refused",
        "request failed",
    ]);
    let (exit, out) = s.terminate();
    assert!(exit.success(), "{out}");
    let s = Server::start(&data, &args);
    assert_acked_served(&s, &acked);
    s.assert_no_unexpected_warnings(&[]);
}
