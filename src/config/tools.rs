//! The command line of the operator's tools beside `tsdb start`: `inspect` (one block),
//! `check` (host preflight), and `snapshot`, `export`, `import` (clients of a running
//! server). Unlike `start`'s options these are not layered over YAML: each is a flag,
//! and only the client's URL and token also come from `TSDB_URL` and `TSDB_TOKEN`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The variables the client commands read (`super::from_process` must not refuse them).
pub const CLIENT_ENV: [&str; 2] = [URL_ENV, TOKEN_ENV];
pub const URL_ENV: &str = "TSDB_URL";
pub const TOKEN_ENV: &str = "TSDB_TOKEN";
pub const DEFAULT_URL: &str = "http://localhost:8080";

#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Report on one block and verify every byte of it, without changing it.
    ///
    /// <BLOCK_DIR> is one block directory (data/blocks/<ULID>). The report gives the
    /// meta (ULID, shard, level, sources, parents, min and max time as RFC 3339 and ms),
    /// the series, sample and chunk counts, the size of each file, the label names
    /// carried by the most series, and the result of an integrity check that reads and
    /// decodes every chunk and the whole index. Files are opened for reading only.
    ///
    /// Exit status: 0 = the block is intact, 1 = it is damaged (the report says what
    /// and where), 2 = usage error, or <BLOCK_DIR> is no block directory or could not
    /// be read.
    Inspect(InspectArgs),
    /// Compact a stopped server's blocks offline, as the server's compaction would.
    ///
    /// Takes the data dir's lock (as tsdb start does, so it refuses while a server runs
    /// on it), finishes what a crash interrupted, deletes the blocks wholly past
    /// --retention if given (no retention pass without it), then merges each shard's
    /// blocks by the server's plan until nothing is left to merge. Each merged block is
    /// in place before its parents are deleted, so an interrupted run loses nothing:
    /// run it again, or start the server. The WAL is not touched.
    ///
    /// Exit status: 0 = done (also when there was nothing to do), 1 = a server holds
    /// the data dir, or a block could not be read (see tsdb inspect), 2 = usage error,
    /// or the data dir could not be read or written.
    Compact(CompactArgs),
    /// Check this host for what tsdb needs.
    ///
    /// Looks at io_uring, the memlock and open-files limits, the data dir's file
    /// system, free space and inodes, O_DIRECT, CPUs against --shards, transparent
    /// huge pages and the block device's I/O scheduler (tuning/README.md says why).
    ///
    /// Each line reads `ok|warn|fail <name>: <detail> (<advice>)`. A data dir that does
    /// not exist yet is a warning (tsdb start creates it); its nearest existing parent
    /// is checked instead. The check writes one small temporary file into the data dir
    /// (or that parent) and removes it.
    ///
    /// Exit status: 0 = no failure (warnings allowed), 1 = at least one failure,
    /// 2 = usage error.
    Check(CheckArgs),
    /// Ask a running server for a snapshot of its blocks.
    ///
    /// Calls POST /api/v1/admin/snapshot (admin role when the server has --auth-file)
    /// and prints the snapshot's name and its directory, <data-dir>/snapshots/<name>,
    /// which holds blocks in the layout of <data-dir>/blocks and can be the data dir of
    /// a new `tsdb start` after a copy.
    ///
    /// Exit status: 0 = snapshot created, 1 = the server refused (its error is printed),
    /// 2 = usage error, or the server could not be reached.
    Snapshot(SnapshotArgs),
    /// Stream series from a running server as JSON lines (GET /api/v1/export).
    ///
    /// One JSON object per series: {"metric":{...},"values":[...],"timestamps":[...]},
    /// the format `tsdb import` and /api/v1/import read. Without --match every series
    /// is exported. Times are RFC 3339 or Unix seconds, as in the query API.
    ///
    /// With --data-dir it reads a stopped server's blocks and WAL itself (for when the
    /// server cannot start), changing nothing but taking the data dir's lock, so it
    /// refuses while a server runs there.
    ///
    /// Exit status: 0 = exported, 1 = the server refused (its error is printed), or
    /// with --data-dir a server holds the data dir, a block could not be read, or the
    /// WAL is damaged (what could be read was exported; stderr names each damage),
    /// 2 = usage error, the server could not be reached, or the input or output could
    /// not be read or written.
    Export(ExportArgs),
    /// Send JSON lines (the format of `tsdb export`) to a running server.
    ///
    /// POST /api/v1/import, in batches of at most 10000 lines and 4 MiB. Batches are sent in order; a batch the server refuses stops the import, and the
    /// message names the line range that was not imported (the lines before it were).
    /// Re-running an import is harmless: the same sample written twice is stored once.
    ///
    /// Exit status: 0 = every line imported, 1 = the server refused a batch,
    /// 2 = usage error, the input could not be read, or the server could not be reached.
    Import(ImportArgs),
}

/// The arguments of `tsdb inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A block directory (data/blocks/<ULID>)
    #[arg(value_name = "BLOCK_DIR")]
    pub dir: PathBuf,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `tsdb compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The data directory of a stopped server
    #[arg(long, value_name = "PATH")]
    pub data_dir: PathBuf,
    /// The shard count the server runs with: each shard's blocks are merged among
    /// themselves [default: the count recorded in <data-dir>/wal/shards, else the shard
    /// that wrote each block]
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Delete blocks wholly older than this first, e.g. 30d [default: no retention pass]
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
}

/// The arguments of `tsdb check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The data directory tsdb will use
    #[arg(long, value_name = "PATH", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The shard count tsdb will run with [default: the CPUs this process may use]
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

/// How the client commands reach the server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's URL, http:// or https:// [default: http://localhost:8080] [env: TSDB_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding the bearer token to send (a token is never taken on the command line) [env: TSDB_TOKEN holds the token itself]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust for an https:// URL, instead of the built-in web roots
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// The arguments of `tsdb snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Leave out the samples still in memory (only blocks already on disk)
    #[arg(long)]
    pub skip_head: bool,
    /// Print the server's JSON answer instead of text
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `tsdb export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Series selector, e.g. 'up{job="node"}'; repeat for a union [default: every series]
    #[arg(long = "match", value_name = "SELECTOR")]
    pub matches: Vec<String>,
    /// Start of the time range (RFC 3339 or Unix seconds) [default: the oldest sample]
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// End of the time range (RFC 3339 or Unix seconds) [default: the newest sample]
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Write to this file instead of stdout (created or truncated)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read a stopped server's data dir (blocks and WAL) instead of asking a server
    #[arg(long, value_name = "PATH", conflicts_with_all = ["url", "token_file", "ca_cert"])]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: the WAL directory, when the server runs with --wal-dir [default: <data-dir>/wal]
    #[arg(long, value_name = "PATH", requires = "data_dir")]
    pub wal_dir: Option<PathBuf>,
}

/// The arguments of `tsdb import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// JSON lines file to import, or - for stdin
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
}
