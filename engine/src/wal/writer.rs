//! Appends grouped records to the current segment through io_uring, syncs them, and
//! rotates segments.
//!
//! **Invariant:** a failed write or sync poisons the writer: every later call fails
//! with the first error's reason. It is never retried, because after a failed fsync
//! the kernel may have dropped the dirty pages and a retry could report success for
//! data that is gone (fsyncgate). The one way back is [`WalWriter::resume`], and only
//! after a failed *write* with ENOSPC: it drops the possibly partial record, fsyncs the
//! segment and starts a fresh one.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::SyncMode;
use super::checkpoint::sync_dir;
use super::segment;
use crate::error::{Error, ReadOnlyCause, Result};
use crate::layout;
use crate::storage::{Clock, Storage, WalFile};

/// Upper bounds of [`FsyncStats::buckets`], seconds; `+Inf` is implied.
pub const FSYNC_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How long the writer's fdatasyncs took (those of [`WalWriter::sync`]), for
/// `tsdb_wal_fsync_duration_seconds`; buckets of [`FSYNC_BUCKETS`].
pub type FsyncStats = crate::histogram::DurationHistogram;

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
    /// Why the writer refuses writes, and the kind of failure that made it.
    poisoned: Option<(ReadOnlyCause, String)>,
    /// Bytes in segments that still exist, for `tsdb_wal_size_bytes`.
    size_bytes: u64,
    /// Times the syncs when set (see [`WalWriter::timed_by`]).
    clock: Option<Rc<dyn Clock>>,
    fsync: FsyncStats,
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
            clock: None,
            fsync: FsyncStats::new(&FSYNC_BUCKETS),
        })
    }

    /// Times every sync with `clock` from now on, for [`WalWriter::fsync_stats`].
    pub fn timed_by(mut self, clock: Rc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long the syncs took (empty unless [`WalWriter::timed_by`] gave a clock).
    pub fn fsync_stats(&self) -> &FsyncStats {
        &self.fsync
    }

    /// The reason the writer refuses writes, if it does.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_ref().map(|(_, reason)| reason.as_str())
    }

    /// What kind of failure poisoned the writer: [`ReadOnlyCause::FsyncFailed`] after
    /// any failed sync, [`ReadOnlyCause::DiskFull`] after a write that hit ENOSPC,
    /// [`ReadOnlyCause::IoError`] after any other failed write.
    pub fn fault(&self) -> Option<(ReadOnlyCause, &str)> {
        self.poisoned
            .as_ref()
            .map(|(cause, reason)| (*cause, reason.as_str()))
    }

    pub fn segment_seq(&self) -> u64 {
        self.seq
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    fn check(&self) -> Result<()> {
        match &self.poisoned {
            Some((cause, reason)) => Err(Error::ReadOnly {
                shard: self.shard,
                cause: *cause,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Poisons the writer after a failed write: a full disk, or another I/O error.
    fn poison(&mut self, e: Error) -> Error {
        let cause = if e.is_no_space() {
            ReadOnlyCause::DiskFull
        } else {
            ReadOnlyCause::IoError
        };
        self.poison_as(cause, e)
    }

    /// Poisons the writer after a failed sync; a sync failure outranks any earlier
    /// write failure, since it is the one that forbids resuming.
    fn poison_sync(&mut self, e: Error) -> Error {
        self.poison_as(ReadOnlyCause::FsyncFailed, e)
    }

    fn poison_as(&mut self, cause: ReadOnlyCause, e: Error) -> Error {
        match &mut self.poisoned {
            None => self.poisoned = Some((cause, e.to_string())),
            Some(p) if cause == ReadOnlyCause::FsyncFailed => *p = (cause, e.to_string()),
            Some(_) => {}
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
    /// After a write that hit a full disk the writer refuses writes but still syncs:
    /// what was written (and acknowledged) before the failed write can still be made
    /// durable, and a sync adds nothing behind the partial record.
    pub async fn sync(&mut self) -> Result<()> {
        if !matches!(self.fault(), Some((ReadOnlyCause::DiskFull, _))) {
            self.check()?;
        }
        if !self.unsynced {
            return Ok(());
        }
        let started = self.clock.as_ref().map(|c| c.monotonic());
        let synced = self.file.sync_data().await;
        if let (Some(clock), Some(started)) = (&self.clock, started) {
            self.fsync
                .observe(clock.monotonic().saturating_sub(started));
        }
        if let Err(e) = synced {
            let err = Error::io(
                format!(
                    "wal shard {} segment {}: fdatasync",
                    self.shard,
                    layout::segment_name(self.seq)
                ),
                e,
            );
            return Err(self.poison_sync(err));
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
        self.open_next().await
    }

    /// Opens segment `seq + 1` and makes it current.
    async fn open_next(&mut self) -> Result<u64> {
        let next = self.seq + 1;
        let file =
            match new_segment(&self.storage, &self.dir, self.shard, next, self.sync_mode).await {
                Ok(f) => f,
                Err(SegmentError::Write(e)) => return Err(self.poison(e)),
                Err(SegmentError::Sync(e)) => return Err(self.poison_sync(e)),
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

    /// Takes writes again after a failed write with ENOSPC, once the caller believes
    /// space has been freed. Refused after any failed sync (fsyncgate: only a restart,
    /// which replays the WAL from disk, is safe then) and after other write errors.
    ///
    /// Order: cut the current segment back to the end of its last whole record (a
    /// failed write may have left part of a record behind it) → fsync it → remove the
    /// next segment's file if a failed cut left one without a whole header → start that
    /// next segment afresh. Nothing is ever appended behind a possibly partial record, and
    /// replay after a restart finds every segment ending on a whole record.
    pub async fn resume(&mut self) -> Result<u64> {
        match self.fault() {
            None => return Ok(self.seq),
            Some((ReadOnlyCause::DiskFull, _)) => {}
            Some(_) => return self.check().map(|()| self.seq),
        }
        self.clean_up_failed_write().await?;
        self.unsynced = false;
        self.poisoned = None;
        self.open_next().await
    }

    /// After a failed write: cuts the current segment back to the end of its last whole
    /// record (the write may have left part of one behind), fsyncs it, and removes the
    /// next segment's file if a failed cut created it without a whole header.
    async fn clean_up_failed_write(&mut self) -> Result<()> {
        let path = self.dir.join(layout::segment_name(self.seq));
        // `truncate` cuts and syncs the file; a failure of either counts as a failed
        // sync, which only a restart can clear.
        if let Err(e) = self.storage.truncate(&path, self.offset) {
            let err = Error::io(
                format!(
                    "wal shard {} segment {}: cut back to offset {} and fsync after a failed write",
                    self.shard,
                    layout::segment_name(self.seq),
                    self.offset
                ),
                e,
            );
            return Err(self.poison_sync(err));
        }
        let next = self.dir.join(layout::segment_name(self.seq + 1));
        match self.storage.remove_file(&next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("remove {} left by a failed segment cut", next.display()),
                e,
            )),
            _ => Ok(()),
        }
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

    /// Syncs what is unsynced, for a clean shutdown. After a full disk the partial
    /// record a failed write may have left is cut off first, so the next start finds
    /// a clean tail.
    pub async fn close(mut self) -> Result<()> {
        if matches!(self.fault(), Some((ReadOnlyCause::DiskFull, _))) {
            let trimmed = self.clean_up_failed_write().await;
            let _ = self.file.close().await;
            return trimmed;
        }
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

/// Why a new segment could not be started: a failed write may be resumed after a full
/// disk, a failed sync never.
enum SegmentError {
    Write(Error),
    Sync(Error),
}

impl From<SegmentError> for Error {
    fn from(e: SegmentError) -> Error {
        match e {
            SegmentError::Write(e) | SegmentError::Sync(e) => e,
        }
    }
}

async fn new_segment<S: Storage>(
    storage: &S,
    dir: &Path,
    shard: u32,
    seq: u64,
    sync_mode: SyncMode,
) -> Result<S::WalFile, SegmentError> {
    let path = dir.join(layout::segment_name(seq));
    let file = storage.create_wal_file(&path).await.map_err(|e| {
        SegmentError::Write(Error::io(
            format!("create wal segment {}", path.display()),
            e,
        ))
    })?;
    file.write_all_at(segment::header(shard).to_vec(), 0)
        .await
        .map_err(|e| {
            SegmentError::Write(Error::io(
                format!("write header of wal segment {}", path.display()),
                e,
            ))
        })?;
    if sync_mode != SyncMode::Never {
        file.sync_data().await.map_err(|e| {
            SegmentError::Sync(Error::io(
                format!("fdatasync wal segment {}", path.display()),
                e,
            ))
        })?;
        sync_dir(storage, dir).map_err(SegmentError::Sync)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::model::Sample;
    use crate::storage::DiskStorage;
    use crate::wal::reader::{self, Repair};
    use crate::wal::record;

    use crate::storage::block_on as run;

    fn record() -> Vec<u8> {
        let mut out = Vec::new();
        record::encode_samples(&mut out, &[(1, Sample::new(1, 1.0))]);
        out
    }

    #[test]
    fn resume_after_a_full_disk_trims_syncs_and_starts_a_fresh_segment() {
        let dir = tempfile::tempdir().unwrap();
        let seg = |seq| dir.path().join(layout::segment_name(seq));
        run(async {
            let mut w =
                WalWriter::create(DiskStorage, dir.path(), 3, 1, 1 << 20, SyncMode::Always, 0)
                    .await
                    .unwrap();
            w.append(record()).await.unwrap();
            let end = w.offset;
            // What a write cut short by ENOSPC leaves: part of a record past the last
            // whole one, and the next segment a failed cut created without its header.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(seg(1))
                .unwrap();
            f.write_all(&record()[..5]).unwrap();
            std::fs::write(seg(2), b"").unwrap();
            w.poisoned = Some((ReadOnlyCause::DiskFull, "no space".into()));
            let refused = w.append(record()).await;
            assert!(
                matches!(
                    refused,
                    Err(Error::ReadOnly {
                        shard: 3,
                        cause: ReadOnlyCause::DiskFull,
                        ..
                    })
                ),
                "{refused:?}"
            );
            assert_eq!(w.resume().await.unwrap(), 2);
            assert_eq!(std::fs::metadata(seg(1)).unwrap().len(), end);
            assert_eq!(
                std::fs::metadata(seg(2)).unwrap().len(),
                segment::HEADER_BYTES as u64
            );
            w.append(record()).await.unwrap();
            w.close().await.unwrap();
        });
        let stats = reader::replay(dir.path(), 3, 1, Repair::ReadOnly, |_| {}).unwrap();
        assert!(stats.damage.is_empty(), "{:?}", stats.damage);
        assert_eq!((stats.segments, stats.records), (2, 2));
    }

    #[test]
    fn resume_is_refused_after_a_failed_sync_or_another_io_error() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut w = WalWriter::create(
                DiskStorage,
                dir.path(),
                0,
                1,
                1 << 20,
                SyncMode::Interval,
                0,
            )
            .await
            .unwrap();
            for cause in [ReadOnlyCause::FsyncFailed, ReadOnlyCause::IoError] {
                w.poisoned = Some((cause, "failed".into()));
                let refused = w.resume().await;
                assert!(
                    matches!(refused, Err(Error::ReadOnly { cause: c, .. }) if c == cause),
                    "{refused:?}"
                );
                assert!(w.sync().await.is_err(), "a poisoned writer does not sync");
            }
            // A failed sync outranks an earlier full disk: it forbids resuming.
            w.poisoned = None;
            w.poison(Error::io(
                "write",
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            ));
            w.poison_sync(Error::io(
                "fdatasync",
                std::io::Error::from_raw_os_error(libc::EIO),
            ));
            w.poison(Error::io(
                "write",
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            ));
            assert_eq!(w.fault().map(|(c, _)| c), Some(ReadOnlyCause::FsyncFailed));
        });
    }
}
