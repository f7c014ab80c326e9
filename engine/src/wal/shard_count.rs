//! `<wal-root>/shards`: the shard count the WAL directories under it were written with.
//!
//! A series' shard is its label hash modulo the shard count, so a WAL written with
//! one count cannot be replayed shard by shard with another: the start compares this
//! file with `--shards` and migrates the old WALs first (`crate::shard::reshard`).
//! The file holds the count in decimal and a newline, written atomically (temp file,
//! fsync, rename, fsync of the directory).

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::layout;
use crate::storage::{DiskStorage, Storage};

/// The recorded count: `None` when the file does not exist (a new data dir, or one
/// written before the file existed). A file that does not parse is an error: the
/// start cannot tell which shards wrote the WAL.
pub fn read(wal_root: &Path) -> Result<Option<u32>> {
    read_in(&DiskStorage, wal_root)
}

/// [`read`] on any storage.
pub fn read_in(storage: &impl Storage, wal_root: &Path) -> Result<Option<u32>> {
    let path = wal_root.join(layout::WAL_SHARDS_FILE);
    match storage.read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            text.trim().parse::<u32>().map(Some).map_err(|_| {
                Error::corrupt(
                    &path,
                    0,
                    format!("{text:?} is not a shard count; remove the file to migrate every WAL"),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// Durably records `shards` as the count the WAL root is written with.
pub fn write(wal_root: &Path, shards: u32) -> Result<()> {
    write_in(&DiskStorage, wal_root, shards)
}

/// [`write`] on any storage.
pub fn write_in(storage: &impl Storage, wal_root: &Path, shards: u32) -> Result<()> {
    storage
        .create_dir_all(wal_root)
        .ctx(|| format!("create {}", wal_root.display()))?;
    let path = wal_root.join(layout::WAL_SHARDS_FILE);
    let tmp = wal_root.join(format!("{}{}", layout::WAL_SHARDS_FILE, layout::TMP_SUFFIX));
    storage
        .write_file_synced(&tmp, format!("{shards}\n").as_bytes())
        .ctx(|| format!("write {}", tmp.display()))?;
    storage
        .rename(&tmp, &path)
        .ctx(|| format!("rename {}", tmp.display()))?;
    super::checkpoint::sync_dir(storage, wal_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_round_trips_and_refuses_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), None);
        write(d.path(), 4).unwrap();
        assert_eq!(read(d.path()).unwrap(), Some(4));
        std::fs::write(d.path().join(layout::WAL_SHARDS_FILE), "four\n").unwrap();
        assert!(read(d.path()).is_err());
    }
}
