//! Whether a shard takes writes: the faults that make it read-only and how each is
//! reported, the operator's switch, resuming after a full disk (on request or by a
//! free-space probe), and the process-wide bound on head series.
//!
//! A fault is logged once, when the shard turns read-only, and answered on every
//! refused write by the error [`Shard::refusal`] builds. Only a full disk and the
//! operator's switch may be undone without a restart: after a failed fsync the kernel
//! may have dropped data that a retry would report as written (fsyncgate), and after
//! another I/O error the bytes on disk are unknown; WAL replay on start is the safe way
//! back from both.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::Shard;
use crate::error::{Error, ReadOnlyCause, Result};
use crate::layout;
use crate::limits::DISK_FULL_RESUME_SEGMENTS;
use crate::model::Labels;
use crate::storage::Storage;
use crate::wal::record::SeriesRef;

/// The write side's bookkeeping, beside `Shard::read_only` (the fault itself).
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    /// The operator asked for read-only (`POST /api/v1/admin/readonly`).
    pub operator_read_only: bool,
    /// The switch is persisted in `<data-dir>/READONLY` (set at open when the marker is
    /// there, and by `?persist=true`); `/writable` removes it.
    pub operator_persisted: bool,
    /// WAL writes that failed (ENOSPC, EIO, …), for metrics.
    pub wal_write_errors: u64,
    /// WAL fsyncs that failed, for metrics.
    pub wal_fsync_errors: u64,
    /// A block directory that a failed flush could not remove at once; removed before
    /// writes resume.
    pub failed_block_tmp: Option<PathBuf>,
    /// Series created in the head whose WAL series record was in a write that failed.
    /// They have no samples yet; their records go first into the next WAL write, so
    /// samples written after a resume never refer to a series the WAL does not name.
    pub unlogged_series: Vec<(SeriesRef, Labels)>,
    /// This shard's head series as last added to `Shared::head_series`.
    pub head_series_published: u64,
}

impl<S: Storage> Shard<S> {
    /// Makes the shard read-only for `cause`, logging why once. A later fault replaces
    /// the first only when it forbids resuming and the first did not: an fsync failure
    /// after a full disk must not be forgotten by the free-space probe.
    pub(crate) fn poison(&mut self, cause: ReadOnlyCause, reason: String) {
        let replace = match &self.read_only {
            None => true,
            Some((old, _)) => old.resumable() && !cause.resumable(),
        };
        if !replace {
            return;
        }
        tracing::error!(
            shard = self.cfg.shard,
            cause = cause.as_str(),
            reason = %reason,
            remedy = cause.remedy(),
            "shard is now read-only: writes are refused"
        );
        self.read_only = Some((cause, reason));
    }

    /// Why the shard refuses writes, if it does: a fault first, else the operator.
    pub(crate) fn read_only_cause(&self) -> Option<ReadOnlyCause> {
        match &self.read_only {
            Some((cause, _)) => Some(*cause),
            None if self.writes.operator_read_only => Some(ReadOnlyCause::Operator),
            None => None,
        }
    }

    /// The error every write gets while the shard refuses writes.
    pub(crate) fn refusal(&self) -> Option<Error> {
        let (cause, reason) = match &self.read_only {
            Some((cause, reason)) => (*cause, reason.clone()),
            None if self.writes.operator_read_only => (
                ReadOnlyCause::Operator,
                "set read-only by the operator".to_string(),
            ),
            None => return None,
        };
        Some(Error::ReadOnly {
            shard: self.cfg.shard,
            cause,
            reason,
        })
    }

    /// After a failed WAL write or sync: counts it and makes the shard read-only with
    /// the cause the writer names (it knows whether a write or a sync failed).
    pub(crate) fn wal_failed(&mut self, e: &Error) {
        let fault = self.wal.as_ref().and_then(|w| w.fault());
        let (cause, reason) = match fault {
            Some((cause, reason)) => (cause, reason.to_string()),
            None if e.is_no_space() => (ReadOnlyCause::DiskFull, e.to_string()),
            None => (ReadOnlyCause::IoError, e.to_string()),
        };
        // A refusal from an already poisoned writer is not a new failure.
        if matches!(e, Error::Io { .. }) {
            if cause == ReadOnlyCause::FsyncFailed {
                self.writes.wal_fsync_errors += 1;
            } else {
                self.writes.wal_write_errors += 1;
            }
        }
        self.poison(cause, reason);
    }

    /// After a flush failed to write block `ulid`: removes its half-written temp dir
    /// (freeing the space now if it can; if not, resuming does it first) and makes the
    /// shard read-only. A full disk may be resumed; any other error needs a restart.
    /// The head is unchanged and its data is still in the WAL, so nothing is lost.
    pub(crate) fn block_write_failed(&mut self, ulid: &str, e: &Error) {
        let tmp = layout::block_tmp_dir(&self.cfg.data_dir, ulid);
        if remove_dir_if_present(&self.storage, &tmp).is_err() {
            self.writes.failed_block_tmp = Some(tmp);
        }
        let cause = if e.is_no_space() {
            ReadOnlyCause::DiskFull
        } else {
            ReadOnlyCause::IoError
        };
        self.poison(cause, format!("writing block {ulid} failed: {e}"));
    }

    /// `POST /api/v1/admin/readonly`: refuse writes until `/writable`.
    pub(crate) fn set_read_only_by_operator(&mut self) {
        if !self.writes.operator_read_only {
            tracing::info!(
                shard = self.cfg.shard,
                "shard set read-only by the operator"
            );
        }
        self.writes.operator_read_only = true;
    }

    /// `POST /api/v1/admin/writable`: clears the operator's switch and, after a full
    /// disk, tries to take writes again. Refused, with the reason, when the fault
    /// needs a restart.
    pub(crate) async fn set_writable(&mut self) -> Result<()> {
        if self.writes.operator_read_only {
            tracing::info!(shard = self.cfg.shard, "shard set writable by the operator");
        }
        self.writes.operator_read_only = false;
        self.resume().await
    }

    /// The free-space probe: while the shard is read-only because the disk was full,
    /// resumes on its own once the WAL and data filesystems both have room for
    /// [`DISK_FULL_RESUME_SEGMENTS`] WAL segments (so one freed block does not make the
    /// shard flap between writable and full).
    pub(crate) async fn probe_disk_space(&mut self) {
        if !matches!(self.read_only, Some((ReadOnlyCause::DiskFull, _))) {
            return;
        }
        let needed = self
            .cfg
            .wal_segment_bytes
            .saturating_mul(DISK_FULL_RESUME_SEGMENTS);
        let wal_dir = layout::shard_wal_dir(&self.cfg.wal_root, self.cfg.shard as usize);
        for dir in [wal_dir.as_path(), self.cfg.data_dir.as_path()] {
            match self.storage.available_bytes(dir).ok() {
                Some(free) if free >= needed => {}
                _ => return,
            }
        }
        if let Err(e) = self.resume().await {
            tracing::debug!(shard = self.cfg.shard, error = %e, "disk space probe: still read-only");
        }
    }

    /// Takes writes again after a full disk: removes what a failed flush left, then lets
    /// the WAL writer drop a possibly partial record, fsync and start a fresh segment.
    async fn resume(&mut self) -> Result<()> {
        let Some((cause, reason)) = self.read_only.clone() else {
            return Ok(());
        };
        if !cause.resumable() {
            return Err(Error::ReadOnly {
                shard: self.cfg.shard,
                cause,
                reason,
            });
        }
        if let Some(tmp) = self.writes.failed_block_tmp.clone() {
            remove_dir_if_present(&self.storage, &tmp).map_err(|e| {
                Error::io(
                    format!(
                        "remove half-written block {} before resuming",
                        tmp.display()
                    ),
                    e,
                )
            })?;
            self.writes.failed_block_tmp = None;
        }
        if let Some(wal) = self.wal.as_mut()
            && let Err(e) = wal.resume().await
        {
            // A failed fsync while resuming turns the fault into one that needs a restart.
            if matches!(wal.fault(), Some((ReadOnlyCause::FsyncFailed, _))) {
                self.wal_failed(&e);
            }
            return Err(e);
        }
        self.read_only = None;
        tracing::info!(
            shard = self.cfg.shard,
            cause = cause.as_str(),
            "shard is writable again"
        );
        Ok(())
    }

    /// Reserves room for one new head series under `Shared::head_series_max` (0: no
    /// bound); false when the process's heads are full.
    pub(crate) fn reserve_series(&mut self) -> bool {
        let shared = &self.shared;
        let before = shared.head_series.fetch_add(1, Ordering::AcqRel);
        if shared.head_series_max > 0 && before >= shared.head_series_max {
            shared.head_series.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.writes.head_series_published += 1;
        true
    }

    /// Brings `Shared::head_series` in line with this shard's head after a replay or a
    /// flush (which empties the head).
    pub(crate) fn publish_head_series(&mut self) {
        let now = self.head.num_series() as u64;
        let was = self.writes.head_series_published;
        if now > was {
            self.shared
                .head_series
                .fetch_add(now - was, Ordering::AcqRel);
        } else if now < was {
            self.shared
                .head_series
                .fetch_sub(was - now, Ordering::AcqRel);
        }
        self.writes.head_series_published = now;
    }
}

fn remove_dir_if_present(storage: &impl Storage, dir: &Path) -> std::io::Result<()> {
    match storage.remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::shard::{ShardConfig, Shared, prepare_data_dir};
    use crate::wal::SyncMode;

    use crate::storage::block_on as run;

    fn open(dir: &Path, shard: u32, shared: &Arc<Shared>) -> Shard {
        prepare_data_dir(dir).unwrap();
        let cfg = ShardConfig {
            shard,
            shards: 2,
            data_dir: dir.to_path_buf(),
            wal_root: dir.join("wal"),
            wal_enabled: true,
            wal_sync: SyncMode::Always,
            wal_sync_interval: Duration::from_secs(1),
            wal_segment_bytes: 1 << 20,
            memtable_bytes: 1 << 20,
            retention_ms: i64::MAX,
            compaction_enabled: false,
            compaction_interval: Duration::from_secs(60),
            compaction_concurrency: 1,
        };
        run(Shard::open(cfg, shared.clone())).unwrap()
    }

    fn cause_of(e: Option<Error>) -> Option<ReadOnlyCause> {
        match e {
            Some(Error::ReadOnly { cause, .. }) => Some(cause),
            _ => None,
        }
    }

    #[test]
    fn an_fsync_failure_is_never_resumed_and_outranks_a_full_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 0, &Arc::default());
        s.poison(ReadOnlyCause::DiskFull, "full".into());
        s.poison(ReadOnlyCause::FsyncFailed, "fsync".into());
        s.poison(ReadOnlyCause::DiskFull, "full again".into());
        assert_eq!(s.read_only_cause(), Some(ReadOnlyCause::FsyncFailed));
        let refused = run(s.set_writable());
        assert!(
            matches!(
                &refused,
                Err(Error::ReadOnly {
                    cause: ReadOnlyCause::FsyncFailed,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("a restart is needed")
        );
        assert_eq!(cause_of(s.refusal()), Some(ReadOnlyCause::FsyncFailed));
        // The probe leaves it alone too.
        run(s.probe_disk_space());
        assert_eq!(s.read_only_cause(), Some(ReadOnlyCause::FsyncFailed));
    }

    #[test]
    fn the_operator_switch_and_a_full_disk_resume_on_writable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 1, &Arc::default());
        assert!(s.refusal().is_none());
        s.set_read_only_by_operator();
        assert_eq!(cause_of(s.refusal()), Some(ReadOnlyCause::Operator));
        run(s.set_writable()).unwrap();
        assert!(s.refusal().is_none());
        // A failed flush left a half-written block behind it.
        let tmp = layout::block_tmp_dir(dir.path(), "01HALFWRITTEN");
        std::fs::create_dir_all(tmp.join("chunks")).unwrap();
        s.writes.failed_block_tmp = Some(tmp.clone());
        s.poison(ReadOnlyCause::DiskFull, "full".into());
        assert_eq!(cause_of(s.refusal()), Some(ReadOnlyCause::DiskFull));
        // The probe resumes once there is room (a temp dir has plenty).
        run(s.probe_disk_space());
        assert!(s.refusal().is_none());
        assert!(!tmp.exists(), "the half-written block was not removed");
    }

    #[test]
    fn the_head_series_bound_is_shared_by_every_shard() {
        let shared = Arc::new(Shared {
            head_series_max: 3,
            ..Shared::default()
        });
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = open(a_dir.path(), 0, &shared);
        let mut b = open(b_dir.path(), 1, &shared);
        assert!(a.reserve_series());
        assert!(a.reserve_series());
        assert!(b.reserve_series());
        assert!(!b.reserve_series());
        assert!(!a.reserve_series());
        assert_eq!(shared.head_series.load(Ordering::Acquire), 3);
        // The heads hold none of them (reserved only): publishing gives them back.
        a.publish_head_series();
        assert_eq!(shared.head_series.load(Ordering::Acquire), 1);
        assert!(a.reserve_series());
    }
}
