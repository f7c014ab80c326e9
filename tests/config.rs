//! Black-box: every configuration layer (flag > TSDB_* env > YAML > default) takes
//! effect, and anything unknown or malformed stops start with a message naming it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, run_to_exit};

fn bare() -> Command {
    common::bare_command()
}

fn started_line(s: &Server) -> serde_json::Value {
    s.wait_log("starting TSDB server", Duration::from_secs(5))
}

#[test]
fn flag_beats_env_beats_yaml_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let wal = dir.path().join("elsewhere-wal");
    let yaml = dir.path().join("tsdb.yaml");
    std::fs::write(
        &yaml,
        format!(
            "server:\n  listen: \"127.0.0.1:0\"\nstorage:\n  data_dir: \"{}\"\n  retention: 240h\n  memtable_size: 268435456\nwal:\n  dir: \"{}\"\n  sync_interval: 2s\ncompaction:\n  interval: 7m\nlogging:\n  level: info\n  format: json\n",
            data.display(),
            wal.display()
        ),
    )
    .unwrap();
    let config = format!("--config={}", yaml.display());

    // YAML over defaults: data dir, WAL dir, retention, compaction interval.
    let mut cmd = bare();
    cmd.args(["start", &config]);
    let s = Server::start_cmd(cmd, &data);
    let line = started_line(&s);
    assert_eq!(line["retention"], "10d", "{line}");
    assert_eq!(line["compaction_interval"], "7m", "{line}");
    assert_eq!(line["data_dir"], data.display().to_string());
    assert!(data.join("blocks").is_dir());
    assert!(wal.join("0").is_dir(), "wal.dir from YAML not used");
    drop(s);

    // Env over YAML.
    let mut cmd = bare();
    cmd.args(["start", &config])
        .env("TSDB_RETENTION", "20d")
        .env("TSDB_COMPACTION_INTERVAL", "9m");
    let s = Server::start_cmd(cmd, &data);
    let line = started_line(&s);
    assert_eq!(line["retention"], "20d", "{line}");
    assert_eq!(line["compaction_interval"], "9m", "{line}");
    drop(s);

    // Flag over env.
    let mut cmd = bare();
    cmd.args(["start", &config, "--retention=5d"])
        .env("TSDB_RETENTION", "20d");
    let s = Server::start_cmd(cmd, &data);
    assert_eq!(started_line(&s)["retention"], "5d");
    drop(s);

    // The guide's environment example, verbatim apart from the port and paths.
    let mut cmd = bare();
    cmd.arg("start")
        .env("TSDB_LISTEN", "127.0.0.1:0")
        .env("TSDB_DATA_DIR", &data)
        .env("TSDB_RETENTION", "30d")
        .env("TSDB_LOG_LEVEL", "info");
    let s = Server::start_cmd(cmd, &data);
    assert_eq!(started_line(&s)["retention"], "30d");
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn unknown_or_malformed_configuration_stops_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("bad.yaml");
    std::fs::write(&yaml, "wal:\n  enabled: true\n  segmnt_size: 5\n").unwrap();
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--no-such-flag".into()], vec![], "--no-such-flag"),
        (vec![], vec![("TSDB_NO_SUCH", "1")], "TSDB_NO_SUCH"),
        (
            vec![format!("--config={}", yaml.display())],
            vec![],
            "segmnt_size",
        ),
        (vec!["--retention=forever".into()], vec![], "--retention"),
        (
            vec![],
            vec![("TSDB_MEMTABLE_SIZE", "lots")],
            "TSDB_MEMTABLE_SIZE",
        ),
        (vec!["--wal-sync=sometimes".into()], vec![], "--wal-sync"),
    ];
    for (args, envs, needle) in cases {
        let mut cmd = bare();
        cmd.arg("start")
            .arg("--listen=127.0.0.1:0")
            .arg(format!("--data-dir={}", dir.path().join("d").display()))
            .args(&args)
            .envs(envs.iter().copied());
        let (code, out) = run_to_exit(cmd);
        assert_ne!(code, Some(0), "{args:?} {envs:?} started:\n{out}");
        assert!(
            out.contains(needle),
            "{args:?} {envs:?}: message does not name {needle}:\n{out}"
        );
    }
}

#[test]
fn version_is_printed() {
    let mut cmd = bare();
    cmd.arg("--version");
    let (code, out) = run_to_exit(cmd);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("tsdb "), "{out}");
}
