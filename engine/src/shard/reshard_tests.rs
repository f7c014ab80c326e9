//! Tests of the shard-count migration: it persists every old WAL exactly once, with
//! blocks owned by the new count, and a crash between any two of its steps is
//! finished by the next start without losing or duplicating a sample.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::block::Block;
use crate::model::{Label, Labels, Sample};
use crate::wal::inspect::shard_dirs;
use crate::wal::{record, segment};

const SERIES: u64 = 24;
const SAMPLES_PER_SERIES: i64 = 5;

fn labels(i: u64) -> Labels {
    Labels::new(vec![
        Label::new("__name__", "m"),
        Label::new("i", i.to_string()),
    ])
    .unwrap()
}

/// Writes `wal/<old>/00000001` holding every series and its samples.
fn write_wal(root: &Path, old: u32) {
    let dir = root.join(old.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let mut buf = segment::header(old).to_vec();
    let all: Vec<Labels> = (0..SERIES).map(labels).collect();
    record::encode_series(&mut buf, all.iter().enumerate().map(|(r, l)| (r as u64, l)));
    let samples: Vec<(u64, Sample)> = (0..SERIES)
        .flat_map(|r| {
            (0..SAMPLES_PER_SERIES)
                .map(move |t| (r, Sample::new(t * 1000, (r as i64 * 100 + t) as f64)))
        })
        .collect();
    record::encode_samples(&mut buf, &samples);
    std::fs::write(dir.join(layout::segment_name(1)), buf).unwrap();
}

/// Every block in place: ULID → (owner, samples per series labels).
fn stored(data: &Path) -> BTreeMap<String, (u32, BTreeMap<Labels, Vec<Sample>>)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(layout::blocks_dir(data)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_str().unwrap().to_string();
        if name.contains('.') {
            continue;
        }
        let b = Block::open(&e.path()).unwrap();
        let mut series = BTreeMap::new();
        for s in b.all_series() {
            series.insert(
                b.labels(s).clone(),
                b.read_samples(s, i64::MIN, i64::MAX).unwrap(),
            );
        }
        out.insert(name, (b.meta().shard, series));
    }
    out
}

/// A data dir whose WAL was written by shard 1 of 2 (shard 0's WAL is empty).
fn original() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("wal");
    write_wal(&root, 1);
    std::fs::create_dir_all(root.join("0")).unwrap();
    shard_count::write(&root, 2).unwrap();
    std::fs::create_dir_all(layout::blocks_dir(d.path())).unwrap();
    d
}

fn start(data: &Path, shards: u32) {
    crate::shard::prepare_data_dir(data).unwrap();
    migrate_wal(data, &data.join("wal"), shards).unwrap();
}

fn check_migrated(
    data: &Path,
    shards: u32,
) -> BTreeMap<String, (u32, BTreeMap<Labels, Vec<Sample>>)> {
    let blocks = stored(data);
    let mut seen = 0;
    for (owner, series) in blocks.values() {
        for (l, samples) in series {
            assert_eq!(
                l.stable_hash() % u64::from(shards),
                u64::from(*owner),
                "{l}"
            );
            assert_eq!(samples.len() as i64, SAMPLES_PER_SERIES, "{l}");
            seen += 1;
        }
    }
    assert_eq!(seen, SERIES, "every series stored exactly once");
    let root = data.join("wal");
    assert!(
        shard_dirs(&root).unwrap().is_empty(),
        "old WAL dirs removed"
    );
    assert_eq!(shard_count::read(&root).unwrap(), Some(shards));
    blocks
}

#[test]
fn every_old_wal_becomes_blocks_owned_by_the_new_count() {
    for shards in [1, 3, 4] {
        let d = original();
        start(d.path(), shards);
        let blocks = check_migrated(d.path(), shards);
        assert!(blocks.len() as u32 <= shards);
        // A second start finds nothing to do.
        start(d.path(), shards);
        assert_eq!(stored(d.path()), blocks);
    }
}

#[test]
fn same_count_and_a_fresh_dir_migrate_nothing() {
    let d = original();
    let root = d.path().join("wal");
    start(d.path(), 2);
    assert!(stored(d.path()).is_empty());
    assert_eq!(shard_dirs(&root).unwrap().len(), 2);
    let fresh = tempfile::tempdir().unwrap();
    start(fresh.path(), 3);
    assert_eq!(
        shard_count::read(&fresh.path().join("wal")).unwrap(),
        Some(3)
    );
}

#[test]
fn a_dir_beyond_the_recorded_count_is_migrated() {
    let d = original();
    let root = d.path().join("wal");
    // Recorded as 1 shard, yet `wal/1` exists (copied in, or an older layout).
    shard_count::write(&root, 1).unwrap();
    std::fs::remove_dir(root.join("0")).unwrap();
    start(d.path(), 1);
    check_migrated(d.path(), 1);
}

/// Every state a crash can leave between two steps, rebuilt from a finished run.
#[test]
fn a_crash_between_any_two_steps_is_finished_without_loss_or_duplicate() {
    let shards = 4;
    let done = original();
    start(done.path(), shards);
    let want = check_migrated(done.path(), shards);
    assert!(want.len() >= 2, "the crash states need two blocks or more");
    let plan: Vec<(u32, String)> = want.iter().map(|(u, (o, _))| (*o, u.clone())).collect();
    let plan_text: String = plan.iter().map(|(o, u)| format!("{o} {u}\n")).collect();
    let copy_block = |to: &Path, ulid: &str| {
        let from = layout::block_dir(done.path(), ulid);
        let dest = layout::block_dir(to, ulid);
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(from).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
        }
    };
    // Each state is what a crash leaves right after the named step.
    let states = [
        "the marker",
        "a half-written first block",
        "the first block",
        "every block",
        "the rename to .migrated",
    ];
    for (stage, what) in states.iter().enumerate() {
        let d = original();
        std::fs::write(
            d.path().join("wal/1").join(layout::WAL_MIGRATING_FILE),
            &plan_text,
        )
        .unwrap();
        if stage == 1 {
            let tmp = layout::block_tmp_dir(d.path(), &plan[0].1);
            std::fs::create_dir_all(&tmp).unwrap();
            std::fs::write(tmp.join(layout::META_FILE), b"{\"ulid\":").unwrap();
        }
        if stage == 2 {
            copy_block(d.path(), &plan[0].1);
        }
        if stage >= 3 {
            for (_, u) in &plan {
                copy_block(d.path(), u);
            }
        }
        if stage == 4 {
            std::fs::rename(d.path().join("wal/1"), d.path().join("wal/1.migrated")).unwrap();
        }
        start(d.path(), shards);
        let got = check_migrated(d.path(), shards);
        assert_eq!(got, want, "crash after {what}");
        assert!(
            !d.path().join("wal/1.migrated").exists(),
            "crash after {what}"
        );
    }
}

#[test]
fn samples_stored_twice_are_merged_by_timestamp_on_read_and_by_compaction() {
    let d = tempfile::tempdir().unwrap();
    let l = labels(1);
    let s = |t: i64, v: f64| Sample::new(t, v);
    let write = |ulid: &str, shard: u32, samples: &[Sample]| {
        let series = vec![block::SeriesChunks {
            labels: l.clone(),
            chunks: vec![block::ChunkData::from_samples(samples)],
        }];
        let enc = block::encode_block(ulid, shard, 1, vec![ulid.to_string()], Vec::new(), series);
        Block::open(&block::write_block_dir(&layout::blocks_dir(d.path()), &enc).unwrap()).unwrap()
    };
    // The same series from a block of the old layout (shard 1) and of its new owner.
    let a = write(
        "01JDQ8Z1W0T2B3C4D5E6F7G8H0",
        1,
        &[s(1000, 1.0), s(2000, 2.0), s(3000, 3.0)],
    );
    let b = write(
        "01JDQ8Z1W0T2B3C4D5E6F7G8H1",
        0,
        &[s(2000, 2.0), s(3000, 3.0), s(4000, 4.0)],
    );
    let want = vec![s(1000, 1.0), s(2000, 2.0), s(3000, 3.0), s(4000, 4.0)];
    let merged = crate::compact::merge(&[&a, &b]).unwrap();
    assert_eq!(merged.len(), 1);
    let samples: Vec<Sample> = merged[0]
        .chunks
        .iter()
        .flat_map(|c| c.decode().unwrap())
        .collect();
    assert_eq!(samples, want);
    let parts = [&a, &b].map(|blk| {
        let r = blk.all_series().next().unwrap();
        crate::head::SeriesData {
            labels: blk.labels(r).clone(),
            samples: blk.read_samples(r, i64::MIN, i64::MAX).unwrap(),
        }
    });
    let read = crate::mesh::merge_series(parts);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].samples, want);
}
