//! The WAL checkpoint: the first segment still needed after a head flush.
//!
//! When the head is flushed, the writer first cuts a new segment `S`; once the block
//! holding everything before `S` is durable, `checkpoint` (a decimal `S` plus a
//! newline) is written atomically (temp file, fsync, rename), then segments below `S`
//! are deleted. A crash between any two steps leaves either the old segments (replayed
//! again; duplicate samples are dropped by timestamp) or a checkpoint that tells the
//! next start to delete them before replay.

use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

pub const FILE: &str = "checkpoint";

/// Reads the checkpoint of a shard's WAL directory: 0 when there is none or it is
/// unreadable (then everything is replayed, which is always safe).
pub fn read(dir: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(dir.join(FILE)) else {
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
    let tmp = dir.join(format!("{FILE}.tmp"));
    let path = dir.join(FILE);
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    writeln!(f, "{first_needed}").ctx(|| format!("write {}", tmp.display()))?;
    f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("rename {}", tmp.display()))?;
    sync_dir(dir)
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
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
