//! The command line: `tsdb start [options]`, `tsdb version` and `tsdb --version`.
//!
//! Every option is an `Option<String>` with no clap default and no clap `env`: clap only
//! tells us what was typed, and `super` layers it over `TSDB_*` variables, the YAML file
//! and the defaults, parsing all of them with the same functions so a value means the
//! same thing wherever it is written. The defaults and variable names shown in `--help`
//! are therefore written out by hand here; a test in this file checks them against
//! `super::OPTIONS`, the table the layering actually uses.

use clap::{Args, Parser, Subcommand};

/// `tsdb`: the time-series database server.
#[derive(Debug, Parser)]
#[command(
    name = "tsdb",
    version,
    about = "A thread-per-core time-series database server speaking the Prometheus APIs",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub(super) enum Sub {
    /// Start the server.
    ///
    /// Each option is taken from, in order of precedence: the flag, its TSDB_* environment
    /// variable, the YAML file given by --config, the default. Durations are written like
    /// 30d, 720h, 1h30m, 500ms (units ms, s, m, h, d, w, y=365d); sizes like 1024, 512KB,
    /// 256MB, 1GB, where KB/MB/GB are multiples of 1024 (256MB = 268435456 bytes).
    /// Booleans accept true, false, 1 or 0; a boolean flag alone means true.
    // Boxed because the arguments are large and `Version` is empty (clippy's
    // large_enum_variant).
    Start(Box<StartArgs>),
    /// Report on a WAL directory without changing it.
    ///
    /// <DIR> is one shard's WAL directory (data/wal/0) or the WAL root (data/wal, then
    /// every shard). The report lists each segment (name, bytes, records), the series
    /// and sample counts, the min and max timestamps, the checkpoint, and every damage
    /// the next start would log (shard, segment, offset, bytes dropped, reason). Files
    /// are opened for reading only; nothing is repaired.
    ///
    /// Exit status: 0 = the WAL is clean, 1 = damage was found (the report says where),
    /// 2 = usage error, or <DIR> could not be read or is no WAL directory.
    InspectWal(InspectWalArgs),
    #[command(flatten)]
    Tool(super::tools::Tool),
    /// Print the version and exit.
    Version,
}

/// The arguments of `tsdb inspect-wal`.
#[derive(Debug, Args)]
pub(super) struct InspectWalArgs {
    /// A shard's WAL directory (data/wal/0) or the WAL root (data/wal)
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

/// The options of `tsdb start`, exactly as typed; `None` when absent.
#[derive(Debug, Default, Args)]
pub(super) struct StartArgs {
    /// YAML configuration file [env: TSDB_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<String>,

    /// Listen address; ":8080" means all interfaces, "127.0.0.1:0" picks a free port [default: :8080] [env: TSDB_LISTEN] [yaml: server.listen]
    #[arg(long, value_name = "ADDR", help_heading = "Server")]
    pub listen: Option<String>,
    /// Time allowed to read a request [default: 30s] [env: TSDB_READ_TIMEOUT] [yaml: server.read_timeout]
    #[arg(long, value_name = "DURATION", help_heading = "Server")]
    pub read_timeout: Option<String>,
    /// Time allowed to write a response [default: 30s] [env: TSDB_WRITE_TIMEOUT] [yaml: server.write_timeout]
    #[arg(long, value_name = "DURATION", help_heading = "Server")]
    pub write_timeout: Option<String>,
    /// Open connections allowed; more are answered 503 and closed [default: 10000] [env: TSDB_MAX_CONNECTIONS] [yaml: server.max_connections]
    #[arg(long, value_name = "N", help_heading = "Server")]
    pub max_connections: Option<String>,
    /// Number of shards, one per core, 1 to 1024 [default: number of online CPUs] [env: TSDB_SHARDS] [yaml: server.shards]
    #[arg(long, value_name = "N", help_heading = "Server")]
    pub shards: Option<String>,
    /// I/O driver: auto (io_uring, else epoll), io-uring (or refuse to start), epoll [default: auto] [env: TSDB_IO_DRIVER] [yaml: server.io_driver]
    #[arg(long, value_name = "DRIVER", help_heading = "Server")]
    pub io_driver: Option<String>,
    /// PEM certificate chain to serve HTTPS with; needs --tls-key; re-read on SIGHUP [default: none, plain HTTP] [env: TSDB_TLS_CERT] [yaml: server.tls_cert]
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub tls_cert: Option<String>,
    /// PEM private key (PKCS#8, RSA or EC) of --tls-cert; re-read on SIGHUP [default: none] [env: TSDB_TLS_KEY] [yaml: server.tls_key]
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub tls_key: Option<String>,
    /// YAML file of tokens and users with their roles; without it every route is open; re-read on SIGHUP [default: none] [env: TSDB_AUTH_FILE] [yaml: auth.file]
    #[arg(long, value_name = "FILE", help_heading = "Server")]
    pub auth_file: Option<String>,

    /// Data directory [default: ./data] [env: TSDB_DATA_DIR] [yaml: storage.data_dir]
    #[arg(long, value_name = "PATH", help_heading = "Storage")]
    pub data_dir: Option<String>,
    /// Data retention period [default: 30d] [env: TSDB_RETENTION] [yaml: storage.retention]
    #[arg(long, value_name = "DURATION", help_heading = "Storage")]
    pub retention: Option<String>,
    /// MemTable size, at least 1MiB [default: 256MB] [env: TSDB_MEMTABLE_SIZE] [yaml: storage.memtable_size]
    #[arg(long, value_name = "SIZE", help_heading = "Storage")]
    pub memtable_size: Option<String>,

    /// Enable the Write-Ahead Log [default: true] [env: TSDB_WAL_ENABLED] [yaml: wal.enabled]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Write-ahead log")]
    pub wal_enabled: Option<String>,
    /// WAL directory [default: <data-dir>/wal] [env: TSDB_WAL_DIR] [yaml: wal.dir]
    #[arg(long, value_name = "PATH", help_heading = "Write-ahead log")]
    pub wal_dir: Option<String>,
    /// WAL segment size, at least 1MiB [default: 128MB] [env: TSDB_WAL_SEGMENT_SIZE] [yaml: wal.segment_size]
    #[arg(long, value_name = "SIZE", help_heading = "Write-ahead log")]
    pub wal_segment_size: Option<String>,
    /// When to fsync the WAL: always, interval or never [default: interval] [env: TSDB_WAL_SYNC] [yaml: wal.sync]
    #[arg(long, value_name = "MODE", help_heading = "Write-ahead log")]
    pub wal_sync: Option<String>,
    /// Time between WAL fsyncs when --wal-sync=interval, at least 1ms [default: 1s] [env: TSDB_WAL_SYNC_INTERVAL] [yaml: wal.sync_interval]
    #[arg(long, value_name = "DURATION", help_heading = "Write-ahead log")]
    pub wal_sync_interval: Option<String>,

    /// Enable compaction [default: true] [env: TSDB_COMPACTION_ENABLED] [yaml: compaction.enabled]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Compaction")]
    pub compaction_enabled: Option<String>,
    /// Compaction interval, at least 1s [default: 5m] [env: TSDB_COMPACTION_INTERVAL] [yaml: compaction.interval]
    #[arg(long, value_name = "DURATION", help_heading = "Compaction")]
    pub compaction_interval: Option<String>,
    /// Compactions allowed to run at once [default: 2] [env: TSDB_COMPACTION_CONCURRENCY] [yaml: compaction.concurrency]
    #[arg(long, value_name = "N", help_heading = "Compaction")]
    pub compaction_concurrency: Option<String>,

    /// Log level: debug, info, warn, error [default: info] [env: TSDB_LOG_LEVEL] [yaml: logging.level]
    #[arg(long, value_name = "LEVEL", help_heading = "Logging")]
    pub log_level: Option<String>,
    /// Log format: json, text [default: json] [env: TSDB_LOG_FORMAT] [yaml: logging.format]
    #[arg(long, value_name = "FORMAT", help_heading = "Logging")]
    pub log_format: Option<String>,
    /// Log output: stdout, stderr [default: stdout] [env: TSDB_LOG_OUTPUT] [yaml: logging.output]
    #[arg(long, value_name = "OUTPUT", help_heading = "Logging")]
    pub log_output: Option<String>,

    /// Serve Prometheus metrics [default: true] [env: TSDB_METRICS_ENABLED] [yaml: metrics.enabled]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Metrics")]
    pub metrics_enabled: Option<String>,
    /// HTTP path of the metrics, starting with / [default: /metrics] [env: TSDB_METRICS_PATH] [yaml: metrics.path]
    #[arg(long, value_name = "PATH", help_heading = "Metrics")]
    pub metrics_path: Option<String>,

    /// Largest request body accepted [default: 64MB] [env: TSDB_MAX_BODY_SIZE] [yaml: limits.max_body_size]
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_body_size: Option<String>,
    /// Most series in one write request [default: 1000000] [env: TSDB_MAX_SERIES_PER_REQUEST] [yaml: limits.max_series_per_request]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_series_per_request: Option<String>,
    /// Most labels on one series [default: 64] [env: TSDB_MAX_LABELS_PER_SERIES] [yaml: limits.max_labels_per_series]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_labels_per_series: Option<String>,
    /// Longest label name, in bytes [default: 256] [env: TSDB_MAX_LABEL_NAME_LENGTH] [yaml: limits.max_label_name_length]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_label_name_length: Option<String>,
    /// Longest label value, in bytes [default: 16384] [env: TSDB_MAX_LABEL_VALUE_LENGTH] [yaml: limits.max_label_value_length]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_label_value_length: Option<String>,

    /// Most series the heads may hold; writes creating more get 429, 0 for no limit [default: 0] [env: TSDB_MAX_SERIES] [yaml: limits.max_series]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub max_series: Option<String>,
    /// Request body bytes, raw and decompressed, one core holds at once; beyond it requests get 503 [default: 256MB] [env: TSDB_MAX_INFLIGHT_BODY_SIZE] [yaml: limits.max_inflight_body_size]
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub max_inflight_body_size: Option<String>,
    /// Requests per second one client may send (its identity with --auth-file, else its IP); beyond it 429, 0 for no limit [default: 0] [env: TSDB_RATE_LIMIT] [yaml: limits.rate_limit]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rate_limit: Option<String>,
    /// Requests one client may send at once before --rate-limit applies, 0 for the same as --rate-limit [default: 0] [env: TSDB_RATE_LIMIT_BURST] [yaml: limits.rate_limit_burst]
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rate_limit_burst: Option<String>,

    /// Query time limit [default: 2m] [env: TSDB_QUERY_TIMEOUT] [yaml: query.timeout]
    #[arg(long, value_name = "DURATION", help_heading = "Query")]
    pub query_timeout: Option<String>,
    /// Samples one query may hold [default: 50000000] [env: TSDB_QUERY_MAX_SAMPLES] [yaml: query.max_samples]
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub query_max_samples: Option<String>,
    /// Regex matchers (=~, !~) one query or one request's match[] may hold [default: 64] [env: TSDB_QUERY_MAX_REGEX_MATCHERS] [yaml: query.max_regex_matchers]
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub query_max_regex_matchers: Option<String>,
    /// Instant selector lookback [default: 5m] [env: TSDB_QUERY_LOOKBACK_DELTA] [yaml: query.lookback_delta]
    #[arg(long, value_name = "DURATION", help_heading = "Query")]
    pub query_lookback_delta: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn start_help() -> String {
        let mut command = Cli::command();
        let start = command.find_subcommand_mut("start").unwrap();
        start.render_help().to_string()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The help text is written by hand; this keeps it true to the table `super` uses.
    #[test]
    fn help_lists_every_option_with_default_env_and_key() {
        let help = start_help();
        for opt in super::super::OPTIONS {
            // clap puts the description on the next line when the line would be too
            // wide, so an option's entry is its line and the one after it.
            let lines: Vec<&str> = help.lines().collect();
            let at = lines
                .iter()
                .position(|line| line.trim_start().starts_with(&format!("--{} ", opt.flag)))
                .unwrap_or_else(|| panic!("--{} missing from help:\n{help}", opt.flag));
            let line = lines[at..lines.len().min(at + 2)].join(" ");
            assert!(line.contains(&format!("[env: {}]", opt.env)), "{line}");
            if let Some(default) = opt.default {
                assert!(line.contains(&format!("[default: {default}]")), "{line}");
            } else if opt.yaml.is_empty() {
                // --config has neither a default nor a YAML key.
            } else {
                assert!(line.contains("[default: "), "{line}");
            }
            if !opt.yaml.is_empty() {
                assert!(line.contains(&format!("[yaml: {}]", opt.yaml)), "{line}");
            }
        }
    }

    #[test]
    fn help_has_no_option_missing_from_the_table() {
        let command = Cli::command();
        let start = command.find_subcommand("start").unwrap();
        for arg in start.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            assert!(
                super::super::OPTIONS.iter().any(|opt| opt.flag == long),
                "--{long} is not in OPTIONS"
            );
        }
    }
}
