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
    ReadOnly { reason: String },
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
            Error::ReadOnly { reason } => write!(f, "shard is read-only: {reason}"),
            Error::BadRequest(m) => f.write_str(m),
            Error::Unavailable(m) => write!(f, "unavailable: {m}"),
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
