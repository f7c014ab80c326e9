//! Compaction and retention: merging adjacent blocks into longer ranges, and deleting
//! blocks wholly past the retention period.
//!
//! A merged block records in `meta.json` the level-1 blocks it holds (`sources`) and
//! the blocks it replaced (`parents`). It is renamed into place before its parents are
//! deleted; if a crash comes between the two, [`crate::shard::prepare_data_dir`]
//! deletes the parents on the next start, so no sample is ever served twice or lost.
//!
//! The parents leave the shard's block list at once but stay on disk for
//! [`COMPACTED_PARENTS_GRACE_MS`] (see [`Retired`]), so that a copy of `blocks/` made
//! while the server runs (the operations guide's rsync backup) finds either every
//! parent whole or the merged block, never neither. A block is deleted by renaming it
//! `<ULID>.deleting` first, so a crash halfway through leaves no block directory with
//! some of its files gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::block::{self, Block, BlockMeta, ChunkData, SeriesChunks};
use crate::error::Result;
use crate::head::{encode_chunks, sort_dedup};
use crate::layout;
use crate::limits::{COMPACTED_PARENTS_GRACE_MS, COMPACTION_RANGES_MS};
use crate::model::Labels;
use crate::shard::Shard;
use crate::storage::Storage;

/// Picks the blocks to merge next, as indexes into `metas` (sorted by min time), or
/// nothing. Overlapping blocks come first (they must be merged to drop duplicates);
/// then, for each longer range, two or more blocks that fit in one aligned window.
pub fn plan(metas: &[&BlockMeta]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..metas.len()).collect();
    order.sort_by_key(|&i| metas.get(i).map_or(i64::MAX, |m| m.min_time));
    // Overlaps: a run of blocks each starting before the run's end.
    let mut run: Vec<usize> = Vec::new();
    let mut run_end = i64::MIN;
    for &i in &order {
        let Some(m) = metas.get(i) else { continue };
        if !run.is_empty() && m.min_time <= run_end {
            run.push(i);
            run_end = run_end.max(m.max_time);
            continue;
        }
        if run.len() > 1 {
            return Some(run);
        }
        run = vec![i];
        run_end = m.max_time;
    }
    if run.len() > 1 {
        return Some(run);
    }
    for &range in COMPACTION_RANGES_MS.iter().skip(1) {
        let mut windows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for &i in &order {
            let Some(m) = metas.get(i) else { continue };
            let w = m.min_time.div_euclid(range);
            if m.max_time.div_euclid(range) == w {
                windows.entry(w).or_default().push(i);
            }
        }
        if let Some(group) = windows.into_values().find(|g| g.len() > 1) {
            return Some(group);
        }
    }
    None
}

/// Merges the series of `parents` into one list of block series. Chunks are copied as
/// they are when the parents do not overlap in time; overlapping series are decoded,
/// merged, deduplicated by timestamp and re-encoded. Where two parents hold the same
/// timestamp, the one written later (the larger ULID, see [`by_age`]) wins, as the
/// sample written last wins everywhere else.
pub fn merge(parents: &[&Block]) -> Result<Vec<SeriesChunks>> {
    let mut by_labels: BTreeMap<Labels, Vec<ChunkData>> = BTreeMap::new();
    for b in by_age(parents.iter().copied()) {
        for s in b.all_series() {
            let chunks = b.read_chunks(s)?;
            by_labels
                .entry(b.labels(s).clone())
                .or_default()
                .extend(chunks);
        }
    }
    let mut out = Vec::with_capacity(by_labels.len());
    for (labels, written) in by_labels {
        let mut chunks = written.clone();
        chunks.sort_by_key(|c| c.min_time);
        let overlapping = chunks
            .windows(2)
            .any(|w| matches!(w, [a, b] if b.min_time <= a.max_time));
        let chunks = if overlapping {
            // Decoded oldest block first, so the stable dedup keeps the newest sample.
            let mut samples = Vec::new();
            for c in &written {
                samples.extend(c.decode().map_err(|e| {
                    crate::Error::corrupt(
                        labels.to_string(),
                        0,
                        format!("chunk does not decode: {}", e.0),
                    )
                })?);
            }
            sort_dedup(&mut samples);
            encode_chunks(&samples)
        } else {
            chunks
        };
        out.push(SeriesChunks { labels, chunks });
    }
    Ok(out)
}

/// Deletes a block directory: renames it `<name>.deleting` (atomic), then removes it.
/// A crash after the rename leaves a directory that start-up removes
/// ([`crate::shard::prepare_data_dir`]), never a half-deleted block that would look
/// damaged.
pub(crate) fn delete_block_dir(storage: &impl Storage, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doomed = dir.with_file_name(format!("{name}{}", layout::DELETING_SUFFIX));
    match storage.rename(dir, &doomed) {
        Ok(()) => {}
        // Already gone (an operator removed it): nothing left to delete.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(crate::Error::io(
                format!("rename {} for deletion", dir.display()),
                e,
            ));
        }
    }
    storage
        .remove_dir_all(&doomed)
        .map_err(|e| crate::Error::io(format!("delete block {}", doomed.display()), e))
}

/// Compacted parents waiting out their grace period before deletion.
///
/// The guarantee this buys is bounded: a `blocks/` copy that started before a
/// compaction and takes longer than [`COMPACTED_PARENTS_GRACE_MS`] may list a parent
/// and find it gone when it gets to it. A restart ends the wait early: start-up
/// deletes parents that a finished compaction replaced.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    blocks: Vec<(PathBuf, Duration)>,
}

impl Retired {
    /// Starts the grace period of block directory `dir` at `now` (the clock's
    /// monotonic time).
    pub(crate) fn add(&mut self, dir: PathBuf, now: Duration) {
        self.blocks.push((dir, now));
    }

    /// Takes the directories whose grace period has ended at `now`.
    pub(crate) fn take_due(&mut self, now: Duration) -> Vec<PathBuf> {
        let grace = Duration::from_millis(COMPACTED_PARENTS_GRACE_MS);
        let (due, waiting) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|(_, since)| now.saturating_sub(*since) >= grace);
        self.blocks = waiting;
        due.into_iter().map(|(dir, _)| dir).collect()
    }
}

/// Blocks from the oldest written to the newest: by ULID, which a shard hands out in
/// increasing order (see `Shard::next_block_ulid`), so that of two overlapping blocks
/// the later one holds the later writes.
pub fn by_age<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> Vec<&'a Block> {
    let mut out: Vec<&Block> = blocks.into_iter().collect();
    out.sort_by(|a, b| a.meta().ulid.cmp(&b.meta().ulid));
    out
}

/// Upper bounds of a shard's compaction durations (`tsdb_compaction_duration_seconds`),
/// seconds; `+Inf` is implied.
pub const COMPACTION_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Writes the merge of `parents` as block `ulid` of `shard` into `data_dir`'s
/// `blocks/` (temp dir, fsync, rename, fsync) and opens it: the step the server's
/// compaction and `tsdb compact` share. The parents are untouched; the caller retires
/// or deletes them once the merged block is in place.
pub(crate) fn write_merged(
    storage: &impl Storage,
    data_dir: &Path,
    shard: u32,
    ulid: &str,
    parents: &[&Block],
) -> Result<Block> {
    write_replacement(storage, data_dir, shard, ulid, parents, merge(parents)?)
}

/// Writes `series` as block `ulid` of `shard`, the replacement of `parents`: one level
/// above the highest of them, listing all their sources and them as parents (so a
/// start after a crash knows to delete them). Durable and opened when it returns.
pub(crate) fn write_replacement(
    storage: &impl Storage,
    data_dir: &Path,
    shard: u32,
    ulid: &str,
    parents: &[&Block],
    series: Vec<SeriesChunks>,
) -> Result<Block> {
    let level = parents
        .iter()
        .map(|b| b.meta().compaction.level)
        .max()
        .unwrap_or(1)
        + 1;
    let mut sources: Vec<String> = parents
        .iter()
        .flat_map(|b| b.meta().compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    let parent_ids: Vec<String> = parents.iter().map(|b| b.meta().ulid.clone()).collect();
    let encoded = block::encode_block(ulid, shard, level, sources, parent_ids, series);
    let path = block::write_block_dir_in(storage, &layout::blocks_dir(data_dir), &encoded)?;
    Block::open_in(storage, &path)
}

impl<S: Storage> Shard<S> {
    /// Deletes the retired parents whose grace period is over.
    fn delete_retired(&mut self) -> Result<()> {
        for dir in self.retired.take_due(self.clock.monotonic()) {
            delete_block_dir(&self.storage, &dir)?;
            tracing::info!(shard = self.cfg.shard, block = %dir.display(), "deleted compacted block after its grace period");
        }
        Ok(())
    }

    /// Deletes blocks wholly older than the retention period (by wall clock).
    pub(crate) fn apply_retention(&mut self) -> Result<usize> {
        if self.cfg.retention_ms <= 0 {
            return Ok(0);
        }
        let now_ms = self.clock.now_ms();
        let cutoff = now_ms.saturating_sub(self.cfg.retention_ms);
        let (expired, keep): (Vec<Block>, Vec<Block>) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|b| b.meta().max_time < cutoff);
        self.blocks = keep;
        let n = expired.len();
        for b in expired {
            let dir = b.dir().to_path_buf();
            let ulid = b.meta().ulid.clone();
            drop(b);
            delete_block_dir(&self.storage, &dir)?;
            tracing::info!(shard = self.cfg.shard, block = %ulid, "deleted block past retention");
        }
        Ok(n)
    }

    /// Merges one group of blocks, if the plan finds one. Returns whether it did.
    fn compact_once(&mut self) -> Result<bool> {
        let metas: Vec<&BlockMeta> = self.blocks.iter().map(|b| b.meta()).collect();
        let Some(group) = plan(&metas) else {
            return Ok(false);
        };
        let ulid = self.next_block_ulid();
        let parents: Vec<&Block> = group.iter().filter_map(|&i| self.blocks.get(i)).collect();
        let started = self.clock.monotonic();
        let merged = write_merged(
            &self.storage,
            &self.cfg.data_dir,
            self.cfg.shard,
            &ulid,
            &parents,
        )?;
        let level = merged.meta().compaction.level;
        let parent_ids = merged.meta().compaction.parents.clone();
        let stats = merged.meta().stats.clone();
        let mut removed = Vec::new();
        let mut keep = Vec::new();
        for (i, b) in std::mem::take(&mut self.blocks).into_iter().enumerate() {
            if group.contains(&i) {
                removed.push(b);
            } else {
                keep.push(b);
            }
        }
        keep.push(merged);
        keep.sort_by_key(|b| b.meta().min_time);
        self.blocks = keep;
        // The parents are no longer read (out of the list, files closed) but stay on
        // disk for their grace period; see `Retired`.
        let now = self.clock.monotonic();
        for b in removed {
            self.retired.add(b.dir().to_path_buf(), now);
        }
        self.compactions += 1;
        let took = self.clock.monotonic().saturating_sub(started);
        self.compaction_durations.observe(took);
        tracing::info!(
            shard = self.cfg.shard,
            block = %ulid,
            level,
            parents = ?parent_ids,
            series = stats.num_series,
            samples = stats.num_samples,
            duration_ms = took.as_millis() as u64,
            "compacted blocks"
        );
        Ok(true)
    }

    /// Retention, then compaction until nothing is left to merge.
    pub(crate) fn compact_now(&mut self) -> Result<()> {
        let started = self.trace_now();
        let (blocks_before, compactions_before) = (self.blocks.len() as u64, self.compactions);
        let result = self.compact_all();
        self.trace_done(
            "compaction",
            started,
            [
                ("blocks_before", blocks_before),
                ("blocks_after", self.blocks.len() as u64),
                ("merges", self.compactions - compactions_before),
                ("ok", u64::from(result.is_ok())),
            ],
        );
        result
    }

    fn compact_all(&mut self) -> Result<()> {
        self.delete_retired()?;
        self.apply_retention()?;
        // Each merge shortens the list, so this ends; the bound is belt and braces.
        for _ in 0..1024 {
            if !self.compact_once()? {
                break;
            }
        }
        Ok(())
    }

    /// The periodic run: skipped when `compaction.concurrency` shards are already at it.
    pub(crate) fn compact_tick(&mut self) {
        let running = &self.shared.compactions_running;
        let limit = self.cfg.compaction_concurrency.max(1);
        if running.fetch_add(1, Ordering::AcqRel) >= limit {
            running.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let result = self.compact_now();
        self.shared
            .compactions_running
            .fetch_sub(1, Ordering::AcqRel);
        if let Err(e) = result {
            let e = self.set_aside_damaged(e);
            tracing::error!(shard = self.cfg.shard, error = %e, "compaction failed; will retry at the next interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockStats, CompactionMeta};

    fn meta(min: i64, max: i64) -> BlockMeta {
        BlockMeta {
            ulid: format!("{min}"),
            min_time: min,
            max_time: max,
            stats: BlockStats {
                num_samples: 0,
                num_series: 0,
                num_chunks: 0,
            },
            compaction: CompactionMeta {
                level: 1,
                sources: vec![],
                parents: vec![],
            },
            version: 1,
            shard: 0,
        }
    }

    #[test]
    fn retired_blocks_wait_out_their_grace_period() {
        let t0 = Duration::from_secs(100);
        let grace = Duration::from_millis(COMPACTED_PARENTS_GRACE_MS);
        let mut r = Retired::default();
        r.add(PathBuf::from("a"), t0);
        r.add(PathBuf::from("b"), t0 + Duration::from_secs(1));
        assert!(r.take_due(t0).is_empty());
        assert!(r.take_due(t0 + grace - Duration::from_millis(1)).is_empty());
        assert_eq!(r.take_due(t0 + grace), vec![PathBuf::from("a")]);
        assert!(r.take_due(t0 + grace).is_empty(), "taken once");
        assert_eq!(
            r.take_due(t0 + grace + Duration::from_secs(1)),
            vec![PathBuf::from("b")]
        );
    }

    #[test]
    fn a_block_is_renamed_before_it_is_deleted() {
        let d = tempfile::tempdir().unwrap();
        let block = d.path().join("01ABC");
        std::fs::create_dir(&block).unwrap();
        std::fs::write(block.join("meta.json"), b"{}").unwrap();
        delete_block_dir(&crate::storage::DiskStorage, &block).unwrap();
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
        delete_block_dir(&crate::storage::DiskStorage, &block).unwrap();
    }

    #[test]
    fn start_up_finishes_an_interrupted_deletion() {
        let d = tempfile::tempdir().unwrap();
        let doomed = layout::blocks_dir(d.path()).join(format!("01ABC{}", layout::DELETING_SUFFIX));
        std::fs::create_dir_all(&doomed).unwrap();
        std::fs::write(doomed.join("index"), b"half").unwrap();
        crate::shard::prepare_data_dir(d.path()).unwrap();
        assert!(!doomed.exists());
        assert!(layout::blocks_dir(d.path()).is_dir());
    }

    #[test]
    fn plan_merges_overlaps_first_then_adjacent_blocks_in_a_window() {
        const H: i64 = 3_600_000;
        let a = meta(0, 2 * H - 1);
        let b = meta(2 * H, 4 * H - 1);
        let c = meta(3 * H, 5 * H);
        assert_eq!(plan(&[&a, &b, &c]), Some(vec![1, 2]));
        assert_eq!(plan(&[&a, &b]), Some(vec![0, 1]));
        let far = meta(1000 * H, 1001 * H);
        assert_eq!(plan(&[&a, &far]), None);
        assert_eq!(plan(&[&a]), None);
    }
}
