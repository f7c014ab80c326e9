//! The black-box test harness: starts the real `tsdb` binary on a temp dir and
//! `127.0.0.1:0`, waits for its `listening` line and `/-/ready`, and talks HTTP to it.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a failed step should fail the test loudly"
)]

pub mod load;
pub mod metrics;
pub mod tls;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tsdb");

/// The largest response body a test reads.
pub const RESPONSE_BYTES_MAX: u64 = 1 << 30;

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
    /// `http`, or `https` for a server started with TLS.
    scheme: &'static str,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The `tsdb` binary with piped output and no TSDB_* variables of the test
/// environment, so only what a test sets applies.
pub fn bare_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TSDB_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A `tsdb start` command with test defaults: a free loopback port and `data_dir`.
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = bare_command();
    cmd.arg("start")
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", data_dir.display()))
        .args(args);
    cmd
}

impl Server {
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_cmd(command(data_dir, args), data_dir)
    }

    pub fn start_cmd(cmd: Command, data_dir: &Path) -> Server {
        Server::start_with(cmd, data_dir, agent(), "http")
    }

    /// As [`Server::start_cmd`], talking `scheme` (`https` for TLS) through `agent`
    /// (for TLS, one that trusts the server's certificate).
    pub fn start_with(
        mut cmd: Command,
        data_dir: &Path,
        agent: ureq::Agent,
        scheme: &'static str,
    ) -> Server {
        let mut child = cmd.spawn().expect("spawn tsdb");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["msg"] == "listening"
                    {
                        let _ = addr_tx.send(v["address"].as_str().unwrap_or_default().to_string());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(format!("STDERR: {line}"));
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "tsdb did not log `listening`; output:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
        };
        let server = Server {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            lines,
            agent,
            scheme,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.agent.get(&self.url("/-/ready")).call()
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tsdb never became ready; output:\n{}", self.output());
    }

    /// The server process's id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = self.agent.get(&self.url(path)).call().expect("GET");
        let status = r.status().as_u16();
        // ureq stops reading a body at 10 MB by default; an export of a long test run
        // is larger, and a body cut short must fail the test, not read as empty.
        let body = r
            .body_mut()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_else(|e| panic!("GET {path}: reading the {status} response body: {e}"));
        (status, body)
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut r = self
            .agent
            .post(&self.url(path))
            .header("Content-Type", content_type)
            .send(body)
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    }

    /// GETs a JSON API route and returns `data`, asserting success.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    /// Exports everything matching `selector` as parsed JSON lines.
    pub fn export(&self, selector: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/export?match[]={}", urlencode(selector));
        let (status, body) = self.get(&path);
        assert_eq!(status, 200, "{body}");
        body.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn flush(&self) {
        let (status, body) = self.post("/api/v1/admin/flush", "text/plain", b"");
        assert_eq!(status, 204, "{body}");
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Parsed JSON log lines.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Fails on any warn or error line whose message is not in `allowed`. The epoll
    /// fallback's line is always allowed: it says something about the host the tests
    /// run on (a container's seccomp profile), not about tsdb (`tests/io_uring.rs`
    /// checks it).
    pub fn assert_no_unexpected_warnings(&self, allowed: &[&str]) {
        const HOST: &str = "io_uring unavailable: using the epoll fallback";
        for l in self.logs() {
            let level = l["level"].as_str().unwrap_or_default();
            let msg = l["msg"].as_str().unwrap_or_default();
            if (level == "warn" || level == "error")
                && msg != HOST
                && !allowed.iter().any(|a| msg.contains(a))
            {
                panic!(
                    "unexpected {level} line: {l}\nall output:\n{}",
                    self.output()
                );
            }
        }
        let lines = self.lines.lock().unwrap();
        if let Some(l) = lines.iter().find(|l| l.starts_with("STDERR:")) {
            panic!("unexpected stderr output: {l}");
        }
    }

    /// Waits for a log line with message `msg`.
    pub fn wait_log(&self, msg: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.logs().into_iter().find(|l| l["msg"] == msg) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line {msg:?}; output:\n{}", self.output());
    }

    /// SIGTERM, then wait for exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "tsdb did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) -> String {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.output()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `cmd` as a server (talking `scheme` through `agent`), asks `/-/healthy`, and
/// stops it with SIGTERM: why not, when it does not start, is not healthy or does not
/// exit cleanly.
pub fn start_and_stop(
    cmd: Command,
    data_dir: &Path,
    agent: ureq::Agent,
    scheme: &'static str,
) -> Result<(), String> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = Server::start_with(cmd, data_dir, agent, scheme);
        let (health, _) = s.get("/-/healthy");
        let (status, out) = s.terminate();
        (health, status, out)
    }));
    match result {
        Ok((200, status, _)) if status.success() => Ok(()),
        Ok((health, status, out)) => Err(format!("/-/healthy {health}, exit {status}:\n{out}")),
        Err(_) => Err("did not start (see the panic above)".to_string()),
    }
}

/// Wall-clock time, unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs `tsdb` to completion with `args` and returns (exit code, stdout+stderr).
pub fn run_to_exit(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().expect("spawn tsdb");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code(), out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tsdb did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded_byte_serialize(s)
}

fn form_urlencoded_byte_serialize(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One series for [`remote_write_body`]: label pairs and (timestamp ms, value) points.
pub type TestSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Prometheus' `prompb` messages a client sends and reads, written out here so the
/// black-box tests do not reach into tsdb's own types.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A snappy-compressed remote_write body.
pub fn remote_write_body(series: &[TestSeries<'_>]) -> Vec<u8> {
    use prost::Message;
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(t, v)| Sample {
                        value: v,
                        timestamp: t,
                    })
                    .collect(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// `(timestamps, values)` of an exported series.
pub fn points(line: &serde_json::Value) -> Vec<(i64, f64)> {
    let ts = line["timestamps"].as_array().unwrap();
    let vs = line["values"].as_array().unwrap();
    ts.iter()
        .zip(vs)
        .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap_or(f64::NAN)))
        .collect()
}

/// The seed named by environment variable `var`, or one from the clock; printed so
/// that a failing run can be repeated with `var=<seed>`.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (repeat with {var}={seed})");
    seed
}

/// Every file and directory under `dir` with its size, one per line, for a failure
/// message.
pub fn tree(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            out.push(format!("{} {len}", p.display()));
            if p.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.join("\n")
}

/// A count from environment variable `var`, or `default`.
pub fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Copies a data dir (without its `lock`), as a test's starting point or its backup.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
