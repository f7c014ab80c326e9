//! The `tsdb` binary: turns flags > `TSDB_*` env > YAML > defaults into one `Config`,
//! sets up logging, and runs the chosen command.

mod config;
mod inspect;
mod logging;
mod process;
mod run;
mod security;

use std::io::Write;
use std::process::ExitCode;

use config::{Command, ConfigError};

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
        Command::Start(cfg) => {
            logging::init(cfg.log_level, cfg.log_format, cfg.log_output);
            run::run(*cfg)
        }
    }
}
