//! The executable operations guide: `docs/OPERATIONS.md` (and the commands of
//! `docs/RUNBOOK.md`) checked against the real binary, both ways.
//!
//! Conventions of the documents (also in the HTML comment at the top of OPERATIONS.md):
//!
//! - ```` ```sh tsdb-run ```` fences run, in document order, under `bash -euo pipefail`
//!   against one live test server, with `tsdb` first on the PATH. Before a fence runs,
//!   `http://localhost:8080` becomes the server's address, `/var/lib/tsdb/data` its data
//!   directory, and `/backup/tsdb` and `/var/lib/tsdb-restore` scratch directories. It
//!   must exit 0, or N when the fence's tag line says `exit=N`.
//! - ```` ```sh tsdb-start ```` fences hold `export TSDB_…=…` lines and one
//!   `tsdb start …` command: it is started (its `--listen` replaced by a free loopback
//!   port; `/var/lib/tsdb/data` a fresh directory; `/etc/tsdb/tsdb.yaml` the last
//!   `yaml tsdb-config` fence) and must become ready.
//! - ```` ```yaml tsdb-config ```` fences are configuration files `tsdb start --config`
//!   must accept.
//! - A Markdown table after `<!-- tsdb-table:KIND -->` lists items: `flags` (flag, env
//!   var, YAML key, default), `routes` (methods, path), `metrics` (name, type), `cli`
//!   (command), `logs` (level, message).
//!
//! The reverse direction: the test fails when `tsdb --help` lists a subcommand, `tsdb
//! <sub> --help` a flag (with its `[env: …]` and `[yaml: …]`), `net/src/routes/mod.rs` a
//! route, or a live scrape a metric family that the guide does not document.
//! It prints a summary, per kind, of items documented / checked / working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, bare_command};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A fenced code block: its info string split into words, its body, where it starts.
#[derive(Clone, Debug)]
struct Fence {
    tags: Vec<String>,
    body: String,
    at: String,
}

impl Fence {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The `exit=N` of the tag line, 0 without one.
    fn exit(&self) -> i32 {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix("exit="))
            .map_or(0, |n| n.parse().unwrap())
    }
}

/// A document's fences and its marked tables (rows of cells, backticks removed).
struct Doc {
    fences: Vec<Fence>,
    tables: BTreeMap<String, Vec<Vec<String>>>,
}

fn parse_doc(file: &str) -> Doc {
    let text = read(file);
    let lines: Vec<&str> = text.lines().collect();
    let (mut fences, mut tables) = (Vec::new(), BTreeMap::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let start = i + 1;
            i += 1;
            let mut body = String::new();
            while i < lines.len() && lines[i].trim() != "```" {
                body.push_str(lines[i].get(indent..).unwrap_or(lines[i].trim_start()));
                body.push('\n');
                i += 1;
            }
            assert!(i < lines.len(), "{file}:{start}: unclosed fence");
            fences.push(Fence {
                tags: info.split_whitespace().map(str::to_string).collect(),
                body,
                at: format!("{file}:{start}"),
            });
        } else if let Some(kind) = trimmed
            .strip_prefix("<!-- tsdb-table:")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            i += 1;
            while i < lines.len() && lines[i].trim().is_empty() {
                i += 1;
            }
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(split_row(lines[i]));
                i += 1;
            }
            assert!(rows.len() > 2, "{file}: table {kind} has no rows");
            // The header and the separator line.
            let rows = rows.split_off(2);
            assert!(
                tables.insert(kind.to_string(), rows).is_none(),
                "{file}: two tables of kind {kind}"
            );
            continue;
        }
        i += 1;
    }
    Doc { fences, tables }
}

/// The cells of a Markdown table row, trimmed, without backticks, `\|` unescaped.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells
        .iter()
        .map(|c| c.replace('`', "").trim().to_string())
        .collect()
}

/// One kind's tally for the summary.
#[derive(Default)]
struct Tally {
    documented: usize,
    checked: usize,
    working: usize,
}

/// Everything found wrong, reported together at the end, and the tallies.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
    tallies: BTreeMap<&'static str, Tally>,
}

impl Report {
    fn tally(&mut self, kind: &'static str) -> &mut Tally {
        self.tallies.entry(kind).or_default()
    }

    /// Records one documented item: checked, and working when `problem` is `None`.
    fn item(&mut self, kind: &'static str, problem: Option<String>) {
        let t = self.tally(kind);
        t.documented += 1;
        t.checked += 1;
        match problem {
            None => t.working += 1,
            Some(p) => self.problems.push(format!("{kind}: {p}")),
        }
    }

    fn undocumented(&mut self, kind: &'static str, what: String) {
        self.problems.push(format!(
            "{kind}: {what} exists but docs/OPERATIONS.md does not document it"
        ));
    }
}

/// What `tsdb <sub> --help` says of one long flag.
#[derive(Clone, Debug, Default)]
struct HelpFlag {
    default: String,
    env: String,
    yaml: String,
}

fn help_text(args: &[&str]) -> String {
    let out = bare_command().args(args).output().unwrap();
    assert!(out.status.success(), "tsdb {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `tsdb --help` lists.
fn subcommands() -> Vec<String> {
    let help = help_text(&["--help"]);
    let mut subs = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
        } else if in_commands && line.starts_with("  ") {
            subs.push(line.split_whitespace().next().unwrap().to_string());
        } else if in_commands {
            break;
        }
    }
    assert!(subs.iter().any(|s| s == "start"), "{help}");
    subs
}

/// The long flags of `tsdb <sub> --help` with the bracketed facts of each entry.
fn help_flags(sub: &str) -> BTreeMap<String, HelpFlag> {
    let help = help_text(&[sub, "--help"]);
    let mut flags = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut finish = |entry: Option<(String, String)>| {
        if let Some((name, text)) = entry {
            let fact = |key: &str| {
                text.split(&format!("[{key}: "))
                    .nth(1)
                    .map(|r| r[..r.find(']').unwrap()].to_string())
                    .unwrap_or_default()
            };
            let f = HelpFlag {
                default: fact("default"),
                env: fact("env"),
                yaml: fact("yaml"),
            };
            flags.insert(name, f);
        }
    };
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') {
            finish(current.take());
            if let Some(name) = t
                .split([' ', ',', '='])
                .find_map(|w| w.strip_prefix("--"))
                .filter(|n| !n.is_empty())
            {
                current = Some((name.to_string(), t.to_string()));
            }
        } else if t.is_empty() || !line.starts_with(' ') {
            finish(current.take());
        } else if let Some((_, text)) = current.as_mut() {
            text.push(' ');
            text.push_str(t);
        }
    }
    finish(current.take());
    flags.remove("help");
    flags.remove("version");
    flags
}

/// The routes `net/src/routes/mod.rs` dispatches: every `"/…"` literal of `route`, and
/// the label-values pattern as `<prefix><name><suffix>`.
fn source_routes() -> BTreeSet<String> {
    let src = read("net/src/routes/mod.rs");
    let start = src
        .find("pub async fn route")
        .expect("net/src/routes/mod.rs has no `pub async fn route`");
    // The function ends at the first line that closes a top-level item.
    let len = src[start..].find("\n}\n").expect("the end of `route`");
    let body = &src[start..start + len];
    let mut routes: BTreeSet<String> = body
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_string)
        .collect();
    let lv = &src[src.find("fn is_label_values").unwrap()..];
    let arg = |call: &str| {
        let r = &lv[lv.find(call).unwrap() + call.len()..];
        r[..r.find('"').unwrap()].to_string()
    };
    routes.insert(format!(
        "{}<name>{}",
        arg("starts_with(\""),
        arg("ends_with(\"")
    ));
    routes
}

/// The scratch directories and the live server's address the documents' paths become.
struct Env {
    scratch: PathBuf,
    bin_dir: PathBuf,
    next: std::cell::Cell<usize>,
}

impl Env {
    fn fresh(&self, what: &str) -> PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        let dir = self.scratch.join(format!("{what}-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The substitutions for a `tsdb-run` fence against the live server.
    fn for_live(&self, text: &str, server: &Server) -> String {
        text.replace("http://localhost:8080", &format!("http://{}", server.addr))
            .replace("/var/lib/tsdb/data", &server.data_dir.display().to_string())
            .replace("/var/lib/tsdb-restore", &self.path("restore"))
            .replace("/backup/tsdb", &self.path("backup"))
    }

    /// The substitutions for a started instance: its own data dir and config file.
    fn for_start(&self, text: &str, data: &Path, config: &Path) -> String {
        text.replace("/var/lib/tsdb/data", &data.display().to_string())
            .replace("/etc/tsdb/tsdb.yaml", &config.display().to_string())
            .replace("/var/lib/tsdb-restore", &self.path("restore"))
            .replace("/backup/tsdb", &self.path("backup"))
    }

    fn path(&self, name: &str) -> String {
        self.scratch.join(name).display().to_string()
    }
}

/// Runs a `tsdb-run` fence; `Err` says what went wrong.
fn run_fence(env: &Env, fence: &Fence, server: &Server) -> Result<(), String> {
    let script = env.for_live(&fence.body, server);
    let path = format!(
        "{}:{}",
        env.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &script])
        .current_dir(&env.scratch)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TSDB_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    // Read both pipes as the script runs, so a talkative one cannot fill a pipe and stall.
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{}: still running after 60 s", fence.at));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out: String = readers.into_iter().map(|r| r.join().unwrap()).collect();
    if status.code() == Some(fence.exit()) {
        Ok(())
    } else {
        Err(format!(
            "{}: exit {:?}, the guide says {}\n--- script\n{script}--- output\n{out}",
            fence.at,
            status.code(),
            fence.exit()
        ))
    }
}

/// Starts `tsdb` with `args` and `vars`, waits for ready, stops it; `Err` says why not.
fn start_and_stop(args: &[String], vars: &[(String, String)], cwd: &Path) -> Result<(), String> {
    let mut cmd = bare_command();
    cmd.args(args).current_dir(cwd);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    common::start_and_stop(cmd, cwd, common::agent(), "http")
        .map_err(|e| format!("tsdb {args:?} {vars:?}: {e}"))
}

/// A `tsdb-start` fence as (args, vars), with the test's listen address.
fn start_command(
    env: &Env,
    fence: &Fence,
    config: &Path,
) -> (Vec<String>, Vec<(String, String)>, PathBuf) {
    let data = env.fresh("start");
    let text = env
        .for_start(&fence.body, &data, config)
        .replace("\\\n", " ");
    let mut vars = Vec::new();
    let mut args = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(assign) = line.strip_prefix("export ") {
            let (k, v) = assign.split_once('=').unwrap();
            vars.push((k.to_string(), v.to_string()));
        } else {
            assert!(args.is_empty(), "{}: more than one command", fence.at);
            assert!(
                !line.contains(['"', '\'', '$']),
                "{}: quoting is not supported",
                fence.at
            );
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[..2], ["tsdb", "start"], "{}", fence.at);
            args = words[1..].iter().map(|w| w.to_string()).collect();
        }
    }
    let listen = "--listen=127.0.0.1:0".to_string();
    match args.iter().position(|a| a.starts_with("--listen")) {
        Some(i) => args[i] = listen,
        None => args.push(listen),
    }
    (args, vars, data)
}

/// Writes `text` (a config fence, substituted for a fresh data dir) to a file.
fn write_config(env: &Env, text: &str) -> PathBuf {
    let dir = env.fresh("config");
    let file = dir.join("tsdb.yaml");
    std::fs::write(&file, env.for_start(text, &dir.join("data"), &file)).unwrap();
    file
}

/// `section.key` of every leaf of a YAML document.
fn yaml_keys(text: &str) -> Vec<String> {
    let v: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    let mut keys = Vec::new();
    for (section, inner) in v.as_object().unwrap() {
        for key in inner.as_object().unwrap().keys() {
            keys.push(format!("{section}.{key}"));
        }
    }
    keys
}

/// Checks the flags table against `tsdb start --help` and starts tsdb with every flag,
/// every variable and every YAML key of the table; then every config fence.
fn check_options(env: &Env, doc: &Doc, report: &mut Report, config_fences: &[&Fence]) {
    let help = help_flags("start");
    let rows = &doc.tables["flags"];
    let documented: BTreeSet<&str> = rows.iter().map(|r| r[0].trim_start_matches("--")).collect();
    for name in help.keys().filter(|n| !documented.contains(n.as_str())) {
        report.undocumented("flag", format!("tsdb start --{name}"));
    }
    let documented_env: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    let mut documented_yaml: BTreeSet<String> = rows.iter().map(|r| r[2].clone()).collect();
    for f in config_fences {
        documented_yaml.extend(yaml_keys(&f.body));
    }
    for h in help.values() {
        if !documented_env.contains(h.env.as_str()) {
            report.undocumented("env var", h.env.clone());
        }
        if !h.yaml.is_empty() && !documented_yaml.contains(&h.yaml) {
            report.undocumented("YAML key", h.yaml.clone());
        }
    }

    // The value each option is started with: its default, or one for computed ones.
    let config = write_config(
        env,
        &config_fences.last().expect("a tsdb-config fence").body,
    );
    let data = env.fresh("options");
    // `None` for an option with no default to start with (a file only the operator
    // has, such as a certificate): it is checked against `--help` only, and tallied
    // apart so the summary says so.
    let value = |flag: &str, default: &str| -> Option<String> {
        Some(match flag {
            "--listen" => "127.0.0.1:0".into(),
            "--data-dir" => data.display().to_string(),
            "--wal-dir" => data.join("wal").display().to_string(),
            "--shards" => "2".into(),
            "--config" => config.display().to_string(),
            _ if default.is_empty() || default.starts_with("none") => return None,
            _ => default.to_string(),
        })
    };
    let mut args = vec!["start".to_string()];
    let mut vars = Vec::new();
    let mut yaml: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut row_problems = Vec::new();
    for r in rows {
        let (flag, var, key, default) = (&r[0], &r[1], &r[2], &r[3]);
        let name = flag.trim_start_matches("--");
        let problem = match help.get(name) {
            None => Some(format!("{flag}: not in `tsdb start --help`")),
            Some(h) if h.env != *var => {
                Some(format!("{flag}: env is {}, the guide says {var}", h.env))
            }
            Some(h) if h.yaml != *key => Some(format!(
                "{flag}: YAML key is {}, the guide says {key}",
                h.yaml
            )),
            Some(h) if h.default != *default => Some(format!(
                "{flag}: default is {:?}, the guide says {default:?}",
                h.default
            )),
            Some(_) => None,
        };
        let Some(v) = value(flag, default) else {
            row_problems.push((problem, false));
            continue;
        };
        row_problems.push((problem, true));
        args.push(format!("{flag}={v}"));
        vars.push((var.clone(), v.clone()));
        if let Some((section, k)) = key.split_once('.') {
            yaml.entry(section.to_string())
                .or_default()
                .push(format!("  {k}: \"{v}\""));
        }
    }
    // Each layer on its own: every flag, then every variable, then every key.
    let flags_ok = start_and_stop(&args, &[], &env.scratch);
    let vars_ok = start_and_stop(&["start".into()], &vars, &env.scratch);
    let file = env.fresh("yaml").join("all.yaml");
    let text: String = yaml
        .iter()
        .map(|(s, lines)| format!("{s}:\n{}\n", lines.join("\n")))
        .collect();
    std::fs::write(&file, text).unwrap();
    let yaml_ok = start_and_stop(
        &["start".into(), format!("--config={}", file.display())],
        &[],
        &env.scratch,
    );
    // A control: the same path refuses what it should.
    let (code, _) = common::run_to_exit({
        let mut c = bare_command();
        c.args(["start", "--no-such-flag=1"]);
        c
    });
    assert_eq!(code, Some(2), "tsdb start accepted an unknown flag");

    for (r, (problem, started)) in rows.iter().zip(row_problems) {
        if !started {
            report.item("flags (--help only)", problem.clone());
            report.item("env vars (--help only)", problem.clone());
            if !r[2].is_empty() {
                report.item("YAML keys (--help only)", problem);
            }
            continue;
        }
        let flag_problem = problem.clone().or_else(|| flags_ok.clone().err());
        report.item("flags", flag_problem);
        report.item(
            "env vars",
            problem.clone().or_else(|| vars_ok.clone().err()),
        );
        if !r[2].is_empty() {
            report.item("YAML keys", problem.or_else(|| yaml_ok.clone().err()));
        }
    }
    for f in config_fences {
        let file = write_config(env, &f.body);
        let ok = start_and_stop(
            &[
                "start".into(),
                format!("--config={}", file.display()),
                "--listen=127.0.0.1:0".into(),
            ],
            &[],
            &env.scratch,
        );
        report.item("config fences", ok.err().map(|e| format!("{}: {e}", f.at)));
    }
}

/// Checks the cli table against `tsdb --help` and each `tsdb <sub> --help`.
fn check_cli(doc: &Doc, report: &mut Report) {
    let subs = subcommands();
    let rows = &doc.tables["cli"];
    for sub in &subs {
        if !rows
            .iter()
            .any(|r| r[0].split_whitespace().nth(1) == Some(sub.as_str()))
        {
            report.undocumented("CLI command", format!("tsdb {sub}"));
        }
    }
    for r in rows {
        let words: Vec<&str> = r[0].split_whitespace().collect();
        let sub = words[1];
        let problem = if !subs.iter().any(|s| s == sub) {
            Some(format!("tsdb {sub}: not listed by `tsdb --help`"))
        } else if sub == "help" {
            let out = bare_command().arg("help").output().unwrap();
            (!out.status.success()).then(|| "tsdb help failed".to_string())
        } else {
            let help = help_flags(sub);
            // A flag is documented when any cell of the row names it.
            let documented: BTreeSet<&str> = r
                .iter()
                .flat_map(|cell| cell.split_whitespace())
                .filter_map(|w| {
                    w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                        .split('=')
                        .next()
                        .and_then(|w| w.strip_prefix("--"))
                        // `--help` and `--version` are clap's own, on every command.
                        .filter(|w| !w.is_empty() && *w != "help" && *w != "version")
                })
                .collect();
            if sub != "start" {
                for name in help.keys().filter(|n| !documented.contains(n.as_str())) {
                    report.undocumented("CLI flag", format!("tsdb {sub} --{name}"));
                }
            }
            documented
                .iter()
                .find(|d| !help.contains_key(**d))
                .map(|d| format!("tsdb {sub} --{d}: not in `tsdb {sub} --help`"))
        };
        report.item("CLI commands", problem);
    }
}

/// Checks the routes table: both ways against the source, and live.
fn check_routes(doc: &Doc, server: &Server, report: &mut Report) {
    let rows = &doc.tables["routes"];
    let documented: BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    for route in source_routes() {
        // A literal ending in `/` is a prefix the router matches (a family of routes);
        // documenting one route under it documents it.
        let prefix_documented =
            route.ends_with('/') && documented.iter().any(|d| d.starts_with(route.as_str()));
        if !documented.contains(route.as_str()) && !prefix_documented {
            report.undocumented("route", route);
        }
    }
    let agent = common::agent();
    for r in rows {
        let mut path = r[1].replace("<name>", "__name__");
        // A CPU profile lasts 30 s unless asked for less.
        if path == "/debug/pprof/profile" {
            path.push_str("?seconds=1");
        }
        let methods: Vec<&str> = r[0].split(',').map(str::trim).collect();
        let mut problem = None;
        for m in ["GET", "POST"] {
            let url = server.url(&path);
            let status = match m {
                "GET" => agent.get(&url).call(),
                _ => agent.post(&url).send(&b""[..]),
            }
            .unwrap()
            .status()
            .as_u16();
            let documented = methods.contains(&m);
            // The probes answer any method, so a load balancer's HEAD or POST works.
            let probe = path.starts_with("/-/");
            if documented && matches!(status, 404 | 405) {
                problem = Some(format!("{m} {path}: {status}"));
            } else if !documented && !probe && status != 405 {
                problem = Some(format!(
                    "{m} {path}: {status}, but the guide does not list {m}"
                ));
            }
        }
        report.item("routes", problem);
    }
}

/// Checks the metrics table against a live scrape, both ways.
fn check_metrics(doc: &Doc, server: &Server, report: &mut Report) {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    common::metrics::Scrape::parse(&text);
    let families: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let rows = &doc.tables["metrics"];
    for name in families.keys() {
        if !rows.iter().any(|r| r[0] == *name) {
            report.undocumented("metric", (*name).to_string());
        }
    }
    for r in rows {
        let problem = match families.get(r[0].as_str()) {
            None => Some(format!("{} is not in a live scrape", r[0])),
            Some(t) if *t != r[1] => Some(format!("{} is a {t}, the guide says {}", r[0], r[1])),
            Some(_) => None,
        };
        report.item("metrics", problem);
    }
}

/// Every documented log message is a string the code logs.
fn check_logs(doc: &Doc, report: &mut Report) {
    let mut sources = String::new();
    for dir in ["src", "engine/src", "net/src"] {
        collect_sources(&repo().join(dir), &mut sources);
    }
    for r in &doc.tables["logs"] {
        let quoted = format!("\"{}\"", r[1]);
        let problem = (!sources.contains(&quoted)).then(|| format!("{quoted} is logged nowhere"));
        report.item("log lines", problem);
    }
}

fn collect_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is needed by the guide's commands: apt-get install {tool} (.ci/run installs it)"
    );
}

#[test]
fn the_operations_guide_works_as_written_and_documents_everything() {
    for tool in ["curl", "rsync", "jq"] {
        require(tool);
    }
    let guide = parse_doc("docs/OPERATIONS.md");
    let runbook = parse_doc("docs/RUNBOOK.md");
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.join("tsdb")).unwrap();
    let env = Env {
        scratch: dir.path().to_path_buf(),
        bin_dir,
        next: std::cell::Cell::new(0),
    };
    let mut report = Report::default();

    let config_fences: Vec<&Fence> = guide
        .fences
        .iter()
        .filter(|f| f.has("tsdb-config"))
        .collect();
    check_options(&env, &guide, &mut report, &config_fences);
    check_cli(&guide, &mut report);
    check_logs(&guide, &mut report);

    // The commands, in document order, against one live server.
    let server = Server::start(&env.fresh("live").join("data"), &["--shards=2"]);
    let config = write_config(&env, &config_fences.last().unwrap().body);
    for (doc, fence) in guide
        .fences
        .iter()
        .map(|f| ("guide", f))
        .chain(runbook.fences.iter().map(|f| ("runbook", f)))
    {
        if fence.has("tsdb-run") {
            let kind = if doc == "guide" {
                "run fences"
            } else {
                "runbook run fences"
            };
            report.item(kind, run_fence(&env, fence, &server).err());
        } else if fence.has("tsdb-start") {
            let (args, vars, data) = start_command(&env, fence, &config);
            let ok = start_and_stop(&args, &vars, &data);
            report.item(
                "start fences",
                ok.err().map(|e| format!("{}: {e}", fence.at)),
            );
        }
    }
    assert!(
        server.logs().iter().any(|l| l["msg"] == "replaying WAL"),
        "the live server never logged the guide's WAL replay line"
    );
    check_metrics(&guide, &server, &mut report);
    check_routes(&guide, &server, &mut report);
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");

    eprintln!("docs/OPERATIONS.md against the binary (documented / checked / working):");
    for (kind, t) in &report.tallies {
        eprintln!(
            "  {kind:<20} {:>3} / {:>3} / {:>3}",
            t.documented, t.checked, t.working
        );
    }
    assert!(
        report.problems.is_empty(),
        "{} problems:\n{}",
        report.problems.len(),
        report.problems.join("\n")
    );
}
