//! The configuration of the `tsdb` binary: one [`Config`] built from, per option, the
//! command-line flag, else its `TSDB_*` environment variable, else the YAML file named
//! by `--config`, else the default.
//!
//! [`OPTIONS`] is the one table of options: flag, variable, YAML key, default. Layering,
//! the check for unknown `TSDB_*` variables and the `--help` test all read it. Every
//! layer is parsed by the same function per option, and every layer that is present is
//! parsed, not only the winner: a typo in the YAML file is an error even while a flag
//! overrides it, so it cannot lie in wait for the day the flag is removed.
//!
//! Parsing is pure apart from reading the YAML file ([`parse_cli`] takes the arguments
//! and the environment), so tests cover it without touching the process.

mod cli;
pub mod tools;
mod units;
mod yaml;

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser as _;
use serde_json::Value;

pub use units::{format_duration, parse_duration, parse_size};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// `tsdb start`: run the server with this configuration.
    Start(Box<Config>),
    /// `tsdb version`: print `tsdb <version>` and exit, as `tsdb --version` does.
    Version,
    /// `tsdb inspect-wal <dir> [--json]`: report on a WAL directory, changing nothing.
    InspectWal { dir: std::path::PathBuf, json: bool },
    /// `tsdb inspect|check|snapshot|export|import`: the operator's tools.
    Tool(tools::Tool),
}

/// The effective configuration of the server; see the operations guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The listen address as written, e.g. `:8080`; used in log lines.
    pub listen: String,
    /// `listen` resolved: `:8080` is `0.0.0.0:8080`, `localhost` is `127.0.0.1`.
    pub listen_addr: SocketAddr,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// Open connections allowed across the process; more are answered 503 and closed.
    pub max_connections: usize,
    pub io_driver: IoDriver,
    /// 1..=1024; defaults to the number of online CPUs.
    pub shards: usize,
    pub data_dir: PathBuf,
    pub retention: Duration,
    pub memtable_size_bytes: u64,
    pub wal_enabled: bool,
    /// Defaults to `<data_dir>/wal`, following wherever `data_dir` came from.
    pub wal_dir: PathBuf,
    pub wal_segment_size_bytes: u64,
    pub wal_sync: WalSync,
    pub wal_sync_interval: Duration,
    pub compaction_enabled: bool,
    pub compaction_interval: Duration,
    pub compaction_concurrency: usize,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    pub log_output: LogOutput,
    pub metrics_enabled: bool,
    /// Starts with `/`.
    pub metrics_path: String,
    pub max_body_bytes: u64,
    pub max_series_per_request: usize,
    pub max_labels_per_series: usize,
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
    /// Series the heads may hold; 0 means no bound.
    pub max_series: usize,
    /// Request body bytes (raw and decompressed) one core holds at once.
    pub max_inflight_body_bytes: u64,
    /// Prometheus' `--query.timeout`.
    pub query_timeout: Duration,
    /// Prometheus' `--query.max-samples`.
    pub query_max_samples: usize,
    /// Regex matchers one query or one request's `match[]` may hold.
    pub query_max_regex_matchers: usize,
    /// Prometheus' `--query.lookback-delta`.
    pub query_lookback_delta: Duration,
    /// PEM certificate chain and key to serve HTTPS with; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The YAML file of tokens and users; `None`: every route is open.
    pub auth_file: Option<PathBuf>,
    /// Requests per second per client; 0 means no limit.
    pub rate_limit: u64,
    /// Requests a client may send at once; 0 means the same as `rate_limit`.
    pub rate_limit_burst: u64,
    /// The YAML file the configuration was read from, if any.
    pub config_file: Option<PathBuf>,
}

/// When the WAL is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalSync {
    /// After every write, before it is acknowledged.
    Always,
    /// Every `wal_sync_interval`; a crash loses at most that much acknowledged data.
    Interval,
    /// Never explicitly; the kernel writes back when it likes.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Which I/O driver the shard executors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// io_uring where the kernel allows it, epoll otherwise.
    Auto,
    /// io_uring or refuse to start.
    IoUring,
    /// epoll and synchronous file calls.
    Epoll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

/// Lowercase names, as written in flags and YAML, for enums that have them.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name as written in flags, variables and YAML.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }

            fn parse_name(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!("expected one of {}", [$($name),+].join(", "))),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(WalSync { Always => "always", Interval => "interval", Never => "never" });
named_enum!(LogLevel { Debug => "debug", Info => "info", Warn => "warn", Error => "error" });
named_enum!(LogFormat { Json => "json", Text => "text" });
named_enum!(LogOutput { Stdout => "stdout", Stderr => "stderr" });
named_enum!(IoDriver { Auto => "auto", IoUring => "io-uring", Epoll => "epoll" });

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, without its dashes.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key (`storage.retention`) of a YAML file.
    File { file: PathBuf, key: String },
}

/// Why the configuration could not be built. `Display` names the flag, variable or
/// file and key at fault.
#[derive(Debug)]
pub enum ConfigError {
    /// clap's own outcome: `--help`, `--version`, a usage error or an unknown flag.
    /// Call [`clap::Error::exit`] on it: it prints to the right stream with the right
    /// exit code (0 for help and version, 2 otherwise).
    Clap(clap::Error),
    /// A `TSDB_*` variable that is not an option, most likely a typo.
    UnknownEnv { name: String },
    /// A value that does not parse or is out of range. `value` is as written, quoted
    /// when it is a string.
    InvalidValue {
        origin: Origin,
        value: String,
        reason: String,
    },
    /// A key of the YAML file that is not an option; `key` is the full path, `wal.foo`.
    UnknownKey {
        file: PathBuf,
        key: String,
        expected: String,
    },
    /// The YAML file cannot be read or is not YAML of the right shape.
    File { file: PathBuf, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Clap(e) => write!(f, "{e}"),
            ConfigError::UnknownEnv { name } => write!(
                f,
                "unknown environment variable {name}; every TSDB_* variable must be an \
                 option of `tsdb start` (see `tsdb start --help`)"
            ),
            ConfigError::InvalidValue {
                origin,
                value,
                reason,
            } => match origin {
                Origin::Flag(flag) => write!(f, "invalid value {value} for --{flag}: {reason}"),
                Origin::Env(name) => write!(f, "invalid value for {name}: {value}: {reason}"),
                Origin::File { file, key } => write!(
                    f,
                    "{}: invalid value for {key}: {value}: {reason}",
                    file.display()
                ),
            },
            ConfigError::UnknownKey {
                file,
                key,
                expected,
            } => write!(f, "{}: unknown key {key}; {expected}", file.display()),
            ConfigError::File { file, reason } => write!(f, "{}: {reason}", file.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Clap(e) => Some(e),
            _ => None,
        }
    }
}

/// One option: its names in each layer and its default as written in `--help`.
pub(crate) struct Opt {
    /// The flag without its dashes.
    pub flag: &'static str,
    pub env: &'static str,
    /// `section.key` in the YAML file; empty for `--config`, which is not in the file.
    pub yaml: &'static str,
    /// The default, parsed like any other value; `None` when computed (shards, wal dir).
    pub default: Option<&'static str>,
    flag_value: fn(&cli::StartArgs) -> Option<&str>,
    yaml_value: fn(&yaml::Sections) -> Option<&Value>,
}

macro_rules! opt {
    ($flag:literal, $field:ident, $env:literal, $section:ident . $key:ident, $default:expr) => {
        Opt {
            flag: $flag,
            env: $env,
            yaml: concat!(stringify!($section), ".", stringify!($key)),
            default: $default,
            flag_value: |args| args.$field.as_deref(),
            yaml_value: |sections| sections.$section.$key.as_ref(),
        }
    };
}

const CONFIG: Opt = Opt {
    flag: "config",
    env: "TSDB_CONFIG",
    yaml: "",
    default: None,
    flag_value: |args| args.config.as_deref(),
    yaml_value: |_| None,
};
const IO_DRIVER: Opt = opt!(
    "io-driver",
    io_driver,
    "TSDB_IO_DRIVER",
    server.io_driver,
    Some("auto")
);
const LISTEN: Opt = opt!(
    "listen",
    listen,
    "TSDB_LISTEN",
    server.listen,
    Some(":8080")
);
const READ_TIMEOUT: Opt = opt!(
    "read-timeout",
    read_timeout,
    "TSDB_READ_TIMEOUT",
    server.read_timeout,
    Some("30s")
);
const WRITE_TIMEOUT: Opt = opt!(
    "write-timeout",
    write_timeout,
    "TSDB_WRITE_TIMEOUT",
    server.write_timeout,
    Some("30s")
);
const MAX_CONNECTIONS: Opt = opt!(
    "max-connections",
    max_connections,
    "TSDB_MAX_CONNECTIONS",
    server.max_connections,
    Some("10000")
);
const SHARDS: Opt = opt!("shards", shards, "TSDB_SHARDS", server.shards, None);
const DATA_DIR: Opt = opt!(
    "data-dir",
    data_dir,
    "TSDB_DATA_DIR",
    storage.data_dir,
    Some("./data")
);
const RETENTION: Opt = opt!(
    "retention",
    retention,
    "TSDB_RETENTION",
    storage.retention,
    Some("30d")
);
const MEMTABLE_SIZE: Opt = opt!(
    "memtable-size",
    memtable_size,
    "TSDB_MEMTABLE_SIZE",
    storage.memtable_size,
    Some("256MB")
);
const WAL_ENABLED: Opt = opt!(
    "wal-enabled",
    wal_enabled,
    "TSDB_WAL_ENABLED",
    wal.enabled,
    Some("true")
);
const WAL_DIR: Opt = opt!("wal-dir", wal_dir, "TSDB_WAL_DIR", wal.dir, None);
const WAL_SEGMENT_SIZE: Opt = opt!(
    "wal-segment-size",
    wal_segment_size,
    "TSDB_WAL_SEGMENT_SIZE",
    wal.segment_size,
    Some("128MB")
);
const WAL_SYNC: Opt = opt!(
    "wal-sync",
    wal_sync,
    "TSDB_WAL_SYNC",
    wal.sync,
    Some("interval")
);
const WAL_SYNC_INTERVAL: Opt = opt!(
    "wal-sync-interval",
    wal_sync_interval,
    "TSDB_WAL_SYNC_INTERVAL",
    wal.sync_interval,
    Some("1s")
);
const COMPACTION_ENABLED: Opt = opt!(
    "compaction-enabled",
    compaction_enabled,
    "TSDB_COMPACTION_ENABLED",
    compaction.enabled,
    Some("true")
);
const COMPACTION_INTERVAL: Opt = opt!(
    "compaction-interval",
    compaction_interval,
    "TSDB_COMPACTION_INTERVAL",
    compaction.interval,
    Some("5m")
);
const COMPACTION_CONCURRENCY: Opt = opt!(
    "compaction-concurrency",
    compaction_concurrency,
    "TSDB_COMPACTION_CONCURRENCY",
    compaction.concurrency,
    Some("2")
);
const LOG_LEVEL: Opt = opt!(
    "log-level",
    log_level,
    "TSDB_LOG_LEVEL",
    logging.level,
    Some("info")
);
const LOG_FORMAT: Opt = opt!(
    "log-format",
    log_format,
    "TSDB_LOG_FORMAT",
    logging.format,
    Some("json")
);
const LOG_OUTPUT: Opt = opt!(
    "log-output",
    log_output,
    "TSDB_LOG_OUTPUT",
    logging.output,
    Some("stdout")
);
const METRICS_ENABLED: Opt = opt!(
    "metrics-enabled",
    metrics_enabled,
    "TSDB_METRICS_ENABLED",
    metrics.enabled,
    Some("true")
);
const METRICS_PATH: Opt = opt!(
    "metrics-path",
    metrics_path,
    "TSDB_METRICS_PATH",
    metrics.path,
    Some("/metrics")
);
const MAX_BODY_SIZE: Opt = opt!(
    "max-body-size",
    max_body_size,
    "TSDB_MAX_BODY_SIZE",
    limits.max_body_size,
    Some("64MB")
);
const MAX_SERIES_PER_REQUEST: Opt = opt!(
    "max-series-per-request",
    max_series_per_request,
    "TSDB_MAX_SERIES_PER_REQUEST",
    limits.max_series_per_request,
    Some("1000000")
);
const MAX_LABELS_PER_SERIES: Opt = opt!(
    "max-labels-per-series",
    max_labels_per_series,
    "TSDB_MAX_LABELS_PER_SERIES",
    limits.max_labels_per_series,
    Some("64")
);
const MAX_LABEL_NAME_LENGTH: Opt = opt!(
    "max-label-name-length",
    max_label_name_length,
    "TSDB_MAX_LABEL_NAME_LENGTH",
    limits.max_label_name_length,
    Some("256")
);
const MAX_LABEL_VALUE_LENGTH: Opt = opt!(
    "max-label-value-length",
    max_label_value_length,
    "TSDB_MAX_LABEL_VALUE_LENGTH",
    limits.max_label_value_length,
    Some("16384")
);
const MAX_SERIES: Opt = opt!(
    "max-series",
    max_series,
    "TSDB_MAX_SERIES",
    limits.max_series,
    Some("0")
);
const MAX_INFLIGHT_BODY_SIZE: Opt = opt!(
    "max-inflight-body-size",
    max_inflight_body_size,
    "TSDB_MAX_INFLIGHT_BODY_SIZE",
    limits.max_inflight_body_size,
    Some("256MB")
);
const QUERY_TIMEOUT: Opt = opt!(
    "query-timeout",
    query_timeout,
    "TSDB_QUERY_TIMEOUT",
    query.timeout,
    Some("2m")
);
const QUERY_MAX_SAMPLES: Opt = opt!(
    "query-max-samples",
    query_max_samples,
    "TSDB_QUERY_MAX_SAMPLES",
    query.max_samples,
    Some("50000000")
);
const QUERY_MAX_REGEX_MATCHERS: Opt = opt!(
    "query-max-regex-matchers",
    query_max_regex_matchers,
    "TSDB_QUERY_MAX_REGEX_MATCHERS",
    query.max_regex_matchers,
    Some("64")
);
const QUERY_LOOKBACK_DELTA: Opt = opt!(
    "query-lookback-delta",
    query_lookback_delta,
    "TSDB_QUERY_LOOKBACK_DELTA",
    query.lookback_delta,
    Some("5m")
);
const TLS_CERT: Opt = opt!("tls-cert", tls_cert, "TSDB_TLS_CERT", server.tls_cert, None);
const TLS_KEY: Opt = opt!("tls-key", tls_key, "TSDB_TLS_KEY", server.tls_key, None);
const AUTH_FILE: Opt = opt!("auth-file", auth_file, "TSDB_AUTH_FILE", auth.file, None);
const RATE_LIMIT: Opt = opt!(
    "rate-limit",
    rate_limit,
    "TSDB_RATE_LIMIT",
    limits.rate_limit,
    Some("0")
);
const RATE_LIMIT_BURST: Opt = opt!(
    "rate-limit-burst",
    rate_limit_burst,
    "TSDB_RATE_LIMIT_BURST",
    limits.rate_limit_burst,
    Some("0")
);

/// Every option, so every known `TSDB_*` variable.
pub(crate) const OPTIONS: [&Opt; 39] = [
    &CONFIG,
    &LISTEN,
    &IO_DRIVER,
    &READ_TIMEOUT,
    &WRITE_TIMEOUT,
    &MAX_CONNECTIONS,
    &SHARDS,
    &DATA_DIR,
    &RETENTION,
    &MEMTABLE_SIZE,
    &WAL_ENABLED,
    &WAL_DIR,
    &WAL_SEGMENT_SIZE,
    &WAL_SYNC,
    &WAL_SYNC_INTERVAL,
    &COMPACTION_ENABLED,
    &COMPACTION_INTERVAL,
    &COMPACTION_CONCURRENCY,
    &LOG_LEVEL,
    &LOG_FORMAT,
    &LOG_OUTPUT,
    &METRICS_ENABLED,
    &METRICS_PATH,
    &MAX_BODY_SIZE,
    &MAX_SERIES_PER_REQUEST,
    &MAX_LABELS_PER_SERIES,
    &MAX_LABEL_NAME_LENGTH,
    &MAX_LABEL_VALUE_LENGTH,
    &MAX_SERIES,
    &MAX_INFLIGHT_BODY_SIZE,
    &QUERY_TIMEOUT,
    &QUERY_MAX_SAMPLES,
    &QUERY_MAX_REGEX_MATCHERS,
    &QUERY_LOOKBACK_DELTA,
    &TLS_CERT,
    &TLS_KEY,
    &AUTH_FILE,
    &RATE_LIMIT,
    &RATE_LIMIT_BURST,
];

/// Shards beyond this would be idle threads on any machine we run on, and each costs a
/// WAL and a memtable; the bound keeps a typo (`--shards=10000`) from exhausting memory.
const SHARDS_MAX: usize = 1024;
/// Memtables and WAL segments smaller than this would turn every few writes into a flush
/// or a segment rotation.
const MEMTABLE_BYTES_MIN: u64 = 1 << 20;
const WAL_SEGMENT_BYTES_MIN: u64 = 1 << 20;
/// Compacting more often than this would only burn CPU re-reading fresh blocks.
const COMPACTION_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// The granularity of the WAL sync timer; 0 would be a busy loop.
const WAL_SYNC_INTERVAL_MIN: Duration = Duration::from_millis(1);
/// Timeouts and retention of 0 would fail every request or drop every sample.
const NONZERO_DURATION_MIN: Duration = Duration::from_millis(1);

/// Parses the command line `args` (the first is the program name) and the environment
/// `env`, reading the YAML file named by `--config` or `TSDB_CONFIG` if any.
pub fn parse_cli<I, T>(args: I, env: &[(String, String)]) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = cli::Cli::try_parse_from(args).map_err(ConfigError::Clap)?;
    match cli.command {
        cli::Sub::Version => Ok(Command::Version),
        cli::Sub::Tool(t) => Ok(Command::Tool(t)),
        cli::Sub::InspectWal(a) => Ok(Command::InspectWal {
            dir: a.dir,
            json: a.json,
        }),
        cli::Sub::Start(args) => {
            check_env_names(env)?;
            let mut layers = Layers {
                args: &args,
                env,
                file: None,
            };
            let config_file = layers.get(&CONFIG, path)?;
            let file = config_file.as_deref().map(yaml::load).transpose()?;
            layers.file = file.as_ref();
            resolve(&layers, config_file).map(|config| Command::Start(Box::new(config)))
        }
    }
}

/// [`parse_cli`] on this process's arguments and `TSDB_*` environment variables.
pub fn from_process() -> Result<Command, ConfigError> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        // Other programs' variables are none of our business, UTF-8 or not.
        if !name.starts_with("TSDB_") {
            continue;
        }
        let Some(known) = known_env_name(&name) else {
            return Err(ConfigError::UnknownEnv { name });
        };
        let value = value
            .into_string()
            .map_err(|raw| ConfigError::InvalidValue {
                origin: Origin::Env(known),
                value: format!("{raw:?}"),
                reason: "not valid UTF-8".to_owned(),
            })?;
        env.push((name, value));
    }
    parse_cli(std::env::args_os(), &env)
}

fn known_env_name(name: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .map(|opt| opt.env)
        .chain(tools::CLIENT_ENV)
        .find(|env| *env == name)
}

fn check_env_names(env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, _) in env {
        if name.starts_with("TSDB_") && known_env_name(name).is_none() {
            return Err(ConfigError::UnknownEnv { name: name.clone() });
        }
    }
    Ok(())
}

/// A value before parsing: text from a flag or variable, or a YAML scalar.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Text(&'a str),
    Yaml(&'a Value),
}

struct Layers<'a> {
    args: &'a cli::StartArgs,
    env: &'a [(String, String)],
    file: Option<&'a yaml::File>,
}

impl Layers<'_> {
    /// The value of `opt` from the highest layer that sets it, after parsing every layer
    /// that sets it.
    fn get<T>(
        &self,
        opt: &Opt,
        parse: fn(Raw<'_>) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let flag = (opt.flag_value)(self.args)
            .map(|v| {
                parse(Raw::Text(v))
                    .map_err(|r| invalid(Origin::Flag(opt.flag), format!("{v:?}"), r))
            })
            .transpose()?;
        // The last assignment wins, as it would in a shell.
        let env = self
            .env
            .iter()
            .rev()
            .find(|(name, _)| name == opt.env)
            .map(|(_, v)| {
                if v.is_empty() {
                    return Err(invalid(
                        Origin::Env(opt.env),
                        "\"\"".to_owned(),
                        "empty; unset the variable to use the default".to_owned(),
                    ));
                }
                parse(Raw::Text(v)).map_err(|r| invalid(Origin::Env(opt.env), format!("{v:?}"), r))
            })
            .transpose()?;
        let file = match self.file {
            Some(file) => (opt.yaml_value)(&file.sections)
                .map(|v| {
                    parse(Raw::Yaml(v)).map_err(|r| {
                        let origin = Origin::File {
                            file: file.path.clone(),
                            key: opt.yaml.to_owned(),
                        };
                        invalid(origin, yaml::display_value(v), r)
                    })
                })
                .transpose()?,
            None => None,
        };
        Ok(flag.or(env).or(file))
    }

    /// Like [`Layers::get`], falling back to the option's default.
    fn value<T>(
        &self,
        opt: &Opt,
        parse: fn(Raw<'_>) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        if let Some(value) = self.get(opt, parse)? {
            return Ok(value);
        }
        match opt.default.map(|d| parse(Raw::Text(d))) {
            Some(Ok(value)) => Ok(value),
            // The defaults are constants checked by a unit test; reaching this is a bug.
            Some(Err(reason)) => panic!("BUG: default of --{} does not parse: {reason}", opt.flag),
            None => panic!("BUG: --{} has no default; use Layers::get", opt.flag),
        }
    }
}

fn invalid(origin: Origin, value: String, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        origin,
        value,
        reason,
    }
}

fn resolve(layers: &Layers<'_>, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
    let data_dir = layers.value(&DATA_DIR, path)?;
    let wal_dir = layers
        .get(&WAL_DIR, path)?
        .unwrap_or_else(|| data_dir.join("wal"));
    let (listen, listen_addr) = layers.value(&LISTEN, listen)?;
    Ok(Config {
        listen,
        listen_addr,
        read_timeout: layers.value(&READ_TIMEOUT, |r| duration_min(r, NONZERO_DURATION_MIN))?,
        write_timeout: layers.value(&WRITE_TIMEOUT, |r| duration_min(r, NONZERO_DURATION_MIN))?,
        max_connections: layers.value(&MAX_CONNECTIONS, |r| count_range(r, 1, usize::MAX))?,
        io_driver: layers.value(&IO_DRIVER, |r| IoDriver::parse_name(text(r)?))?,
        shards: layers
            .get(&SHARDS, |r| count_range(r, 1, SHARDS_MAX))?
            .unwrap_or_else(default_shards),
        data_dir,
        retention: layers.value(&RETENTION, |r| duration_min(r, NONZERO_DURATION_MIN))?,
        memtable_size_bytes: layers.value(&MEMTABLE_SIZE, |r| size_min(r, MEMTABLE_BYTES_MIN))?,
        wal_enabled: layers.value(&WAL_ENABLED, boolean)?,
        wal_dir,
        wal_segment_size_bytes: layers
            .value(&WAL_SEGMENT_SIZE, |r| size_min(r, WAL_SEGMENT_BYTES_MIN))?,
        wal_sync: layers.value(&WAL_SYNC, |r| WalSync::parse_name(text(r)?))?,
        wal_sync_interval: layers.value(&WAL_SYNC_INTERVAL, |r| {
            duration_min(r, WAL_SYNC_INTERVAL_MIN)
        })?,
        compaction_enabled: layers.value(&COMPACTION_ENABLED, boolean)?,
        compaction_interval: layers.value(&COMPACTION_INTERVAL, |r| {
            duration_min(r, COMPACTION_INTERVAL_MIN)
        })?,
        compaction_concurrency: layers
            .value(&COMPACTION_CONCURRENCY, |r| count_range(r, 1, usize::MAX))?,
        log_level: layers.value(&LOG_LEVEL, |r| LogLevel::parse_name(text(r)?))?,
        log_format: layers.value(&LOG_FORMAT, |r| LogFormat::parse_name(text(r)?))?,
        log_output: layers.value(&LOG_OUTPUT, |r| LogOutput::parse_name(text(r)?))?,
        metrics_enabled: layers.value(&METRICS_ENABLED, boolean)?,
        metrics_path: layers.value(&METRICS_PATH, metrics_path)?,
        max_body_bytes: layers.value(&MAX_BODY_SIZE, |r| size_min(r, 1))?,
        max_series_per_request: layers
            .value(&MAX_SERIES_PER_REQUEST, |r| count_range(r, 1, usize::MAX))?,
        max_labels_per_series: layers
            .value(&MAX_LABELS_PER_SERIES, |r| count_range(r, 1, usize::MAX))?,
        max_label_name_bytes: layers
            .value(&MAX_LABEL_NAME_LENGTH, |r| count_range(r, 1, usize::MAX))?,
        max_label_value_bytes: layers
            .value(&MAX_LABEL_VALUE_LENGTH, |r| count_range(r, 1, usize::MAX))?,
        max_series: layers.value(&MAX_SERIES, |r| count_range(r, 0, usize::MAX))?,
        max_inflight_body_bytes: layers.value(&MAX_INFLIGHT_BODY_SIZE, |r| size_min(r, 1))?,
        query_timeout: layers.value(&QUERY_TIMEOUT, |r| duration_min(r, NONZERO_DURATION_MIN))?,
        query_max_samples: layers.value(&QUERY_MAX_SAMPLES, |r| count_range(r, 1, usize::MAX))?,
        query_max_regex_matchers: layers
            .value(&QUERY_MAX_REGEX_MATCHERS, |r| count_range(r, 1, usize::MAX))?,
        query_lookback_delta: layers.value(&QUERY_LOOKBACK_DELTA, |r| {
            duration_min(r, NONZERO_DURATION_MIN)
        })?,
        tls_cert: layers.get(&TLS_CERT, path)?,
        tls_key: layers.get(&TLS_KEY, path)?,
        auth_file: layers.get(&AUTH_FILE, path)?,
        rate_limit: layers.value(&RATE_LIMIT, |r| count_range(r, 0, usize::MAX))? as u64,
        rate_limit_burst: layers.value(&RATE_LIMIT_BURST, |r| count_range(r, 0, usize::MAX))?
            as u64,
        config_file,
    })
}

impl Config {
    /// Every option's effective value as `(flag, YAML key, value)`, in the order of
    /// [`OPTIONS`], for `/api/v1/status/flags` and `/api/v1/status/config`.
    pub fn effective_values(&self) -> Vec<(&'static str, &'static str, String)> {
        OPTIONS
            .iter()
            .map(|o| (o.flag, o.yaml, self.value_of(o.flag).unwrap_or_default()))
            .collect()
    }

    /// The effective value of the option named by `flag`; `None` for a name that is
    /// not an option (a test checks every option has a value).
    fn value_of(&self, flag: &str) -> Option<String> {
        let path = |p: &Path| p.display().to_string();
        Some(match flag {
            "config" => self.config_file.as_deref().map(path).unwrap_or_default(),
            "listen" => self.listen.clone(),
            "io-driver" => self.io_driver.to_string(),
            "read-timeout" => format_duration(self.read_timeout),
            "write-timeout" => format_duration(self.write_timeout),
            "max-connections" => self.max_connections.to_string(),
            "shards" => self.shards.to_string(),
            "data-dir" => path(&self.data_dir),
            "retention" => format_duration(self.retention),
            "memtable-size" => self.memtable_size_bytes.to_string(),
            "wal-enabled" => self.wal_enabled.to_string(),
            "wal-dir" => path(&self.wal_dir),
            "wal-segment-size" => self.wal_segment_size_bytes.to_string(),
            "wal-sync" => self.wal_sync.to_string(),
            "wal-sync-interval" => format_duration(self.wal_sync_interval),
            "compaction-enabled" => self.compaction_enabled.to_string(),
            "compaction-interval" => format_duration(self.compaction_interval),
            "compaction-concurrency" => self.compaction_concurrency.to_string(),
            "log-level" => self.log_level.to_string(),
            "log-format" => self.log_format.to_string(),
            "log-output" => self.log_output.to_string(),
            "metrics-enabled" => self.metrics_enabled.to_string(),
            "metrics-path" => self.metrics_path.clone(),
            "max-body-size" => self.max_body_bytes.to_string(),
            "max-series-per-request" => self.max_series_per_request.to_string(),
            "max-labels-per-series" => self.max_labels_per_series.to_string(),
            "max-label-name-length" => self.max_label_name_bytes.to_string(),
            "max-label-value-length" => self.max_label_value_bytes.to_string(),
            "max-series" => self.max_series.to_string(),
            "max-inflight-body-size" => self.max_inflight_body_bytes.to_string(),
            "query-timeout" => format_duration(self.query_timeout),
            "query-max-samples" => self.query_max_samples.to_string(),
            "query-max-regex-matchers" => self.query_max_regex_matchers.to_string(),
            "query-lookback-delta" => format_duration(self.query_lookback_delta),
            "tls-cert" => self.tls_cert.as_deref().map(path).unwrap_or_default(),
            "tls-key" => self.tls_key.as_deref().map(path).unwrap_or_default(),
            "auth-file" => self.auth_file.as_deref().map(path).unwrap_or_default(),
            "rate-limit" => self.rate_limit.to_string(),
            "rate-limit-burst" => self.rate_limit_burst.to_string(),
            _ => return None,
        })
    }
}

fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(SHARDS_MAX)
}

// Value parsers: each returns a reason without the value, which the caller reports with
// the flag, variable or key it came from.

fn text(raw: Raw<'_>) -> Result<&str, String> {
    match raw {
        Raw::Text(s) => Ok(s),
        Raw::Yaml(Value::String(s)) => Ok(s),
        Raw::Yaml(_) => Err("expected a string".to_owned()),
    }
}

fn path(raw: Raw<'_>) -> Result<PathBuf, String> {
    match text(raw)? {
        "" => Err("empty path".to_owned()),
        s => Ok(PathBuf::from(s)),
    }
}

fn boolean(raw: Raw<'_>) -> Result<bool, String> {
    match raw {
        Raw::Yaml(Value::Bool(b)) => Ok(*b),
        Raw::Yaml(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
        Raw::Yaml(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
        _ => match text(raw) {
            Ok("true" | "1") => Ok(true),
            Ok("false" | "0") => Ok(false),
            _ => Err("expected true, false, 1 or 0".to_owned()),
        },
    }
}

fn duration_min(raw: Raw<'_>, min: Duration) -> Result<Duration, String> {
    let d = match raw {
        // A YAML number is read as its text, to be refused for its missing unit.
        Raw::Yaml(Value::Number(n)) => parse_duration(&n.to_string())?,
        _ => parse_duration(text(raw).map_err(|_| "expected a duration such as 30s".to_owned())?)?,
    };
    if d < min {
        return Err(format!("must be at least {}", format_duration(min)));
    }
    Ok(d)
}

fn size_min(raw: Raw<'_>, min: u64) -> Result<u64, String> {
    let bytes = match raw {
        Raw::Yaml(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| "expected a whole number of bytes".to_owned())?,
        _ => parse_size(text(raw).map_err(|_| "expected a size such as 256MB".to_owned())?)?,
    };
    if bytes < min {
        return Err(format!("must be at least {}", units::format_size(min)));
    }
    Ok(bytes)
}

fn count_range(raw: Raw<'_>, min: usize, max: usize) -> Result<usize, String> {
    let n = match raw {
        Raw::Yaml(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => text(raw).ok().and_then(|s| s.parse::<usize>().ok()),
    };
    let Some(n) = n.filter(|n| (min..=max).contains(n)) else {
        return Err(if max == usize::MAX {
            format!("expected a whole number, at least {min}")
        } else {
            format!("expected a whole number from {min} to {max}")
        });
    };
    Ok(n)
}

fn listen(raw: Raw<'_>) -> Result<(String, SocketAddr), String> {
    let s = text(raw)?;
    let usage = "expected HOST:PORT with an IP address or localhost, \
                 e.g. :8080, 127.0.0.1:8080 or [::1]:8080";
    let addr = if let Some(port) = s.strip_prefix(':') {
        // Go's convention, used throughout the guide: no host means every interface.
        let port: u16 = port.parse().map_err(|_| usage.to_owned())?;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    } else if let Some(port) = s.strip_prefix("localhost:") {
        // Resolved by hand rather than by DNS, which would make parsing impure.
        let port: u16 = port.parse().map_err(|_| usage.to_owned())?;
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else {
        s.parse().map_err(|_| usage.to_owned())?
    };
    Ok((s.to_owned(), addr))
}

fn metrics_path(raw: Raw<'_>) -> Result<String, String> {
    let s = text(raw)?;
    if !s.starts_with('/') || s.contains(char::is_whitespace) {
        return Err("expected an HTTP path starting with /, e.g. /metrics".to_owned());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests;
