//! The engine's typed errors. Each carries its evidence (path, segment, offset) so the
//! one place that logs it can say what happened and where.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug)]
pub enum Error {
    /// An I/O call failed; `context` reads as steps ("flush block: write index").
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Bytes on disk do not decode.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A checksum did not match.
    ChecksumMismatch {
        path: PathBuf,
        offset: u64,
        expected: u32,
        got: u32,
    },
    /// The shard refuses writes: a failed write or fsync, a full disk, or the operator.
    ReadOnly {
        shard: u32,
        cause: ReadOnlyCause,
        reason: String,
    },
    /// The request was refused before anything was written.
    BadRequest(String),
    /// The shard is gone (shutting down).
    Unavailable(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// Whether the error means the disk is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Corrupt {
                path,
                offset,
                reason,
            } => write!(f, "{}: offset {offset}: {reason}", path.display()),
            Error::ChecksumMismatch {
                path,
                offset,
                expected,
                got,
            } => write!(
                f,
                "{}: offset {offset}: checksum mismatch (expected {expected:#010x}, got {got:#010x})",
                path.display()
            ),
            Error::ReadOnly {
                shard,
                cause,
                reason,
            } => write!(
                f,
                "shard {shard} is read-only ({}): {reason}; {}",
                cause.as_str(),
                cause.remedy()
            ),
            Error::BadRequest(m) => f.write_str(m),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

/// Why a shard refuses writes. The cause decides the answer (507 for a full disk,
/// 503 otherwise) and whether writes may resume without a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOnlyCause {
    /// A write failed with ENOSPC and no fsync failed: nothing acknowledged is at risk,
    /// and writes resume once space is freed (automatically, or on
    /// `POST /api/v1/admin/writable`).
    DiskFull,
    /// A write failed with another error (EIO, …). The state of the bytes on disk is
    /// unknown, so only a restart (WAL replay) may resume writes.
    IoError,
    /// An fsync failed. The kernel may have dropped the dirty pages and a retry could
    /// report success for data that is gone (fsyncgate): only a restart is safe.
    FsyncFailed,
    /// The operator asked (`POST /api/v1/admin/readonly`).
    Operator,
}

impl ReadOnlyCause {
    /// Every cause, for metrics that show one series per cause.
    pub const ALL: [ReadOnlyCause; 4] = [
        ReadOnlyCause::DiskFull,
        ReadOnlyCause::IoError,
        ReadOnlyCause::FsyncFailed,
        ReadOnlyCause::Operator,
    ];

    /// The name in metrics, status and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadOnlyCause::DiskFull => "disk_full",
            ReadOnlyCause::IoError => "io_error",
            ReadOnlyCause::FsyncFailed => "fsync_failed",
            ReadOnlyCause::Operator => "operator",
        }
    }

    /// Whether writes may resume without a restart.
    pub fn resumable(self) -> bool {
        matches!(self, ReadOnlyCause::DiskFull | ReadOnlyCause::Operator)
    }

    /// What brings writes back, in words for the error message.
    pub fn remedy(self) -> &'static str {
        match self {
            ReadOnlyCause::DiskFull => {
                "writes resume once disk space is freed (automatically, or POST /api/v1/admin/writable)"
            }
            ReadOnlyCause::IoError | ReadOnlyCause::FsyncFailed => {
                "a restart is needed to resume writes (the WAL is replayed on start)"
            }
            ReadOnlyCause::Operator => "POST /api/v1/admin/writable resumes writes",
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Adds step context to an I/O result.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
