//! The operator's requests that change a shard's settings, copy its data out or
//! delete some of it: a live retention change, snapshots (hard links of every live
//! block), the persisted read-only switch (`<data-dir>/READONLY`), and
//! `delete_series`/`clean_tombstones` (see [`crate::tombstones`]).
//!
//! A snapshot is taken inside the shard's event loop, so no compaction or retention
//! pass of this shard can retire a block while it is being linked; blocks are
//! immutable, so a hard link is a whole copy that costs no space until the live block
//! is deleted.

use std::path::Path;

use super::Shard;
use crate::block::Block;
use crate::error::{IoContext, Result};
use crate::layout;
use crate::storage::Storage;
use crate::tombstones::{self, Tombstone};

/// Whether `name` is a snapshot name the server makes: letters, digits and `-`, not
/// empty, so it can never climb out of `snapshots/`.
pub fn valid_snapshot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl<S: Storage> Shard<S> {
    /// `POST /api/v1/admin/retention`: the new retention applies from now on (the
    /// periodic pass reads it), and a pass runs at once.
    pub(crate) fn set_retention(&mut self, retention_ms: i64) -> Result<()> {
        self.cfg.retention_ms = retention_ms;
        self.apply_retention().map(|_| ())
    }

    /// `POST /api/v1/admin/snapshot`: flushes the head (unless `skip_head`), then
    /// hard-links every live block of this shard into `<data-dir>/snapshots/<name>/`,
    /// syncing each new directory. Returns the number of blocks linked.
    pub(crate) async fn snapshot(&mut self, name: &str, skip_head: bool) -> Result<u64> {
        if !skip_head {
            self.flush().await?;
        }
        let root = layout::snapshot_tmp_dir(&self.cfg.data_dir, name);
        self.storage
            .create_dir_all(&root)
            .ctx(|| format!("create snapshot dir {}", root.display()))?;
        if self.cfg.shard == 0 && !self.tombstones.is_empty() {
            // The deletions go with the blocks they apply to (the file is replaced by
            // rename, never rewritten in place, so a link is a stable copy).
            let from = layout::tombstones_file(&self.cfg.data_dir);
            let to = root.join(layout::TOMBSTONES_FILE);
            self.storage
                .hard_link(&from, &to)
                .ctx(|| format!("hard-link {} to {}", from.display(), to.display()))?;
        }
        let mut linked = 0u64;
        for b in &self.blocks {
            let src = b.dir();
            let Some(ulid) = src.file_name() else {
                continue;
            };
            link_tree(&self.storage, src, &root.join(ulid))?;
            linked += 1;
        }
        self.storage
            .sync_dir(&root)
            .ctx(|| format!("fsync snapshot dir {}", root.display()))?;
        Ok(linked)
    }

    /// The end of a snapshot (shard 0): renames `<name>.tmp` to `<name>` and syncs
    /// `snapshots/` when every shard linked its blocks, else removes what was linked.
    pub(crate) fn finish_snapshot(&mut self, name: &str, complete: bool) -> Result<()> {
        let tmp = layout::snapshot_tmp_dir(&self.cfg.data_dir, name);
        if !complete {
            return match self.storage.remove_dir_all(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(crate::Error::io(format!("remove {}", tmp.display()), e))
                }
                _ => Ok(()),
            };
        }
        let done = layout::snapshot_dir(&self.cfg.data_dir, name);
        self.storage
            .rename(&tmp, &done)
            .ctx(|| format!("rename {} to {}", tmp.display(), done.display()))?;
        let dir = self.cfg.data_dir.join(layout::SNAPSHOTS_DIR);
        self.storage
            .sync_dir(&dir)
            .ctx(|| format!("fsync {}", dir.display()))
    }

    /// Whether the operator's read-only switch was persisted when the shard opened.
    pub(crate) fn read_only_marker_present(&self) -> bool {
        self.storage
            .metadata(&layout::readonly_marker(&self.cfg.data_dir))
            .is_ok()
    }

    /// Writes the `READONLY` marker holding `json`, durably (file, then directory).
    /// Only shard 0 writes it; every shard shares the data dir.
    pub(crate) fn persist_read_only(&mut self, json: &str) -> Result<()> {
        if self.cfg.shard == 0 {
            let path = layout::readonly_marker(&self.cfg.data_dir);
            self.storage
                .write_file_synced(&path, json.as_bytes())
                .ctx(|| format!("write {}", path.display()))?;
            self.storage
                .sync_dir(&self.cfg.data_dir)
                .ctx(|| format!("fsync {}", self.cfg.data_dir.display()))?;
        }
        self.writes.operator_persisted = true;
        Ok(())
    }

    /// Removes the `READONLY` marker (shard 0), durably.
    pub(crate) fn clear_persisted_read_only(&mut self) -> Result<()> {
        if self.cfg.shard == 0 && self.read_only_marker_present() {
            let path = layout::readonly_marker(&self.cfg.data_dir);
            self.storage
                .remove_file(&path)
                .ctx(|| format!("remove {}", path.display()))?;
            self.storage
                .sync_dir(&self.cfg.data_dir)
                .ctx(|| format!("fsync {}", self.cfg.data_dir.display()))?;
        }
        self.writes.operator_persisted = false;
        Ok(())
    }
}

impl<S: Storage> Shard<S> {
    /// `delete_series`: lists `entries` (shard 0 hands out their ids and rewrites the
    /// tombstones file durably first). Every read leaves their samples out from now.
    pub(crate) fn add_tombstones(&mut self, entries: Vec<Tombstone>) -> Result<Vec<Tombstone>> {
        let mut next = self.tombstones.clone();
        let added: Vec<Tombstone> = entries.into_iter().map(|t| next.add(t)).collect();
        if self.cfg.shard == 0 {
            next.store_in(&self.storage, &self.cfg.data_dir)?;
        }
        self.tombstones = next;
        Ok(added)
    }

    /// `clean_tombstones`, first step: flushes the head (which leaves deleted samples
    /// out), then rewrites every block holding data `entries` delete into a new block
    /// without it, as compaction does (new block durable and in the list before the old
    /// one is retired; one level up with the same sources, so a start after a crash
    /// deletes the old one). The tombstones stay listed until every shard has done
    /// this ([`Shard::drop_tombstones`]).
    pub(crate) async fn clean_tombstones(&mut self, entries: &[Tombstone]) -> Result<u64> {
        for t in entries {
            self.tombstones.add(t.clone());
        }
        self.flush().await?;
        let mut rewritten = 0u64;
        let ulids: Vec<String> = self.blocks.iter().map(|b| b.meta().ulid.clone()).collect();
        for ulid in ulids {
            if self.clean_block(&ulid, entries)? {
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// Rewrites block `ulid` without what `entries` delete; false when it holds none.
    ///
    /// The block is merged with every block overlapping it (transitively), the later
    /// write winning a shared timestamp as in compaction: the rewrite gets a new, larger
    /// ULID, which alone would make its samples win over those of a newer overlapping
    /// block.
    fn clean_block(&mut self, ulid: &str, entries: &[Tombstone]) -> Result<bool> {
        let Some(b) = self.blocks.iter().find(|b| b.meta().ulid == ulid) else {
            return Ok(false);
        };
        let (min, max) = (b.meta().min_time, b.meta().max_time);
        let touched = b
            .all_series()
            .any(|s| entries.iter().any(|t| t.applies(b.labels(s), min, max)));
        if !touched {
            return Ok(false);
        }
        // Taken before the parents are borrowed; unused when nothing changes.
        let new_ulid = self.next_block_ulid();
        let group = overlap_group(&self.blocks, ulid);
        let parents: Vec<&Block> = group.iter().filter_map(|&i| self.blocks.get(i)).collect();
        let (series, changed) =
            tombstones::drop_deleted(entries, crate::compact::merge(&parents)?)?;
        if !changed {
            return Ok(false);
        }
        let parent_ids: Vec<String> = parents.iter().map(|b| b.meta().ulid.clone()).collect();
        let bytes_before: u64 = parents.iter().map(|b| b.size_bytes()).sum();
        let replacement = if series.is_empty() {
            None
        } else {
            Some(crate::compact::write_replacement(
                &self.storage,
                &self.cfg.data_dir,
                self.cfg.shard,
                &new_ulid,
                &parents,
                series,
            )?)
        };
        let bytes_after = replacement.as_ref().map_or(0, Block::size_bytes);
        let new_ulid = replacement.as_ref().map(|r| r.meta().ulid.clone());
        let mut removed = Vec::new();
        let mut keep = Vec::new();
        for (i, b) in std::mem::take(&mut self.blocks).into_iter().enumerate() {
            if group.contains(&i) {
                removed.push(b.dir().to_path_buf());
            } else {
                keep.push(b);
            }
        }
        let replaced = replacement.is_some();
        keep.extend(replacement);
        keep.sort_by_key(|b| b.meta().min_time);
        self.blocks = keep;
        if replaced {
            // Out of the list now; on disk for the grace period, as compacted parents
            // are (a start after a crash deletes them: the new block is one level up
            // and lists their sources).
            let now = self.clock.monotonic();
            for dir in removed {
                self.retired.add(dir, now);
            }
        } else {
            // Nothing left: no block replaces them, so nothing would tell a start after
            // a crash that they are gone; delete them now, before their tombstones go.
            for dir in &removed {
                crate::compact::delete_block_dir(&self.storage, dir)?;
            }
            let dir = layout::blocks_dir(&self.cfg.data_dir);
            self.storage
                .sync_dir(&dir)
                .ctx(|| format!("fsync {}", dir.display()))?;
        }
        tracing::info!(
            shard = self.cfg.shard,
            blocks = ?parent_ids,
            new_block = new_ulid.as_deref().unwrap_or("-"),
            bytes_before,
            bytes_after,
            "rewrote blocks without deleted data"
        );
        Ok(true)
    }

    /// `clean_tombstones`, last step, once every shard has rewritten its blocks: the
    /// tombstones `ids` are no longer needed (shard 0 rewrites the file).
    pub(crate) fn drop_tombstones(&mut self, ids: &[u64]) -> Result<()> {
        let mut next = self.tombstones.clone();
        next.remove(ids);
        if self.cfg.shard == 0 {
            next.store_in(&self.storage, &self.cfg.data_dir)?;
        }
        self.tombstones = next;
        Ok(())
    }

    /// The tombstones listed now.
    pub(crate) fn tombstone_list(&self) -> Vec<Tombstone> {
        self.tombstones.entries().to_vec()
    }
}

/// Indexes into `blocks` of block `ulid` and of every block overlapping it in time,
/// directly or through another.
fn overlap_group(blocks: &[Block], ulid: &str) -> Vec<usize> {
    let mut group: Vec<usize> = blocks
        .iter()
        .position(|b| b.meta().ulid == ulid)
        .into_iter()
        .collect();
    loop {
        let more: Vec<usize> = (0..blocks.len())
            .filter(|i| !group.contains(i))
            .filter(|&i| {
                blocks.get(i).is_some_and(|b| {
                    group.iter().filter_map(|&g| blocks.get(g)).any(|g| {
                        g.meta().min_time <= b.meta().max_time
                            && b.meta().min_time <= g.meta().max_time
                    })
                })
            })
            .collect();
        if more.is_empty() {
            return group;
        }
        group.extend(more);
    }
}

/// Hard-links every file under `src` into a new directory `dst` (recursively), then
/// syncs `dst` so the links survive a crash.
fn link_tree(storage: &impl Storage, src: &Path, dst: &Path) -> Result<()> {
    storage
        .create_dir(dst)
        .ctx(|| format!("create {}", dst.display()))?;
    let entries = storage
        .read_dir(src)
        .ctx(|| format!("list {}", src.display()))?;
    for entry in entries {
        let (from, to) = (src.join(&entry.name), dst.join(&entry.name));
        if entry.is_dir {
            link_tree(storage, &from, &to)?;
        } else {
            storage.hard_link(&from, &to).ctx(|| {
                format!(
                    "hard-link {} to {} (a snapshot must be on the data dir's filesystem)",
                    from.display(),
                    to.display()
                )
            })?;
        }
    }
    storage
        .sync_dir(dst)
        .ctx(|| format!("fsync {}", dst.display()))
}
