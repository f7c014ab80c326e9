//! Black-box: nothing acknowledged is lost across SIGTERM, kill -9 under load, and a
//! torn WAL tail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, agent, points, remote_write_body};

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
fn kill_9_under_load_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--wal-sync=always"]);
    let url = s.url("/api/v1/write");
    let stop = Arc::new(AtomicBool::new(false));
    // Per writer: timestamps acknowledged, and the one in flight when the server died.
    let acked: Arc<Mutex<BTreeMap<usize, Vec<i64>>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
        writers.push(std::thread::spawn(move || {
            let agent = agent();
            let id = w.to_string();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<(i64, f64)> = (0..10)
                    .map(|k| (T0 + (i * 10 + k) * 1000, (i * 10 + k) as f64))
                    .collect();
                let body = remote_write_body(&[(
                    vec![("__name__", "load"), ("writer", id.as_str())],
                    batch.clone(),
                )]);
                match agent
                    .post(&url)
                    .header("Content-Type", "application/x-protobuf")
                    .send(&body[..])
                {
                    Ok(r) if r.status() == 204 => {
                        acked
                            .lock()
                            .unwrap()
                            .entry(w)
                            .or_default()
                            .extend(batch.iter().map(|p| p.0));
                    }
                    _ => break,
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let total: usize = acked.values().map(Vec::len).sum();
    assert!(
        total > 100,
        "too few writes acknowledged ({total}) for the test to mean anything"
    );

    let s = Server::start(dir.path(), &["--wal-sync=always"]);
    for (w, ts) in &acked {
        let lines = s.export(&format!("load{{writer=\"{w}\"}}"));
        assert_eq!(lines.len(), 1, "writer {w}");
        let got: Vec<i64> = points(&lines[0]).iter().map(|p| p.0).collect();
        let mut sorted = got.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "a sample appears twice");
        for t in ts {
            assert!(
                got.binary_search(t).is_ok(),
                "acknowledged sample {t} of writer {w} lost"
            );
        }
        // At most the one batch in flight when the server died may be there unacked.
        assert!(
            got.len() <= ts.len() + 10,
            "writer {w}: {} stored, {} acked",
            got.len(),
            ts.len()
        );
    }
    s.assert_no_unexpected_warnings(&["truncated damaged WAL tail"]);
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
