//! Group commit: one WAL write (and one sync) for every append waiting together.

use super::{AppendRequest, Shard};
use crate::limits::{SAMPLES_PER_RECORD_MAX, SERIES_PER_RECORD_MAX};
use crate::mesh::AppendOutcome;
use crate::model::Sample;
use crate::storage::Storage;
use crate::wal::record;

impl<S: Storage> Shard<S> {
    /// Writes a group of append requests: resolves series (creating new ones, as far
    /// as the head series bound allows), writes one WAL record set, applies the samples
    /// to the head, then acknowledges each request. Nothing is acknowledged before its
    /// WAL bytes are written.
    pub(crate) async fn append_group(&mut self, group: Vec<AppendRequest>) {
        if self.read_only.is_some() || self.writes.operator_read_only {
            for (_, _, reply) in group {
                if let Some(refusal) = self.refusal() {
                    let _ = reply.send(Err(refusal));
                }
            }
            return;
        }
        let started = self.trace_now();
        let requests = group.len() as u64;
        let fsyncs_before = self.wal_fsyncs();
        let mut wal_buf = Vec::new();
        // Series whose record goes into this write: new ones, and replayed ones not yet
        // logged by this process.
        let mut new_series = Vec::new();
        let mut resolved: Vec<(u32, Sample)> = Vec::new();
        let mut outcomes = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        for (batch, indices, reply) in group {
            let mut outcome = AppendOutcome::default();
            for series in indices.iter().filter_map(|&i| batch.series(i as usize)) {
                let id = match self.head.lookup_borrowed(&series) {
                    Some(id) => {
                        // A series replayed on start is logged again before its first
                        // new sample, so that sample never depends on a record that
                        // may not be durable (bytes of a failed sync, still in the page
                        // cache when this process replayed them).
                        if self.head.log_once(id) {
                            new_series.push(id);
                        }
                        id
                    }
                    None if !self.reserve_series() => {
                        outcome.series_refused += 1;
                        continue;
                    }
                    None => {
                        let r = self.next_ref;
                        self.next_ref += 1;
                        outcome.series_created += 1;
                        let id = self.head.create(series.to_labels(), series.hash, r);
                        new_series.push(id);
                        id
                    }
                };
                outcome.samples += series.samples.len() as u64;
                resolved.extend(series.samples.iter().map(|&s| (id, s)));
            }
            outcomes.push(outcome);
            replies.push(reply);
        }
        let mut wal_bytes = 0;
        if let Some(wal) = self.wal.as_mut() {
            // Series whose record was lost with a failed write go first, so no sample
            // written after a resume refers to a series the WAL does not name.
            let mut refs = std::mem::take(&mut self.writes.unlogged_series);
            refs.extend(
                new_series.iter().filter_map(|&id| {
                    Some((self.head.wal_ref(id)?, self.head.labels(id)?.clone()))
                }),
            );
            for part in refs.chunks(SERIES_PER_RECORD_MAX) {
                record::encode_series(&mut wal_buf, part.iter().map(|(r, l)| (*r, l)));
            }
            let samples: Vec<_> = resolved
                .iter()
                .filter_map(|&(id, s)| Some((self.head.wal_ref(id)?, s)))
                .collect();
            for part in samples.chunks(SAMPLES_PER_RECORD_MAX) {
                record::encode_samples(&mut wal_buf, part);
            }
            wal_bytes = wal_buf.len() as u64;
            if let Err(e) = wal.append(wal_buf).await {
                self.writes.unlogged_series = refs;
                self.wal_failed(&e);
                for reply in replies {
                    if let Some(refusal) = self.refusal() {
                        let _ = reply.send(Err(refusal));
                    }
                }
                return;
            }
        }
        let n = resolved.len() as u64;
        for (id, s) in resolved {
            self.head.append(id, s);
        }
        self.samples_appended += n;
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(Ok(outcome));
        }
        let fsyncs = self.wal_fsyncs() - fsyncs_before;
        self.trace_done(
            "write group",
            started,
            [
                ("requests", requests),
                ("samples", n),
                ("wal_bytes", wal_bytes),
                ("fsyncs", fsyncs),
            ],
        );
        if self.head_needs_flush()
            && let Err(e) = self.flush().await
        {
            tracing::error!(shard = self.cfg.shard, error = %e, "flushing the head failed");
            // A failed WAL cut poisoned the writer: refuse writes now, not at the next one.
            if self.wal.as_ref().is_some_and(|w| w.fault().is_some()) {
                self.wal_failed(&e);
            }
        }
    }

    /// WAL fdatasyncs so far, to tell whether a write group synced.
    fn wal_fsyncs(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| w.fsync_stats().count)
    }
}
