//! The test double of [`Storage`] and [`Clock`]: an in-memory file system driven by a
//! seeded PRNG, and the deterministic simulation of a shard that runs on it
//! ([`run`]). Compiled always, so integration tests and a cargo-fuzz target can use it;
//! the server never does.
//!
//! [`SimStorage`] keeps two images of every file and directory:
//! - the *live* image, what reads see;
//! - the *durable* image, what survives a crash. A file's bytes become durable when it
//!   is synced (`sync_data`, or the fsync in `write_file_synced`/`truncate`); a create,
//!   rename or remove becomes durable when its directory is synced (`sync_dir`).
//!
//! [`SimStorage::crash`] replaces live by durable, and decides by the seed what
//! happened to everything that was not synced: each unsynced write survives whole,
//! vanishes (a lost write), survives as a prefix (a torn write) or comes back as zeros
//! or garbage; each directory keeps a random prefix of its unsynced operations (a
//! rename is one operation, so it is atomic, as POSIX promises).
//!
//! Faults are injected by probability ([`Faults`]): EIO on writes, on fsyncs and on
//! metadata operations, and ENOSPC once the live files exceed a byte capacity (the
//! write that crosses it is cut short). A WAL file whose write or sync failed must
//! never be written or synced again (the engine must not retry: fsyncgate); doing so
//! is recorded as a violation, see [`SimStorage::violations`]. The one exception is
//! an fdatasync after a write refused with ENOSPC: the bytes before that write are
//! whole, and syncing them is the first step of resuming after a full disk.
//!
//! Every future completes at once, so a shard on this storage runs deterministically
//! without an I/O driver. Paths must be absolute; renames must stay in one directory
//! (the engine's all do), so each is one atomic directory operation.

mod fs;
pub mod run;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::Clock;

pub use fs::{SimReadAt, SimStorage, SimWalFile};
pub use run::{Summary, check_ops, run_ops, seed_input};

pub use crate::rng::Rng;

/// The faults injected while the storage runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Chance that a write fails with EIO (nothing written).
    pub write_eio: f64,
    /// Chance that an fsync or fdatasync of a file fails with EIO (nothing synced).
    pub sync_eio: f64,
    /// Chance that a create, rename, remove, truncate or directory sync fails with EIO.
    pub meta_eio: f64,
    /// ENOSPC once the live files would hold more than this many bytes.
    pub capacity_bytes: Option<u64>,
}

impl Faults {
    pub const NONE: Faults = Faults {
        write_eio: 0.0,
        sync_eio: 0.0,
        meta_eio: 0.0,
        capacity_bytes: None,
    };
}

/// The kinds of operation a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// A write of file bytes.
    Write,
    /// An fsync or fdatasync of a file.
    Sync,
    /// A create, rename, remove, truncate or directory sync.
    Meta,
}

/// How unsynced writes fare at a crash; each weight is relative to their sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrashModel {
    pub keep: u32,
    pub lose: u32,
    pub tear: u32,
    pub zero: u32,
    pub garbage: u32,
    /// Whether a directory keeps a random prefix of its unsynced operations (as a
    /// journal commits them in order) or none of them (the worst case).
    pub dir_ops: DirCrash,
}

/// What a crash leaves of a directory's unsynced operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirCrash {
    RandomPrefix,
    KeepNone,
    KeepAll,
}

impl Default for CrashModel {
    fn default() -> Self {
        CrashModel {
            keep: 4,
            lose: 2,
            tear: 2,
            zero: 1,
            garbage: 1,
            dir_ops: DirCrash::RandomPrefix,
        }
    }
}

impl CrashModel {
    /// Nothing unsynced survives: every unsynced write and directory operation is lost.
    pub const LOSE_ALL: CrashModel = CrashModel {
        keep: 0,
        lose: 1,
        tear: 0,
        zero: 0,
        garbage: 0,
        dir_ops: DirCrash::KeepNone,
    };
}

/// What the storage did and what it injected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub writes: u64,
    pub syncs: u64,
    pub dir_syncs: u64,
    pub crashes: u64,
    pub write_eio: u64,
    pub sync_eio: u64,
    pub meta_eio: u64,
    pub enospc: u64,
    /// Faults (EIO or ENOSPC) on writes and syncs of WAL files.
    pub wal_faults: u64,
    /// Unsynced writes at crashes, by what became of them.
    pub kept_writes: u64,
    pub lost_writes: u64,
    pub torn_writes: u64,
    pub zeroed_writes: u64,
    pub garbage_writes: u64,
    /// Unsynced directory operations a crash dropped.
    pub dir_ops_lost: u64,
}

impl SimStats {
    /// Faults injected while running (not counting what crashes did).
    pub fn faults(&self) -> u64 {
        self.write_eio + self.sync_eio + self.meta_eio + self.enospc
    }
}

/// A clock the test moves: wall time only advances when told, and ULIDs take their
/// random bits from the seed.
#[derive(Debug)]
pub struct SimClock {
    now_ms: Cell<i64>,
    start_ms: i64,
    rng: RefCell<Rng>,
}

impl SimClock {
    pub fn new(start_ms: i64, seed: u64) -> SimClock {
        SimClock {
            now_ms: Cell::new(start_ms),
            start_ms,
            rng: RefCell::new(Rng::new(seed)),
        }
    }

    /// Moves wall time (and the monotonic clock with it) forward.
    pub fn advance(&self, ms: i64) {
        self.now_ms.set(self.now_ms.get().saturating_add(ms.max(0)));
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.now_ms.get().saturating_sub(self.start_ms) as u64)
    }

    fn ulid(&self) -> ulid::Ulid {
        let mut rng = self.rng.borrow_mut();
        let random = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        ulid::Ulid::from_parts(self.now_ms.get().max(0) as u64, random)
    }
}
