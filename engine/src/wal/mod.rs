//! The write-ahead log of one shard: `wal/<shard>/<segment>` files of framed,
//! checksummed records.
//!
//! - [`record`]: the record framing and the payloads (series, samples).
//! - [`segment`]: segment files, their header, and listing them.
//! - [`writer`]: appends grouped records through io_uring and syncs them.
//! - [`reader`]: reads segments back on start, repairing a torn tail.
//! - [`checkpoint`]: which segments a flushed block has made obsolete.
//! - [`inspect`]: the read-only report of `tsdb inspect-wal`.
//! - [`shard_count`]: the shard count the WAL root was written with.
//!
//! See `engine/docs/format/wal.md` for the byte layout and the crash analysis.

pub mod checkpoint;
pub mod inspect;
pub mod reader;
pub mod record;
pub mod segment;
pub mod shard_count;
pub mod writer;

/// When the WAL is synced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// fdatasync before every acknowledgement (group commit shares one sync).
    Always,
    /// fdatasync on a timer; a crash may lose up to one interval of writes.
    Interval,
    /// Never sync explicitly; the kernel writes back when it wants.
    Never,
}
