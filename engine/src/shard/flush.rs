//! Persisting the head into an immutable block and dropping the WAL before it.

use super::Shard;
use crate::block::{self, Block};
use crate::error::Result;
use crate::head::Head;
use crate::layout;
use crate::limits::BLOCK_RANGE_MS;
use crate::storage::Storage;
use crate::wal::checkpoint;

impl<S: Storage> Shard<S> {
    /// A ULID for a new block, larger than every block this shard has: the clock's, or
    /// the last one plus one when the clock has not moved past it (several blocks in a
    /// millisecond, whose random bits would otherwise order them at random, or a clock
    /// stepped back). Reads and compaction rely on it to let later writes win.
    pub(crate) fn next_block_ulid(&mut self) -> String {
        let fresh = self.clock.ulid();
        let ulid = match self.last_ulid {
            Some(last) if fresh <= last => last.increment().unwrap_or(fresh),
            _ => fresh,
        };
        self.last_ulid = Some(ulid);
        ulid.to_string()
    }

    /// Whether the head has reached its memory budget or spans a block range.
    pub(crate) fn head_needs_flush(&self) -> bool {
        !self.head.is_empty()
            && (self.head.mem_bytes() as u64 >= self.cfg.memtable_bytes
                || self.head.span_ms() >= BLOCK_RANGE_MS)
    }

    /// Writes the whole head into a new block, then starts a fresh head and drops the
    /// WAL segments the block made obsolete.
    ///
    /// Order, for crash safety: cut a new WAL segment `S` (later writes go there) →
    /// write the block `B` (temp dir, fsync, rename) → add `(S, B)` to the checkpoint →
    /// delete the segments below the previous flush's cut (one generation late, for a
    /// live backup; see `wal::checkpoint`). A crash before the rename replays the old
    /// segments into the head again; after it, the checkpoint or the timestamp dedup
    /// keeps data single.
    /// If the block cannot be written, the head stays as it was and the shard goes
    /// read-only: the data is still in the WAL and in memory.
    pub async fn flush(&mut self) -> Result<()> {
        if self.head.is_empty() {
            return Ok(());
        }
        let started = self.trace_now();
        let (series, samples) = (self.head.num_series() as u64, self.head.num_samples());
        let result = self.flush_head().await;
        self.trace_done(
            "flush",
            started,
            [
                ("series", series),
                ("samples", samples),
                ("ok", u64::from(result.is_ok())),
                ("", 0),
            ],
        );
        result
    }

    async fn flush_head(&mut self) -> Result<()> {
        let cut = match self.wal.as_mut() {
            Some(w) => match w.cut().await {
                Ok(seq) => Some(seq),
                Err(e) => {
                    // The writer is poisoned now; the shard says so at once, not at
                    // the next append.
                    self.wal_failed(&e);
                    return Err(e);
                }
            },
            None => None,
        };
        // Series by series from the head, which stays whole until the block is in
        // place (a failed write leaves it as it was): only one series' copy and the
        // encoded block are held beside it.
        let mut encoder = block::BlockEncoder::new(self.head.num_series());
        for s in self.head.block_series_sorted() {
            // Deleted samples never reach a block (with no tombstone, `s` as it is).
            if let (Some(kept), _) =
                crate::tombstones::drop_deleted_one(self.tombstones.entries(), s)?
            {
                encoder.push(kept);
            }
        }
        // A head wholly deleted writes no block; its generation names none, so replay
        // still starts after the cut.
        let ulid = if encoder.is_empty() {
            tracing::info!(
                shard = self.cfg.shard,
                "flushed head: every sample was deleted, no block written"
            );
            None
        } else {
            let ulid = self.next_block_ulid();
            self.write_head_block(&ulid, encoder)?;
            Some(ulid)
        };
        self.head = Head::new();
        self.flushes += 1;
        if let (Some(seq), Some(wal)) = (cut, self.wal.as_mut()) {
            let dir = layout::shard_wal_dir(&self.cfg.wal_root, self.cfg.shard as usize);
            let flushed = checkpoint::Generation {
                first_needed: seq,
                block: ulid,
                next_ref: self.next_ref,
            };
            // Not `seq`: the segments of the last generations stay for a live backup.
            let obsolete_below = checkpoint::record_flush_in(&self.storage, &dir, flushed)?;
            wal.remove_before(obsolete_below)?;
        }
        Ok(())
    }

    /// Writes the head's series, encoded, as level-1 block `ulid` and adds it to the list; on
    /// failure the shard goes read-only (see `block_write_failed`).
    fn write_head_block(&mut self, ulid: &str, encoder: block::BlockEncoder) -> Result<()> {
        let encoded = encoder.finish(ulid, self.cfg.shard, 1, vec![ulid.to_string()], Vec::new());
        let blocks_dir = layout::blocks_dir(&self.cfg.data_dir);
        let written = block::write_block_dir_in(&self.storage, &blocks_dir, &encoded)
            .and_then(|p| Block::open_in(&self.storage, &p));
        let block = match written {
            Ok(b) => b,
            Err(e) => {
                self.block_write_failed(ulid, &e);
                return Err(e);
            }
        };
        tracing::info!(
            shard = self.cfg.shard,
            block = %ulid,
            series = encoded.meta.stats.num_series,
            samples = encoded.meta.stats.num_samples,
            min_time = encoded.meta.min_time,
            max_time = encoded.meta.max_time,
            "flushed head to block"
        );
        self.blocks.push(block);
        self.blocks.sort_by_key(|b| b.meta().min_time);
        Ok(())
    }
}
