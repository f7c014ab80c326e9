//! The mesh: bounded channels into every shard's inbox, and the fan-out/merge of
//! requests that touch several shards.
//!
//! Any core may hold a [`Mesh`]; it is the only way to reach a shard.
//! **Architecture Invariant:** a shard's state is touched only by its own core; other
//! cores send it a [`ShardRequest`] and await the reply.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cardinality::{Cardinality, HeadPostings};
use crate::error::{Error, ReadOnlyCause, Result};
use crate::head::{SeriesData, sort_dedup};
use crate::ingest::IngestBatch;
use crate::model::{Labels, Matcher, SeriesSamples};
use crate::select::SelectedSeries;
use crate::tombstones::Tombstone;

/// A reply channel: one message, then it is dropped.
pub type Reply<T> = flume::Sender<Result<T>>;

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub samples: u64,
    pub series_created: u64,
    /// New series not created because the heads hold `limits.max_series` series; their
    /// samples were dropped (not counted in `samples`).
    pub series_refused: u64,
}

/// The state of a shard, for status routes and metrics.
#[derive(Clone, Debug, Default)]
pub struct ShardStatus {
    pub shard: u32,
    pub head_series: u64,
    pub head_samples: u64,
    pub head_bytes: u64,
    pub head_min_time_ms: i64,
    pub head_max_time_ms: i64,
    pub blocks: u64,
    pub block_bytes: u64,
    pub wal_bytes: u64,
    /// The error a write gets while the shard refuses writes (names shard and cause).
    pub read_only: Option<String>,
    pub read_only_cause: Option<ReadOnlyCause>,
    /// The operator's read-only switch is persisted (`<data-dir>/READONLY`): a restart
    /// starts read-only too.
    pub read_only_persisted: bool,
    pub wal_write_errors: u64,
    pub wal_fsync_errors: u64,
    pub head_chunks: u64,
    pub samples_appended: u64,
    pub flushes: u64,
    pub compactions: u64,
    /// How long its compactions took.
    pub compaction_durations: crate::histogram::DurationHistogram,
    /// Tasks the shard runs on its core: its event loop and its tickers.
    pub tasks: u64,
    /// How long the shard's WAL replay took when it opened.
    pub wal_replay_duration: std::time::Duration,
    /// How long its WAL fdatasyncs took.
    pub wal_fsync: crate::wal::writer::FsyncStats,
}

/// What a shard is doing, for `/debug/pprof/goroutine`: its status, where it runs,
/// its tasks and its queue.
#[derive(Clone, Debug, Default)]
pub struct ShardDump {
    pub status: ShardStatus,
    /// The name of the thread the shard runs on.
    pub thread: String,
    /// The CPU the thread ran on when it answered (it is pinned where it can be).
    pub cpu: Option<usize>,
    /// What each of its `status.tasks` tasks is.
    pub tasks: Vec<String>,
    /// Requests waiting in its inbox, and the inbox's bound.
    pub inbox_depth: usize,
    pub inbox_capacity: usize,
    /// The WAL segment being written, if the WAL is on.
    pub wal_segment: Option<u64>,
}

/// Everything a shard can be asked.
#[derive(Debug)]
pub enum ShardRequest {
    Append {
        /// The whole request, shared by every shard it touches.
        batch: Arc<IngestBatch>,
        /// Indices of the series in `batch` this shard owns.
        series: Vec<u32>,
        reply: Reply<AppendOutcome>,
    },
    Select {
        matchers: Vec<Matcher>,
        min_time_ms: i64,
        max_time_ms: i64,
        /// Samples the shard may decode before leaving series compressed.
        decode_samples_max: usize,
        reply: Reply<Vec<SelectedSeries>>,
    },
    Series {
        matcher_sets: Vec<Vec<Matcher>>,
        min_time_ms: i64,
        max_time_ms: i64,
        reply: Reply<Vec<Labels>>,
    },
    LabelNames {
        matcher_sets: Vec<Vec<Matcher>>,
        min_time_ms: i64,
        max_time_ms: i64,
        reply: Reply<Vec<String>>,
    },
    LabelValues {
        name: String,
        matcher_sets: Vec<Vec<Matcher>>,
        min_time_ms: i64,
        max_time_ms: i64,
        reply: Reply<Vec<String>>,
    },
    /// Persist the head into a block now.
    Flush {
        reply: Reply<()>,
    },
    /// Run compaction and retention now.
    Compact {
        reply: Reply<()>,
    },
    Status {
        reply: Reply<ShardStatus>,
    },
    /// The head's postings by label, for `/api/v1/status/tsdb`.
    HeadStats {
        reply: Reply<HeadPostings>,
    },
    /// Refuse writes until `SetWritable` (the operator's switch). With `persist`, the
    /// switch survives a restart: shard 0 writes the `READONLY` marker holding this
    /// JSON, durably, before it answers.
    SetReadOnly {
        persist: Option<String>,
        reply: Reply<()>,
    },
    /// Clear the operator's switch and resume after a full disk; refused, with the
    /// reason, when the shard's fault needs a restart. Shard 0 also removes a
    /// persisted `READONLY` marker.
    SetWritable {
        reply: Reply<()>,
    },
    /// Its state, tasks and queue, for `/debug/pprof/goroutine`.
    Dump {
        reply: Reply<ShardDump>,
    },
    /// Open a trace window of at most `window` (see [`crate::trace`]).
    TraceStart {
        window: std::time::Duration,
        reply: Reply<()>,
    },
    /// Close the trace window and hand over its events.
    TraceStop {
        reply: Reply<crate::trace::ShardTrace>,
    },
    /// Use this retention from now on, and delete the blocks past it at once.
    SetRetention {
        retention_ms: i64,
        reply: Reply<()>,
    },
    /// Hard-link every live block into `<data-dir>/snapshots/<name>.tmp/`, after
    /// flushing the head unless `skip_head`. Answers the number of blocks linked.
    Snapshot {
        name: String,
        skip_head: bool,
        reply: Reply<u64>,
    },
    /// Shard 0 ends snapshot `name`: renamed into place when `complete`, else removed.
    FinishSnapshot {
        name: String,
        complete: bool,
        reply: Reply<()>,
    },
    /// List these tombstones (`delete_series`); shard 0 hands out their ids and makes
    /// them durable first. Answers them as listed.
    AddTombstones {
        entries: Vec<Tombstone>,
        reply: Reply<Vec<Tombstone>>,
    },
    /// The tombstones listed now.
    Tombstones {
        reply: Reply<Vec<Tombstone>>,
    },
    /// Flush the head and rewrite every block holding data these delete. Answers the
    /// number of blocks rewritten.
    CleanTombstones {
        entries: Vec<Tombstone>,
        reply: Reply<u64>,
    },
    /// Unlist these tombstones (every shard has cleaned them).
    DropTombstones {
        ids: Vec<u64>,
        reply: Reply<()>,
    },
    /// Sync the WAL and stop the shard's loop.
    Shutdown {
        reply: Reply<()>,
    },
}

/// Senders into every shard's inbox.
#[derive(Clone, Debug)]
pub struct Mesh {
    inboxes: Arc<[flume::Sender<ShardRequest>]>,
}

fn gone() -> Error {
    Error::Unavailable("shard is shutting down".into())
}

impl Mesh {
    pub fn new(inboxes: Vec<flume::Sender<ShardRequest>>) -> Mesh {
        Mesh {
            inboxes: inboxes.into(),
        }
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// The shard that owns a series.
    pub fn shard_of(&self, labels: &Labels) -> usize {
        (labels.stable_hash() % self.inboxes.len().max(1) as u64) as usize
    }

    async fn send(&self, shard: usize, req: ShardRequest) -> Result<()> {
        let inbox = self.inboxes.get(shard).ok_or_else(gone)?;
        inbox.send_async(req).await.map_err(|_| gone())
    }

    /// Sends one request to every shard (built by `make`) and collects the replies.
    async fn fan_out<T>(&self, make: impl Fn(Reply<T>) -> ShardRequest) -> Result<Vec<T>> {
        let mut waits = Vec::with_capacity(self.inboxes.len());
        for shard in 0..self.inboxes.len() {
            let (tx, rx) = flume::bounded(1);
            self.send(shard, make(tx)).await?;
            waits.push(rx);
        }
        let mut out = Vec::with_capacity(waits.len());
        for rx in waits {
            out.push(rx.recv_async().await.map_err(|_| gone())??);
        }
        Ok(out)
    }

    /// Splits a validated batch by owner shard, writes each part, and returns once
    /// every shard involved has its WAL record written (and synced, if so configured).
    /// On error some shards may have written their part: the caller reports the error
    /// and the client retries, which is safe since duplicates are dropped by timestamp.
    pub async fn append(&self, batch: Vec<SeriesSamples>) -> Result<AppendOutcome> {
        self.append_batch(IngestBatch::from_series(batch)).await
    }

    /// [`Mesh::append`] of a batch whose labels borrow from the request's bytes: each
    /// shard involved gets the batch (shared, not copied) and the indices of its series.
    pub async fn append_batch(&self, batch: IngestBatch) -> Result<AppendOutcome> {
        let n = self.inboxes.len();
        let mut parts: Vec<Vec<u32>> = (0..n).map(|_| Vec::new()).collect();
        for (i, s) in batch.iter().enumerate() {
            if let Some(p) = parts.get_mut((s.hash % n.max(1) as u64) as usize) {
                p.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        let batch = Arc::new(batch);
        let mut waits = Vec::new();
        for (shard, series) in parts.into_iter().enumerate() {
            if series.is_empty() {
                continue;
            }
            let (tx, rx) = flume::bounded(1);
            self.send(
                shard,
                ShardRequest::Append {
                    batch: Arc::clone(&batch),
                    series,
                    reply: tx,
                },
            )
            .await?;
            waits.push(rx);
        }
        drop(batch);
        let mut total = AppendOutcome::default();
        let mut first_err = None;
        for rx in waits {
            match rx.recv_async().await.map_err(|_| gone()) {
                Ok(Ok(o)) => {
                    total.samples += o.samples;
                    total.series_created += o.series_created;
                    total.series_refused += o.series_refused;
                }
                Ok(Err(e)) | Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Series selected by `matchers` and their samples in `[min, max]`, sorted by labels.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<Vec<SeriesData>> {
        let series = self
            .select_chunks(matchers, min_time_ms, max_time_ms, usize::MAX)
            .await?;
        crate::select::decode_all(series)
    }

    /// [`Mesh::select`] with series left in their chunks once each shard has decoded
    /// `decode_samples_max` samples, for the caller to decode one series at a time
    /// (a series may decode to none).
    pub async fn select_chunks(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
        decode_samples_max: usize,
    ) -> Result<Vec<SelectedSeries>> {
        let parts = self
            .fan_out(|reply| ShardRequest::Select {
                matchers: matchers.to_vec(),
                min_time_ms,
                max_time_ms,
                decode_samples_max,
                reply,
            })
            .await?;
        Ok(self.merge_owner_last(parts))
    }

    /// Every shard's answer merged into one list sorted by labels, each series' part
    /// from its owner shard last.
    ///
    /// After a shard-count change a series can come from two shards: from a block of
    /// the old layout on one, and from the head and newer blocks of its owner. Both
    /// parts are kept, the owner's last; decoding merges them by timestamp, and where
    /// both hold a timestamp the owner's sample wins, as the sample written last does
    /// on one shard: every write since the change went to the owner. Only a label set
    /// answered by more than one shard needs its owner computed.
    fn merge_owner_last(&self, parts: Vec<Vec<SelectedSeries>>) -> Vec<SelectedSeries> {
        if parts.len() <= 1 {
            return parts.into_iter().flatten().collect();
        }
        let mut all: Vec<(usize, SelectedSeries)> = parts
            .into_iter()
            .enumerate()
            .flat_map(|(shard, part)| part.into_iter().map(move |s| (shard, s)))
            .collect();
        // Each shard's answer is sorted, so this merges a few sorted runs.
        all.sort_by(|a, b| a.1.labels.cmp(&b.1.labels));
        let mut out: Vec<SelectedSeries> = Vec::with_capacity(all.len());
        let mut all = all.into_iter().peekable();
        while let Some((shard, first)) = all.next() {
            let Some((_, next)) = all.peek() else {
                out.push(first);
                break;
            };
            if next.labels != first.labels {
                out.push(first);
                continue;
            }
            let mut run = vec![(shard, first)];
            while let Some(part) = all.next_if(|(_, s)| s.labels == run[0].1.labels) {
                run.push(part);
            }
            let owner = self.shard_of(&run[0].1.labels);
            // Stable: the owner's part goes last, the others keep their order.
            run.sort_by_key(|(shard, _)| *shard == owner);
            let mut run = run.into_iter().map(|(_, s)| s);
            if let Some(mut merged) = run.next() {
                for s in run {
                    merged.parts.extend(s.parts);
                }
                out.push(merged);
            }
        }
        out
    }

    /// Label sets selected by any of `matcher_sets`, sorted and unique.
    pub async fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<Vec<Labels>> {
        let parts = self
            .fan_out(|reply| ShardRequest::Series {
                matcher_sets: matcher_sets.to_vec(),
                min_time_ms,
                max_time_ms,
                reply,
            })
            .await?;
        Ok(sorted_union(parts))
    }

    pub async fn label_names(
        &self,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<Vec<String>> {
        let parts = self
            .fan_out(|reply| ShardRequest::LabelNames {
                matcher_sets: matcher_sets.to_vec(),
                min_time_ms,
                max_time_ms,
                reply,
            })
            .await?;
        Ok(sorted_union(parts))
    }

    pub async fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<Vec<String>> {
        let parts = self
            .fan_out(|reply| ShardRequest::LabelValues {
                name: name.to_string(),
                matcher_sets: matcher_sets.to_vec(),
                min_time_ms,
                max_time_ms,
                reply,
            })
            .await?;
        Ok(sorted_union(parts))
    }

    pub async fn flush(&self) -> Result<()> {
        self.fan_out(|reply| ShardRequest::Flush { reply })
            .await
            .map(|_| ())
    }

    pub async fn compact(&self) -> Result<()> {
        self.fan_out(|reply| ShardRequest::Compact { reply })
            .await
            .map(|_| ())
    }

    pub async fn status(&self) -> Result<Vec<ShardStatus>> {
        self.fan_out(|reply| ShardRequest::Status { reply }).await
    }

    /// Every shard's state, tasks and queue.
    pub async fn dump(&self) -> Result<Vec<ShardDump>> {
        self.fan_out(|reply| ShardRequest::Dump { reply }).await
    }

    /// Opens a trace window of at most `window` on every shard.
    pub async fn trace_start(&self, window: std::time::Duration) -> Result<()> {
        self.fan_out(|reply| ShardRequest::TraceStart { window, reply })
            .await
            .map(|_| ())
    }

    /// Closes every shard's trace window and collects what each recorded.
    pub async fn trace_stop(&self) -> Result<Vec<crate::trace::ShardTrace>> {
        self.fan_out(|reply| ShardRequest::TraceStop { reply })
            .await
    }

    /// Head cardinality over every shard, with the `top` largest entries of each list.
    pub async fn cardinality(&self, top: usize) -> Result<Cardinality> {
        let parts = self
            .fan_out(|reply| ShardRequest::HeadStats { reply })
            .await?;
        Ok(Cardinality::merge(parts, top))
    }

    /// Makes every shard refuse writes (the operator's read-only switch). With
    /// `persist` (the JSON the marker holds) the switch survives a restart.
    pub async fn set_read_only(&self, persist: Option<String>) -> Result<()> {
        self.fan_out(|reply| ShardRequest::SetReadOnly {
            persist: persist.clone(),
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Sets every shard's retention and runs a retention pass on each now.
    pub async fn set_retention(&self, retention_ms: i64) -> Result<()> {
        self.fan_out(|reply| ShardRequest::SetRetention {
            retention_ms,
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Snapshot `name` of every shard's blocks (and head, unless `skip_head`) under
    /// `<data-dir>/snapshots/<name>/`; answers the number of blocks it holds.
    pub async fn snapshot(&self, name: &str, skip_head: bool) -> Result<u64> {
        if !crate::shard::valid_snapshot_name(name) {
            return Err(Error::BadRequest(format!("invalid snapshot name {name:?}")));
        }
        let parts = self
            .fan_out(|reply| ShardRequest::Snapshot {
                name: name.to_string(),
                skip_head,
                reply,
            })
            .await;
        // Complete, it is renamed into place; otherwise what was linked goes.
        let (tx, rx) = flume::bounded(1);
        self.send(
            0,
            ShardRequest::FinishSnapshot {
                name: name.to_string(),
                complete: parts.is_ok(),
                reply: tx,
            },
        )
        .await?;
        let finished = rx.recv_async().await.map_err(|_| gone()).and_then(|r| r);
        let blocks = parts?;
        finished?;
        Ok(blocks.into_iter().sum())
    }

    /// Clears the operator's switch on every shard and resumes shards stopped by a
    /// full disk. Every shard is asked; the first refusal is returned.
    pub async fn set_writable(&self) -> Result<()> {
        let mut waits = Vec::with_capacity(self.inboxes.len());
        for shard in 0..self.inboxes.len() {
            let (tx, rx) = flume::bounded(1);
            self.send(shard, ShardRequest::SetWritable { reply: tx })
                .await?;
            waits.push(rx);
        }
        let mut first_err = None;
        for rx in waits {
            if let Err(e) = rx.recv_async().await.map_err(|_| gone()).and_then(|r| r) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// `delete_series`: one tombstone per matcher set over `[min, max]`. Durable (shard
    /// 0 writes the tombstones file) before any shard lists it; every read of every
    /// shard leaves the samples out once this returns.
    pub async fn delete_series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<()> {
        let entries: Vec<Tombstone> = matcher_sets
            .iter()
            .map(|m| Tombstone {
                id: 0,
                matchers: m.clone(),
                min_time_ms,
                max_time_ms,
            })
            .collect();
        let (tx, rx) = flume::bounded(1);
        self.send(0, ShardRequest::AddTombstones { entries, reply: tx })
            .await?;
        let listed = rx.recv_async().await.map_err(|_| gone())??;
        let mut waits = Vec::new();
        for shard in 1..self.inboxes.len() {
            let (tx, rx) = flume::bounded(1);
            self.send(
                shard,
                ShardRequest::AddTombstones {
                    entries: listed.clone(),
                    reply: tx,
                },
            )
            .await?;
            waits.push(rx);
        }
        for rx in waits {
            rx.recv_async().await.map_err(|_| gone())??;
        }
        Ok(())
    }

    /// `clean_tombstones`: every shard rewrites the blocks holding deleted data; once
    /// all have, the tombstones are dropped. Answers the number of blocks rewritten.
    pub async fn clean_tombstones(&self) -> Result<u64> {
        let (tx, rx) = flume::bounded(1);
        self.send(0, ShardRequest::Tombstones { reply: tx }).await?;
        let entries = rx.recv_async().await.map_err(|_| gone())??;
        if entries.is_empty() {
            return Ok(0);
        }
        let rewritten = self
            .fan_out(|reply| ShardRequest::CleanTombstones {
                entries: entries.clone(),
                reply,
            })
            .await?;
        let ids: Vec<u64> = entries.iter().map(|t| t.id).collect();
        self.fan_out(|reply| ShardRequest::DropTombstones {
            ids: ids.clone(),
            reply,
        })
        .await?;
        Ok(rewritten.into_iter().sum())
    }

    /// Blocking form of shutdown for the main thread: asks every shard to sync and stop.
    pub fn shutdown_blocking(&self) -> Vec<Result<()>> {
        let mut waits = Vec::new();
        for inbox in self.inboxes.iter() {
            let (tx, rx) = flume::bounded(1);
            if inbox.send(ShardRequest::Shutdown { reply: tx }).is_ok() {
                waits.push(rx);
            }
        }
        waits
            .into_iter()
            .map(|rx| rx.recv().map_err(|_| gone()).and_then(|r| r))
            .collect()
    }
}

/// The sorted, deduplicated union of every shard's answer.
fn sorted_union<T: Ord>(parts: Vec<Vec<T>>) -> Vec<T> {
    let set: BTreeSet<T> = parts.into_iter().flatten().collect();
    set.into_iter().collect()
}

/// Merges series from several sources (shards, blocks, head) by label set; samples of
/// the same series are merged and deduplicated by timestamp, the sample of the source
/// that comes last winning. Sorted by labels.
pub fn merge_series(parts: impl IntoIterator<Item = SeriesData>) -> Vec<SeriesData> {
    let mut all: Vec<SeriesData> = parts.into_iter().collect();
    // Stable, so parts of one label set keep their sources' order; sources that are
    // each sorted already (a block's series, a shard's answer) are merged as runs.
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    merge_sorted(all)
}

/// Merges neighbours with equal labels of a list sorted by labels, keeping the later
/// one's sample of a shared timestamp.
fn merge_sorted(all: Vec<SeriesData>) -> Vec<SeriesData> {
    let mut out: Vec<SeriesData> = Vec::with_capacity(all.len());
    // Whether the last series of `out` was assembled from several parts.
    let mut joined = false;
    for s in all {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.samples.extend(s.samples);
                joined = true;
            }
            _ => {
                if joined && let Some(last) = out.last_mut() {
                    sort_dedup(&mut last.samples);
                }
                joined = false;
                out.push(s);
            }
        }
    }
    if joined && let Some(last) = out.last_mut() {
        sort_dedup(&mut last.samples);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Sample};

    fn labels(i: u32) -> Labels {
        Labels::new(vec![
            Label::new("__name__", "m"),
            Label::new("i", i.to_string()),
        ])
        .unwrap()
    }

    /// The same series from two shards after a shard-count change: an old-layout
    /// block on one, the head of its owner on the other.
    #[test]
    fn a_series_from_two_shards_is_answered_once_with_the_owner_winning() {
        let (tx0, _rx0) = flume::bounded(1);
        let (tx1, _rx1) = flume::bounded(1);
        let mesh = Mesh::new(vec![tx0, tx1]);
        for i in 0..8 {
            let l = labels(i);
            let owner = mesh.shard_of(&l);
            let part = |v: f64, ts: &[i64]| {
                SelectedSeries::from_samples(
                    l.clone(),
                    0,
                    10,
                    ts.iter().map(|&t| Sample::new(t, v)).collect(),
                )
            };
            let mut parts = vec![Vec::new(), Vec::new()];
            parts[owner].push(part(2.0, &[2, 3]));
            parts[1 - owner].push(part(1.0, &[1, 2]));
            let merged = mesh.merge_owner_last(parts);
            assert_eq!(merged.len(), 1);
            let got: Vec<(i64, f64)> = merged[0]
                .decode()
                .unwrap()
                .iter()
                .map(|s| (s.timestamp_ms, s.value))
                .collect();
            assert_eq!(got, vec![(1, 1.0), (2, 2.0), (3, 2.0)], "series {l}");
        }
        // Series, label names and values: a set union, each answer once.
        let union = sorted_union(vec![vec![labels(1), labels(2)], vec![labels(2)]]);
        assert_eq!(union, vec![labels(1), labels(2)]);
        let names = sorted_union(vec![vec!["i".to_string()], vec!["i".to_string()]]);
        assert_eq!(names, vec!["i".to_string()]);
    }
}
