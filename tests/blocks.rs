//! Black-box: the head flushes into blocks (on demand, at the memtable budget), block
//! data reads back across restarts, compaction merges adjacent blocks and retention
//! deletes old ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, now_ms, points, remote_write_body};

fn block_dirs(data: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("blocks"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn flush_writes_a_block_that_reads_back_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=2"]);
    let t0 = now_ms() - 3_600_000;
    let mut all = Vec::new();
    for j in 0..20 {
        let samples: Vec<(i64, f64)> = (0..360)
            .map(|i| (t0 + i * 10_000, (i + j) as f64))
            .collect();
        all.push((j.to_string(), samples));
    }
    let series: Vec<_> = all
        .iter()
        .map(|(j, s)| (vec![("__name__", "m"), ("j", j.as_str())], s.clone()))
        .collect();
    assert_eq!(
        s.post(
            "/api/v1/write",
            "application/x-protobuf",
            &remote_write_body(&series)
        )
        .0,
        204
    );
    s.flush();
    let blocks = block_dirs(dir.path());
    assert!(!blocks.is_empty(), "no block after flush");
    for b in &blocks {
        for f in ["meta.json", "index", "chunks"] {
            assert!(b.join(f).is_file(), "{} lacks {f}", b.display());
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["ulid"], b.file_name().unwrap().to_str().unwrap());
    }
    let check = |s: &Server| {
        for (j, samples) in &all {
            let lines = s.export(&format!("m{{j=\"{j}\"}}"));
            assert_eq!(points(&lines[0]), *samples, "series j={j}");
        }
    };
    check(&s);
    let (status, _) = s.terminate();
    assert!(status.success());
    let s = Server::start(dir.path(), &["--shards=2"]);
    check(&s);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn memtable_budget_triggers_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--memtable-size=1MB", "--shards=1"]);
    let t0 = now_ms() - 600_000;
    for batch in 0..20 {
        let series: Vec<_> = (0..500)
            .map(|i| {
                (
                    vec![
                        ("__name__", "big"),
                        (
                            "i",
                            Box::leak(format!("{batch}-{i}").into_boxed_str()) as &str,
                        ),
                    ],
                    vec![(t0, i as f64)],
                )
            })
            .collect();
        assert_eq!(
            s.post(
                "/api/v1/write",
                "application/x-protobuf",
                &remote_write_body(&series)
            )
            .0,
            204
        );
    }
    wait_for("a block", || !block_dirs(dir.path()).is_empty());
    assert_eq!(
        s.api("/api/v1/series?match[]=big")
            .as_array()
            .unwrap()
            .len(),
        10_000
    );
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn compaction_merges_adjacent_blocks_and_keeps_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=1", "--compaction-interval=1h"]);
    const H: i64 = 3_600_000;
    let base = (now_ms() - 48 * H).div_euclid(6 * H) * 6 * H;
    let mut expected = Vec::new();
    for part in 0..3 {
        let samples: Vec<(i64, f64)> = (0..60)
            .map(|i| (base + part * 2 * H + i * 60_000, (part * 100 + i) as f64))
            .collect();
        expected.extend(samples.iter().copied());
        assert_eq!(
            s.post(
                "/api/v1/write",
                "application/x-protobuf",
                &remote_write_body(&[(vec![("__name__", "c")], samples)])
            )
            .0,
            204
        );
        s.flush();
    }
    let parents = block_dirs(dir.path());
    assert_eq!(parents.len(), 3);
    let (status, body) = s.post("/api/v1/admin/compact", "text/plain", b"");
    assert_eq!(status, 204, "{body}");
    let blocks = block_dirs(dir.path());
    let merged: Vec<_> = blocks.iter().filter(|b| !parents.contains(b)).collect();
    assert_eq!(merged.len(), 1, "{blocks:?}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["compaction"]["level"], 2);
    assert_eq!(meta["compaction"]["sources"].as_array().unwrap().len(), 3);
    // The parents are no longer read, but stay on disk for their grace period so a
    // backup copy running meanwhile finds them whole.
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert_eq!(points(&s.export("c")[0]), expected);
    // The merge is counted, and timed.
    let (_, text) = s.get("/metrics");
    for line in [
        "tsdb_compactions_total 1",
        "tsdb_compaction_duration_seconds_count{shard=\"0\"} 1",
        "tsdb_compaction_duration_seconds_bucket{shard=\"0\",le=\"+Inf\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    s.assert_no_unexpected_warnings(&[]);
    // A restart ends the grace period: the merged block replaces its parents.
    let (status, _) = s.terminate();
    assert!(status.success());
    let s = Server::start(dir.path(), &["--shards=1", "--compaction-interval=1h"]);
    assert_eq!(block_dirs(dir.path()), vec![merged[0].clone()]);
    assert_eq!(points(&s.export("c")[0]), expected);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn retention_deletes_an_old_block() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--retention=1h", "--compaction-interval=1s", "--shards=1"],
    );
    let old = now_ms() - 5 * 3_600_000;
    let recent = now_ms() - 60_000;
    let body = remote_write_body(&[(vec![("__name__", "old")], vec![(old, 1.0)])]);
    assert_eq!(
        s.post("/api/v1/write", "application/x-protobuf", &body).0,
        204
    );
    s.flush();
    s.wait_log("deleted block past retention", Duration::from_secs(10));
    wait_for("the old block to go", || block_dirs(dir.path()).is_empty());
    let body = remote_write_body(&[(vec![("__name__", "new")], vec![(recent, 2.0)])]);
    assert_eq!(
        s.post("/api/v1/write", "application/x-protobuf", &body).0,
        204
    );
    s.flush();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        block_dirs(dir.path()).len(),
        1,
        "a block within retention was deleted"
    );
    assert!(s.export("old").is_empty());
    assert_eq!(points(&s.export("new")[0]), vec![(recent, 2.0)]);
    s.assert_no_unexpected_warnings(&[]);
}
