//! Black-box: the admin API of the operations contract — a live retention change,
//! snapshots (hard links, taken under concurrent writes, usable as a restore source)
//! and the persisted read-only switch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, now_ms, points, remote_write_body};

fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn write(s: &Server, name: &str, points: &[(i64, f64)]) -> u16 {
    let body = remote_write_body(&[(vec![("__name__", name)], points.to_vec())]);
    s.post("/api/v1/write", "application/x-protobuf", &body).0
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn retention_changes_live_and_status_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--retention=30d", "--shards=2", "--compaction-interval=1h"],
    );
    let old = now_ms() - 5 * 86_400_000;
    let recent = now_ms() - 60_000;
    assert_eq!(write(&s, "old", &[(old, 1.0)]), 204);
    s.flush();
    assert_eq!(write(&s, "new", &[(recent, 2.0)]), 204);
    s.flush();
    let blocks = dir.path().join("blocks");
    assert_eq!(block_dirs(&blocks).len(), 2, "{}", common::tree(dir.path()));
    assert_eq!(s.export("old").len(), 1);

    // Bad or missing values: 400 in Prometheus' error shape, nothing changed.
    for (content_type, body) in [
        ("application/json", &br#"{"retention":"abc"}"#[..]),
        ("application/json", br#"{"retention":"0s"}"#),
        ("application/json", br#"{"other":"1d"}"#),
        ("application/json", b"not json"),
        ("text/plain", b""),
    ] {
        let (status, answer) = s.post("/api/v1/admin/retention", content_type, body);
        assert_eq!(status, 400, "{answer}");
        let v = json(&answer);
        assert_eq!(v["status"], "error", "{answer}");
        assert_eq!(v["errorType"], "bad_data", "{answer}");
    }
    assert_eq!(
        s.api("/api/v1/status/runtimeinfo")["storageRetention"],
        "30d"
    );

    // JSON body: the block wholly older than 2 days goes before the answer.
    let (status, answer) = s.post(
        "/api/v1/admin/retention",
        "application/json",
        br#"{"retention":"48h"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        json(&answer),
        serde_json::json!({"status":"success","data":{"retention":"2d","previous":"30d"}})
    );
    assert!(s.export("old").is_empty(), "the old block is still served");
    assert_eq!(points(&s.export("new")[0]), vec![(recent, 2.0)]);
    assert_eq!(block_dirs(&blocks).len(), 1, "{}", common::tree(dir.path()));

    // Query parameter (and a form body) work too; status shows the value in force.
    let (status, answer) = s.post("/api/v1/admin/retention?retention=3d", "text/plain", b"");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["data"]["previous"], "2d");
    let (status, answer) = s.post(
        "/api/v1/admin/retention",
        "application/x-www-form-urlencoded",
        b"retention=4d",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json(&answer)["data"]["retention"], "4d");
    assert_eq!(
        s.api("/api/v1/status/runtimeinfo")["storageRetention"],
        "4d"
    );
    assert_eq!(s.api("/api/v1/status/flags")["retention"], "4d");
    let yaml = s.api("/api/v1/status/config")["yaml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(yaml.contains("  retention: 4d\n"), "{yaml}");
    assert_eq!(s.get("/api/v1/admin/retention").0, 405);

    let logs = s.logs();
    let line = logs
        .iter()
        .find(|l| l["operation"] == "retention" && l["result"] == "ok")
        .expect("a retention log line");
    assert!(
        line["what"].as_str().unwrap().contains("to 48h (was 30d)"),
        "{line}"
    );
    s.assert_no_unexpected_warnings(&[]);

    // Not persisted: a restart goes back to the configured value.
    s.terminate();
    let s = Server::start(
        dir.path(),
        &["--retention=30d", "--shards=2", "--compaction-interval=1h"],
    );
    assert_eq!(
        s.api("/api/v1/status/runtimeinfo")["storageRetention"],
        "30d"
    );
}

/// Writes series `snap{w=<i>}` one sample at a time until `stop`, recording each
/// acknowledged sample.
fn writer(url: String, w: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<(usize, i64)>>>) {
    let agent = common::agent();
    let base = now_ms() - 3_600_000;
    let label = w.to_string();
    let mut i = 0i64;
    while !stop.load(Ordering::Acquire) {
        let t = base + i;
        let body = remote_write_body(&[(
            vec![("__name__", "snap"), ("w", &label)],
            vec![(t, i as f64)],
        )]);
        let r = agent
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .send(&body[..])
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        acked.lock().unwrap().push((w, t));
        i += 1;
    }
}

#[test]
fn a_snapshot_under_writes_holds_every_acknowledged_sample_as_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--shards=2", "--compaction-interval=1h"];
    let s = Server::start(dir.path(), &args);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (url, stop, acked) = (s.url("/api/v1/write"), stop.clone(), acked.clone());
            std::thread::spawn(move || writer(url, w, stop, acked))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    s.flush();
    std::thread::sleep(Duration::from_millis(300));
    let before: Vec<(usize, i64)> = acked.lock().unwrap().clone();
    let (status, answer) = s.post("/api/v1/admin/snapshot?skip_head=false", "text/plain", b"");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Release);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(status, 200, "{answer}");
    let v = json(&answer);
    assert_eq!(v["status"], "success");
    let name = v["data"]["name"].as_str().unwrap().to_string();
    let (time, random) = name.split_once('-').unwrap();
    assert_eq!(time.len(), 16, "{name}");
    assert!(time.ends_with('Z') && time.as_bytes()[8] == b'T', "{name}");
    assert_eq!(random.len(), 16, "{name}");
    assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    assert!(!before.is_empty());

    // Hard links: same inode as the live block files.
    let snap = dir.path().join("snapshots").join(&name);
    let snap_blocks = block_dirs(&snap);
    assert!(snap_blocks.len() >= 2, "{}", common::tree(dir.path()));
    let mut shared = 0;
    for b in &snap_blocks {
        let live = dir.path().join("blocks").join(b.file_name().unwrap());
        if !live.exists() {
            continue;
        }
        for f in ["meta.json", "index", "chunks"] {
            assert_eq!(
                std::fs::metadata(b.join(f)).unwrap().ino(),
                std::fs::metadata(live.join(f)).unwrap().ino(),
                "{} is not a hard link",
                b.join(f).display()
            );
        }
        shared += 1;
    }
    assert!(shared >= 2, "{}", common::tree(dir.path()));
    s.assert_no_unexpected_warnings(&[]);
    s.terminate();

    // A restore: the snapshot copied in as `blocks/` of an empty data dir.
    let restore = tempfile::tempdir().unwrap();
    common::copy_dir(&snap, &restore.path().join("blocks"));
    let r = Server::start(restore.path(), &args);
    for w in 0..3 {
        let series = r.export(&format!("snap{{w=\"{w}\"}}"));
        assert_eq!(series.len(), 1, "writer {w}");
        let got: std::collections::HashSet<i64> =
            points(&series[0]).into_iter().map(|(t, _)| t).collect();
        for (_, t) in before.iter().filter(|(x, _)| *x == w) {
            assert!(
                got.contains(t),
                "writer {w}: acknowledged sample at {t} is missing"
            );
        }
    }
    r.assert_no_unexpected_warnings(&[]);
}

#[test]
fn a_snapshot_with_skip_head_leaves_the_head_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=1"]);
    assert_eq!(write(&s, "flushed", &[(now_ms() - 60_000, 1.0)]), 204);
    s.flush();
    assert_eq!(write(&s, "head", &[(now_ms() - 30_000, 2.0)]), 204);
    let (status, answer) = s.post("/api/v1/admin/snapshot?skip_head=true", "text/plain", b"");
    assert_eq!(status, 200, "{answer}");
    let name = json(&answer)["data"]["name"].as_str().unwrap().to_string();
    assert_eq!(
        block_dirs(&dir.path().join("snapshots").join(&name)).len(),
        1
    );
    // Linked under `<name>.tmp`, then renamed: nothing else is left.
    assert_eq!(
        block_dirs(&dir.path().join("snapshots")),
        vec![dir.path().join("snapshots").join(&name)]
    );
    // The head was not flushed for it.
    assert_eq!(block_dirs(&dir.path().join("blocks")).len(), 1);
    let (status, answer) = s.post("/api/v1/admin/snapshot?skip_head=maybe", "text/plain", b"");
    assert_eq!(status, 400, "{answer}");
    // Start-up leaves snapshots alone.
    s.terminate();
    let s = Server::start(dir.path(), &["--shards=1"]);
    assert_eq!(
        block_dirs(&dir.path().join("snapshots").join(&name)).len(),
        1
    );
    assert_eq!(s.export("head").len(), 1);
    s.assert_no_unexpected_warnings(&[]);
}

fn shards_status(s: &Server) -> Vec<serde_json::Value> {
    s.api("/api/v1/status/tsdb")["shards"]
        .as_array()
        .unwrap()
        .clone()
}

const PERSISTED: &str = "every shard starts read-only";

#[test]
fn read_only_survives_a_restart_only_when_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--shards=2"];
    let marker = dir.path().join("READONLY");
    let t = now_ms() - 60_000;

    // Not persisted: a restart starts writable.
    let s = Server::start(dir.path(), &args);
    assert_eq!(s.post("/api/v1/admin/readonly", "text/plain", b"").0, 204);
    assert_eq!(write(&s, "m", &[(t, 1.0)]), 503);
    assert!(!marker.exists());
    assert!(
        shards_status(&s)
            .iter()
            .all(|sh| sh["readOnlyPersisted"] == false)
    );
    s.terminate();
    let s = Server::start(dir.path(), &args);
    assert_eq!(write(&s, "m", &[(t, 1.0)]), 204);

    // Persisted: the marker is durable at the answer; even kill -9 keeps it.
    let (status, body) = s.post(
        "/api/v1/admin/readonly?persist=true&reason=disk%20swap",
        "text/plain",
        b"",
    );
    assert_eq!(status, 204, "{body}");
    let content = json(&std::fs::read_to_string(&marker).unwrap());
    assert_eq!(content["reason"], "disk swap", "{content}");
    assert!(
        content["time"].as_str().unwrap().ends_with('Z'),
        "{content}"
    );
    for sh in shards_status(&s) {
        assert_eq!(sh["readOnlyPersisted"], true, "{sh}");
        assert_eq!(sh["cause"], "operator", "{sh}");
    }
    s.kill9();
    let s = Server::start(dir.path(), &args);
    assert_eq!(write(&s, "m", &[(t + 1, 2.0)]), 503);
    for sh in shards_status(&s) {
        assert_eq!(sh["readOnly"], true, "{sh}");
        assert_eq!(sh["cause"], "operator", "{sh}");
        assert_eq!(sh["readOnlyPersisted"], true, "{sh}");
    }
    let line = s.wait_log(
        "the operator's read-only switch was persisted: every shard starts read-only",
        Duration::from_secs(5),
    );
    assert!(
        line["remedy"]
            .as_str()
            .unwrap()
            .contains("/api/v1/admin/writable")
    );
    s.assert_no_unexpected_warnings(&[PERSISTED]);

    // `/writable` removes the marker; the next start is writable.
    assert_eq!(s.post("/api/v1/admin/writable", "text/plain", b"").0, 204);
    assert!(!marker.exists());
    assert_eq!(write(&s, "m", &[(t + 2, 3.0)]), 204);
    assert!(
        shards_status(&s)
            .iter()
            .all(|sh| sh["readOnlyPersisted"] == false)
    );
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l["operation"] == "writable" && l["result"] == "ok"),
        "no writable log line"
    );
    s.terminate();
    let s = Server::start(dir.path(), &args);
    assert_eq!(write(&s, "m", &[(t + 3, 4.0)]), 204);
    assert_eq!(
        points(&s.export("m")[0]),
        vec![(t, 1.0), (t + 2, 3.0), (t + 3, 4.0)]
    );
    s.assert_no_unexpected_warnings(&[]);
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn times(s: &Server, selector: &str) -> Vec<i64> {
    let series = s.export(selector);
    assert!(series.len() <= 1, "{series:?}");
    series
        .first()
        .map(|l| points(l).into_iter().map(|(t, _)| t).collect())
        .unwrap_or_default()
}

fn series_count(s: &Server, selector: &str) -> usize {
    s.api(&format!(
        "/api/v1/series?match[]={}",
        common::urlencode(selector)
    ))
    .as_array()
    .unwrap()
    .len()
}

#[test]
fn delete_series_hides_data_at_once_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--shards=2", "--compaction-interval=1h"];
    let s = Server::start(dir.path(), &args);
    let t0 = now_ms() - 3_600_000;
    let at = |i: i64| t0 + i * 60_000;
    let pts = |r: std::ops::Range<i64>| r.map(|i| (at(i), i as f64)).collect::<Vec<_>>();
    for name in ["a", "b", "c"] {
        assert_eq!(write(&s, name, &pts(0..10)), 204);
    }
    s.flush();
    assert_eq!(write(&s, "a", &pts(10..15)), 204);

    let (status, body) = s.post("/api/v1/admin/tsdb/delete_series", "text/plain", b"");
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["error"], "no match[] parameter provided");
    assert_eq!(s.get("/api/v1/admin/tsdb/delete_series?match[]=a").0, 405);

    // Part of `a`, across a block and the head.
    let path = format!(
        "/api/v1/admin/tsdb/delete_series?match[]=a&start={}&end={}",
        secs(at(3)),
        secs(at(12))
    );
    let (status, body) = s.post(&path, "text/plain", b"");
    assert_eq!(status, 204, "{body}");
    // All of `b`, through the alias, with a form body.
    let (status, body) = s.post(
        "/api/v1/admin/delete_series",
        "application/x-www-form-urlencoded",
        b"match[]=b",
    );
    assert_eq!(status, 204, "{body}");

    let expect_a: Vec<i64> = [0, 1, 2, 13, 14].iter().map(|&i| at(i)).collect();
    let check = |s: &Server| {
        assert_eq!(times(s, "a"), expect_a);
        assert!(times(s, "b").is_empty());
        assert_eq!(times(s, "c"), (0..10).map(at).collect::<Vec<_>>());
        assert_eq!(series_count(s, "b"), 0);
        assert_eq!(series_count(s, "a"), 1);
        assert_eq!(series_count(s, "{__name__=~\"a|b|c\"}"), 2);
        let names = s.api(&format!(
            "/api/v1/label/__name__/values?match[]={}",
            common::urlencode("{__name__=~\"a|b|c\"}")
        ));
        assert_eq!(names, serde_json::json!(["a", "c"]));
        // A range query sees the gap.
        let q = format!(
            "/api/v1/query_range?query=a&start={}&end={}&step=60",
            secs(at(0)),
            secs(at(14))
        );
        let r = s.api(&q);
        let values = r["result"][0]["values"].as_array().unwrap();
        let got: Vec<i64> = values
            .iter()
            .map(|v| (v[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect();
        // Lookback fills 5 minutes after each remaining sample.
        assert!(!got.contains(&at(9)), "{got:?}");
        assert!(got.contains(&at(2)) && got.contains(&at(13)), "{got:?}");
    };
    check(&s);
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l["operation"] == "delete_series" && l["result"] == "ok"),
        "no delete_series log line"
    );
    s.assert_no_unexpected_warnings(&[]);

    // Durable at the 204: kill -9 and restart.
    s.kill9();
    let s = Server::start(dir.path(), &args);
    check(&s);
    // And a flush leaves the deleted head samples out of its block.
    s.flush();
    check(&s);
    s.assert_no_unexpected_warnings(&["truncat", "torn", "partial"]);
}

fn block_bytes(s: &Server) -> u64 {
    s.api("/api/v1/status/tsdb")["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sh| sh["blockBytes"].as_u64().unwrap())
        .sum()
}

#[test]
fn clean_tombstones_rewrites_blocks_without_the_deleted_data() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--shards=1", "--compaction-interval=1h"];
    let s = Server::start(dir.path(), &args);
    let t0 = now_ms() - 3_600_000;
    let big: Vec<(i64, f64)> = (0..20_000)
        .map(|i| (t0 + i * 100, (i * 7919 % 1000) as f64))
        .collect();
    let keep: Vec<(i64, f64)> = (0..100).map(|i| (t0 + i * 1000, i as f64)).collect();
    assert_eq!(write(&s, "big", &big), 204);
    assert_eq!(write(&s, "keep", &keep), 204);
    s.flush();
    let before = block_bytes(&s);
    let old_blocks = block_dirs(&dir.path().join("blocks"));
    assert_eq!(old_blocks.len(), 1);

    let (status, body) = s.post(
        "/api/v1/admin/tsdb/delete_series?match[]=big",
        "text/plain",
        b"",
    );
    assert_eq!(status, 204, "{body}");
    assert!(dir.path().join("blocks/tombstones").exists());
    assert_eq!(block_bytes(&s), before, "a delete alone rewrites nothing");
    let (status, body) = s.post("/api/v1/admin/tsdb/clean_tombstones", "text/plain", b"");
    assert_eq!(status, 204, "{body}");
    let after = block_bytes(&s);
    assert!(after * 4 < before, "block bytes {before} -> {after}");
    assert!(!dir.path().join("blocks/tombstones").exists());
    assert!(times(&s, "big").is_empty());
    assert_eq!(points(&s.export("keep")[0]), keep);
    // The alias, with nothing left to clean.
    let (status, body) = s.post("/api/v1/admin/clean_tombstones", "text/plain", b"");
    assert_eq!(status, 204, "{body}");
    let logs = s.logs();
    assert!(
        logs.iter()
            .any(|l| l["operation"] == "clean_tombstones" && l["result"] == "ok"),
        "no clean_tombstones log line"
    );
    s.assert_no_unexpected_warnings(&[]);

    // A restart deletes the replaced block at once and serves the same data.
    s.kill9();
    let s = Server::start(dir.path(), &args);
    let now_blocks = block_dirs(&dir.path().join("blocks"));
    assert_eq!(now_blocks.len(), 1, "{}", common::tree(dir.path()));
    assert_ne!(now_blocks, old_blocks);
    assert!(times(&s, "big").is_empty());
    assert_eq!(points(&s.export("keep")[0]), keep);
    assert_eq!(block_bytes(&s), after);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn regex_matchers_per_query_are_bounded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=1", "--query-max-regex-matchers=2"]);
    assert_eq!(write(&s, "m", &[(now_ms() - 60_000, 1.0)]), 204);
    let ok = common::urlencode(r#"m{a=~"x|"} or m{b!~"y"}"#);
    let (status, body) = s.get(&format!("/api/v1/query?query={ok}"));
    assert_eq!(status, 200, "{body}");
    let three = common::urlencode(r#"m{a=~"x|"} or m{b!~"y"} or m{c=~".*"}"#);
    let (status, body) = s.get(&format!("/api/v1/query?query={three}"));
    assert_eq!(status, 400, "{body}");
    let v = json(&body);
    assert_eq!(v["errorType"], "bad_data", "{body}");
    assert!(
        v["error"].as_str().unwrap().contains("max_regex_matchers"),
        "{body}"
    );
    let sets: Vec<String> = [r#"m{a=~"x|"}"#, r#"m{b!~"y"}"#, r#"m{c=~".*"}"#]
        .iter()
        .map(|m| format!("match[]={}", common::urlencode(m)))
        .collect();
    let (status, body) = s.get(&format!("/api/v1/series?{}", sets.join("&")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(s.metrics().limit_hits("regex_matchers"), 2.0);
    s.assert_no_unexpected_warnings(&[]);
}
