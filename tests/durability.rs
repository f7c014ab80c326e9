//! Black-box: nothing acknowledged is lost across SIGTERM and a torn WAL tail. (kill -9
//! under load, repeated, is `crash_loop.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::time::Duration;

use common::{Server, points, remote_write_body};

const T0: i64 = 1_700_000_000_000;

#[test]
fn sigterm_exits_zero_and_restart_replays_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--wal-sync=interval", "--shards=2"]);
    let samples: Vec<(i64, f64)> = (0..200).map(|i| (T0 + i * 1000, (i * i) as f64)).collect();
    for chunk in samples.chunks(20) {
        let body = remote_write_body(&[(vec![("__name__", "g"), ("k", "v")], chunk.to_vec())]);
        assert_eq!(
            s.post("/api/v1/write", "application/x-protobuf", &body).0,
            204
        );
    }
    let started = std::time::Instant::now();
    let (status, out) = s.terminate();
    assert!(status.success(), "exit status {status:?}\n{out}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let s = Server::start(dir.path(), &["--shards=2"]);
    // Every shard logs its replay before the server is ready.
    let replays: Vec<_> = s
        .logs()
        .into_iter()
        .filter(|l| l["msg"] == "replaying WAL")
        .collect();
    assert_eq!(replays.len(), 2, "one replay line per shard");
    assert!(
        replays
            .iter()
            .all(|l| l["duration_ms"].is_u64() && l["entries"].is_u64())
    );
    let entries: u64 = replays.iter().map(|l| l["entries"].as_u64().unwrap()).sum();
    assert!(entries >= 10, "{replays:?}");
    assert_eq!(points(&s.export("g")[0]), samples);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn torn_wal_tail_is_repaired_on_start_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--wal-sync=always", "--shards=1"]);
    let samples: Vec<(i64, f64)> = (0..30).map(|i| (T0 + i * 1000, i as f64)).collect();
    let body = remote_write_body(&[(vec![("__name__", "t")], samples.clone())]);
    assert_eq!(
        s.post("/api/v1/write", "application/x-protobuf", &body).0,
        204
    );
    s.kill9();
    // A torn record: a plausible header whose body never made it to disk.
    let wal = dir.path().join("wal/0");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9]);
    std::fs::write(last, &bytes).unwrap();

    let s = Server::start(dir.path(), &["--shards=1"]);
    let warn = s.wait_log("truncated damaged WAL tail", Duration::from_secs(5));
    assert_eq!(warn["level"], "warn");
    assert_eq!(warn["bytes_dropped"], 11, "{warn}");
    assert_eq!(warn["shard"], 0);
    assert_eq!(std::fs::metadata(last).unwrap().len(), good_len as u64);
    assert_eq!(points(&s.export("t")[0]), samples);
    s.assert_no_unexpected_warnings(&["truncated damaged WAL tail"]);
}
