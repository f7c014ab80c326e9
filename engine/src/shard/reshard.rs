//! Opening a data dir with a different shard count: the old WALs become blocks.
//!
//! A series belongs to shard `hash % shards`, and each shard replays only
//! `wal/<shard>/`. With another count, a WAL would be replayed by a shard that no
//! longer owns its series, or (for `wal/<n>` with `n >= shards`) by nobody. So before
//! any shard opens, [`migrate_wal`] compares `wal/shards` (the count the WAL was
//! written with, [`crate::wal::shard_count`]) with the new count, and when they differ
//! (or the file is missing, or a `wal/<n>` beyond the new count exists) persists every
//! old shard WAL as blocks, one per new owner, then removes it. Blocks need no
//! migration: a block is served by shard `meta.shard % shards`, whatever series it
//! holds, and reads merge every shard's answer by label set, deduplicating samples by
//! timestamp, so a series may live in an old block of one shard and in the head of
//! its new owner.
//!
//! Each old WAL directory goes through these steps; a crash between any two is
//! finished by the next start, with nothing lost and nothing written twice:
//!
//! 1. replay it (repairing a torn tail as a start does) into one head per new owner;
//! 2. write `migrating` in it: one `<owner> <ULID>` line per block to write, atomically
//!    (temp file, fsync, rename, fsync of the directory) — the ULIDs are fixed from
//!    here on, so a redo writes the same blocks, never a second copy;
//! 3. write each listed block that is not yet in place (temp dir, fsync, rename, as a
//!    flush does; a half-written `.tmp` was removed by `prepare_data_dir`);
//! 4. rename the directory to `<n>.migrated` (atomic) and fsync the WAL root: from here
//!    on no shard replays it;
//! 5. delete `<n>.migrated` (a leftover one is deleted by the next start).
//!
//! When every directory is done, `wal/shards` is written with the new count.

use std::collections::BTreeMap;
use std::path::Path;

use crate::block;
use crate::error::{Error, IoContext, Result};
use crate::head::Head;
use crate::layout;
use crate::storage::{Clock, DiskStorage, Storage, SystemClock};
use crate::wal::checkpoint::{self, sync_dir};
use crate::wal::inspect::shard_dirs_in;
use crate::wal::reader::{self, Repair};
use crate::wal::record::Record;
use crate::wal::shard_count;

/// Makes the WAL root fit `shards` before the shards open; see the module comment.
/// Runs once, on one thread, after `prepare_data_dir`.
pub fn migrate_wal(data_dir: &Path, wal_root: &Path, shards: u32) -> Result<()> {
    migrate_wal_in(
        &DiskStorage,
        &SystemClock::new(),
        data_dir,
        wal_root,
        shards,
    )
}

/// [`migrate_wal`] on any storage and clock.
pub fn migrate_wal_in(
    storage: &impl Storage,
    clock: &dyn Clock,
    data_dir: &Path,
    wal_root: &Path,
    shards: u32,
) -> Result<()> {
    let shards = shards.max(1);
    remove_migrated_leftovers(storage, wal_root)?;
    let recorded = shard_count::read_in(storage, wal_root)?;
    let dirs = shard_dirs_in(storage, wal_root)?;
    for (old, dir) in &dirs {
        let stale = recorded != Some(shards) || *old >= shards;
        if stale || exists(storage, &dir.join(layout::WAL_MIGRATING_FILE)) {
            migrate_one(
                storage,
                clock,
                data_dir,
                wal_root,
                (dir, *old),
                Counts { recorded, shards },
            )?;
        }
    }
    if recorded != Some(shards) {
        shard_count::write_in(storage, wal_root, shards)?;
    }
    Ok(())
}

/// Deletes `<n>.migrated` directories: step 5 of a migration a crash interrupted.
fn remove_migrated_leftovers(storage: &impl Storage, wal_root: &Path) -> Result<()> {
    let entries = match storage.read_dir(wal_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("list {}", wal_root.display()), e)),
    };
    for entry in entries {
        if entry.name.ends_with(layout::WAL_MIGRATED_SUFFIX) && entry.is_dir {
            let path = wal_root.join(&entry.name);
            storage
                .remove_dir_all(&path)
                .ctx(|| format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// The WAL of old shard `old`, replayed into one head per new owner.
struct Replayed {
    heads: BTreeMap<u32, Head>,
    samples: u64,
}

fn replay_by_owner(storage: &impl Storage, dir: &Path, old: u32, shards: u32) -> Result<Replayed> {
    let mut heads: BTreeMap<u32, Head> = BTreeMap::new();
    let mut owner_of_ref: BTreeMap<u64, u32> = BTreeMap::new();
    let mut samples = 0u64;
    let mut orphans = 0u64;
    let first = checkpoint::read_in(storage, dir);
    reader::replay_in(
        storage,
        dir,
        old,
        first,
        Repair::TruncateTail,
        |rec| match rec {
            Record::Series(series) => {
                for (r, labels) in series {
                    let hash = labels.stable_hash();
                    let owner = (hash % u64::from(shards)) as u32;
                    let head = heads.entry(owner).or_default();
                    head.replay_series(labels, hash, r);
                    owner_of_ref.insert(r, owner);
                }
            }
            Record::Samples(batch) => {
                for (r, s) in batch {
                    let id = owner_of_ref
                        .get(&r)
                        .and_then(|o| heads.get_mut(o))
                        .and_then(|h| h.lookup_ref(r).map(|id| (h, id)));
                    match id {
                        Some((head, id)) => {
                            head.append(id, s);
                            samples += 1;
                        }
                        None => orphans += 1,
                    }
                }
            }
        },
    )?;
    if orphans > 0 {
        tracing::warn!(
            shard = old,
            samples_dropped = orphans,
            "WAL samples for series whose record was lost to damage were dropped"
        );
    }
    heads.retain(|_, h| !h.is_empty());
    Ok(Replayed { heads, samples })
}

/// The shard counts a migration goes between.
#[derive(Clone, Copy)]
struct Counts {
    /// What `wal/shards` says, if it exists.
    recorded: Option<u32>,
    /// `--shards` now.
    shards: u32,
}

/// Steps 1–5 for one old shard WAL directory, `old_wal` = (its path, its shard).
fn migrate_one(
    storage: &impl Storage,
    clock: &dyn Clock,
    data_dir: &Path,
    wal_root: &Path,
    old_wal: (&Path, u32),
    counts: Counts,
) -> Result<()> {
    let (dir, old) = old_wal;
    let Counts { recorded, shards } = counts;
    let marker = dir.join(layout::WAL_MIGRATING_FILE);
    let mut plan = read_plan(storage, &marker)?;
    let blocks_dir = layout::blocks_dir(data_dir);
    let all_in_place = |plan: &[(u32, String)]| {
        plan.iter()
            .all(|(_, ulid)| is_dir(storage, &layout::block_dir(data_dir, ulid)))
    };
    let mut series = 0u64;
    let mut samples = 0u64;
    if plan.is_none() || !plan.as_deref().is_some_and(all_in_place) {
        let replayed = replay_by_owner(storage, dir, old, shards)?;
        samples = replayed.samples;
        let mut p = plan.unwrap_or_default();
        let missing: Vec<u32> = replayed
            .heads
            .keys()
            .copied()
            .filter(|o| !p.iter().any(|(owner, _)| owner == o))
            .collect();
        if !missing.is_empty() || !exists(storage, &marker) {
            p.extend(missing.into_iter().map(|o| (o, clock.ulid().to_string())));
            write_plan(storage, dir, &marker, &p)?;
        }
        for (owner, ulid) in &p {
            let Some(head) = replayed.heads.get(owner) else {
                continue;
            };
            series += head.num_series() as u64;
            if is_dir(storage, &layout::block_dir(data_dir, ulid)) {
                continue;
            }
            let mut encoder = block::BlockEncoder::new(head.num_series());
            head.block_series_sorted().for_each(|s| encoder.push(s));
            let encoded = encoder.finish(ulid, *owner, 1, vec![ulid.clone()], Vec::new());
            block::write_block_dir_in(storage, &blocks_dir, &encoded)?;
        }
        plan = Some(p);
    }
    let done = wal_root.join(format!("{old}{}", layout::WAL_MIGRATED_SUFFIX));
    storage
        .rename(dir, &done)
        .ctx(|| format!("rename {} to {}", dir.display(), done.display()))?;
    sync_dir(storage, wal_root)?;
    storage
        .remove_dir_all(&done)
        .ctx(|| format!("remove {}", done.display()))?;
    let blocks: Vec<&str> = plan.iter().flatten().map(|(_, u)| u.as_str()).collect();
    tracing::info!(
        shard = old,
        shards_before = recorded,
        shards,
        series,
        samples,
        blocks = ?blocks,
        "migrated the WAL of a previous shard count into blocks"
    );
    Ok(())
}

/// The `<owner> <ULID>` lines of a `migrating` file, or `None` when there is none.
fn read_plan(storage: &impl Storage, marker: &Path) -> Result<Option<Vec<(u32, String)>>> {
    let text = match storage.read(marker) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", marker.display()), e)),
    };
    let mut plan = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line.split_once(' ').and_then(|(o, u)| {
            let ulid_ok = u.parse::<ulid::Ulid>().is_ok();
            o.parse::<u32>()
                .ok()
                .filter(|_| ulid_ok)
                .map(|o| (o, u.to_string()))
        });
        match parsed {
            Some(entry) => plan.push(entry),
            None => {
                return Err(Error::corrupt(
                    marker,
                    i as u64,
                    format!("line {line:?} is not `<owner> <ULID>`"),
                ));
            }
        }
    }
    Ok(Some(plan))
}

fn write_plan(
    storage: &impl Storage,
    dir: &Path,
    marker: &Path,
    plan: &[(u32, String)],
) -> Result<()> {
    let tmp = dir.join(format!(
        "{}{}",
        layout::WAL_MIGRATING_FILE,
        layout::TMP_SUFFIX
    ));
    let text: String = plan
        .iter()
        .map(|(owner, ulid)| format!("{owner} {ulid}\n"))
        .collect();
    storage
        .write_file_synced(&tmp, text.as_bytes())
        .ctx(|| format!("write {}", tmp.display()))?;
    storage
        .rename(&tmp, marker)
        .ctx(|| format!("rename {}", tmp.display()))?;
    sync_dir(storage, dir)
}

fn exists(storage: &impl Storage, path: &Path) -> bool {
    storage.metadata(path).is_ok()
}

fn is_dir(storage: &impl Storage, path: &Path) -> bool {
    storage.metadata(path).is_ok_and(|m| m.is_dir)
}

#[cfg(test)]
#[path = "reshard_tests.rs"]
mod tests;
