//! Appends grouped records to the current segment through io_uring, syncs them, and
//! rotates segments.
//!
//! **Invariant:** a failed write or sync poisons the writer: every later call fails
//! with the first error's reason. It is never retried, because after a failed fsync
//! the kernel may have dropped the dirty pages and a retry could report success for
//! data that is gone (fsyncgate).

use std::path::{Path, PathBuf};

use super::SyncMode;
use super::checkpoint::sync_dir;
use super::segment;
use crate::error::{Error, Result};
use crate::layout;
use crate::storage::{Storage, WalFile};

pub struct WalWriter<S: Storage> {
    storage: S,
    dir: PathBuf,
    shard: u32,
    segment_bytes_max: u64,
    sync_mode: SyncMode,
    file: S::WalFile,
    seq: u64,
    offset: u64,
    /// Bytes written since the last sync.
    unsynced: bool,
    poisoned: Option<String>,
    /// Bytes in segments that still exist, for `tsdb_wal_size_bytes`.
    size_bytes: u64,
}

impl<S: Storage> std::fmt::Debug for WalWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalWriter")
            .field("dir", &self.dir)
            .field("seq", &self.seq)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<S: Storage> WalWriter<S> {
    /// Opens a new segment `seq` in `dir` (always a fresh one: the writer never appends
    /// behind bytes it did not write itself). `existing_bytes` is the size of the
    /// segments already there.
    pub async fn create(
        storage: S,
        dir: &Path,
        shard: u32,
        seq: u64,
        segment_bytes_max: u64,
        sync_mode: SyncMode,
        existing_bytes: u64,
    ) -> Result<WalWriter<S>> {
        storage
            .create_dir_all(dir)
            .map_err(|e| Error::io(format!("create wal dir {}", dir.display()), e))?;
        let file = new_segment(&storage, dir, shard, seq, sync_mode).await?;
        Ok(WalWriter {
            storage,
            dir: dir.to_path_buf(),
            shard,
            segment_bytes_max,
            sync_mode,
            file,
            seq,
            offset: segment::HEADER_BYTES as u64,
            unsynced: false,
            poisoned: None,
            size_bytes: existing_bytes + segment::HEADER_BYTES as u64,
        })
    }

    /// The reason the writer refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    pub fn segment_seq(&self) -> u64 {
        self.seq
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn check(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::ReadOnly {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, e: Error) -> Error {
        if self.poisoned.is_none() {
            self.poisoned = Some(e.to_string());
        }
        e
    }

    /// Writes `records` (whole framed records) and, with `SyncMode::Always`, syncs
    /// them. When this returns `Ok`, the records are in the file (and on stable storage
    /// with `Always`).
    pub async fn append(&mut self, records: Vec<u8>) -> Result<()> {
        self.check()?;
        if records.is_empty() {
            return Ok(());
        }
        let len = records.len() as u64;
        if self.offset + len > self.segment_bytes_max && self.offset > segment::HEADER_BYTES as u64
        {
            self.cut().await?;
        }
        if let Err(e) = self.file.write_all_at(records, self.offset).await {
            let err = Error::io(
                format!(
                    "wal shard {} segment {}: write {len} bytes at offset {}",
                    self.shard,
                    layout::segment_name(self.seq),
                    self.offset
                ),
                e,
            );
            return Err(self.poison(err));
        }
        self.offset += len;
        self.size_bytes += len;
        self.unsynced = true;
        if self.sync_mode == SyncMode::Always {
            self.sync().await?;
        }
        Ok(())
    }

    /// fdatasyncs the current segment if anything was written since the last sync.
    pub async fn sync(&mut self) -> Result<()> {
        self.check()?;
        if !self.unsynced {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data().await {
            let err = Error::io(
                format!(
                    "wal shard {} segment {}: fdatasync",
                    self.shard,
                    layout::segment_name(self.seq)
                ),
                e,
            );
            return Err(self.poison(err));
        }
        self.unsynced = false;
        Ok(())
    }

    /// Closes the current segment (synced unless `Never`) and starts the next one.
    /// Returns the new segment's sequence number.
    pub async fn cut(&mut self) -> Result<u64> {
        self.check()?;
        if self.sync_mode != SyncMode::Never {
            self.sync().await?;
        }
        let next = self.seq + 1;
        let file =
            match new_segment(&self.storage, &self.dir, self.shard, next, self.sync_mode).await {
                Ok(f) => f,
                Err(e) => return Err(self.poison(e)),
            };
        let old = std::mem::replace(&mut self.file, file);
        // Closing reports nothing we act on: the data was synced above.
        let _ = old.close().await;
        self.seq = next;
        self.offset = segment::HEADER_BYTES as u64;
        self.size_bytes += segment::HEADER_BYTES as u64;
        self.unsynced = false;
        Ok(next)
    }

    /// Deletes the segments below `seq` (after a checkpoint made them obsolete).
    pub fn remove_before(&mut self, seq: u64) -> Result<()> {
        for s in segment::list_in(&self.storage, &self.dir)? {
            if s.seq >= seq {
                continue;
            }
            let len = self.storage.metadata(&s.path).map_or(0, |m| m.len);
            self.storage
                .remove_file(&s.path)
                .map_err(|e| Error::io(format!("remove wal segment {}", s.path.display()), e))?;
            self.size_bytes = self.size_bytes.saturating_sub(len);
        }
        Ok(())
    }

    /// Syncs what is unsynced, for a clean shutdown.
    pub async fn close(mut self) -> Result<()> {
        if self.poisoned.is_none() && self.sync_mode != SyncMode::Never {
            self.sync().await?;
        } else if self.poisoned.is_none() {
            // Even with `never`, a clean shutdown syncs: the operator asked us to stop,
            // not to lose data.
            self.unsynced = true;
            self.sync().await?;
        }
        let _ = self.file.close().await;
        Ok(())
    }
}

async fn new_segment<S: Storage>(
    storage: &S,
    dir: &Path,
    shard: u32,
    seq: u64,
    sync_mode: SyncMode,
) -> Result<S::WalFile> {
    let path = dir.join(layout::segment_name(seq));
    let file = storage
        .create_wal_file(&path)
        .await
        .map_err(|e| Error::io(format!("create wal segment {}", path.display()), e))?;
    file.write_all_at(segment::header(shard).to_vec(), 0)
        .await
        .map_err(|e| Error::io(format!("write header of wal segment {}", path.display()), e))?;
    if sync_mode != SyncMode::Never {
        file.sync_data()
            .await
            .map_err(|e| Error::io(format!("fdatasync wal segment {}", path.display()), e))?;
        sync_dir(storage, dir)?;
    }
    Ok(file)
}
