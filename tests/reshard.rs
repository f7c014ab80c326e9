//! Black-box: a data dir written with `--shards 2` opens with `--shards 1`, then 4,
//! then 2 again, serving everything each time while writes go on. Each change of
//! count migrates every old shard WAL into blocks (one info line per WAL) before the
//! shards open; a series then lives both in a block of the old layout and in the head
//! of its new owner, and every read (export, series, label names and values) must
//! answer it once, with each timestamp once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Server, points, remote_write_body};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 16;
const PER_BATCH: i64 = 30;
const MIGRATED: &str = "migrated the WAL of a previous shard count into blocks";

type Expected = BTreeMap<String, BTreeMap<i64, f64>>;

fn start(dir: &Path, shards: u32) -> Server {
    Server::start(
        dir,
        &[
            &format!("--shards={shards}"),
            "--retention=50y",
            "--compaction-interval=1h",
        ],
    )
}

/// Writes batch `k` of every series, with the last sample of batch `k - 1` again (a
/// retried write), so a timestamp is stored twice across each change of count.
fn write_batch(s: &Server, k: i64, want: &mut Expected) {
    let ids: Vec<String> = (0..SERIES).map(|i| format!("s{i:02}")).collect();
    let mut series = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let first = if k == 0 { 0 } else { k * PER_BATCH - 1 };
        let pts: Vec<(i64, f64)> = (first..(k + 1) * PER_BATCH)
            .map(|n| (T0 + n * 1000, (n * 1000 + i as i64) as f64))
            .collect();
        let e = want.entry(id.clone()).or_default();
        e.extend(pts.iter().copied());
        series.push((vec![("__name__", "rs"), ("id", id.as_str())], pts));
    }
    let body = remote_write_body(&series);
    let (status, text) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204, "{text}");
}

/// Everything written is served, each series once and each timestamp once.
fn check(s: &Server, want: &Expected) {
    let lines = s.export("rs");
    assert_eq!(lines.len(), SERIES, "each series once");
    for l in &lines {
        let id = l["metric"]["id"].as_str().unwrap();
        let got = points(l);
        let expect: Vec<(i64, f64)> = want[id].iter().map(|(t, v)| (*t, *v)).collect();
        if got != expect {
            let diff: Vec<_> = got
                .iter()
                .zip(&expect)
                .filter(|(a, b)| a != b)
                .take(3)
                .collect();
            panic!(
                "series {id}: served {} samples, want {}; first differences {diff:?}",
                got.len(),
                expect.len()
            );
        }
    }
    let series = s.api("/api/v1/series?match[]=rs");
    assert_eq!(series.as_array().unwrap().len(), SERIES, "{series}");
    let values = s.api("/api/v1/label/id/values");
    assert_eq!(values.as_array().unwrap().len(), SERIES, "{values}");
    let names = s.api("/api/v1/labels");
    assert_eq!(names, serde_json::json!(["__name__", "id"]));
}

fn migrated_shards(s: &Server) -> Vec<u64> {
    let mut out: Vec<u64> = s
        .logs()
        .into_iter()
        .filter(|l| l["msg"] == MIGRATED)
        .map(|l| l["shard"].as_u64().unwrap())
        .collect();
    out.sort();
    out
}

fn stop(s: Server) {
    s.assert_no_unexpected_warnings(&[]);
    let (status, out) = s.terminate();
    assert!(status.success(), "{out}");
}

#[test]
fn two_shards_to_one_to_four_and_back_serves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Expected::new();

    let s = start(dir.path(), 2);
    write_batch(&s, 0, &mut want);
    s.flush();
    write_batch(&s, 1, &mut want);
    check(&s, &want);
    stop(s);

    let s = start(dir.path(), 1);
    assert_eq!(migrated_shards(&s), vec![0, 1]);
    check(&s, &want);
    write_batch(&s, 2, &mut want);
    check(&s, &want);
    stop(s);

    let s = start(dir.path(), 4);
    assert_eq!(migrated_shards(&s), vec![0]);
    check(&s, &want);
    write_batch(&s, 3, &mut want);
    check(&s, &want);
    stop(s);

    let s = start(dir.path(), 2);
    assert_eq!(migrated_shards(&s), vec![0, 1, 2, 3]);
    check(&s, &want);
    write_batch(&s, 4, &mut want);
    // Compaction merges each shard's blocks, old layout or new, without loss.
    let (status, body) = s.post("/api/v1/admin/compact", "text/plain", b"");
    assert_eq!(status, 204, "{body}");
    check(&s, &want);
    stop(s);

    // The same count again: nothing to migrate, the WAL is replayed as usual.
    let s = start(dir.path(), 2);
    assert!(migrated_shards(&s).is_empty());
    check(&s, &want);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("wal").join("shards")).unwrap(),
        "2\n"
    );
    stop(s);
}
