//! The engine's seam to the outside world: every file-system call goes through
//! [`Storage`] and every reading of time through [`Clock`].
//!
//! - [`disk`]: [`DiskStorage`] (io_uring for WAL writes, `std::fs` for the rest) and
//!   [`SystemClock`], what the server runs on.
//! - [`sim`]: [`sim::SimStorage`] and [`sim::SimClock`], the test double: an in-memory
//!   file system with a live and a durable image, seeded faults and crashes, and the
//!   deterministic simulation of a shard that runs on it.
//!
//! **Architecture Invariant:** the engine touches the file system only through
//! `Storage` and reads time only through `Clock` (checked by `tests/tidy.rs`), so a
//! simulation can drive a shard through faults and crashes deterministically.
//!
//! The shard is generic over its storage, so the WAL's hot path pays no dynamic
//! dispatch; blocks read their `chunks` file through a `Box<dyn ReadAt>`, one virtual
//! call per chunk read.

pub mod disk;
pub mod sim;

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::time::Duration;

pub use disk::{DiskStorage, SystemClock};

/// A directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// What [`Storage::metadata`] tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub len: u64,
    pub is_dir: bool,
}

/// Every file-system operation the shard path needs. Paths are absolute or relative
/// to the process' working directory, as the configuration gives them.
///
/// Durability follows POSIX, and the simulated disk enforces it: a file's bytes
/// survive a crash once the file is synced; a create, rename or remove survives once
/// the directory holding it is synced ([`Storage::sync_dir`]).
#[expect(
    async_fn_in_trait,
    reason = "shards are thread-per-core: their futures never cross threads"
)]
pub trait Storage: Clone + 'static {
    /// A WAL segment open for appending.
    type WalFile: WalFile;

    /// Creates `path`, which must not exist, for WAL appends.
    async fn create_wal_file(&self, path: &Path) -> io::Result<Self::WalFile>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens a file for positioned reads.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>>;
    /// The entries of a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// Length and kind of `path` (not following a final symlink).
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Creates one directory; its parent must exist.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and any missing parents, durably: the parent of each
    /// directory it creates is synced, so a crash cannot take the new directory (and
    /// every file later synced into it) away.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, or a directory to a name that does not exist.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes `to` (which must not exist) a second name of the file `from`: a hard
    /// link, so both must be on one filesystem. Durable once `to`'s directory is synced.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Cuts a file to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Syncs a directory, making the creates, renames and removes in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) `path`, writes `bytes` and syncs the file (not its
    /// directory).
    fn write_file_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Bytes an unprivileged writer may still use on the filesystem holding `path`.
    fn available_bytes(&self, path: &Path) -> io::Result<u64>;
}

/// A WAL segment open for appending: positioned writes and `fdatasync`.
#[expect(
    async_fn_in_trait,
    reason = "shards are thread-per-core: their futures never cross threads"
)]
pub trait WalFile {
    /// Writes all of `buf` at `offset`.
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> io::Result<()>;
    /// fdatasync: the bytes written so far survive a crash once this returns `Ok`.
    async fn sync_data(&self) -> io::Result<()>;
    /// Closes the file; unsynced bytes stay unsynced.
    async fn close(self) -> io::Result<()>;
}

/// A file open for positioned reads (a block's `chunks`).
pub trait ReadAt: Debug {
    /// Fills `buf` from `offset`; fewer bytes than asked is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn file_len(&self) -> io::Result<u64>;
}

/// Time, as the engine reads it: wall clock for retention, a monotonic clock for
/// durations, and block ids.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Time since an arbitrary fixed start; never goes back.
    fn monotonic(&self) -> Duration;
    /// A fresh ULID: the clock's time and random bits (seeded in a simulation).
    fn ulid(&self) -> ulid::Ulid;
}

/// Runs `f` to completion on a fresh monoio runtime with timers, for unit tests of code
/// that awaits [`DiskStorage`]'s io_uring files (the legacy driver: tests may run where
/// io_uring is blocked).
#[cfg(test)]
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => rt.block_on(f),
        Err(e) => panic!("a monoio runtime for a test: {e}"),
    }
}
