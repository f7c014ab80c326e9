//! Opening a shard: its blocks, its WAL replay into a fresh head, and a new segment.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{Shard, ShardConfig, Shared};
use crate::block::{Block, BlockMeta};
use crate::error::{Error, IoContext, Result};
use crate::head::Head;
use crate::layout;
use crate::wal::checkpoint;
use crate::wal::reader::{self, Repair};
use crate::wal::record::Record;
use crate::wal::writer::WalWriter;

/// Readies a data directory before any shard opens it: creates `blocks/`, removes
/// half-written `*.tmp` blocks (a crash mid-flush or mid-compaction), and deletes
/// blocks that a finished compaction has replaced (a crash after the new block was
/// renamed into place but before its sources were deleted). Runs once, on one thread.
pub fn prepare_data_dir(data_dir: &Path) -> Result<()> {
    let blocks = layout::blocks_dir(data_dir);
    std::fs::create_dir_all(&blocks).ctx(|| format!("create {}", blocks.display()))?;
    let mut metas: Vec<(std::path::PathBuf, BlockMeta)> = Vec::new();
    for entry in std::fs::read_dir(&blocks).ctx(|| format!("list {}", blocks.display()))? {
        let entry = entry.ctx(|| format!("list {}", blocks.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(layout::TMP_SUFFIX) {
            tracing::warn!(path = %path.display(), "removing half-written block left by a crash");
            std::fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))?;
            continue;
        }
        if name.ends_with(layout::DELETING_SUFFIX) {
            tracing::info!(path = %path.display(), "finishing the deletion of a block that a crash interrupted");
            std::fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))?;
            continue;
        }
        if name.ends_with(layout::BROKEN_SUFFIX) || !path.is_dir() {
            continue;
        }
        let meta_path = path.join(layout::META_FILE);
        if let Ok(bytes) = std::fs::read(&meta_path)
            && let Ok(meta) = BlockMeta::parse(&meta_path, &bytes)
        {
            metas.push((path, meta));
        }
    }
    for (path, meta) in &metas {
        let own: HashSet<&String> = meta.compaction.sources.iter().collect();
        let replaced = metas.iter().any(|(p, other)| {
            p != path
                && other.compaction.level > meta.compaction.level
                && other.shard == meta.shard
                && !own.is_empty()
                && own.iter().all(|s| other.compaction.sources.contains(s))
        });
        if replaced {
            tracing::info!(block = %meta.ulid, "removing block already merged into a compacted block");
            crate::compact::delete_block_dir(path)?;
        }
    }
    Ok(())
}

/// Opens every block this shard owns; a block that cannot be read is set aside
/// (renamed `<ULID>.broken`, never deleted) with an error line, and the rest served.
fn open_blocks(cfg: &ShardConfig) -> Result<Vec<Block>> {
    let dir = layout::blocks_dir(&cfg.data_dir);
    let mut blocks = Vec::new();
    for entry in std::fs::read_dir(&dir).ctx(|| format!("list {}", dir.display()))? {
        let entry = entry.ctx(|| format!("list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir()
            || name.ends_with(layout::TMP_SUFFIX)
            || name.ends_with(layout::DELETING_SUFFIX)
            || name.ends_with(layout::BROKEN_SUFFIX)
        {
            continue;
        }
        // Ownership is decided from meta.json alone so every shard agrees on it.
        let meta_path = path.join(layout::META_FILE);
        let owner = std::fs::read(&meta_path)
            .ok()
            .and_then(|b| BlockMeta::parse(&meta_path, &b).ok())
            .map(|m| m.shard % cfg.shards.max(1));
        // An unreadable meta.json: the first shard takes care of setting it aside.
        let owner = owner.unwrap_or(0);
        if owner != cfg.shard {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(b),
            Err(e) => set_aside(&path, &e),
        }
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    Ok(blocks)
}

fn set_aside(path: &Path, e: &Error) {
    let broken = path.with_file_name(format!(
        "{}{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        layout::BROKEN_SUFFIX
    ));
    match std::fs::rename(path, &broken) {
        Ok(()) => tracing::error!(
            block = %path.display(),
            moved_to = %broken.display(),
            error = %e,
            "cannot read block: set aside, not deleted; the rest is served"
        ),
        Err(re) => tracing::error!(
            block = %path.display(),
            error = %e,
            rename_error = %re,
            "cannot read block and cannot set it aside; it is skipped"
        ),
    }
}

/// Where this shard's replay starts: after the newest flush whose block is here.
/// A block counts as here when its directory is, or when a compacted block lists it
/// among its sources; every shard's blocks are looked at, since ownership follows the
/// shard count. A missing newest block is normal on a restored live backup (its
/// `blocks/` copy was made before that flush), so the line saying so is info.
fn replay_plan(cfg: &ShardConfig, wal_dir: &Path) -> checkpoint::ReplayPlan {
    let generations = checkpoint::read_generations(wal_dir);
    let mut present: HashSet<String> = HashSet::new();
    if let Ok(entries) = std::fs::read_dir(layout::blocks_dir(&cfg.data_dir)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
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
            let meta_path = entry.path().join(layout::META_FILE);
            if let Ok(bytes) = std::fs::read(&meta_path)
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
    /// Opens shard `cfg.shard`: loads its blocks and replays its WAL.
    pub async fn open(cfg: ShardConfig, shared: Arc<Shared>) -> Result<Shard> {
        let blocks = open_blocks(&cfg)?;
        let mut head = Head::new();
        let mut next_ref = 0u64;
        let mut wal = None;
        if cfg.wal_enabled {
            let dir = layout::shard_wal_dir(&cfg.wal_root, cfg.shard as usize);
            std::fs::create_dir_all(&dir).ctx(|| format!("create wal dir {}", dir.display()))?;
            let plan = replay_plan(&cfg, &dir);
            let first = plan.replay_from;
            for seg in crate::wal::segment::list(&dir)? {
                if seg.seq < first {
                    std::fs::remove_file(&seg.path)
                        .ctx(|| format!("remove obsolete wal segment {}", seg.path.display()))?;
                }
            }
            let started = Instant::now();
            let mut samples = 0u64;
            let mut unknown = 0u64;
            let stats = reader::replay(
                &dir,
                cfg.shard,
                first,
                Repair::TruncateTail,
                |rec| match rec {
                    Record::Series(series) => {
                        for (r, labels) in series {
                            next_ref = next_ref.max(r + 1);
                            let hash = labels.stable_hash();
                            if head.lookup_ref(r).is_none() {
                                head.create(labels, hash, r);
                            }
                        }
                    }
                    Record::Samples(batch) => {
                        for (r, s) in batch {
                            match head.lookup_ref(r) {
                                Some(id) => {
                                    head.append(id, s);
                                    samples += 1;
                                }
                                None => unknown += 1,
                            }
                        }
                    }
                },
            )?;
            // Segments kept for a backup but not replayed may use refs up to here.
            next_ref = next_ref.max(plan.next_ref_min);
            let duration_ms = started.elapsed().as_millis() as u64;
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
            let existing = crate::wal::segment::list(&dir)?
                .iter()
                .filter_map(|s| std::fs::metadata(&s.path).ok())
                .map(|m| m.len())
                .sum();
            wal = Some(
                WalWriter::create(
                    &dir,
                    cfg.shard,
                    seq,
                    cfg.wal_segment_bytes,
                    cfg.wal_sync,
                    existing,
                )
                .await?,
            );
        }
        Ok(Shard {
            cfg,
            shared,
            head,
            blocks,
            wal,
            next_ref,
            read_only: None,
            samples_appended: 0,
            flushes: 0,
            compactions: 0,
            retired: Default::default(),
        })
    }
}
