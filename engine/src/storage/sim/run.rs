//! The deterministic simulation: one shard on a [`SimStorage`] driven through a random
//! sequence of appends, WAL syncs, flushes, compactions, retention, clock moves,
//! crashes and clean restarts, checked against a model of what was written.
//!
//! The sequence is decoded from bytes ([`check_ops`]), so a seed ([`seed_input`]) and a
//! fuzzer's input drive the same code. The first bytes choose the setup (sync mode,
//! faults, capacity, segment and memtable sizes, how crashes tear writes); each later
//! byte starts an operation.
//!
//! The model keeps, for every (series, timestamp), every value written there in order
//! and what became of each write: *durable* (acknowledged with `SyncMode::Always`, or
//! acknowledged and then covered by a successful sync, flush or clean close),
//! *acknowledged* (with `Interval`, not yet covered by a sync) or *attempted* (the
//! append failed). The rules, checked after every reopen:
//! - the value served is the last durable one or one written after it (an unsynced or
//!   failed write may or may not have reached the disk); a sample with a durable write
//!   is never missing;
//! - nothing is served that was never written, and no timestamp is served twice;
//! - below the retention cutoff a sample may be gone (retention drops whole blocks),
//!   or show any value once written there.
//!
//! A live shard is checked more strictly: it serves exactly the last acknowledged
//! value. After an injected fault on a WAL write or sync the shard must be read-only:
//! every append fails with `Error::ReadOnly` until it is reopened, and the storage
//! records any retried write or sync of the failed file as a violation. A reopen may
//! fail under faults; then it is retried with faults off, as a supervisor restarting
//! the process after an operator freed space would, and must succeed.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{CrashModel, Faults, Rng, SimClock, SimStorage};
use crate::error::Error;
use crate::mesh::AppendOutcome;
use crate::model::{Label, Labels, Matcher, Sample, SeriesSamples};
use crate::shard::{Shard, ShardConfig, Shared, prepare_data_dir_in};
use crate::storage::{Clock, Storage};
use crate::wal::SyncMode;

pub(crate) const DATA_DIR: &str = "/data";
/// Series the workload writes to: few, so timestamps collide and blocks overlap.
const SERIES: u8 = 4;
pub(crate) const START_MS: i64 = 1_700_000_000_000;
const MINUTE_MS: i64 = 60_000;
const RETENTION_MS: i64 = 6 * 60 * MINUTE_MS;
/// Operations a violation report shows, the last ones before it.
const TRACE_SHOWN: usize = 80;

/// Figures of one simulated run, or the sum of many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs: u64,
    pub ops: u64,
    pub appends_acked: u64,
    pub crashes: u64,
    pub clean_restarts: u64,
    /// Reopens that failed under faults and then succeeded with faults off.
    pub reopen_failures: u64,
    /// Faults injected (EIO on write, sync and metadata operations, ENOSPC).
    pub faults: u64,
    /// Of those, writes refused for want of space.
    pub enospc: u64,
    /// Faults on a WAL write or sync, each of which made the shard read-only.
    pub wal_faults: u64,
    /// Appends refused with `Error::ReadOnly` after a WAL fault.
    pub read_only_refusals: u64,
    /// Unsynced writes a crash tore, zeroed or garbled, or lost.
    pub torn_writes: u64,
    pub lost_writes: u64,
    /// Samples with a durable write found with a right value at a check after reopen.
    pub samples_checked: u64,
    /// Runs with `SyncMode::Interval`, and the acknowledged samples their crashes lost
    /// (acknowledged after the last successful sync, so not guaranteed).
    pub interval_runs: u64,
    pub interval_lost: u64,
}

impl Summary {
    pub fn add(&mut self, o: &Summary) {
        self.runs += o.runs;
        self.ops += o.ops;
        self.appends_acked += o.appends_acked;
        self.crashes += o.crashes;
        self.clean_restarts += o.clean_restarts;
        self.reopen_failures += o.reopen_failures;
        self.faults += o.faults;
        self.enospc += o.enospc;
        self.wal_faults += o.wal_faults;
        self.read_only_refusals += o.read_only_refusals;
        self.torn_writes += o.torn_writes;
        self.lost_writes += o.lost_writes;
        self.samples_checked += o.samples_checked;
        self.interval_runs += o.interval_runs;
        self.interval_lost += o.interval_lost;
    }

    /// One line for logs and documents.
    pub fn line(&self) -> String {
        format!(
            "{} seeds, {} operations, {} appends acknowledged, {} crashes, {} clean restarts, \
             {} faults injected ({} ENOSPC, {} on the WAL, {} appends then refused read-only, \
             {} reopens failed under faults), {} unsynced writes torn and {} lost at crashes, {} \
             acknowledged samples checked after reopen, {} interval-mode seeds lost {} \
             acknowledged-but-unsynced samples",
            self.runs,
            self.ops,
            self.appends_acked,
            self.crashes,
            self.clean_restarts,
            self.faults,
            self.enospc,
            self.wal_faults,
            self.read_only_refusals,
            self.reopen_failures,
            self.torn_writes,
            self.lost_writes,
            self.samples_checked,
            self.interval_runs,
            self.interval_lost
        )
    }
}

/// The bytes that drive seed `seed`: `len` bytes of its PRNG.
pub fn seed_input(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Runs the operations `bytes` encode and panics on the first broken rule: the
/// entry point for a fuzzer.
pub fn run_ops(bytes: &[u8]) -> Summary {
    match check_ops(bytes) {
        Ok(s) => s,
        Err(v) => panic!("simulation violation: {v}"),
    }
}

/// Runs the operations `bytes` encode; `Err` says which rule broke, and where.
pub fn check_ops(bytes: &[u8]) -> Result<Summary, String> {
    let mut input = Input { bytes, pos: 0 };
    let mut sim = Sim::new(&mut input);
    let result = sim.run(&mut input);
    let stats = sim.storage.stats();
    sim.summary.faults = stats.faults();
    sim.summary.enospc = stats.enospc;
    sim.summary.wal_faults = stats.wal_faults;
    sim.summary.crashes = stats.crashes;
    sim.summary.torn_writes = stats.torn_writes + stats.zeroed_writes + stats.garbage_writes;
    sim.summary.lost_writes = stats.lost_writes;
    match result {
        Ok(()) => Ok(sim.summary),
        Err(v) => {
            let start = sim.trace.len().saturating_sub(TRACE_SHOWN);
            Err(format!(
                "{v}\n  after {} operations ({:?}, faults {:?}, crashes tear {:?});\n  \
                 files: {:?}\n  last operations:\n    {}",
                sim.summary.ops,
                sim.cfg.wal_sync,
                sim.faults,
                sim.crash_model,
                sim.storage.listing(Path::new(DATA_DIR)),
                sim.trace[start..].join("\n    ")
            ))
        }
    }
}

/// `{__name__="sim", s="<series>"}`.
pub(crate) fn series_labels(series: u8) -> Labels {
    match Labels::new(vec![
        Label::new("__name__", "sim"),
        Label::new("s", series.to_string()),
    ]) {
        Ok(l) => l,
        Err(e) => panic!("BUG: simulation labels: {e:?}"),
    }
}

/// The configuration of the simulated shard: shard 0 of 1 under `/data`, retention
/// 6 h, no timers (the simulation drives syncs and compactions).
pub(crate) fn shard_config(sync: SyncMode, segment_bytes: u64, memtable_bytes: u64) -> ShardConfig {
    let data_dir = PathBuf::from(DATA_DIR);
    ShardConfig {
        shard: 0,
        shards: 1,
        wal_root: data_dir.join(crate::layout::WAL_DIR),
        data_dir,
        wal_enabled: true,
        wal_sync: sync,
        wal_sync_interval: Duration::from_secs(1),
        wal_segment_bytes: segment_bytes,
        memtable_bytes,
        retention_ms: RETENTION_MS,
        compaction_enabled: false,
        compaction_interval: Duration::from_secs(60),
        compaction_concurrency: 1,
    }
}

/// Polls a future that must complete at once: everything on `SimStorage` does, so a
/// pending one is a bug of the simulation.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("BUG: a future on the simulated storage is pending"),
    }
}

/// Bytes read as a stream; past the end every byte is 0.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| acc << 8 | u64::from(self.byte()))
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Survives any crash: acknowledged and synced, or read back after a crash.
    Durable,
    /// Acknowledged, not yet synced (`SyncMode::Interval`).
    Acked,
    /// Acknowledged and never synced by the process that wrote it: no later sync
    /// covers it (a restarted shard syncs only its own segments).
    AckedUnsynced,
    /// Served after a clean restart, which replays what the page cache holds: bytes
    /// whose fdatasync failed are served too, and a later crash may take them.
    Served,
    /// The append failed; its bytes may or may not have reached the file.
    Attempted,
}

/// One write to a (series, timestamp), or (`value: None`) a check that found nothing.
#[derive(Clone, Copy, Debug)]
struct Write {
    value: Option<f64>,
    state: State,
}

type Key = (u8, i64);

/// What the model knows of one (series, timestamp).
#[derive(Debug, Default)]
struct Cell {
    /// Every value ever written there.
    ever: Vec<f64>,
    /// The writes (and checks) since the last durable one, which starts the list: the
    /// rules never look further back.
    writes: Vec<Write>,
}

impl Cell {
    fn push(&mut self, w: Write) {
        if w.state == State::Durable {
            self.writes.clear();
        }
        self.writes.push(w);
    }

    /// Drops what precedes the last durable write.
    fn trim(&mut self) {
        if let Some(d) = self.writes.iter().rposition(|w| w.state == State::Durable) {
            self.writes.drain(..d);
        }
    }
}

/// Everything written, per (series, timestamp), in order.
#[derive(Debug, Default)]
struct Model {
    cells: BTreeMap<Key, Cell>,
}

impl Model {
    fn record(&mut self, key: Key, value: f64, state: State) {
        let cell = self.cells.entry(key).or_default();
        cell.ever.push(value);
        cell.push(Write {
            value: Some(value),
            state,
        });
    }

    /// A successful sync, flush or clean close: every acknowledged write is durable.
    fn promote(&mut self) {
        for cell in self.cells.values_mut() {
            let mut any = false;
            for w in &mut cell.writes {
                if w.state == State::Acked {
                    w.state = State::Durable;
                    any = true;
                }
            }
            if any {
                cell.trim();
            }
        }
    }
}

/// How a check reads the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// The shard has been running since its last check: it serves exactly what it
    /// acknowledged (or served after its restart).
    Live,
    /// Just reopened after a crash: what it serves came from the durable image.
    AfterCrash,
    /// Just reopened after a clean shutdown: what it serves came from the live image.
    AfterRestart,
}

struct Sim {
    storage: SimStorage,
    clock: Rc<SimClock>,
    cfg: ShardConfig,
    /// The fault profile of the run; `headroom` is the room given after each reopen.
    faults: Faults,
    headroom: Option<u64>,
    shard: Option<Shard<SimStorage>>,
    model: Model,
    cursors: [i64; SERIES as usize],
    next_value: u64,
    /// A WAL write or sync failed since the last open: appends must be refused.
    expect_read_only: bool,
    /// Samples below this were subject to retention and may be gone.
    retention_floor: i64,
    summary: Summary,
    crash_model: CrashModel,
    /// What each operation did, for the report of a violation.
    trace: Vec<String>,
}

impl Sim {
    fn new(input: &mut Input<'_>) -> Sim {
        let sync = if input.byte().is_multiple_of(2) {
            SyncMode::Always
        } else {
            SyncMode::Interval
        };
        let f = input.byte();
        let mut faults = if f < 128 {
            Faults::NONE
        } else {
            Faults {
                write_eio: f64::from(f % 4) * 0.01,
                sync_eio: f64::from((f / 4) % 4) * 0.01,
                meta_eio: f64::from((f / 16) % 4) * 0.005,
                capacity_bytes: None,
            }
        };
        let c = input.byte();
        let headroom = (c >= 192).then(|| 1024 + u64::from(c - 192) * 256);
        faults.capacity_bytes = headroom;
        let segment = 512 + u64::from(input.byte() % 8) * 512;
        let memtable = 4096 + u64::from(input.byte() % 8) * 4096;
        let t = input.byte();
        let crash_model = CrashModel {
            keep: 1 + u32::from(t % 4),
            lose: u32::from((t / 4) % 3),
            tear: u32::from((t / 16) % 3),
            zero: u32::from((t / 64) % 2),
            garbage: u32::from((t / 128) % 2),
            dir_ops: super::DirCrash::RandomPrefix,
        };
        let seed = input.u64();
        let storage = SimStorage::new(seed);
        storage.set_crash_model(crash_model);
        let cfg = shard_config(sync, segment, memtable);
        Sim {
            storage,
            clock: Rc::new(SimClock::new(START_MS, seed ^ 0x5eed)),
            cfg,
            faults,
            headroom,
            shard: None,
            model: Model::default(),
            cursors: [START_MS; SERIES as usize],
            next_value: 1,
            expect_read_only: false,
            retention_floor: i64::MIN,
            summary: Summary {
                runs: 1,
                interval_runs: u64::from(sync == SyncMode::Interval),
                ..Summary::default()
            },
            crash_model,
            trace: Vec::new(),
        }
    }

    fn run(&mut self, input: &mut Input<'_>) -> Result<(), String> {
        self.storage
            .create_dir_all(Path::new(DATA_DIR))
            .map_err(|e| format!("create {DATA_DIR}: {e}"))?;
        self.reopen(Check::AfterCrash)?;
        while !input.done() {
            self.summary.ops += 1;
            let wal_faults = self.storage.stats().wal_faults;
            let op = input.byte() % 32;
            match op {
                0..=15 => self.append(input)?,
                16..=18 => self.sync()?,
                19..=20 => self.flush()?,
                21..=22 => self.compact()?,
                23..=25 => self.advance(input.byte()),
                26..=27 => self.crash()?,
                28 => self.clean_restart()?,
                _ => self.check(Check::Live)?,
            }
            // Crashes and restarts reopen the shard: a WAL fault there fails the open.
            let reopened = matches!(op, 26..=28);
            if !reopened && self.storage.stats().wal_faults > wal_faults {
                self.expect_read_only = true;
                if self.shard.as_ref().is_some_and(|s| s.read_only.is_none()) {
                    return Err("a WAL write or sync failed but the shard is not read-only".into());
                }
            }
            if let Some(v) = self.storage.violations().first() {
                return Err(v.clone());
            }
        }
        // Every run ends with a crash, so each one checks recovery at least once.
        self.crash()
    }

    /// Records what an operation did, with what the storage injected meanwhile.
    fn log(&mut self, line: String) {
        self.trace.push(line);
        let events = self.storage.take_events();
        self.trace
            .extend(events.into_iter().map(|e| format!("  {e}")));
    }

    fn shard(&mut self) -> Result<&mut Shard<SimStorage>, String> {
        self.shard
            .as_mut()
            .ok_or_else(|| "BUG: no open shard".to_string())
    }

    /// A timestamp for series `s`: mostly the next in order, some older (out of
    /// order), some an existing one again (a new value for it).
    fn timestamp(&mut self, s: u8, k: u8) -> i64 {
        let cursor = &mut self.cursors[usize::from(s)];
        match k {
            0..=179 => {
                *cursor += (i64::from(k % 60) + 1) * 10_000;
                *cursor
            }
            180..=219 => *cursor - (i64::from(k - 180) + 1) * MINUTE_MS,
            _ => {
                let cursor = *cursor;
                let keys: Vec<i64> = self
                    .model
                    .cells
                    .range((s, i64::MIN)..=(s, i64::MAX))
                    .map(|(k, _)| k.1)
                    .collect();
                match keys.len() {
                    0 => cursor,
                    n => keys[usize::from(k) % n],
                }
            }
        }
    }

    fn append(&mut self, input: &mut Input<'_>) -> Result<(), String> {
        let mut batch: Vec<SeriesSamples> = Vec::new();
        let mut written: Vec<(Key, f64)> = Vec::new();
        for _ in 0..1 + input.byte() % 3 {
            let s = input.byte() % SERIES;
            let mut samples = Vec::new();
            for _ in 0..1 + input.byte() % 6 {
                let k = input.byte();
                let ts = self.timestamp(s, k);
                let value = self.next_value as f64;
                self.next_value += 1;
                samples.push(Sample::new(ts, value));
                written.push(((s, ts), value));
            }
            batch.push(SeriesSamples {
                labels: series_labels(s),
                samples,
            });
        }
        let batch = std::sync::Arc::new(crate::ingest::IngestBatch::from_series(batch));
        let indices = (0..batch.len() as u32).collect();
        let expect_read_only = self.expect_read_only;
        let sync = self.cfg.wal_sync;
        let shard = self.shard()?;
        let was_read_only = shard.read_only.is_some();
        let (tx, rx) = flume::bounded::<crate::Result<AppendOutcome>>(1);
        block_on(shard.append_group(vec![(batch, indices, tx)]));
        let reply = rx
            .try_recv()
            .map_err(|_| "BUG: append sent no reply".to_string())?;
        let what = match &reply {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.log(format!("append {written:?}: {what}"));
        match reply {
            Ok(_) if expect_read_only => {
                Err("an append was acknowledged after a WAL write or sync failed".into())
            }
            Ok(_) => {
                self.summary.appends_acked += 1;
                let state = match sync {
                    SyncMode::Always => State::Durable,
                    _ => State::Acked,
                };
                for (key, value) in written {
                    self.model.record(key, value, state);
                }
                Ok(())
            }
            Err(e) if was_read_only || expect_read_only => match e {
                Error::ReadOnly { .. } => {
                    self.summary.read_only_refusals += u64::from(expect_read_only);
                    Ok(())
                }
                e => Err(format!(
                    "a read-only shard refused an append with {e}, not ReadOnly"
                )),
            },
            Err(_) => {
                for (key, value) in written {
                    self.model.record(key, value, State::Attempted);
                }
                Ok(())
            }
        }
    }

    fn wal_healthy(&self) -> bool {
        self.shard
            .as_ref()
            .and_then(|s| s.wal.as_ref())
            .is_some_and(|w| w.poisoned().is_none())
    }

    fn sync(&mut self) -> Result<(), String> {
        let healthy = self.wal_healthy();
        block_on(self.shard()?.sync_wal());
        let ok = healthy && self.wal_healthy();
        if ok {
            self.model.promote();
        }
        self.log(format!(
            "sync wal: {}",
            if ok { "ok" } else { "failed or read-only" }
        ));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        let healthy = self.wal_healthy();
        let res = block_on(self.shard()?.flush());
        if res.is_ok() && healthy {
            self.model.promote();
        }
        let blocks = self.block_ranges()?;
        self.log(format!("flush: {res:?}; blocks {blocks:?}"));
        Ok(())
    }

    fn compact(&mut self) -> Result<(), String> {
        self.retention_floor = self.retention_floor.max(self.clock.now_ms() - RETENTION_MS);
        let res = self.shard()?.compact_now();
        let blocks = self.block_ranges()?;
        self.log(format!(
            "compact (retention cutoff {}): {res:?}; blocks {blocks:?}",
            self.retention_floor
        ));
        let shard = self.shard()?;
        if res.is_ok() {
            let metas: Vec<_> = shard.blocks.iter().map(|b| b.meta().clone()).collect();
            for (i, a) in metas.iter().enumerate() {
                for b in metas.iter().skip(i + 1) {
                    if a.min_time <= b.max_time && b.min_time <= a.max_time {
                        return Err(format!(
                            "after a successful compaction blocks {} ({}..={}) and {} ({}..={}) overlap",
                            a.ulid, a.min_time, a.max_time, b.ulid, b.min_time, b.max_time
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn advance(&mut self, b: u8) {
        self.clock.advance((i64::from(b) + 1) * 5 * MINUTE_MS);
        let recent = self.clock.now_ms() - 30 * MINUTE_MS;
        for c in &mut self.cursors {
            *c = (*c).max(recent);
        }
        self.log(format!("clock now {}", self.clock.now_ms()));
    }

    fn crash(&mut self) -> Result<(), String> {
        self.shard = None;
        self.storage.crash();
        self.log("crash".into());
        self.reopen(Check::AfterCrash)
    }

    fn clean_restart(&mut self) -> Result<(), String> {
        self.summary.clean_restarts += 1;
        let healthy = self.wal_healthy();
        let closed = match self.shard()?.wal.take() {
            Some(wal) => block_on(wal.close()).is_ok(),
            None => true,
        };
        if healthy && closed {
            self.model.promote();
        }
        self.shard = None;
        self.log(format!(
            "clean shutdown (wal synced: {})",
            healthy && closed
        ));
        self.reopen(Check::AfterRestart)
    }

    fn open(&self) -> crate::Result<Shard<SimStorage>> {
        prepare_data_dir_in(&self.storage, &self.cfg.data_dir)?;
        let clock: Rc<dyn Clock> = self.clock.clone();
        block_on(Shard::open_in(
            self.cfg.clone(),
            Arc::new(Shared::default()),
            self.storage.clone(),
            clock,
        ))
    }

    /// Opens the shard under the run's faults; if that fails, again with faults off
    /// (a supervisor's restart after an operator freed space), which must work.
    fn reopen(&mut self, how: Check) -> Result<(), String> {
        let headroom = self.headroom;
        let room = move |used: u64| headroom.map(|h| used + h);
        self.storage.set_faults(Faults {
            capacity_bytes: room(self.storage.used_bytes()),
            ..self.faults
        });
        let shard = match self.open() {
            Ok(s) => s,
            Err(e) => {
                self.log(format!("reopen failed: {e}"));
                self.summary.reopen_failures += 1;
                self.storage.set_faults(Faults::NONE);
                let shard = self
                    .open()
                    .map_err(|e| format!("reopen with faults off failed: {e}"))?;
                self.storage.set_faults(Faults {
                    capacity_bytes: room(self.storage.used_bytes()),
                    ..self.faults
                });
                shard
            }
        };
        self.shard = Some(shard);
        self.expect_read_only = false;
        let blocks = self.block_ranges()?;
        self.log(format!("reopened; blocks {blocks:?}"));
        self.check(how)
    }

    /// The open shard's blocks: ULID and time range.
    fn block_ranges(&mut self) -> Result<Vec<(String, i64, i64)>, String> {
        Ok(self
            .shard()?
            .blocks
            .iter()
            .map(|b| (b.meta().ulid.clone(), b.meta().min_time, b.meta().max_time))
            .collect())
    }

    /// Everything the shard serves, by (series, timestamp); a timestamp served twice
    /// or a series the workload never wrote is an error.
    fn observe(&mut self) -> Result<BTreeMap<Key, f64>, String> {
        let shard = self.shard()?;
        let all = shard
            .select(&[Matcher::equal("__name__", "sim")], i64::MIN, i64::MAX)
            .map_err(|e| format!("select failed: {e}"))?;
        let mut out = BTreeMap::new();
        for s in all {
            let id: u8 = s
                .labels
                .get("s")
                .and_then(|v| v.parse().ok())
                .filter(|&id| id < SERIES)
                .ok_or_else(|| format!("served a series never written: {}", s.labels))?;
            let mut prev = i64::MIN;
            for x in s.samples {
                if x.timestamp_ms <= prev {
                    return Err(format!(
                        "series {} served timestamp {} after {prev}: twice or out of order",
                        s.labels, x.timestamp_ms
                    ));
                }
                prev = x.timestamp_ms;
                out.insert((id, x.timestamp_ms), x.value);
            }
        }
        Ok(out)
    }

    /// Compares what the shard serves with the model (see the module comment), then,
    /// after a reopen, takes what it serves as the new durable state.
    fn check(&mut self, how: Check) -> Result<(), String> {
        let observed = self.observe()?;
        for (key, value) in &observed {
            if !self.model.cells.contains_key(key) {
                return Err(format!("served {key:?} = {value}, never written"));
            }
        }
        let floor = self.retention_floor;
        let mut checked = 0;
        let mut lost = 0;
        for (key, cell) in &self.model.cells {
            let got = observed.get(key).copied();
            if let Some(v) = got
                && !cell.ever.contains(&v)
            {
                return Err(format!("served {key:?} = {v}, a value never written there"));
            }
            let writes = &cell.writes;
            if key.1 < floor {
                continue;
            }
            let last = |pred: &dyn Fn(&Write) -> bool| writes.iter().rposition(pred);
            let acked = last(&|w| {
                matches!(
                    w.state,
                    State::Durable | State::Acked | State::AckedUnsynced
                )
            });
            let allowed: Vec<Option<f64>> = match how {
                Check::Live => {
                    let visible = last(&|w| w.state != State::Attempted);
                    vec![visible.and_then(|i| writes[i].value)]
                }
                Check::AfterCrash | Check::AfterRestart => {
                    let durable = last(&|w| w.state == State::Durable);
                    let from = durable.unwrap_or(0);
                    let mut v: Vec<_> = writes[from..].iter().map(|w| w.value).collect();
                    if durable.is_none() {
                        v.push(None);
                    }
                    if let Some(d) = durable
                        && writes[d].value.is_some()
                    {
                        checked += 1;
                    }
                    v
                }
            };
            if !allowed.contains(&got) {
                return Err(format!(
                    "{how:?} check: {key:?} served {got:?}, allowed {allowed:?}; history {writes:?}"
                ));
            }
            if how != Check::Live
                && let Some(a) = acked
                && matches!(writes[a].state, State::Acked | State::AckedUnsynced)
                && got != writes[a].value
            {
                lost += 1;
            }
        }
        let state = match how {
            Check::Live => return Ok(()),
            Check::AfterCrash => State::Durable,
            Check::AfterRestart => State::Served,
        };
        self.summary.samples_checked += checked;
        self.summary.interval_lost += lost;
        for (key, cell) in self.model.cells.iter_mut() {
            for w in cell.writes.iter_mut() {
                if w.state == State::Acked {
                    w.state = State::AckedUnsynced;
                }
            }
            cell.push(Write {
                value: observed.get(key).copied(),
                state,
            });
        }
        Ok(())
    }
}
