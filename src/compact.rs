//! `tsdb compact --data-dir DIR [--shards N] [--retention D]`: the engine's offline
//! compaction (`tsdb_engine::compact_offline`) under the data dir's lock, with a
//! report of what it did.
//!
//! 0 = done, 1 = a server holds the data dir or a block is unreadable, 2 = usage or
//! I/O error.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use tsdb_engine::Error;
use tsdb_engine::compact_offline::compact_offline;
use tsdb_engine::storage::{DiskStorage, SystemClock};

use crate::config::tools::CompactArgs;
use crate::run::{LockError, lock_data_dir};
use crate::{EXIT_BAD, EXIT_ERROR};

pub fn compact(args: &CompactArgs) -> ExitCode {
    match run(args) {
        Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tsdb compact: write report: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        },
        Err((code, message)) => {
            eprintln!("tsdb compact: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(args: &CompactArgs) -> Result<String, (u8, String)> {
    let dir = &args.data_dir;
    let retention_ms = args
        .retention
        .as_deref()
        .map(|r| {
            crate::config::parse_duration(r)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|e| (EXIT_ERROR, format!("--retention {r:?}: {e}")))
        })
        .transpose()?;
    if args.shards == Some(0) {
        return Err((EXIT_ERROR, "--shards must be at least 1".to_owned()));
    }
    if !dir.is_dir() {
        return Err((
            EXIT_ERROR,
            format!("--data-dir {}: not a directory", dir.display()),
        ));
    }
    let _lock = lock_data_dir(dir).map_err(|e| match e {
        LockError::InUse(m) => (EXIT_BAD, format!("{m}; stop the server first")),
        LockError::Io(m) => (EXIT_ERROR, m),
    })?;
    let shards = match args.shards {
        Some(n) => Some(n),
        None => tsdb_engine::wal::shard_count::read(&dir.join(tsdb_engine::layout::WAL_DIR))
            .map_err(|e| (EXIT_ERROR, e.to_string()))?,
    };
    let report = compact_offline(&DiskStorage, &SystemClock::new(), dir, shards, retention_ms)
        .map_err(|e| match e {
            Error::Io { .. } => (EXIT_ERROR, e.to_string()),
            _ => (
                EXIT_BAD,
                format!("{e}; nothing after this was compacted (tsdb inspect the block, or start the server to set it aside)"),
            ),
        })?;
    let mut out = String::new();
    let _ = writeln!(out, "data dir {}", dir.display());
    let _ = writeln!(
        out,
        "blocks: {} -> {}",
        report.blocks_before, report.blocks_after
    );
    let _ = writeln!(
        out,
        "bytes: {} -> {}",
        report.bytes_before, report.bytes_after
    );
    for u in &report.expired {
        let _ = writeln!(out, "deleted past retention: {u}");
    }
    for u in &report.merged {
        let _ = writeln!(out, "wrote merged block: {u}");
    }
    if report.expired.is_empty() && report.merged.is_empty() {
        let _ = writeln!(out, "nothing to do");
    }
    Ok(out)
}
