//! Reads over a shard: its blocks and its head, merged per series.

use std::collections::BTreeSet;

use super::Shard;
use crate::error::Result;
use crate::head::SeriesData;
use crate::mesh::merge_series;
use crate::model::{Labels, Matcher};
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
        // Oldest block first and the head last: the merge keeps the last sample of a
        // timestamp, so a later write wins wherever it landed.
        let mut parts = Vec::new();
        for b in crate::compact::by_age(self.blocks_in(min_time_ms, max_time_ms)) {
            let refs = b.select(matchers, min_time_ms, max_time_ms);
            let read = b.read_series_samples(&refs, min_time_ms, max_time_ms)?;
            for (s, samples) in refs.into_iter().zip(read) {
                if !samples.is_empty() {
                    parts.push(SeriesData {
                        labels: b.labels(s).clone(),
                        samples,
                    });
                }
            }
        }
        parts.extend(self.head.select(matchers, min_time_ms, max_time_ms));
        let mut merged = merge_series(parts);
        if !self.tombstones.is_empty() {
            // Deleted samples go at once; their bytes go at `clean_tombstones`.
            merged.retain_mut(|s| {
                let deleted = self.tombstones.intervals(&s.labels);
                crate::tombstones::filter_samples(&deleted, &mut s.samples);
                !s.samples.is_empty()
            });
        }
        Ok(merged)
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
                .flat_map(|l| l.iter().map(|l| l.name.clone()))
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
