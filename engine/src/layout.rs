//! Every on-disk name tsdb uses, in one place.
//!
//! ```text
//! <data-dir>/
//!   blocks/<ULID>/meta.json, index, chunks   immutable blocks (any shard may own one)
//!   blocks/<ULID>.tmp/                       a block being written; removed on start
//!   blocks/<ULID>.deleting/                  a block being deleted; removed on start
//!   blocks/tombstones                        data deleted but not yet rewritten away
//!   wal/<shard>/<segment>                    each shard's write-ahead log (or wal.dir)
//!   wal/<shard>/checkpoint                   the recent flushes and their blocks
//!   wal/<shard>/migrating                    a shard-count migration under way (rare)
//!   wal/shards                               the shard count the WAL was written with
//!   lock                                     held while a server runs on the dir
//!   READONLY                                 the operator's persisted read-only switch
//!   snapshots/<name>/<ULID>/                 hard links of every live block at a
//!                                            snapshot (never read, never deleted)
//!   snapshots/<name>.tmp/                    a snapshot being linked; renamed when
//!                                            complete, removed when it failed
//! ```

use std::path::{Path, PathBuf};

pub const BLOCKS_DIR: &str = "blocks";
pub const WAL_DIR: &str = "wal";
pub const SNAPSHOTS_DIR: &str = "snapshots";
pub const LOCK_FILE: &str = "lock";
/// In the data dir: present while the operator's read-only switch is persisted
/// (`POST /api/v1/admin/readonly?persist=true`); every shard starts read-only.
pub const READONLY_FILE: &str = "READONLY";
pub const META_FILE: &str = "meta.json";
/// In `blocks/`: the tombstones of `delete_series` (`crate::tombstones`).
pub const TOMBSTONES_FILE: &str = "tombstones";
pub const INDEX_FILE: &str = "index";
pub const CHUNKS_FILE: &str = "chunks";
/// Under the WAL root: the shard count the `<shard>/` directories were written with.
pub const WAL_SHARDS_FILE: &str = "shards";
/// In a shard's WAL directory: the blocks its migration to a new shard count writes.
pub const WAL_MIGRATING_FILE: &str = "migrating";
/// Suffix a migrated old shard WAL directory takes before it is deleted.
pub const WAL_MIGRATED_SUFFIX: &str = ".migrated";
/// In a shard's WAL directory: the recent flush generations (`wal::checkpoint`).
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// Suffix of a block directory still being written: never read, removed on start.
pub const TMP_SUFFIX: &str = ".tmp";
/// Suffix a block directory is renamed to before it is deleted, so a crash halfway
/// through the deletion leaves a name that says so (removed on start), never a block
/// directory with some of its files gone.
pub const DELETING_SUFFIX: &str = ".deleting";
/// Suffix given to a block set aside because it could not be read: never deleted.
pub const BROKEN_SUFFIX: &str = ".broken";

pub fn blocks_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(BLOCKS_DIR)
}

pub fn block_dir(data_dir: &Path, ulid: &str) -> PathBuf {
    blocks_dir(data_dir).join(ulid)
}

pub fn tombstones_file(data_dir: &Path) -> PathBuf {
    blocks_dir(data_dir).join(TOMBSTONES_FILE)
}

pub fn readonly_marker(data_dir: &Path) -> PathBuf {
    data_dir.join(READONLY_FILE)
}

/// A snapshot's directory: `<data-dir>/snapshots/<name>`, laid out as `blocks/` is.
pub fn snapshot_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(SNAPSHOTS_DIR).join(name)
}

/// Where a snapshot is linked before it is complete: renamed to
/// [`snapshot_dir`] once every shard has linked its blocks.
pub fn snapshot_tmp_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir
        .join(SNAPSHOTS_DIR)
        .join(format!("{name}{TMP_SUFFIX}"))
}

pub fn block_tmp_dir(data_dir: &Path, ulid: &str) -> PathBuf {
    blocks_dir(data_dir).join(format!("{ulid}{TMP_SUFFIX}"))
}

/// The WAL directory of one shard under the WAL root (`<data-dir>/wal` or `wal.dir`).
pub fn shard_wal_dir(wal_root: &Path, shard: usize) -> PathBuf {
    wal_root.join(shard.to_string())
}

/// A WAL segment's file name: its sequence number, zero-padded so names sort.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:08}")
}

/// Parses a WAL segment file name back into its sequence number.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        assert_eq!(segment_name(42), "00000042");
        assert_eq!(parse_segment_name("00000042"), Some(42));
        assert_eq!(parse_segment_name("42"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
