//! The operations guide tsdb was given, `../shared/seeds/002_550f756f6e3f773f.txt` (the
//! contract: every command, flag, config key, env var, route, metric and log line in
//! it must work as written), checked against the real binary. The items are read
//! from the guide's own text, not listed here, so a guide that names more is checked
//! more:
//!
//! - flags of its `tsdb start [options]` list: the default it states is the default
//!   `tsdb start --help` prints, and a start with every one of them set as the list
//!   writes it (`--wal-enabled` bare) becomes ready;
//! - every `tsdb …` command of its shell blocks, the systemd `ExecStart=`, the
//!   Kubernetes `args:` and the `docker run` arguments: `tsdb start …` becomes ready
//!   (addresses and paths rewritten to loopback and scratch directories, a
//!   certificate made for `--tls-cert`); `tsdb --version`, `tsdb compact`,
//!   `tsdb inspect <block>` and `tsdb inspect-wal` exit 0 on a real data dir;
//! - its `export TSDB_…` variables and its `tsdb.yaml`: accepted, and reported by
//!   `/api/v1/status/flags` and `/api/v1/status/config`;
//! - every `http://…:8080/…` URL, with the method and body the guide's `curl` sends:
//!   answered 2xx, in the guide's order (`seconds=` of a CPU profile and a trace
//!   shortened to 1);
//! - every metric it lists: a family of a live scrape;
//! - its log lines: `starting TSDB server` with `listen_addr` and `data_dir`, and
//!   `replaying WAL` with `entries` and `duration_ms`.
//!
//! It prints a summary per kind (named in the guide / checked / working); a kind
//! with nothing named fails, as a sign the extraction broke.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::tls::{self_signed, trusting};
use common::{Server, bare_command, now_ms, run_to_exit};

const SEED: &str = "002_550f756f6e3f773f.txt";

fn seed_text() -> String {
    let path = match std::env::var_os("TSDB_SEED_GUIDE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/seeds")
            .join(SEED),
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the operations guide {} cannot be read ({e}): this test needs the shared \
             documents beside the repository (../shared), as CI has them, or \
             TSDB_SEED_GUIDE=<path>",
            path.display()
        )
    })
}

/// The fenced code blocks: (info string, body).
fn fences(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(f) => out.push(f),
                None => open = Some((info.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = &mut open {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The commands of a shell block: continuation lines joined, comments dropped.
fn commands(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in body.lines() {
        let line = line.trim();
        if cur.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head.trim_end());
                cur.push(' ');
            }
            None => {
                cur.push_str(line);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

/// What the test tallies per kind: (named, checked, working) and the problems.
#[derive(Default)]
struct Report {
    kinds: BTreeMap<&'static str, (usize, usize)>,
    problems: Vec<String>,
}

impl Report {
    fn item(&mut self, kind: &'static str, what: &str, problem: Option<String>) {
        let e = self.kinds.entry(kind).or_default();
        e.0 += 1;
        match problem {
            None => e.1 += 1,
            Some(p) => self.problems.push(format!("{kind}: {what}: {p}")),
        }
    }
}

/// `tsdb start --help`'s default of each flag.
fn help_defaults() -> BTreeMap<String, String> {
    let out = bare_command().args(["start", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut defaults = BTreeMap::new();
    let mut flag: Option<String> = None;
    for line in help.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flag = Some(name);
        }
        if let (Some(f), Some(i)) = (&flag, t.find("[default: ")) {
            let v = &t[i + "[default: ".len()..];
            defaults.insert(f.clone(), v[..v.find(']').unwrap_or(v.len())].to_string());
        }
    }
    defaults
}

/// Scratch places the guide's paths and addresses become.
struct Env {
    root: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
}

impl Env {
    fn new() -> Env {
        let root = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = self_signed("tsdb");
        let (cert_path, key_path) = (root.path().join("cert.pem"), root.path().join("key.pem"));
        std::fs::write(&cert_path, &cert_pem).unwrap();
        std::fs::write(&key_path, key_pem).unwrap();
        Env {
            root,
            cert: cert_path,
            key: key_path,
            cert_pem,
        }
    }

    fn fresh(&self, name: &str) -> PathBuf {
        let mut n = 0;
        loop {
            let p = self.root.path().join(format!("{name}-{n}"));
            if !p.exists() {
                std::fs::create_dir_all(&p).unwrap();
                return p;
            }
            n += 1;
        }
    }

    /// One argument of the guide as it is run here: loopback for its addresses, the
    /// scratch `data` for its data dirs, the test certificate for its PEM paths.
    fn rewrite(&self, arg: &str, data: &Path) -> String {
        match arg.split_once('=').map(|(name, _)| name) {
            Some("--listen") => "--listen=127.0.0.1:0".to_string(),
            Some("--data-dir") => format!("--data-dir={}", data.display()),
            Some("--tls-cert") => format!("--tls-cert={}", self.cert.display()),
            Some("--tls-key") => format!("--tls-key={}", self.key.display()),
            _ => arg.to_string(),
        }
    }
}

/// Starts `tsdb` with `args` (already rewritten) and `vars`, waits for ready, stops it.
fn start_and_stop(env: &Env, args: &[String], vars: &[(String, String)]) -> Option<String> {
    let data = env.fresh("start");
    let mut cmd = bare_command();
    cmd.args(args);
    if !args.iter().any(|a| a.starts_with("--listen"))
        && !vars.iter().any(|(k, _)| k == "TSDB_LISTEN")
    {
        cmd.arg("--listen=127.0.0.1:0");
    }
    if !args
        .iter()
        .any(|a| a.starts_with("--data-dir") || a.starts_with("--config"))
        && !vars.iter().any(|(k, _)| k == "TSDB_DATA_DIR")
    {
        cmd.arg(format!("--data-dir={}", data.display()));
    }
    cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (agent, scheme) = if args.iter().any(|a| a.starts_with("--tls-cert")) {
        (trusting(&env.cert_pem), "https")
    } else {
        (common::agent(), "http")
    };
    common::start_and_stop(cmd, &data, agent, scheme).err()
}

#[test]
fn the_given_operations_guide_works_with_tsdb() {
    let text = seed_text();
    let fences = fences(&text);
    let env = Env::new();
    let mut report = Report::default();
    let defaults = help_defaults();

    // The option list of `tsdb start [options]`.
    let list = fences
        .iter()
        .find(|(_, b)| b.contains("tsdb start [options]"))
        .expect("the guide's option list");
    let mut all = vec!["start".to_string()];
    let data = env.fresh("options");
    for line in list
        .1
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("--"))
    {
        let word = line.split_whitespace().next().unwrap();
        let name = word.trim_start_matches("--").split('=').next().unwrap();
        let stated = line
            .rsplit_once("(default: ")
            .map(|(_, d)| d.trim_end_matches(')').to_string());
        let problem = match (stated, defaults.get(name)) {
            (_, None) => Some("not in `tsdb start --help`".to_string()),
            (Some(s), Some(ours)) if &s != ours => {
                Some(format!("the guide's default is {s}, ours {ours}"))
            }
            (None, _) => Some("no default in the guide's line".to_string()),
            _ => None,
        };
        report.item("flags (defaults)", word, problem);
        // Set each as the guide writes it: a boolean bare, the others to the default.
        let default = line
            .rsplit_once("(default: ")
            .map(|(_, d)| d.trim_end_matches(')'))
            .unwrap_or_default();
        let arg = if word.contains('=') {
            format!("--{name}={default}")
        } else {
            format!("--{name}")
        };
        all.push(env.rewrite(&arg, &data));
    }
    let ok = start_and_stop(&env, &all, &[]);
    report.item("flags (all set at once)", "tsdb start [options]", ok);

    // Every `tsdb` command of the guide, in its order, and what it starts from.
    let mut tsdb_commands: Vec<Vec<String>> = Vec::new();
    for (info, body) in &fences {
        match info.as_str() {
            "bash" => {
                for c in commands(body) {
                    let words: Vec<String> = c.split_whitespace().map(str::to_string).collect();
                    if words.first().map(String::as_str) == Some("docker")
                        && words.get(1).map(String::as_str) == Some("run")
                    {
                        // The image's arguments are tsdb's.
                        if let Some(i) = words.iter().position(|w| w == "start") {
                            tsdb_commands.push(words[i..].to_vec());
                        }
                    } else if let Some(i) = words
                        .iter()
                        .position(|w| w == "tsdb" || w.ends_with("/tsdb"))
                        && words[..i].iter().all(|w| w == "sudo")
                    {
                        tsdb_commands.push(words[i + 1..].to_vec());
                    }
                }
            }
            "ini" => {
                for c in commands(body) {
                    if let Some(cmd) = c.strip_prefix("ExecStart=") {
                        let words: Vec<String> =
                            cmd.split_whitespace().map(str::to_string).collect();
                        tsdb_commands.push(words[1..].to_vec());
                    }
                }
            }
            "yaml" if body.contains("kind: Deployment") => {
                let args: Vec<String> = body
                    .lines()
                    .map(str::trim)
                    .skip_while(|l| *l != "args:")
                    .skip(1)
                    .map_while(|l| l.strip_prefix("- "))
                    .map(str::to_string)
                    .collect();
                tsdb_commands.push(args);
            }
            _ => {}
        }
    }

    // The guide's config file and variables, for `--config` and a bare `tsdb start`.
    let yaml_body = &fences
        .iter()
        .find(|(info, b)| info == "yaml" && b.contains("memtable_size"))
        .expect("the guide's tsdb.yaml")
        .1;
    let cfg_dir = env.fresh("config");
    let yaml_text = yaml_body
        .replace("\":8080\"", "\"127.0.0.1:0\"")
        .replace(
            "/var/lib/tsdb/data",
            &cfg_dir.join("data").display().to_string(),
        )
        .replace(
            "/var/lib/tsdb/wal",
            &cfg_dir.join("wal").display().to_string(),
        );
    let config_file = cfg_dir.join("tsdb.yaml");
    std::fs::write(&config_file, &yaml_text).unwrap();
    let yaml: serde_json::Value = serde_saphyr::from_str(yaml_body).unwrap();
    let exports: Vec<(String, String)> = fences
        .iter()
        .flat_map(|(_, b)| b.lines())
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("TSDB_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(!exports.is_empty(), "the guide's export lines");
    // The guide's variables as they are run here: loopback, and a scratch data dir.
    let export_vars = |data: &Path| -> Vec<(String, String)> {
        exports
            .iter()
            .map(|(k, v)| match k.as_str() {
                "TSDB_LISTEN" => (k.clone(), "127.0.0.1:0".to_string()),
                "TSDB_DATA_DIR" => (k.clone(), data.display().to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    };

    for words in &tsdb_commands {
        let shown = format!("tsdb {}", words.join(" "));
        match words.first().map(String::as_str) {
            Some("start") if words.get(1).map(String::as_str) == Some("[options]") => {}
            Some("start") if words.len() == 1 => {
                // The bare `tsdb start` after the guide's `export` lines.
                let vars = export_vars(&env.fresh("env"));
                report.item(
                    "CLI commands",
                    &shown,
                    start_and_stop(&env, &["start".into()], &vars),
                );
            }
            Some("start") => {
                let data = env.fresh("cmd");
                let args: Vec<String> = words
                    .iter()
                    .map(|w| {
                        if w.starts_with("--config=") {
                            format!("--config={}", config_file.display())
                        } else {
                            env.rewrite(w, &data)
                        }
                    })
                    .collect();
                report.item("CLI commands", &shown, start_and_stop(&env, &args, &[]));
            }
            Some(_) => {} // checked against a data dir below
            None => {}
        }
    }

    // Variables: accepted and in force.
    {
        let data = env.fresh("vars");
        let mut cmd = bare_command();
        cmd.arg("start").envs(export_vars(&data));
        let s = Server::start_cmd(cmd, &data);
        let flags = s.api("/api/v1/status/flags");
        for (k, v) in &exports {
            let flag = k
                .trim_start_matches("TSDB_")
                .to_lowercase()
                .replace('_', "-");
            let problem = match flags[flag.as_str()].as_str() {
                None => Some(format!("--{flag} is not in /api/v1/status/flags")),
                Some(_) if k == "TSDB_LISTEN" || k == "TSDB_DATA_DIR" => None,
                Some(got) if got != v => Some(format!("in force: {got}, set: {v}")),
                Some(_) => None,
            };
            report.item("env vars", k, problem);
        }
        s.terminate();
    }

    // The config file: every key accepted and reported.
    {
        let mut cmd = bare_command();
        cmd.arg("start")
            .arg(format!("--config={}", config_file.display()));
        let s = Server::start_cmd(cmd, &cfg_dir.join("data"));
        let (status, body) = s.get("/api/v1/status/config");
        assert_eq!(status, 200, "{body}");
        let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
        let reported: serde_json::Value =
            serde_saphyr::from_str(dump["data"]["yaml"].as_str().unwrap_or_default()).unwrap();
        for (section, keys) in yaml.as_object().unwrap() {
            for key in keys.as_object().unwrap().keys() {
                let problem = reported[section.as_str()][key.as_str()]
                    .is_null()
                    .then(|| "not reported by /api/v1/status/config".to_string());
                report.item("YAML keys", &format!("{section}.{key}"), problem);
            }
        }
        s.terminate();
    }

    // A live server for the routes, metrics, log lines and the offline tools.
    let data = env.fresh("live");
    let s = Server::start(&data, &["--shards=2"]);
    let first = s.logs();
    let line = first.iter().find(|l| l["msg"] == "starting TSDB server");
    report.item(
        "log lines",
        "starting TSDB server",
        match line {
            Some(l)
                if l["listen_addr"].is_string()
                    && l["data_dir"].is_string()
                    && l["ts"].is_string() =>
            {
                None
            }
            _ => Some("no line with msg, ts, listen_addr and data_dir".to_string()),
        },
    );
    let replay = first.iter().find(|l| l["msg"] == "replaying WAL");
    report.item(
        "log lines",
        "replaying WAL",
        match replay {
            Some(l) if l["entries"].is_u64() && l["duration_ms"].is_u64() => None,
            _ => Some("no line with entries and duration_ms".to_string()),
        },
    );
    let body = common::remote_write_body(&[(
        vec![("__name__", "guide_metric"), ("job", "guide")],
        vec![(now_ms(), 1.0)],
    )]);
    let (status, _) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204);

    // Every URL of the guide on port 8080, with the method and body its curl sends.
    let agent = common::agent();
    for (_, body) in &fences {
        for c in commands(body) {
            for (i, _) in c.match_indices("http://") {
                let url: String = c[i..]
                    .chars()
                    .take_while(|ch| !ch.is_whitespace() && *ch != '\'' && *ch != '"')
                    .collect();
                let Some(path) = url.split_once(":8080").map(|(_, p)| p.to_string()) else {
                    continue;
                };
                if path.is_empty() || path.starts_with("/api/") && !path.starts_with("/api/v1/") {
                    continue; // the nginx block's `proxy_pass http://localhost:8080/api/;`
                }
                // Shortened: a 30 s CPU profile and a 10 s trace ask the same routes.
                let asked = if path.starts_with("/debug/pprof/profile") {
                    "/debug/pprof/profile?seconds=1".to_string()
                } else {
                    path.replace("seconds=10", "seconds=1")
                };
                let post = c.contains("-X POST");
                let data = c
                    .split_once(" -d '")
                    .and_then(|(_, d)| d.split_once('\''))
                    .map(|(d, _)| d);
                let resp = if post {
                    agent
                        .post(&s.url(&asked))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .send(data.unwrap_or_default().as_bytes())
                } else {
                    agent.get(&s.url(&asked)).call()
                };
                let status = resp.map(|r| r.status().as_u16()).unwrap_or(0);
                let what = format!("{} {path}", if post { "POST" } else { "GET" });
                report.item(
                    "routes",
                    &what,
                    (!(200..300).contains(&status)).then(|| format!("answered {status}")),
                );
            }
        }
    }

    // Every metric the guide lists, as a family of a live scrape.
    let (_, scrape) = s.get("/metrics");
    for (_, body) in &fences {
        for l in body.lines() {
            let name = l.split_whitespace().next().unwrap_or_default();
            if name.starts_with("tsdb_") && l.contains('#') {
                let family = format!("# TYPE {name} ");
                report.item(
                    "metrics",
                    name,
                    (!scrape.contains(&family)).then(|| "not in /metrics".to_string()),
                );
            }
        }
    }
    s.flush();
    let (exit, _) = s.terminate();
    assert!(exit.success());

    // The other tsdb commands, on the stopped server's data dir.
    let block = std::fs::read_dir(data.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().contains('.'))
        })
        .expect("a block after the flush");
    for words in &tsdb_commands {
        let shown = format!("tsdb {}", words.join(" "));
        let args: Vec<String> = match words.first().map(String::as_str) {
            Some("start") | None => continue,
            Some("inspect") => vec!["inspect".into(), block.display().to_string()],
            Some(_) => words
                .iter()
                .map(|w| w.replace("/var/lib/tsdb/data", &data.display().to_string()))
                .collect(),
        };
        let mut cmd = bare_command();
        cmd.args(&args);
        let (code, out) = run_to_exit(cmd);
        report.item(
            "CLI commands",
            &shown,
            (code != Some(0)).then(|| format!("exit {code:?}: {out}")),
        );
    }

    // The guide's last resort for a WAL that will not replay: delete it. The server
    // starts, and what was flushed into blocks is still served.
    if text.contains("rm -rf /var/lib/tsdb/data/wal/*") {
        for e in std::fs::read_dir(data.join("wal")).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        let s = Server::start(&data, &["--shards=2"]);
        let served = s.export("guide_metric").len();
        report.item(
            "procedures",
            "rm -rf /var/lib/tsdb/data/wal/* && tsdb start",
            (served != 1).then(|| format!("{served} series of guide_metric served, 1 flushed")),
        );
        s.terminate();
    }

    println!("{SEED} (the operations guide) against tsdb (named / working):");
    for (kind, (named, working)) in &report.kinds {
        println!("  {kind:<26} {named:>3} / {working:>3}");
    }
    for kind in [
        "flags (defaults)",
        "CLI commands",
        "env vars",
        "YAML keys",
        "routes",
        "metrics",
        "log lines",
    ] {
        assert!(
            report.kinds.get(kind).is_some_and(|(n, _)| *n > 0),
            "nothing of kind {kind} was found in the guide: the extraction broke"
        );
    }
    assert!(
        report.problems.is_empty(),
        "the guide does not work as written:\n{}",
        report.problems.join("\n")
    );
}
