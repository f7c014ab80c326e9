//! Debian's Prometheus 2.42 as a reference server for black-box tests: started on
//! `127.0.0.1` with a fresh data directory, killed when its guard drops (even when the
//! test panics), and talked to over HTTP like the tsdb harness' `Server`.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: a failed step should fail the test loudly"
)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where Debian's package puts the binaries; `.ci/test` installs it when missing.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
pub const PROMTOOL_BIN: &str = "/usr/bin/promtool";

/// Fails (never skips) when a Debian binary the test compares against is missing.
pub fn require_binary(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: these tests compare tsdb with Debian's Prometheus 2.42; \
         run `bash .ci/run` (as root it installs the `prometheus` package) and retry"
    );
}

/// A port that was free a moment ago: bind `127.0.0.1:0` and let it go. Prometheus
/// takes its listen address as a flag, so it cannot be handed a bound socket.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running Prometheus with its own temp dir; dropped = killed and reaped.
pub struct Prometheus {
    child: Option<Child>,
    pub addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
    /// Kept until the process is gone; `None` only while starting.
    _dir: Option<tempfile::TempDir>,
}

impl Prometheus {
    /// Starts Prometheus with no scrape jobs, the remote-write receiver on and a
    /// retention long enough for data placed days in the past. `extra_config` is
    /// appended to `prometheus.yml` (e.g. a `remote_read` section).
    pub fn start(extra_config: &str) -> Prometheus {
        require_binary(PROMETHEUS_BIN);
        let dir = tempfile::tempdir().unwrap();
        let config: PathBuf = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1m\n{extra_config}"),
        )
        .unwrap();
        // A port can be taken between `free_port` and Prometheus' bind; retry then.
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let mut child = Command::new(PROMETHEUS_BIN)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--storage.tsdb.retention.time=10y")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn prometheus");
            let lines = Arc::new(Mutex::new(Vec::new()));
            let stderr = child.stderr.take().unwrap();
            {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        lines.lock().unwrap().push(line);
                    }
                });
            }
            let mut p = Prometheus {
                child: Some(child),
                addr,
                lines,
                agent: crate::common::agent(),
                _dir: None,
            };
            if p.wait_ready() {
                p._dir = Some(dir);
                return p;
            }
            let out = p.output();
            assert!(
                out.contains("address already in use"),
                "prometheus did not become ready:\n{out}"
            );
        }
        panic!("prometheus found no free port in 5 tries");
    }

    /// `false` when the process exited (e.g. lost the port race) before `/-/ready`.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && c.try_wait().unwrap().is_some()
            {
                self.child = None;
                return false;
            }
            if let Ok(r) = self.agent.get(&self.url("/-/ready")).call()
                && r.status() == 200
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("prometheus not ready in 60 s:\n{}", self.output());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = self.agent.get(&self.url(path)).call().expect("GET");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    }

    /// A remote-write request with the headers Prometheus' own sender sets.
    pub fn remote_write(&self, body: &[u8]) {
        let mut r = self
            .agent
            .post(&self.url("/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body)
            .expect("POST /api/v1/write");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 204, "prometheus refused a remote write: {text}");
    }

    /// GETs a JSON API route and returns `data`, asserting success.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
