//! The WAL checkpoint: the first segment still needed after a head flush.
//!
//! When the head is flushed, the writer first cuts a new segment `S`; once the block
//! holding everything before `S` is durable, `checkpoint` (a decimal `S` plus a
//! newline) is written atomically (temp file, fsync, rename), then segments below `S`
//! are deleted. A crash between any two steps leaves either the old segments (replayed
//! again; duplicate samples are dropped by timestamp) or a checkpoint that tells the
//! next start to delete them before replay.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::storage::{DiskStorage, Storage};

pub const FILE: &str = "checkpoint";

/// Reads the checkpoint of a shard's WAL directory: 0 when there is none or it is
/// unreadable (then everything is replayed, which is always safe).
pub fn read(dir: &Path) -> u64 {
    read_in(&DiskStorage, dir)
}

/// [`read`] on any storage.
pub fn read_in(storage: &impl Storage, dir: &Path) -> u64 {
    let Some(text) = storage
        .read(&dir.join(FILE))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return 0;
    };
    text.trim().parse().unwrap_or_else(|_| {
        // `tsdb inspect-wal` reports the same file as damage.
        tracing::warn!(
            dir = %dir.display(),
            content = ?text,
            "WAL checkpoint is not a segment number: ignored, every segment is replayed"
        );
        0
    })
}

/// Durably records that segments below `first_needed` are obsolete.
pub fn write(dir: &Path, first_needed: u64) -> Result<()> {
    write_in(&DiskStorage, dir, first_needed)
}

/// [`write`] on any storage.
pub fn write_in(storage: &impl Storage, dir: &Path, first_needed: u64) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let path = dir.join(FILE);
    storage
        .write_file_synced(&tmp, format!("{first_needed}\n").as_bytes())
        .ctx(|| format!("write {}", tmp.display()))?;
    storage
        .rename(&tmp, &path)
        .ctx(|| format!("rename {}", tmp.display()))?;
    sync_dir(storage, dir)
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(storage: &impl Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .ctx(|| format!("fsync dir {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()), 0);
        write(d.path(), 42).unwrap();
        assert_eq!(read(d.path()), 42);
    }
}
