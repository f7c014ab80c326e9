//! Regression tests for the bugs the simulation found, each written out as the
//! smallest scenario that shows it, on the simulated disk (the seeds that found them
//! are kept in `engine/tests/sim.rs`).

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::run::{DATA_DIR, START_MS, block_on, series_labels, shard_config};
use super::{CrashModel, DirCrash, FaultOp, SimClock, SimStorage};
use crate::Result;
use crate::ingest::IngestBatch;
use crate::mesh::AppendOutcome;
use crate::model::{Matcher, Sample, SeriesSamples};
use crate::shard::{Shard, Shared, prepare_data_dir_in};
use crate::storage::{Clock, Storage};
use crate::wal::SyncMode;

/// A shard on a simulated disk, and what it needs to reopen.
struct Rig {
    storage: SimStorage,
    clock: Rc<SimClock>,
    sync: SyncMode,
    shard: Option<Shard<SimStorage>>,
}

impl Rig {
    fn new(sync: SyncMode) -> Rig {
        let storage = SimStorage::new(1);
        storage.set_crash_model(CrashModel::LOSE_ALL);
        storage.create_dir_all(Path::new(DATA_DIR)).unwrap();
        let mut rig = Rig {
            storage,
            clock: Rc::new(SimClock::new(START_MS, 2)),
            sync,
            shard: None,
        };
        rig.open();
        rig
    }

    fn open(&mut self) {
        self.shard = None;
        let mut cfg = shard_config(self.sync, 1 << 20, 1 << 30);
        // The scenarios write timestamps near 0: no retention.
        cfg.retention_ms = 0;
        prepare_data_dir_in(&self.storage, &cfg.data_dir).unwrap();
        let clock: Rc<dyn Clock> = self.clock.clone();
        let shard = block_on(Shard::open_in(
            cfg,
            Arc::new(Shared::default()),
            self.storage.clone(),
            clock,
        ));
        self.shard = Some(shard.unwrap());
    }

    fn shard(&mut self) -> &mut Shard<SimStorage> {
        self.shard.as_mut().unwrap()
    }

    fn append(&mut self, series: u8, samples: &[(i64, f64)]) -> Result<AppendOutcome> {
        let batch = IngestBatch::from_series(vec![SeriesSamples {
            labels: series_labels(series),
            samples: samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        }]);
        let (tx, rx) = flume::bounded(1);
        block_on(
            self.shard()
                .append_group(vec![(Arc::new(batch), vec![0], tx)]),
        );
        rx.try_recv().unwrap()
    }

    fn read(&mut self, series: u8) -> Vec<(i64, f64)> {
        let m = [Matcher::equal("s", series.to_string())];
        let got = self.shard().select(&m, i64::MIN, i64::MAX).unwrap();
        let got: Vec<(i64, f64)> = got
            .iter()
            .flat_map(|s| s.samples.iter().map(|x| (x.timestamp_ms, x.value)))
            .collect();
        // A query's select answers the same whether the shard decodes (a budget it
        // cannot exhaust) or leaves every series compressed (no budget).
        for budget in [0, usize::MAX] {
            let chunks = self.shard().select_chunks(&m, i64::MIN, i64::MAX, budget);
            let decoded: Vec<(i64, f64)> = chunks
                .unwrap()
                .iter()
                .flat_map(|s| s.decode().unwrap())
                .map(|x| (x.timestamp_ms, x.value))
                .collect();
            assert_eq!(
                decoded, got,
                "select_chunks with a decode budget of {budget}"
            );
        }
        got
    }

    fn crash(&mut self) {
        self.shard = None;
        self.storage.crash();
        self.open();
    }

    /// A process restart without a machine crash: what the page cache holds stays.
    fn restart(&mut self) {
        if let Some(wal) = self.shard().wal.take() {
            let _ = block_on(wal.close());
        }
        self.open();
    }
}

/// `create_dir_all` did not sync the parents of the directories it made, so the first
/// crash after a fresh start could take `wal/` and every acknowledged write with it.
#[test]
fn the_wal_directory_survives_a_crash_after_the_first_start() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(1000, 1.0)]).unwrap();
    rig.crash();
    assert_eq!(rig.read(0), [(1000, 1.0)]);
}

/// Blocks were merged in order of their first timestamp, and ULIDs made in the same
/// millisecond are in random order, so a value rewritten out of order could lose to
/// the older one once both were flushed.
#[test]
fn a_later_write_wins_over_an_older_overlapping_block() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(100, 1.0), (200, 1.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    // Out of order, starting before the first block: the second block begins first.
    rig.append(0, &[(50, 2.0), (150, 2.0), (200, 2.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    let want = [(50, 2.0), (100, 1.0), (150, 2.0), (200, 2.0)];
    assert_eq!(rig.read(0), want);
    // Many blocks in one millisecond (the clock does not move here).
    for v in 3..12 {
        rig.append(0, &[(200, f64::from(v))]).unwrap();
        block_on(rig.shard().flush()).unwrap();
    }
    let want = [(50, 2.0), (100, 1.0), (150, 2.0), (200, 11.0)];
    assert_eq!(rig.read(0), want);
    rig.shard().compact_now().unwrap();
    assert_eq!(rig.shard().blocks.len(), 1);
    assert_eq!(rig.read(0), want);
    rig.crash();
    assert_eq!(rig.read(0), want);
}

/// A WAL sync that failed while a flush cut the segment poisoned the writer but not
/// the shard, which kept reporting itself writable.
#[test]
fn a_failed_segment_cut_makes_the_shard_read_only_at_once() {
    let mut rig = Rig::new(SyncMode::Interval);
    rig.append(0, &[(1000, 1.0)]).unwrap();
    rig.storage.fail(FaultOp::Sync, "/wal/0/");
    assert!(block_on(rig.shard().flush()).is_err());
    assert!(rig.shard().read_only.is_some());
    rig.storage.clear_failures();
    assert!(matches!(
        rig.append(0, &[(2000, 2.0)]),
        Err(crate::Error::ReadOnly { .. })
    ));
    assert!(rig.storage.violations().is_empty());
}

/// After a flush whose checkpoint was not written, a series created again gets a
/// second WAL reference; replay made two head series of one label set, and the next
/// flush panicked ("given series twice"), aborting the process at every start.
#[test]
fn a_series_logged_under_two_references_replays_as_one() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(1000, 1.0)]).unwrap();
    rig.storage.fail(FaultOp::Meta, "checkpoint");
    assert!(block_on(rig.shard().flush()).is_err());
    rig.storage.clear_failures();
    rig.append(0, &[(2000, 2.0)]).unwrap();
    rig.crash();
    assert_eq!(rig.read(0), [(1000, 1.0), (2000, 2.0)]);
    assert_eq!(rig.shard().head.num_series(), 1);
    block_on(rig.shard().flush()).unwrap();
    assert_eq!(rig.read(0), [(1000, 1.0), (2000, 2.0)]);
}

/// A restarted shard replays what the page cache holds, including bytes whose
/// fdatasync failed. New samples of a series replayed from such bytes referred to its
/// series record there; a crash then took the record, and the acknowledged samples
/// were dropped on replay as belonging to an unknown series.
#[test]
fn new_samples_never_depend_on_a_replayed_series_record() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.storage.fail(FaultOp::Sync, "/wal/0/");
    assert!(rig.append(0, &[(1000, 1.0)]).is_err());
    rig.storage.clear_failures();
    rig.restart();
    // Served from the page cache, though never acknowledged.
    assert_eq!(rig.read(0), [(1000, 1.0)]);
    rig.append(0, &[(2000, 2.0)]).unwrap();
    rig.crash();
    assert_eq!(rig.read(0), [(2000, 2.0)]);
}

/// A compaction whose final directory sync failed left its merged block renamed but
/// not durable; the next start deleted the parents it replaced, and a crash then took
/// the merged block and left the parents half deleted: acknowledged data gone.
#[test]
fn parents_go_only_after_their_merged_block_is_durable() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(100, 1.0), (300, 1.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    rig.append(0, &[(200, 2.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    assert_eq!(rig.shard().blocks.len(), 2);
    rig.storage.fail(FaultOp::Meta, "/data/blocks$");
    assert!(rig.shard().compact_now().is_err());
    rig.storage.clear_failures();
    rig.restart();
    assert_eq!(rig.shard().blocks.len(), 1, "the parents were replaced");
    // The worst crash for it: the parents' own directories lose their files, the
    // blocks directory keeps nothing it was not told to sync.
    rig.storage.set_crash_model(CrashModel {
        dir_ops: DirCrash::KeepAll,
        ..CrashModel::LOSE_ALL
    });
    rig.storage.lose_dir_ops_at_crash("/data/blocks$");
    rig.crash();
    assert_eq!(rig.read(0), [(100, 1.0), (200, 2.0), (300, 1.0)]);
}

fn tombstone(series: u8, min: i64, max: i64) -> crate::tombstones::Tombstone {
    crate::tombstones::Tombstone {
        id: 0,
        matchers: vec![Matcher::equal("s", series.to_string())],
        min_time_ms: min,
        max_time_ms: max,
    }
}

fn block_samples(rig: &mut Rig) -> u64 {
    rig.shard()
        .blocks
        .iter()
        .map(|b| b.meta().stats.num_samples)
        .sum()
}

/// A delete is durable once answered; a flush leaves deleted head samples out; clean
/// rewrites the blocks without them, and a crash at any step loses no other sample and
/// brings back no deleted one.
#[test]
fn deleted_samples_stay_deleted_through_crashes_flushes_and_clean() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(100, 1.0), (200, 2.0), (300, 3.0), (400, 4.0)])
        .unwrap();
    rig.append(1, &[(100, 1.0), (200, 2.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    rig.append(2, &[(1000, 1.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    rig.append(0, &[(500, 5.0), (600, 6.0)]).unwrap();
    let listed = rig
        .shard()
        .add_tombstones(vec![tombstone(0, 200, 500), tombstone(2, 0, 2000)])
        .unwrap();
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 2]);
    let want0 = [(100, 1.0), (600, 6.0)];
    assert_eq!(rig.read(0), want0);
    assert!(rig.read(2).is_empty());
    // Durable at the answer: the tombstones file was synced, file and directory.
    rig.crash();
    assert_eq!(rig.read(0), want0);
    assert!(rig.read(2).is_empty());
    assert_eq!(rig.read(1), [(100, 1.0), (200, 2.0)]);
    let before = block_samples(&mut rig);
    assert_eq!(before, 7);
    // Clean: the head flush drops 500, the first block is rewritten, the block of
    // series 2 holds nothing left and goes. A failure rewriting the file leaves the
    // tombstones listed: still hidden after a crash.
    let entries = rig.shard().tombstone_list();
    block_on(rig.shard().clean_tombstones(&entries)).unwrap();
    assert_eq!(
        block_samples(&mut rig),
        4,
        "deleted samples still in blocks"
    );
    rig.storage.fail(FaultOp::Meta, "tombstones");
    let ids: Vec<u64> = entries.iter().map(|t| t.id).collect();
    assert!(rig.shard().drop_tombstones(&ids).is_err());
    rig.storage.clear_failures();
    rig.crash();
    assert_eq!(rig.read(0), want0);
    assert!(rig.read(2).is_empty());
    assert_eq!(rig.read(1), [(100, 1.0), (200, 2.0)]);
    // Once more, to the end: nothing listed, nothing deleted comes back.
    let entries = rig.shard().tombstone_list();
    assert_eq!(entries.len(), 2);
    block_on(rig.shard().clean_tombstones(&entries)).unwrap();
    rig.shard().drop_tombstones(&ids).unwrap();
    assert!(rig.shard().tombstone_list().is_empty());
    rig.crash();
    assert!(rig.shard().tombstone_list().is_empty());
    assert_eq!(rig.read(0), want0);
    assert!(rig.read(2).is_empty());
    assert_eq!(rig.read(1), [(100, 1.0), (200, 2.0)]);
    assert_eq!(block_samples(&mut rig), 4);
}

/// A block rewritten by clean gets a new, larger ULID; alone, its samples would then
/// win a timestamp over a newer overlapping block. Clean merges the overlapping blocks
/// so the later write still wins.
#[test]
fn clean_keeps_the_later_write_of_overlapping_blocks() {
    let mut rig = Rig::new(SyncMode::Always);
    rig.append(0, &[(100, 1.0), (200, 1.0)]).unwrap();
    rig.append(1, &[(100, 1.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    rig.append(0, &[(200, 2.0)]).unwrap();
    block_on(rig.shard().flush()).unwrap();
    assert_eq!(rig.read(0), [(100, 1.0), (200, 2.0)]);
    rig.shard()
        .add_tombstones(vec![tombstone(1, i64::MIN, i64::MAX)])
        .unwrap();
    let entries = rig.shard().tombstone_list();
    assert_eq!(block_on(rig.shard().clean_tombstones(&entries)).unwrap(), 1);
    assert_eq!(rig.shard().blocks.len(), 1);
    assert_eq!(rig.read(0), [(100, 1.0), (200, 2.0)]);
    assert!(rig.read(1).is_empty());
    rig.restart();
    assert_eq!(rig.read(0), [(100, 1.0), (200, 2.0)]);
}
