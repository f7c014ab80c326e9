//! Reads over a shard: its blocks and its head, merged per series.

use std::collections::BTreeSet;

use super::Shard;
use crate::error::Result;
use crate::head::SeriesData;
use crate::model::{Labels, Matcher};
use crate::select::{Part, Piece, SelectedSeries};
use crate::storage::Storage;

impl<S: Storage> Shard<S> {
    fn blocks_in(
        &self,
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> impl Iterator<Item = &crate::block::Block> {
        self.blocks
            .iter()
            .filter(move |b| b.meta().min_time <= max_time_ms && b.meta().max_time >= min_time_ms)
    }

    /// Series selected by `matchers` with their samples in `[min, max]`.
    pub(crate) fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Result<Vec<SeriesData>> {
        crate::select::decode_all(self.select_chunks(matchers, min_time_ms, max_time_ms, 0)?)
    }

    /// Series selected by `matchers` with their chunks overlapping `[min, max]`, not
    /// decoded, sorted by labels; each series is one [`Part`] whose pieces come from
    /// the oldest block first and the head last (decoding keeps the last sample of a
    /// timestamp, so a later write wins wherever it landed), with the ranges this
    /// shard's tombstones delete. A series may decode to no samples (a chunk that
    /// spans the window without a sample in it, or everything deleted).
    ///
    /// Series are decoded here, on this shard's core, while the samples decoded stay
    /// within `decode_samples_max`; the rest stay compressed for the querying core to
    /// decode one at a time.
    pub(crate) fn select_chunks(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
        decode_samples_max: usize,
    ) -> Result<Vec<SelectedSeries>> {
        let mut found: Vec<(Labels, Vec<Piece>)> = Vec::new();
        for b in crate::compact::by_age(self.blocks_in(min_time_ms, max_time_ms)) {
            let refs = b.select(matchers, min_time_ms, max_time_ms);
            let read = b.read_series_chunks(&refs, min_time_ms, max_time_ms)?;
            for (s, pieces) in refs.into_iter().zip(read) {
                if !pieces.is_empty() {
                    found.push((b.labels(s).clone(), pieces));
                }
            }
        }
        found.extend(self.head.select_pieces(matchers, min_time_ms, max_time_ms));
        // Stable: the pieces of one label set keep their sources' order.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<SelectedSeries> = Vec::with_capacity(found.len());
        for (labels, pieces) in found {
            if let Some(last) = out.last_mut()
                && last.labels == labels
                && let Some(part) = last.parts.first_mut()
            {
                part.pieces.extend(pieces);
                continue;
            }
            let deleted = if self.tombstones.is_empty() {
                Vec::new()
            } else {
                // Deleted samples go at once; their bytes go at `clean_tombstones`.
                self.tombstones.intervals(&labels)
            };
            out.push(SelectedSeries {
                labels,
                min_time_ms,
                max_time_ms,
                parts: vec![Part { pieces, deleted }],
            });
        }
        let mut budget = decode_samples_max;
        let mut scratch = Vec::new();
        for s in &mut out {
            if budget == 0 {
                break;
            }
            s.decode_into(&mut scratch)?;
            budget = budget.saturating_sub(scratch.len());
            s.parts = vec![Part {
                // A copy of the samples' size, not the decoded chunks' room.
                pieces: vec![Piece::Samples(scratch.as_slice().to_vec())],
                deleted: Vec::new(),
            }];
        }
        Ok(out)
    }

    /// Whether series `labels` has a sample in `[min, max]` that no tombstone deletes.
    fn has_live_samples(&self, labels: &Labels, min_time_ms: i64, max_time_ms: i64) -> bool {
        let matchers: Vec<Matcher> = labels
            .iter()
            .map(|l| Matcher::equal(l.name.clone(), l.value.clone()))
            .collect();
        // A read error answers "yes": the series is not hidden on a guess.
        self.select(&matchers, min_time_ms, max_time_ms)
            .map_or(true, |found| found.iter().any(|s| &s.labels == labels))
    }

    /// Label sets selected by any matcher set.
    pub(crate) fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<Labels> {
        let mut out = BTreeSet::new();
        for matchers in matcher_sets {
            for b in self.blocks_in(min_time_ms, max_time_ms) {
                out.extend(
                    b.select(matchers, min_time_ms, max_time_ms)
                        .into_iter()
                        .map(|s| b.labels(s).clone()),
                );
            }
            out.extend(self.head.series_labels(matchers, min_time_ms, max_time_ms));
        }
        if !self.tombstones.is_empty() {
            out.retain(|l| {
                !self
                    .tombstones
                    .entries()
                    .iter()
                    .any(|t| t.applies(l, min_time_ms, max_time_ms))
                    || self.has_live_samples(l, min_time_ms, max_time_ms)
            });
        }
        out.into_iter().collect()
    }

    pub(crate) fn label_names(
        &self,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<String> {
        if !matcher_sets.is_empty() {
            let names: BTreeSet<String> = self
                .series(matcher_sets, min_time_ms, max_time_ms)
                .iter()
                .flat_map(|l| l.iter().map(|l| l.name.to_string()))
                .collect();
            return names.into_iter().collect();
        }
        let mut names: BTreeSet<String> = self.head.label_names().into_iter().collect();
        for b in self.blocks_in(min_time_ms, max_time_ms) {
            names.extend(b.label_names().into_iter().map(str::to_string));
        }
        names.into_iter().collect()
    }

    pub(crate) fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<String> {
        if !matcher_sets.is_empty() {
            let values: BTreeSet<String> = self
                .series(matcher_sets, min_time_ms, max_time_ms)
                .iter()
                .filter_map(|l| l.get(name).map(str::to_string))
                .collect();
            return values.into_iter().collect();
        }
        let mut values: BTreeSet<String> = self.head.label_values(name).into_iter().collect();
        for b in self.blocks_in(min_time_ms, max_time_ms) {
            values.extend(b.label_values(name).into_iter().map(str::to_string));
        }
        values.into_iter().collect()
    }
}
