//! Tests of the simulated disk itself: that it keeps the promises and breaks the
//! rules it claims to, so a simulation that passes on it means something.

use std::path::Path;

use super::*;
use crate::error::Error;
use crate::storage::{Storage, WalFile};

use super::run::block_on;

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A file system with `/d` created durably, crashing as `model` says.
fn fs(model: CrashModel) -> SimStorage {
    let s = SimStorage::new(7);
    s.set_crash_model(model);
    s.create_dir_all(p("/d")).unwrap();
    s
}

const KEEP_ALL: CrashModel = CrashModel {
    keep: 1,
    lose: 0,
    tear: 0,
    zero: 0,
    garbage: 0,
    dir_ops: DirCrash::RandomPrefix,
};

#[test]
fn synced_bytes_survive_a_crash_and_unsynced_ones_may_not() {
    let s = fs(CrashModel::LOSE_ALL);
    let f = block_on(s.create_wal_file(p("/d/a"))).unwrap();
    block_on(f.write_all_at(b"synced".to_vec(), 0)).unwrap();
    block_on(f.sync_data()).unwrap();
    s.sync_dir(p("/d")).unwrap();
    block_on(f.write_all_at(b"-lost".to_vec(), 6)).unwrap();
    assert_eq!(s.read(p("/d/a")).unwrap(), b"synced-lost");
    s.crash();
    assert_eq!(s.read(p("/d/a")).unwrap(), b"synced");
    assert_eq!(s.stats().lost_writes, 1);
    // The handle from before the crash is dead.
    assert!(block_on(f.write_all_at(b"x".to_vec(), 0)).is_err());
}

#[test]
fn a_torn_write_leaves_a_prefix() {
    let s = fs(CrashModel {
        keep: 0,
        tear: 1,
        ..KEEP_ALL
    });
    s.write_file_synced(p("/d/a"), b"base").unwrap();
    s.sync_dir(p("/d")).unwrap();
    let f = block_on(s.create_wal_file(p("/d/b"))).unwrap();
    s.sync_dir(p("/d")).unwrap();
    block_on(f.write_all_at(vec![7; 100], 0)).unwrap();
    s.crash();
    let b = s.read(p("/d/b")).unwrap();
    assert!(b.len() < 100 && b.iter().all(|&x| x == 7), "{b:?}");
    assert_eq!(s.read(p("/d/a")).unwrap(), b"base");
}

#[test]
fn creates_renames_and_removes_need_a_directory_sync() {
    let s = fs(CrashModel::LOSE_ALL);
    s.write_file_synced(p("/d/a"), b"1").unwrap();
    s.create_dir(p("/d/x")).unwrap();
    s.crash();
    assert!(s.metadata(p("/d/a")).is_err(), "create not synced");
    assert!(s.metadata(p("/d/x")).is_err());

    s.write_file_synced(p("/d/a.tmp"), b"2").unwrap();
    s.sync_dir(p("/d")).unwrap();
    s.rename(p("/d/a.tmp"), p("/d/a")).unwrap();
    s.crash();
    assert!(s.metadata(p("/d/a")).is_err(), "rename not synced");
    assert_eq!(s.read(p("/d/a.tmp")).unwrap(), b"2");

    s.rename(p("/d/a.tmp"), p("/d/a")).unwrap();
    s.sync_dir(p("/d")).unwrap();
    s.remove_file(p("/d/a")).unwrap();
    s.crash();
    assert_eq!(s.read(p("/d/a")).unwrap(), b"2", "remove not synced");
    assert!(s.metadata(p("/d/a.tmp")).is_err());
}

#[test]
fn a_removed_tree_comes_back_whole_without_syncs() {
    let s = fs(CrashModel::LOSE_ALL);
    s.create_dir_all(p("/d/blk")).unwrap();
    s.write_file_synced(p("/d/blk/f"), b"x").unwrap();
    s.sync_dir(p("/d/blk")).unwrap();
    s.remove_dir_all(p("/d/blk")).unwrap();
    assert!(s.read_dir(p("/d")).unwrap().is_empty());
    s.crash();
    assert_eq!(s.read(p("/d/blk/f")).unwrap(), b"x");
}

#[test]
fn create_dir_all_is_durable() {
    let s = fs(CrashModel::LOSE_ALL);
    s.create_dir_all(p("/d/w/0")).unwrap();
    s.crash();
    assert!(s.metadata(p("/d/w/0")).unwrap().is_dir);
}

#[test]
fn a_rename_is_atomic_across_a_crash() {
    for seed in 0..50 {
        let s = SimStorage::new(seed);
        s.create_dir_all(p("/d")).unwrap();
        s.write_file_synced(p("/d/t"), b"new").unwrap();
        s.write_file_synced(p("/d/c"), b"old").unwrap();
        s.sync_dir(p("/d")).unwrap();
        s.rename(p("/d/t"), p("/d/c")).unwrap();
        s.crash();
        let names: Vec<String> = s
            .read_dir(p("/d"))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        let c = s.read(p("/d/c")).unwrap();
        match names.len() {
            2 => assert_eq!(c, b"old", "seed {seed}"),
            1 => assert_eq!(c, b"new", "seed {seed}"),
            n => panic!("seed {seed}: {n} names {names:?}"),
        }
    }
}

#[test]
fn a_full_disk_cuts_the_write_and_says_enospc() {
    let s = fs(CrashModel::default());
    s.set_faults(Faults {
        capacity_bytes: Some(10),
        ..Faults::NONE
    });
    let f = block_on(s.create_wal_file(p("/d/a"))).unwrap();
    block_on(f.write_all_at(vec![1; 6], 0)).unwrap();
    let e = block_on(f.write_all_at(vec![2; 6], 6)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    assert!(Error::io("write", e).is_no_space());
    assert_eq!(s.read(p("/d/a")).unwrap(), [1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(s.used_bytes(), 10);
    assert_eq!(s.stats().enospc, 1);
    // Removing a file frees its room.
    s.remove_file(p("/d/a")).unwrap();
    s.write_file_synced(p("/d/b"), &[3; 10]).unwrap();
}

#[test]
fn a_retried_wal_sync_is_a_violation() {
    let s = fs(CrashModel::default());
    let f = block_on(s.create_wal_file(p("/d/seg"))).unwrap();
    block_on(f.write_all_at(b"abc".to_vec(), 0)).unwrap();
    s.fail(FaultOp::Sync, "/d/seg");
    let e = block_on(f.sync_data()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    assert!(s.violations().is_empty());
    s.clear_failures();
    // The kernel may have dropped the dirty pages: a second sync "succeeds" and lies.
    block_on(f.sync_data()).unwrap();
    let v = s.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("fdatasync") && v[0].contains("retry"),
        "{v:?}"
    );
    assert_eq!(s.stats().wal_faults, 1);
}

#[test]
fn targeted_and_random_faults_are_counted_and_seeded() {
    let run = |seed| {
        let s = SimStorage::new(seed);
        s.create_dir_all(p("/d")).unwrap();
        s.set_faults(Faults {
            write_eio: 0.3,
            sync_eio: 0.3,
            meta_eio: 0.3,
            capacity_bytes: None,
        });
        let outcomes: Vec<bool> = (0..40)
            .map(|i| {
                s.write_file_synced(&p("/d").join(i.to_string()), b"x")
                    .is_ok()
            })
            .collect();
        (outcomes, s.stats())
    };
    let (a, stats) = run(3);
    assert_eq!(run(3).0, a, "same seed, same faults");
    assert!(a.iter().any(|ok| *ok) && a.iter().any(|ok| !*ok));
    assert_eq!(stats.faults(), a.iter().filter(|ok| !**ok).count() as u64);
    assert_ne!(run(4).0, a);
}

#[test]
fn the_clock_moves_only_when_told_and_ulids_follow_the_seed() {
    use crate::storage::Clock;
    let c = SimClock::new(1_000, 9);
    assert_eq!(c.now_ms(), 1_000);
    let a = c.ulid();
    assert_eq!(a.timestamp_ms(), 1_000);
    c.advance(500);
    assert_eq!((c.now_ms(), c.monotonic().as_millis()), (1_500, 500));
    assert_eq!(SimClock::new(1_000, 9).ulid(), a);
    assert_ne!(SimClock::new(1_000, 10).ulid(), a);
}
