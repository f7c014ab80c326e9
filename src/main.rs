//! The `tsdb` binary: turns flags > `TSDB_*` env > YAML > defaults into one `Config`,
//! sets up logging, and runs the chosen command.

mod check;
mod client;
mod compact;
mod config;
mod host;
mod inspect;
mod logging;
mod process;
mod profile;
mod run;
mod security;
mod transfer;

use std::io::Write;
use std::process::ExitCode;

use config::tools::Tool;
use config::{Command, ConfigError};

/// The exit statuses of the operator's tools: the thing checked is fine, it is bad (or
/// the server said no), or the tool could not do its job (usage, I/O, connection).
pub const EXIT_BAD: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// jemalloc instead of glibc malloc: requests are decoded on one core and their
/// buffers freed on the shard's core, and glibc's per-arena locks made that cross-core
/// free a hot spot (about a third of ingest CPU in a profile of a remote_write load).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let command = match config::from_process() {
        Ok(c) => c,
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("tsdb: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "tsdb {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::InspectWal { dir, json } => inspect::inspect_wal(&dir, json),
        Command::Tool(Tool::Inspect(a)) => inspect::inspect_block_dir(&a.dir, a.json),
        Command::Tool(Tool::Check(a)) => check::check(&a),
        Command::Tool(Tool::Compact(a)) => compact::compact(&a),
        Command::Tool(Tool::Snapshot(a)) => transfer::snapshot(&a),
        Command::Tool(Tool::Export(a)) => transfer::export(&a),
        Command::Tool(Tool::Import(a)) => transfer::import(&a),
        Command::Start(cfg) => {
            logging::init(cfg.log_level, cfg.log_format, cfg.log_output);
            run::run(*cfg)
        }
    }
}
