//! Unit tests of the layering in `config`: flags over `TSDB_*` variables over the YAML
//! file over defaults, strictness about unknown names and bad values, and the examples
//! of the operations guide taken verbatim.

use super::*;
use std::path::Path;

/// `tsdb start <args>` with `env`.
fn start(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut argv = vec!["tsdb", "start"];
    argv.extend_from_slice(args);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match parse_cli(argv, &env)? {
        Command::Start(config) => Ok(*config),
        other => panic!("start parsed as {other:?}"),
    }
}

fn start_err(args: &[&str], env: &[(&str, &str)]) -> String {
    start(args, env).unwrap_err().to_string()
}

/// A temporary YAML file; keep the directory alive while the path is used.
fn yaml_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tsdb.yaml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn defaults() {
    let c = start(&[], &[]).unwrap();
    assert_eq!(c.listen, ":8080");
    assert_eq!(c.listen_addr, addr("0.0.0.0:8080"));
    assert_eq!(c.read_timeout, Duration::from_secs(30));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(c.shards, default_shards());
    assert!((1..=SHARDS_MAX).contains(&c.shards));
    assert_eq!(c.data_dir, Path::new("./data"));
    assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.memtable_size_bytes, 268_435_456);
    assert!(c.wal_enabled);
    assert_eq!(c.wal_dir, Path::new("./data/wal"));
    assert_eq!(c.wal_segment_size_bytes, 134_217_728);
    assert_eq!(c.wal_sync, WalSync::Interval);
    assert_eq!(c.wal_sync_interval, Duration::from_secs(1));
    assert!(c.compaction_enabled);
    assert_eq!(c.compaction_interval, Duration::from_secs(300));
    assert_eq!(c.compaction_concurrency, 2);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_output, LogOutput::Stdout);
    assert!(c.metrics_enabled);
    assert_eq!(c.metrics_path, "/metrics");
    assert_eq!(c.max_body_bytes, 64 << 20);
    assert_eq!(c.max_series_per_request, 1_000_000);
    assert_eq!(c.max_labels_per_series, 64);
    assert_eq!(c.max_label_name_bytes, 256);
    assert_eq!(c.max_label_value_bytes, 16_384);
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.max_series, 0);
    assert_eq!(c.max_inflight_body_bytes, 256 << 20);
    assert_eq!(c.tls_cert, None);
    assert_eq!(c.tls_key, None);
    assert_eq!(c.auth_file, None);
    assert_eq!(c.rate_limit, 0);
    assert_eq!(c.rate_limit_burst, 0);
    assert_eq!(c.config_file, None);
}

#[test]
fn options_table_is_consistent() {
    for opt in OPTIONS {
        let env = format!("TSDB_{}", opt.flag.replace('-', "_").to_uppercase());
        assert_eq!(opt.env, env, "--{}", opt.flag);
        if let Some(default) = opt.default {
            // `Layers::value` panics on a default that does not parse; prove none does.
            start(&[&format!("--{}={default}", opt.flag)], &[])
                .unwrap_or_else(|e| panic!("default of --{}: {e}", opt.flag));
        }
    }
    let mut envs: Vec<&str> = OPTIONS.iter().map(|opt| opt.env).collect();
    envs.sort_unstable();
    envs.dedup();
    assert_eq!(envs.len(), OPTIONS.len(), "an option is listed twice");
}

/// Every option set to a non-default value, as the three layers would write it.
const ALL_FLAGS: &[&str] = &[
    "--listen=127.0.0.1:9090",
    "--read-timeout=10s",
    "--write-timeout=1m",
    "--shards=3",
    "--data-dir=/d",
    "--retention=2w",
    "--memtable-size=512MB",
    "--wal-enabled=false",
    "--wal-dir=/w",
    "--wal-segment-size=64MiB",
    "--wal-sync=always",
    "--wal-sync-interval=250ms",
    "--compaction-enabled=false",
    "--compaction-interval=1h",
    "--compaction-concurrency=4",
    "--log-level=debug",
    "--log-format=text",
    "--log-output=stderr",
    "--metrics-enabled=false",
    "--metrics-path=/m",
    "--max-body-size=1GB",
    "--max-series-per-request=5",
    "--max-labels-per-series=6",
    "--max-label-name-length=7",
    "--max-label-value-length=8",
    "--max-connections=9",
    "--max-series=10",
    "--max-inflight-body-size=11MB",
    "--io-driver=epoll",
    "--query-timeout=30s",
    "--query-max-samples=1000",
    "--query-max-regex-matchers=12",
    "--query-lookback-delta=1m",
    "--tls-cert=/c.pem",
    "--tls-key=/k.pem",
    "--auth-file=/a.yaml",
    "--rate-limit=12",
    "--rate-limit-burst=13",
];

const ALL_YAML: &str = "
server:
  listen: 127.0.0.1:9090
  read_timeout: 10s
  write_timeout: 1m
  max_connections: 9
  shards: 3
  io_driver: epoll
  tls_cert: /c.pem
  tls_key: /k.pem
storage:
  data_dir: /d
  retention: 2w
  memtable_size: 512MB
wal:
  enabled: false
  dir: /w
  segment_size: 67108864
  sync: always
  sync_interval: 250ms
compaction:
  enabled: false
  interval: 1h
  concurrency: 4
logging:
  level: debug
  format: text
  output: stderr
metrics:
  enabled: false
  path: /m
limits:
  max_body_size: 1GB
  max_series_per_request: 5
  max_labels_per_series: 6
  max_label_name_length: 7
  max_label_value_length: 8
  max_series: 10
  max_inflight_body_size: 11MB
  rate_limit: 12
  rate_limit_burst: 13
query:
  timeout: 30s
  max_samples: 1000
  max_regex_matchers: 12
  lookback_delta: 1m
auth:
  file: /a.yaml
";

fn all_set() -> Config {
    Config {
        listen: "127.0.0.1:9090".to_owned(),
        listen_addr: addr("127.0.0.1:9090"),
        read_timeout: Duration::from_secs(10),
        write_timeout: Duration::from_secs(60),
        max_connections: 9,
        io_driver: IoDriver::Epoll,
        shards: 3,
        data_dir: PathBuf::from("/d"),
        retention: Duration::from_secs(14 * 86_400),
        memtable_size_bytes: 512 << 20,
        wal_enabled: false,
        wal_dir: PathBuf::from("/w"),
        wal_segment_size_bytes: 64 << 20,
        wal_sync: WalSync::Always,
        wal_sync_interval: Duration::from_millis(250),
        compaction_enabled: false,
        compaction_interval: Duration::from_secs(3600),
        compaction_concurrency: 4,
        log_level: LogLevel::Debug,
        log_format: LogFormat::Text,
        log_output: LogOutput::Stderr,
        metrics_enabled: false,
        metrics_path: "/m".to_owned(),
        max_body_bytes: 1 << 30,
        max_series_per_request: 5,
        max_labels_per_series: 6,
        max_label_name_bytes: 7,
        max_label_value_bytes: 8,
        max_series: 10,
        max_inflight_body_bytes: 11 << 20,
        query_timeout: Duration::from_secs(30),
        query_max_samples: 1000,
        query_max_regex_matchers: 12,
        query_lookback_delta: Duration::from_secs(60),
        tls_cert: Some(PathBuf::from("/c.pem")),
        tls_key: Some(PathBuf::from("/k.pem")),
        auth_file: Some(PathBuf::from("/a.yaml")),
        rate_limit: 12,
        rate_limit_burst: 13,
        config_file: None,
    }
}

#[test]
fn every_flag_reaches_its_field() {
    assert_eq!(start(ALL_FLAGS, &[]).unwrap(), all_set());
}

#[test]
fn every_env_var_reaches_its_field() {
    let env: Vec<(String, String)> = ALL_FLAGS
        .iter()
        .map(|flag| {
            let (name, value) = flag.trim_start_matches("--").split_once('=').unwrap();
            (
                format!("TSDB_{}", name.replace('-', "_").to_uppercase()),
                value.to_owned(),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(start(&[], &env).unwrap(), all_set());
}

#[test]
fn every_yaml_key_reaches_its_field() {
    let (_dir, path) = yaml_file(ALL_YAML);
    let expected = Config {
        config_file: Some(PathBuf::from(&path)),
        ..all_set()
    };
    assert_eq!(
        start(&[&format!("--config={path}")], &[]).unwrap(),
        expected
    );
    assert_eq!(start(&[], &[("TSDB_CONFIG", &path)]).unwrap(), expected);
}

/// The example `tsdb.yaml` of the operations guide, verbatim.
const GUIDE_YAML: &str = r#"server:
  listen: ":8080"
  read_timeout: 30s
  write_timeout: 30s

storage:
  data_dir: "/var/lib/tsdb/data"
  retention: 720h  # 30 days
  memtable_size: 268435456  # 256 MB

wal:
  enabled: true
  dir: "/var/lib/tsdb/wal"
  segment_size: 134217728  # 128 MB
  sync_interval: 1s

compaction:
  enabled: true
  interval: 5m
  concurrency: 2

logging:
  level: info
  format: json
  output: stdout

metrics:
  enabled: true
  path: /metrics
"#;

#[test]
fn guide_yaml_example() {
    let (_dir, path) = yaml_file(GUIDE_YAML);
    let c = start(&[&format!("--config={path}")], &[]).unwrap();
    assert_eq!(c.listen, ":8080");
    assert_eq!(c.listen_addr, addr("0.0.0.0:8080"));
    assert_eq!(c.read_timeout, Duration::from_secs(30));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(c.data_dir, Path::new("/var/lib/tsdb/data"));
    assert_eq!(c.retention, Duration::from_secs(720 * 3600));
    assert_eq!(format_duration(c.retention), "30d");
    assert_eq!(c.memtable_size_bytes, 268_435_456);
    assert!(c.wal_enabled);
    assert_eq!(c.wal_dir, Path::new("/var/lib/tsdb/wal"));
    assert_eq!(c.wal_segment_size_bytes, 134_217_728);
    assert_eq!(c.wal_sync_interval, Duration::from_secs(1));
    assert!(c.compaction_enabled);
    assert_eq!(c.compaction_interval, Duration::from_secs(300));
    assert_eq!(c.compaction_concurrency, 2);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_output, LogOutput::Stdout);
    assert!(c.metrics_enabled);
    assert_eq!(c.metrics_path, "/metrics");
    assert_eq!(c.config_file, Some(PathBuf::from(&path)));
    // The guide equates 256MB with 268435456: the flag and the file agree.
    let flag = start(&["--memtable-size=256MB", "--wal-segment-size=128MB"], &[]).unwrap();
    assert_eq!(flag.memtable_size_bytes, c.memtable_size_bytes);
    assert_eq!(flag.wal_segment_size_bytes, c.wal_segment_size_bytes);
}

#[test]
fn guide_env_example() {
    let c = start(
        &[],
        &[
            ("TSDB_LISTEN", ":8080"),
            ("TSDB_DATA_DIR", "/var/lib/tsdb/data"),
            ("TSDB_RETENTION", "30d"),
            ("TSDB_LOG_LEVEL", "info"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen_addr, addr("0.0.0.0:8080"));
    assert_eq!(c.data_dir, Path::new("/var/lib/tsdb/data"));
    assert_eq!(c.wal_dir, Path::new("/var/lib/tsdb/data/wal"));
    assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
    assert_eq!(c.log_level, LogLevel::Info);
}

#[test]
fn guide_command_lines() {
    let c = start(&["--data-dir=/data", "--listen=:8080"], &[]).unwrap();
    assert_eq!(
        (c.data_dir.as_path(), c.listen_addr),
        (Path::new("/data"), addr("0.0.0.0:8080"))
    );
    let c = start(
        &[
            "--listen=:8080",
            "--data-dir=/var/lib/tsdb/data",
            "--retention=30d",
            "--log-level=info",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
    assert_eq!(
        start(&["--retention=60d"], &[]).unwrap().retention,
        Duration::from_secs(60 * 86_400)
    );
    assert_eq!(
        start(&["--memtable-size=128MB"], &[])
            .unwrap()
            .memtable_size_bytes,
        128 << 20
    );
    assert_eq!(
        start(&["--memtable-size=512MB"], &[])
            .unwrap()
            .memtable_size_bytes,
        512 << 20
    );
    assert!(!start(&["--wal-enabled=false"], &[]).unwrap().wal_enabled);
    assert_eq!(
        start(&["--log-level=debug"], &[]).unwrap().log_level,
        LogLevel::Debug
    );
    assert_eq!(
        start(&["--listen=127.0.0.1:8080"], &[])
            .unwrap()
            .listen_addr,
        addr("127.0.0.1:8080")
    );
}

/// Each case sets one option in the file, the environment and a flag to different
/// values; removing the top layer one at a time must reveal the next.
#[test]
fn each_layer_wins_over_the_next() {
    struct Case<'a> {
        flag: &'a str,
        env: (&'a str, &'a str),
        yaml: &'a str,
        show: fn(&Config) -> String,
        /// With all three layers, without the flag, with the file only, with nothing.
        expected: [&'a str; 4],
    }
    let shards_default = default_shards().to_string();
    let cases = [
        Case {
            flag: "--retention=40d",
            env: ("TSDB_RETENTION", "20d"),
            yaml: "storage:\n  retention: 10d\n",
            show: |c| format_duration(c.retention),
            expected: ["40d", "20d", "10d", "30d"],
        },
        Case {
            flag: "--listen=127.0.0.1:3",
            env: ("TSDB_LISTEN", "127.0.0.1:2"),
            yaml: "server:\n  listen: 127.0.0.1:1\n",
            show: |c| c.listen_addr.to_string(),
            expected: ["127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:1", "0.0.0.0:8080"],
        },
        Case {
            flag: "--memtable-size=3MB",
            env: ("TSDB_MEMTABLE_SIZE", "2MB"),
            yaml: "storage:\n  memtable_size: 1048576\n",
            show: |c| c.memtable_size_bytes.to_string(),
            expected: ["3145728", "2097152", "1048576", "268435456"],
        },
        Case {
            flag: "--wal-enabled=false",
            env: ("TSDB_WAL_ENABLED", "1"),
            yaml: "wal:\n  enabled: false\n",
            show: |c| c.wal_enabled.to_string(),
            expected: ["false", "true", "false", "true"],
        },
        Case {
            flag: "--log-level=debug",
            env: ("TSDB_LOG_LEVEL", "error"),
            yaml: "logging:\n  level: warn\n",
            show: |c| c.log_level.to_string(),
            expected: ["debug", "error", "warn", "info"],
        },
        Case {
            flag: "--shards=1000",
            env: ("TSDB_SHARDS", "999"),
            yaml: "server:\n  shards: 998\n",
            show: |c| c.shards.to_string(),
            expected: ["1000", "999", "998", &shards_default],
        },
        Case {
            flag: "--wal-dir=/flag",
            env: ("TSDB_WAL_DIR", "/env"),
            yaml: "wal:\n  dir: /yaml\n",
            show: |c| c.wal_dir.display().to_string(),
            expected: ["/flag", "/env", "/yaml", "./data/wal"],
        },
    ];
    for case in cases {
        let (_dir, path) = yaml_file(case.yaml);
        let config_flag = format!("--config={path}");
        let (flag, env) = (case.flag, [case.env]);
        let got = [
            start(&[&config_flag, flag], &env).unwrap(),
            start(&[&config_flag], &env).unwrap(),
            start(&[&config_flag], &[]).unwrap(),
            start(&[], &[]).unwrap(),
        ]
        .map(|c| (case.show)(&c));
        assert_eq!(got, case.expected.map(str::to_owned), "{flag}");
    }
}

#[test]
fn wal_dir_follows_data_dir_from_any_layer() {
    assert_eq!(
        start(&["--data-dir=/a"], &[]).unwrap().wal_dir,
        Path::new("/a/wal")
    );
    assert_eq!(
        start(&[], &[("TSDB_DATA_DIR", "/b")]).unwrap().wal_dir,
        Path::new("/b/wal")
    );
    let (_dir, path) = yaml_file("storage:\n  data_dir: /c\n");
    assert_eq!(
        start(&[], &[("TSDB_CONFIG", &path)]).unwrap().wal_dir,
        Path::new("/c/wal")
    );
}

#[test]
fn config_flag_wins_over_config_env() {
    let (_a, flag_path) = yaml_file("storage:\n  retention: 1d\n");
    let (_b, env_path) = yaml_file("storage:\n  retention: 2d\n");
    let c = start(
        &[&format!("--config={flag_path}")],
        &[("TSDB_CONFIG", &env_path)],
    )
    .unwrap();
    assert_eq!(c.retention, Duration::from_secs(86_400));
    assert_eq!(c.config_file, Some(PathBuf::from(flag_path)));
}

#[test]
fn booleans() {
    let flag = |args: &[&str]| start(args, &[]).map(|c| c.wal_enabled);
    assert!(flag(&["--wal-enabled"]).unwrap());
    assert!(flag(&["--wal-enabled=true"]).unwrap());
    assert!(flag(&["--wal-enabled=1"]).unwrap());
    assert!(!flag(&["--wal-enabled=false"]).unwrap());
    assert!(!flag(&["--wal-enabled=0"]).unwrap());
    assert!(!flag(&["--wal-enabled", "false"]).unwrap());
    assert!(flag(&["--wal-enabled=yes"]).is_err());
    let env = |v: &str| start(&[], &[("TSDB_COMPACTION_ENABLED", v)]).map(|c| c.compaction_enabled);
    assert!(env("true").unwrap());
    assert!(env("1").unwrap());
    assert!(!env("false").unwrap());
    assert!(!env("0").unwrap());
    assert!(env("no").is_err());
    for (text, want) in [
        ("true", true),
        ("false", false),
        ("0", false),
        ("1", true),
        ("\"false\"", false),
    ] {
        let (_dir, path) = yaml_file(&format!("metrics:\n  enabled: {text}\n"));
        assert_eq!(
            start(&[], &[("TSDB_CONFIG", &path)])
                .unwrap()
                .metrics_enabled,
            want,
            "{text}"
        );
    }
    let (_dir, path) = yaml_file("metrics:\n  enabled: 2\n");
    assert!(start(&[], &[("TSDB_CONFIG", &path)]).is_err());
}

#[test]
fn unknown_names_are_refused_and_named() {
    let err = start(&["--foo=1"], &[]).unwrap_err();
    let ConfigError::Clap(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    assert!(e.to_string().contains("--foo"), "{e}");
    assert!(
        start(&["--tls-certificate=/x"], &[]).is_err(),
        "a misspelt TLS flag"
    );

    let err = start_err(&[], &[("TSDB_FOO", "1")]);
    assert!(
        err.starts_with("unknown environment variable TSDB_FOO"),
        "{err}"
    );
    let err = start_err(&[], &[("TSDB_RETENTON", "1d")]);
    assert!(
        err.starts_with("unknown environment variable TSDB_RETENTON"),
        "{err}"
    );
    // Only our prefix is ours.
    start(&[], &[("PATH", "/bin"), ("TSDBX", "1"), ("MY_TSDB_X", "1")]).unwrap();

    let (_dir, path) = yaml_file("wal:\n  foo: 1\n");
    let err = start_err(&[&format!("--config={path}")], &[]);
    assert!(
        err.starts_with(&format!(
            "{path}: unknown key wal.foo; expected one of `enabled`"
        )),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_source() {
    let err = start_err(&["--retention=abc"], &[]);
    assert!(
        err.starts_with(r#"invalid value "abc" for --retention: "#),
        "{err}"
    );
    let err = start_err(&[], &[("TSDB_MEMTABLE_SIZE", "abc")]);
    assert!(
        err.starts_with(r#"invalid value for TSDB_MEMTABLE_SIZE: "abc": "#),
        "{err}"
    );
    let err = start_err(&[], &[("TSDB_WAL_SYNC_INTERVAL", "")]);
    assert!(
        err.starts_with(r#"invalid value for TSDB_WAL_SYNC_INTERVAL: "": empty"#),
        "{err}"
    );

    let (_dir, path) = yaml_file("storage:\n  retention: abc\n");
    let err = start_err(&[], &[("TSDB_CONFIG", &path)]);
    assert!(
        err.starts_with(&format!(
            r#"{path}: invalid value for storage.retention: "abc": "#
        )),
        "{err}"
    );

    let (_dir, path) = yaml_file("storage:\n  retention: 30\n");
    let err = start_err(&[], &[("TSDB_CONFIG", &path)]);
    assert!(
        err.starts_with(&format!(
            "{path}: invalid value for storage.retention: 30: a bare number has no unit"
        )),
        "{err}"
    );
    let err = start_err(&["--retention=30"], &[]);
    assert!(err.contains("a bare number has no unit; add one"), "{err}");

    let err = start_err(&["--config="], &[]);
    assert!(
        err.starts_with(r#"invalid value "" for --config: empty path"#),
        "{err}"
    );
    let err = start_err(&["--config=/nonexistent/tsdb.yaml"], &[]);
    assert!(
        err.starts_with("/nonexistent/tsdb.yaml: cannot read: "),
        "{err}"
    );
}

#[test]
fn a_bad_value_is_refused_even_when_overridden() {
    let err = start_err(&["--retention=1d"], &[("TSDB_RETENTION", "1x")]);
    assert!(err.starts_with("invalid value for TSDB_RETENTION"), "{err}");
    let (_dir, path) = yaml_file("storage:\n  retention: 1x\n");
    let err = start_err(
        &["--retention=1d", &format!("--config={path}")],
        &[("TSDB_RETENTION", "1d")],
    );
    assert!(err.contains("invalid value for storage.retention"), "{err}");
}

#[test]
fn yaml_scalars() {
    let ok = |yaml: &str| {
        let (_dir, path) = yaml_file(yaml);
        start(&[], &[("TSDB_CONFIG", &path)])
    };
    assert_eq!(
        ok("storage:\n  memtable_size: 256MB\n")
            .unwrap()
            .memtable_size_bytes,
        256 << 20
    );
    assert_eq!(
        ok("storage:\n  memtable_size: \"268435456\"\n")
            .unwrap()
            .memtable_size_bytes,
        256 << 20
    );
    assert_eq!(ok("server:\n  shards: \"2\"\n").unwrap().shards, 2);
    for bad in [
        "storage:\n  memtable_size: -1\n",
        "storage:\n  memtable_size: 1.5\n",
        "storage:\n  memtable_size: [1]\n",
        "server:\n  listen: 8080\n",
        "server:\n  read_timeout: 1.5\n",
        "server:\n  read_timeout: {a: 1}\n",
        "logging:\n  level: INFO\n",
        "logging:\n  output: syslog\n",
    ] {
        let err = ok(bad).unwrap_err().to_string();
        assert!(err.contains(": invalid value for "), "{bad:?}: {err}");
    }
}

#[test]
fn bounds() {
    let ok = |args: &[&str]| start(args, &[]).is_ok();
    assert!(!ok(&["--memtable-size=1048575"]));
    assert!(ok(&["--memtable-size=1MiB"]));
    assert!(!ok(&["--wal-segment-size=512KB"]));
    assert!(ok(&["--wal-segment-size=1MB"]));
    assert!(!ok(&["--compaction-interval=999ms"]));
    assert!(ok(&["--compaction-interval=1s"]));
    assert!(!ok(&["--wal-sync-interval=0s"]));
    assert!(ok(&["--wal-sync-interval=1ms"]));
    assert!(!ok(&["--shards=0"]));
    assert!(!ok(&["--shards=1025"]));
    assert!(ok(&["--shards=1024"]));
    assert!(!ok(&["--compaction-concurrency=0"]));
    assert!(!ok(&["--retention=0s"]));
    assert!(!ok(&["--read-timeout=0s"]));
    assert!(!ok(&["--metrics-path=metrics"]));
    assert!(!ok(&["--metrics-path=/a b"]));
    assert!(!ok(&["--max-labels-per-series=0"]));
    assert!(!ok(&["--max-body-size=0"]));
    assert!(!ok(&["--wal-sync=sometimes"]));
    assert!(!ok(&["--log-format=logfmt"]));
    let err = start_err(&["--memtable-size=512KB"], &[]);
    assert_eq!(
        err,
        r#"invalid value "512KB" for --memtable-size: must be at least 1MiB"#
    );
    let err = start_err(&["--shards=0"], &[]);
    assert_eq!(
        err,
        r#"invalid value "0" for --shards: expected a whole number from 1 to 1024"#
    );
}

#[test]
fn listen_addresses() {
    for (input, want) in [
        (":8080", "0.0.0.0:8080"),
        (":0", "0.0.0.0:0"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("[::1]:8080", "[::1]:8080"),
        ("0.0.0.0:9", "0.0.0.0:9"),
        ("localhost:9", "127.0.0.1:9"),
    ] {
        let c = start(&[&format!("--listen={input}")], &[]).unwrap();
        assert_eq!((c.listen.as_str(), c.listen_addr), (input, addr(want)));
    }
    for bad in [
        "8080",
        "",
        ":",
        ":99999",
        "host:80",
        "::1:8080",
        "127.0.0.1",
    ] {
        let err = start_err(&[&format!("--listen={bad}")], &[]);
        assert!(err.contains("expected HOST:PORT"), "{bad}: {err}");
    }
}

#[test]
fn version_and_help() {
    let version = |args: &[&str]| parse_cli(args.iter().copied(), &[]);
    assert!(matches!(
        version(&["tsdb", "version"]),
        Ok(Command::Version)
    ));
    // `tsdb --version` and `tsdb version` print the same line.
    let Err(ConfigError::Clap(e)) = version(&["tsdb", "--version"]) else {
        panic!()
    };
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
    assert_eq!(
        e.to_string(),
        format!("tsdb {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(e.exit_code(), 0);
    let Err(ConfigError::Clap(e)) = version(&["tsdb", "start", "--help"]) else {
        panic!()
    };
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert_eq!(e.exit_code(), 0);
    let Err(ConfigError::Clap(e)) = version(&["tsdb"]) else {
        panic!()
    };
    assert_ne!(e.exit_code(), 0);
    // Unknown TSDB_* variables do not stop `version` from answering.
    let env = [("TSDB_FOO".to_owned(), "1".to_owned())];
    assert!(matches!(
        parse_cli(["tsdb", "version"], &env),
        Ok(Command::Version)
    ));
}

#[test]
fn inspect_wal_takes_a_dir_and_json_and_exits_2_on_usage_errors() {
    let parse = |args: &[&str]| parse_cli(args.iter().copied(), &[]);
    let Ok(Command::InspectWal { dir, json }) = parse(&["tsdb", "inspect-wal", "data/wal"]) else {
        panic!("inspect-wal did not parse")
    };
    assert_eq!((dir.as_path(), json), (Path::new("data/wal"), false));
    assert!(matches!(
        parse(&["tsdb", "inspect-wal", "--json", "data/wal/0"]),
        Ok(Command::InspectWal { json: true, .. })
    ));
    // Without a directory, or with an unknown flag: a usage error, exit code 2.
    for bad in [
        &["tsdb", "inspect-wal"][..],
        &["tsdb", "inspect-wal", "d", "--repair"],
    ] {
        let Err(ConfigError::Clap(e)) = parse(bad) else {
            panic!("{bad:?} parsed")
        };
        assert_eq!(e.exit_code(), 2, "{bad:?}");
    }
    let Err(ConfigError::Clap(e)) = parse(&["tsdb", "inspect-wal", "--help"]) else {
        panic!()
    };
    let help = e.to_string();
    assert!(
        help.contains("0 = the WAL is clean") && help.contains("1 = damage"),
        "{help}"
    );
}

#[test]
fn names_print_lowercase() {
    assert_eq!(WalSync::Always.to_string(), "always");
    assert_eq!(WalSync::Interval.to_string(), "interval");
    assert_eq!(WalSync::Never.to_string(), "never");
    assert_eq!(LogLevel::Warn.to_string(), "warn");
    assert_eq!(LogFormat::Text.to_string(), "text");
    assert_eq!(LogOutput::Stderr.to_string(), "stderr");
}

#[test]
fn every_option_has_an_effective_value() {
    let c = all_set();
    for o in OPTIONS {
        assert!(
            c.value_of(o.flag).is_some(),
            "--{} has no effective value",
            o.flag
        );
    }
    let values = c.effective_values();
    assert_eq!(values.len(), OPTIONS.len());
    assert!(values.contains(&("retention", "storage.retention", "2w".to_string())));
}
