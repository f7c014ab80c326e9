//! A shard: the series whose label hash maps to one core, with their WAL, head and
//! blocks. One shard runs on one core as one event loop over its inbox.
//!
//! - [`open`]: loading blocks and replaying the WAL on start.
//! - [`replay`]: the WAL replay into a fresh head.
//! - [`append`]: group commit of writes.
//! - [`read`]: selects, series and label look-ups.
//! - [`flush`]: persisting the head into a block.
//! - [`damage`]: setting aside a block found damaged while it is read.
//! - [`reshard`]: turning the WALs of a previous shard count into blocks on start.
//! - [`writable`]: read-only faults, the operator's switch, resuming after a full disk,
//!   and the head series bound.
//! - [`admin`]: a live retention change, snapshots, the persisted read-only switch.
//!
//! **Architecture Invariant:** the loop handles one request at a time; appends that
//! are waiting together share one WAL write and one sync (group commit).

mod admin;
mod append;
mod damage;
mod flush;
mod open;
mod read;
mod replay;
mod reshard;
mod writable;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use crate::block::Block;
use crate::error::ReadOnlyCause;
use crate::head::Head;
use crate::ingest::IngestBatch;
use crate::limits::{DISK_FULL_PROBE_INTERVAL, GROUP_COMMIT_REQUESTS_MAX};
use crate::mesh::{AppendOutcome, Reply, ShardDump, ShardRequest, ShardStatus};
use crate::storage::{Clock, DiskStorage, Storage};
use crate::trace::{NO_ARGS, TraceArgs};
use crate::wal::SyncMode;
use crate::wal::writer::WalWriter;

pub use admin::valid_snapshot_name;
pub use open::{prepare_data_dir, prepare_data_dir_in};
pub use replay::{Replayed, replay_head};
pub use reshard::migrate_wal;

/// Everything a shard needs to know from configuration.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub shard: u32,
    pub shards: u32,
    pub data_dir: PathBuf,
    /// The WAL root; this shard's WAL is `<wal_root>/<shard>`.
    pub wal_root: PathBuf,
    pub wal_enabled: bool,
    pub wal_sync: SyncMode,
    pub wal_sync_interval: Duration,
    pub wal_segment_bytes: u64,
    /// This shard's part of the memtable budget.
    pub memtable_bytes: u64,
    pub retention_ms: i64,
    pub compaction_enabled: bool,
    pub compaction_interval: Duration,
    /// Shards compacting at once, across the process.
    pub compaction_concurrency: usize,
}

/// Counters shared by every shard of the process (atomics, never locks).
#[derive(Debug, Default)]
pub struct Shared {
    /// Shards compacting right now (bounded by `compaction_concurrency`).
    pub compactions_running: AtomicUsize,
    /// Series in every shard's head. Touched only when a series is created and after a
    /// flush or replay, never per sample.
    pub head_series: AtomicU64,
    /// The bound on `head_series` (`limits.max_series`); 0 means none. Writes that would
    /// create series beyond it keep their samples of existing series and drop the new
    /// series (answered 429 by the server).
    pub head_series_max: u64,
}

/// One shard's state. Lives on its core; never sent to another thread once running.
/// `S` is the file system it runs on: the disk, or a simulated one in tests.
pub struct Shard<S: Storage = DiskStorage> {
    pub(crate) cfg: ShardConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) storage: S,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) head: Head,
    pub(crate) blocks: Vec<Block>,
    pub(crate) wal: Option<WalWriter<S>>,
    /// The next WAL series reference to hand out.
    pub(crate) next_ref: u64,
    /// The largest block ULID this shard has seen or made; new ones go above it.
    pub(crate) last_ulid: Option<ulid::Ulid>,
    /// The fault that makes the shard refuse writes, if one does (see [`writable`]).
    pub(crate) read_only: Option<(ReadOnlyCause, String)>,
    pub(crate) writes: writable::WriteState,
    pub(crate) samples_appended: u64,
    pub(crate) flushes: u64,
    pub(crate) compactions: u64,
    /// How long each compaction took (buckets of [`crate::compact::COMPACTION_BUCKETS`]).
    pub(crate) compaction_durations: crate::histogram::DurationHistogram,
    /// Tasks this shard runs on its core: its event loop and its tickers (0 until
    /// [`Shard::run`] starts them).
    pub(crate) tasks: u64,
    /// What each of those tasks is, for `/debug/pprof/goroutine`.
    pub(crate) task_names: Vec<String>,
    /// What the shard did during an open `/debug/pprof/trace` window.
    pub(crate) trace: crate::trace::Recorder,
    /// How long the WAL replay of [`Shard::open_in`] took.
    pub(crate) replay_duration: Duration,
    /// Compacted parents waiting out their grace period before deletion.
    pub(crate) retired: crate::compact::Retired,
    /// Deleted data every read leaves out until `clean_tombstones` rewrites it away.
    pub(crate) tombstones: crate::tombstones::Tombstones,
}

impl<S: Storage> std::fmt::Debug for Shard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("shard", &self.cfg.shard)
            .finish()
    }
}

/// Ticks the loop gives itself.
enum Tick {
    Sync,
    Compact,
    /// Check for freed disk space while read-only because the disk was full.
    Probe,
}

enum Item {
    Request(ShardRequest),
    Tick(Tick),
}

impl<S: Storage> Shard<S> {
    pub fn id(&self) -> u32 {
        self.cfg.shard
    }

    fn status(&self) -> ShardStatus {
        ShardStatus {
            shard: self.cfg.shard,
            head_series: self.head.num_series() as u64,
            head_samples: self.head.num_samples(),
            head_bytes: self.head.mem_bytes() as u64,
            head_min_time_ms: self.head.min_time_ms(),
            head_max_time_ms: self.head.max_time_ms(),
            blocks: self.blocks.len() as u64,
            block_bytes: self.blocks.iter().map(|b| b.size_bytes()).sum(),
            wal_bytes: self.wal.as_ref().map(|w| w.size_bytes()).unwrap_or(0),
            read_only: self.refusal().map(|e| e.to_string()),
            read_only_cause: self.read_only_cause(),
            read_only_persisted: self.writes.operator_persisted,
            wal_write_errors: self.writes.wal_write_errors,
            wal_fsync_errors: self.writes.wal_fsync_errors,
            head_chunks: self.head.num_chunks(),
            samples_appended: self.samples_appended,
            flushes: self.flushes,
            compactions: self.compactions,
            compaction_durations: self.compaction_durations.clone(),
            tasks: self.tasks,
            wal_replay_duration: self.replay_duration,
            wal_fsync: self
                .wal
                .as_ref()
                .map(|w| w.fsync_stats().clone())
                .unwrap_or_else(|| {
                    crate::wal::writer::FsyncStats::new(&crate::wal::writer::FSYNC_BUCKETS)
                }),
        }
    }

    /// Runs the shard's event loop until a `Shutdown` request (or every sender is
    /// gone). Must run on the shard's own core inside a monoio runtime with timers.
    pub async fn run(mut self, inbox: flume::Receiver<ShardRequest>) {
        let (tick_tx, tick_rx) = flume::bounded::<Tick>(4);
        // The loop itself, then one per ticker.
        self.task_names =
            vec!["shard event loop (appends, reads, flushes and compactions run in it)".into()];
        if self.cfg.wal_enabled && self.cfg.wal_sync == SyncMode::Interval {
            spawn_ticker(tick_tx.clone(), self.cfg.wal_sync_interval, || Tick::Sync);
            self.task_names.push(format!(
                "ticker: WAL sync every {:?}",
                self.cfg.wal_sync_interval
            ));
        }
        if self.cfg.compaction_enabled {
            spawn_ticker(tick_tx.clone(), self.cfg.compaction_interval, || {
                Tick::Compact
            });
            self.task_names.push(format!(
                "ticker: compaction every {:?}",
                self.cfg.compaction_interval
            ));
        }
        spawn_ticker(tick_tx.clone(), DISK_FULL_PROBE_INTERVAL, || Tick::Probe);
        self.task_names.push(format!(
            "ticker: free-space probe every {DISK_FULL_PROBE_INTERVAL:?}"
        ));
        self.tasks = self.task_names.len() as u64;
        drop(tick_tx);
        self.publish_head_series();
        loop {
            let item = monoio::select! {
                r = inbox.recv_async() => match r {
                    Ok(r) => Item::Request(r),
                    Err(_) => break,
                },
                t = tick_rx.recv_async() => match t {
                    Ok(t) => Item::Tick(t),
                    // No tickers configured: wait for requests only.
                    Err(_) => match inbox.recv_async().await {
                        Ok(r) => Item::Request(r),
                        Err(_) => break,
                    },
                },
            };
            match item {
                Item::Tick(Tick::Sync) => {
                    let started = self.trace_now();
                    self.sync_wal().await;
                    self.trace_done("WAL sync tick", started, NO_ARGS);
                }
                Item::Tick(Tick::Compact) => self.compact_tick(),
                Item::Tick(Tick::Probe) => self.probe_disk_space().await,
                Item::Request(ShardRequest::Append {
                    batch,
                    series,
                    reply,
                }) => {
                    // Group commit: take every append already waiting, up to a bound.
                    let mut group = vec![(batch, series, reply)];
                    let mut others = Vec::new();
                    while group.len() < GROUP_COMMIT_REQUESTS_MAX {
                        match inbox.try_recv() {
                            Ok(ShardRequest::Append {
                                batch,
                                series,
                                reply,
                            }) => group.push((batch, series, reply)),
                            Ok(other) => {
                                others.push(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append_group(group).await;
                    self.publish_head_series();
                    for other in others {
                        if self.handle(other, &inbox).await {
                            return;
                        }
                    }
                }
                Item::Request(req) => {
                    if self.handle(req, &inbox).await {
                        return;
                    }
                    self.publish_head_series();
                }
            }
        }
        self.close().await;
    }

    /// Handles one non-append request; returns true when the loop must stop.
    async fn handle(&mut self, req: ShardRequest, inbox: &flume::Receiver<ShardRequest>) -> bool {
        let traced = trace_name(&req).map(|name| (name, self.trace_now()));
        let stop = self.handle_untraced(req, inbox).await;
        if let Some((name, started)) = traced {
            self.trace_done(name, started, NO_ARGS);
        }
        stop
    }

    async fn handle_untraced(
        &mut self,
        req: ShardRequest,
        inbox: &flume::Receiver<ShardRequest>,
    ) -> bool {
        match req {
            ShardRequest::Append {
                batch,
                series,
                reply,
            } => {
                self.append_group(vec![(batch, series, reply)]).await;
            }
            ShardRequest::Select {
                matchers,
                min_time_ms,
                max_time_ms,
                decode_samples_max,
                reply,
            } => {
                let result =
                    self.select_chunks(&matchers, min_time_ms, max_time_ms, decode_samples_max);
                let _ = reply.send(result.map_err(|e| self.set_aside_damaged(e)));
            }
            ShardRequest::Series {
                matcher_sets,
                min_time_ms,
                max_time_ms,
                reply,
            } => {
                let _ = reply.send(Ok(self.series(&matcher_sets, min_time_ms, max_time_ms)));
            }
            ShardRequest::LabelNames {
                matcher_sets,
                min_time_ms,
                max_time_ms,
                reply,
            } => {
                let _ = reply.send(Ok(self.label_names(
                    &matcher_sets,
                    min_time_ms,
                    max_time_ms,
                )));
            }
            ShardRequest::LabelValues {
                name,
                matcher_sets,
                min_time_ms,
                max_time_ms,
                reply,
            } => {
                let _ = reply.send(Ok(self.label_values(
                    &name,
                    &matcher_sets,
                    min_time_ms,
                    max_time_ms,
                )));
            }
            ShardRequest::Flush { reply } => {
                let _ = reply.send(self.flush().await);
            }
            ShardRequest::Compact { reply } => {
                let result = self.compact_now();
                let _ = reply.send(result.map_err(|e| self.set_aside_damaged(e)));
            }
            ShardRequest::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            ShardRequest::HeadStats { reply } => {
                let _ = reply.send(Ok(self.head.postings_stats()));
            }
            ShardRequest::SetReadOnly { persist, reply } => {
                self.set_read_only_by_operator();
                let result = match persist {
                    Some(json) => self.persist_read_only(&json),
                    None => Ok(()),
                };
                let _ = reply.send(result);
            }
            ShardRequest::SetWritable { reply } => {
                let result = match self.clear_persisted_read_only() {
                    Ok(()) => self.set_writable().await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
            ShardRequest::SetRetention {
                retention_ms,
                reply,
            } => {
                let _ = reply.send(self.set_retention(retention_ms));
            }
            ShardRequest::Snapshot {
                name,
                skip_head,
                reply,
            } => {
                let _ = reply.send(self.snapshot(&name, skip_head).await);
            }
            ShardRequest::FinishSnapshot {
                name,
                complete,
                reply,
            } => {
                let _ = reply.send(self.finish_snapshot(&name, complete));
            }
            ShardRequest::AddTombstones { entries, reply } => {
                let _ = reply.send(self.add_tombstones(entries));
            }
            ShardRequest::Tombstones { reply } => {
                let _ = reply.send(Ok(self.tombstone_list()));
            }
            ShardRequest::CleanTombstones { entries, reply } => {
                let result = self.clean_tombstones(&entries).await;
                let _ = reply.send(result.map_err(|e| self.set_aside_damaged(e)));
            }
            ShardRequest::DropTombstones { ids, reply } => {
                let _ = reply.send(self.drop_tombstones(&ids));
            }
            ShardRequest::Dump { reply } => {
                let _ = reply.send(Ok(self.dump(inbox)));
            }
            ShardRequest::TraceStart { window, reply } => {
                let now = self.clock.monotonic();
                self.trace.start(now, window);
                let _ = reply.send(Ok(()));
            }
            ShardRequest::TraceStop { reply } => {
                let _ = reply.send(Ok(self.trace.stop(self.cfg.shard)));
            }
            ShardRequest::Shutdown { reply } => {
                self.close().await;
                let _ = reply.send(Ok(()));
                return true;
            }
        }
        false
    }

    /// The shard's state, tasks and queue, for `/debug/pprof/goroutine`.
    fn dump(&self, inbox: &flume::Receiver<ShardRequest>) -> ShardDump {
        let thread = std::thread::current();
        ShardDump {
            status: self.status(),
            thread: thread.name().unwrap_or("unnamed").to_string(),
            cpu: nix::sched::sched_getcpu().ok(),
            tasks: self.task_names.clone(),
            inbox_depth: inbox.len(),
            inbox_capacity: inbox.capacity().unwrap_or(0),
            wal_segment: self.wal.as_ref().map(|w| w.segment_seq()),
        }
    }

    /// The time now when a trace window is open (the only time tracing reads the
    /// clock), for [`Shard::trace_done`].
    pub(crate) fn trace_now(&self) -> Option<Duration> {
        self.trace.is_active().then(|| self.clock.monotonic())
    }

    /// Records an event that began at `started` (from [`Shard::trace_now`]).
    pub(crate) fn trace_done(
        &mut self,
        name: &'static str,
        started: Option<Duration>,
        args: TraceArgs,
    ) {
        if let Some(started) = started {
            let now = self.clock.monotonic();
            self.trace.record(name, started, now, args);
        }
    }

    pub(crate) async fn sync_wal(&mut self) {
        let Some(wal) = self.wal.as_mut() else { return };
        if let Err(e) = wal.sync().await {
            self.wal_failed(&e);
        }
    }

    /// Syncs the WAL on the way out.
    async fn close(&mut self) {
        if let Some(wal) = self.wal.take() {
            match wal.close().await {
                Ok(()) => tracing::info!(shard = self.cfg.shard, "WAL synced and closed"),
                Err(e) => tracing::error!(shard = self.cfg.shard, error = %e, "closing WAL failed"),
            }
        }
    }
}

/// Sends `make()` into `tx` every `every`, until the loop is gone.
fn spawn_ticker(tx: flume::Sender<Tick>, every: Duration, make: impl Fn() -> Tick + 'static) {
    monoio::spawn(async move {
        loop {
            monoio::time::sleep(every).await;
            // A full tick queue means the loop is behind; skipping a tick is fine.
            match tx.try_send(make()) {
                Ok(()) | Err(flume::TrySendError::Full(_)) => {}
                Err(flume::TrySendError::Disconnected(_)) => break,
            }
        }
    });
}

/// The trace event name of a request the loop handles; `None` for appends (traced as
/// write groups) and the trace's own requests.
fn trace_name(req: &ShardRequest) -> Option<&'static str> {
    Some(match req {
        ShardRequest::Append { .. }
        | ShardRequest::TraceStart { .. }
        | ShardRequest::TraceStop { .. } => return None,
        ShardRequest::Select { .. } => "mesh: select",
        ShardRequest::Series { .. } => "mesh: series",
        ShardRequest::LabelNames { .. } => "mesh: label names",
        ShardRequest::LabelValues { .. } => "mesh: label values",
        ShardRequest::Flush { .. } => "mesh: flush",
        ShardRequest::Compact { .. } => "mesh: compact",
        ShardRequest::Status { .. } => "mesh: status",
        ShardRequest::HeadStats { .. } => "mesh: head stats",
        ShardRequest::SetReadOnly { .. } => "mesh: set read-only",
        ShardRequest::SetWritable { .. } => "mesh: set writable",
        ShardRequest::Dump { .. } => "mesh: dump",
        ShardRequest::SetRetention { .. } => "mesh: set retention",
        ShardRequest::Snapshot { .. } => "mesh: snapshot",
        ShardRequest::FinishSnapshot { .. } => "mesh: finish snapshot",
        ShardRequest::AddTombstones { .. } => "mesh: add tombstones",
        ShardRequest::Tombstones { .. } => "mesh: tombstones",
        ShardRequest::CleanTombstones { .. } => "mesh: clean tombstones",
        ShardRequest::DropTombstones { .. } => "mesh: drop tombstones",
        ShardRequest::Shutdown { .. } => "mesh: shutdown",
    })
}

/// An append request as the loop sees it: a batch, the indices of this shard's series in it, and where to answer.
pub(crate) type AppendRequest = (Arc<IngestBatch>, Vec<u32>, Reply<AppendOutcome>);
