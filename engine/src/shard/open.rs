//! Opening a shard: its blocks, its WAL replay into a fresh head, and a new segment.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::{Shard, ShardConfig, Shared, replay};
use crate::block::{Block, BlockMeta};
use crate::error::{Error, IoContext, Result};
use crate::head::Head;
use crate::layout;
use crate::storage::{Clock, DiskStorage, Storage, SystemClock};
use crate::wal::checkpoint;
use crate::wal::reader::Repair;
use crate::wal::writer::WalWriter;

/// Readies a data directory before any shard opens it: creates `blocks/`, removes
/// half-written `*.tmp` blocks (a crash mid-flush or mid-compaction), and deletes
/// blocks that a finished compaction has replaced (a crash after the new block was
/// renamed into place but before its sources were deleted). Runs once, on one thread.
pub fn prepare_data_dir(data_dir: &Path) -> Result<()> {
    prepare_data_dir_in(&DiskStorage, data_dir)
}

/// [`prepare_data_dir`] on any storage.
pub fn prepare_data_dir_in(storage: &impl Storage, data_dir: &Path) -> Result<()> {
    let blocks = layout::blocks_dir(data_dir);
    storage
        .create_dir_all(&blocks)
        .ctx(|| format!("create {}", blocks.display()))?;
    let mut metas: Vec<(PathBuf, BlockMeta)> = Vec::new();
    for entry in storage
        .read_dir(&blocks)
        .ctx(|| format!("list {}", blocks.display()))?
    {
        let path = blocks.join(&entry.name);
        if entry.name.ends_with(layout::TMP_SUFFIX) {
            tracing::warn!(path = %path.display(), "removing half-written block left by a crash");
            storage
                .remove_dir_all(&path)
                .ctx(|| format!("remove {}", path.display()))?;
            continue;
        }
        if entry.name.ends_with(layout::DELETING_SUFFIX) {
            tracing::info!(path = %path.display(), "finishing the deletion of a block that a crash interrupted");
            storage
                .remove_dir_all(&path)
                .ctx(|| format!("remove {}", path.display()))?;
            continue;
        }
        if entry.name.ends_with(layout::BROKEN_SUFFIX) || !entry.is_dir {
            continue;
        }
        let meta_path = path.join(layout::META_FILE);
        if let Ok(bytes) = storage.read(&meta_path)
            && let Ok(meta) = BlockMeta::parse(&meta_path, &bytes)
        {
            metas.push((path, meta));
        }
    }
    // Sources are ULIDs, unique across shards, so the check ignores `shard`: after a
    // shard-count change one shard may merge blocks that different shards wrote.
    let replaced: Vec<&(PathBuf, BlockMeta)> = metas
        .iter()
        .filter(|(path, meta)| {
            let own: HashSet<&String> = meta.compaction.sources.iter().collect();
            metas.iter().any(|(p, other)| {
                p != path
                    && other.compaction.level > meta.compaction.level
                    && !own.is_empty()
                    && own.iter().all(|s| other.compaction.sources.contains(s))
            })
        })
        .collect();
    if !replaced.is_empty() {
        // The compaction that made the replacing block may have died before its rename
        // was synced (or the sync failed): make it durable before its parents go, or a
        // crash could take the new block and leave the parents half deleted.
        storage
            .sync_dir(&blocks)
            .ctx(|| format!("fsync {}", blocks.display()))?;
    }
    for (path, meta) in replaced {
        tracing::info!(block = %meta.ulid, "removing block already merged into a compacted block");
        crate::compact::delete_block_dir(storage, path)?;
    }
    Ok(())
}

/// Opens every block this shard owns; a block that cannot be read is set aside
/// (renamed `<ULID>.broken`, never deleted) with an error line, and the rest served.
fn open_blocks(storage: &impl Storage, cfg: &ShardConfig) -> Result<Vec<Block>> {
    let dir = layout::blocks_dir(&cfg.data_dir);
    let mut blocks = Vec::new();
    for entry in storage
        .read_dir(&dir)
        .ctx(|| format!("list {}", dir.display()))?
    {
        let path = dir.join(&entry.name);
        if !entry.is_dir
            || entry.name.ends_with(layout::TMP_SUFFIX)
            || entry.name.ends_with(layout::DELETING_SUFFIX)
            || entry.name.ends_with(layout::BROKEN_SUFFIX)
        {
            continue;
        }
        // Ownership is decided from meta.json alone so every shard agrees on it.
        let meta_path = path.join(layout::META_FILE);
        let owner = storage
            .read(&meta_path)
            .ok()
            .and_then(|b| BlockMeta::parse(&meta_path, &b).ok())
            .map(|m| m.shard % cfg.shards.max(1));
        // An unreadable meta.json: the first shard takes care of setting it aside.
        let owner = owner.unwrap_or(0);
        if owner != cfg.shard {
            continue;
        }
        match Block::open_in(storage, &path) {
            Ok(b) => blocks.push(b),
            Err(e) => {
                set_aside(storage, &path, &e);
            }
        }
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    Ok(blocks)
}

/// Renames a block that cannot be read to `<ULID>.broken` with an error line; returns
/// the new path, or `None` when even the rename failed (the block is then skipped).
pub(super) fn set_aside(
    storage: &impl Storage,
    path: &Path,
    e: &Error,
) -> Option<std::path::PathBuf> {
    let broken = path.with_file_name(format!(
        "{}{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        layout::BROKEN_SUFFIX
    ));
    match storage.rename(path, &broken) {
        Ok(()) => {
            tracing::error!(
                block = %path.display(),
                moved_to = %broken.display(),
                error = %e,
                "cannot read block: set aside, not deleted; the rest is served"
            );
            Some(broken)
        }
        Err(re) => {
            tracing::error!(
                block = %path.display(),
                error = %e,
                rename_error = %re,
                "cannot read block and cannot set it aside; it is skipped"
            );
            None
        }
    }
}

/// Where this shard's replay starts: after the newest flush whose block is here.
/// A block counts as here when its directory is, or when a compacted block lists it
/// among its sources; every shard's blocks are looked at, since ownership follows the
/// shard count. A missing newest block is normal on a restored live backup (its
/// `blocks/` copy was made before that flush), so the line saying so is info.
fn replay_plan(
    storage: &impl Storage,
    cfg: &ShardConfig,
    wal_dir: &Path,
) -> checkpoint::ReplayPlan {
    let generations = checkpoint::read_generations_in(storage, wal_dir);
    let mut present: HashSet<String> = HashSet::new();
    let blocks_dir = layout::blocks_dir(&cfg.data_dir);
    if let Ok(entries) = storage.read_dir(&blocks_dir) {
        for entry in entries {
            let name = entry.name;
            if [
                layout::TMP_SUFFIX,
                layout::DELETING_SUFFIX,
                layout::BROKEN_SUFFIX,
            ]
            .iter()
            .any(|suffix| name.ends_with(suffix))
            {
                continue;
            }
            let meta_path = blocks_dir.join(&name).join(layout::META_FILE);
            if let Ok(bytes) = storage.read(&meta_path)
                && let Ok(meta) = BlockMeta::parse(&meta_path, &bytes)
            {
                present.extend(meta.compaction.sources);
                present.insert(meta.ulid);
            }
        }
    }
    let plan = checkpoint::plan_replay(&generations, |b| present.contains(b));
    if let Some(block) = &plan.missing_block {
        tracing::info!(
            shard = cfg.shard,
            block = %block,
            replay_from = %layout::segment_name(plan.replay_from),
            "the block of the last flush is missing (a backup of blocks/ made before it?): replaying the WAL segments it held too"
        );
    }
    plan
}

impl Shard {
    /// Opens shard `cfg.shard` on the disk: loads its blocks and replays its WAL.
    pub async fn open(cfg: ShardConfig, shared: Arc<Shared>) -> Result<Shard> {
        Shard::open_in(cfg, shared, DiskStorage, Rc::new(SystemClock::new())).await
    }
}

impl<S: Storage> Shard<S> {
    /// Opens shard `cfg.shard` on `storage`, reading time from `clock`.
    pub async fn open_in(
        cfg: ShardConfig,
        shared: Arc<Shared>,
        storage: S,
        clock: Rc<dyn Clock>,
    ) -> Result<Shard<S>> {
        let blocks = open_blocks(&storage, &cfg)?;
        let mut head = Head::new();
        let mut next_ref = 0u64;
        let mut wal = None;
        let mut replay_duration = std::time::Duration::ZERO;
        if cfg.wal_enabled {
            let dir = layout::shard_wal_dir(&cfg.wal_root, cfg.shard as usize);
            storage
                .create_dir_all(&dir)
                .ctx(|| format!("create wal dir {}", dir.display()))?;
            let plan = replay_plan(&storage, &cfg, &dir);
            let first = plan.replay_from;
            for seg in crate::wal::segment::list_in(&storage, &dir)? {
                if seg.seq < first {
                    storage
                        .remove_file(&seg.path)
                        .ctx(|| format!("remove obsolete wal segment {}", seg.path.display()))?;
                }
            }
            let started = clock.monotonic();
            let replayed =
                replay::replay_head(&storage, &dir, cfg.shard, first, Repair::TruncateTail)?;
            let (stats, samples, unknown) = (replayed.stats, replayed.samples, replayed.unknown);
            head = replayed.head;
            // Segments kept for a backup but not replayed may use refs up to here.
            next_ref = replayed.next_ref.max(plan.next_ref_min);
            replay_duration = clock.monotonic().saturating_sub(started);
            let duration_ms = replay_duration.as_millis() as u64;
            tracing::info!(
                shard = cfg.shard,
                entries = stats.records,
                samples,
                series = head.num_series(),
                segments = stats.segments,
                duration_ms,
                "replaying WAL"
            );
            if unknown > 0 {
                tracing::warn!(
                    shard = cfg.shard,
                    samples_dropped = unknown,
                    "WAL samples for series whose record was lost to damage were dropped"
                );
            }
            let seq = stats.last_seq.map_or(first.max(1), |s| s + 1);
            let existing = crate::wal::segment::list_in(&storage, &dir)?
                .iter()
                .filter_map(|s| storage.metadata(&s.path).ok())
                .map(|m| m.len)
                .sum();
            wal = Some(
                WalWriter::create(
                    storage.clone(),
                    &dir,
                    cfg.shard,
                    seq,
                    cfg.wal_segment_bytes,
                    cfg.wal_sync,
                    existing,
                )
                .await?
                .timed_by(clock.clone()),
            );
        }
        let last_ulid = blocks
            .iter()
            .filter_map(|b| ulid::Ulid::from_string(&b.meta().ulid).ok())
            .max();
        let tombstones = crate::tombstones::Tombstones::load_in(&storage, &cfg.data_dir)?;
        let mut shard = Shard {
            tombstones,
            cfg,
            shared,
            storage,
            clock,
            head,
            blocks,
            wal,
            next_ref,
            last_ulid,
            read_only: None,
            writes: Default::default(),
            samples_appended: 0,
            flushes: 0,
            compactions: 0,
            compaction_durations: crate::histogram::DurationHistogram::new(
                &crate::compact::COMPACTION_BUCKETS,
            ),
            tasks: 0,
            task_names: Vec::new(),
            trace: Default::default(),
            replay_duration,
            retired: Default::default(),
        };
        if shard.read_only_marker_present() {
            shard.writes.operator_read_only = true;
            shard.writes.operator_persisted = true;
            if shard.cfg.shard == 0 {
                let marker = layout::readonly_marker(&shard.cfg.data_dir);
                tracing::warn!(
                    marker = %marker.display(),
                    cause = "operator",
                    remedy = "POST /api/v1/admin/writable removes the marker",
                    "the operator's read-only switch was persisted: every shard starts read-only"
                );
            }
        }
        Ok(shard)
    }
}
