//! The systems `compare` measures: tsdb and Prometheus, each started as a child
//! process on a fresh temporary directory and a free loopback port.
//!
//! A [`Peer`] is a guard: dropping it kills the process and removes its directory, so
//! an error anywhere in a comparison (or a panic in the harness) leaves no server
//! running and no data behind. Each child's stdout and stderr go to a log file in that
//! directory, whose tail is quoted when the server fails to come up.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a fresh server may take to answer `/-/ready`. Both start in well under a
/// second on an empty directory; the margin is for a loaded shared machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a failed server's log an error quotes.
const LOG_TAIL_BYTES: usize = 2000;

/// Which system a peer runs; it decides the command line and whether a flush exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Tsdb,
    Prometheus,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Tsdb => "tsdb",
            System::Prometheus => "Prometheus",
        }
    }
}

/// A running server; killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct Peer {
    pub system: System,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The first line `BIN --version` printed.
    pub version: String,
    /// The data directory the server was given.
    pub data_dir: PathBuf,
    child: Child,
    /// Holds `data_dir`, the log and (for Prometheus) the config file.
    work_dir: PathBuf,
    log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Errors are ignored: the process may already have exited, and a directory
        // left behind in the temp dir is harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.work_dir);
    }
}

/// A port on 127.0.0.1 that was free a moment ago. The listener is dropped before the
/// server binds it, so another process could take it in between; on a benchmark host
/// that race is rare, and the server then fails to start with a clear log line.
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local address of 127.0.0.1:0: {e}"))
}

/// A new, empty directory under the system's temp dir, unique to this process and call.
fn fresh_dir(label: &str) -> Result<PathBuf, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "tsdb-bench-compare-{label}-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The first non-empty line `bin --version` prints (on stdout or stderr: Prometheus'
/// flag library has used both), or why there is none.
pub fn version_of(bin: &Path) -> String {
    match Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("unknown")
                .to_string()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

/// Minimal Prometheus configuration: no scrape jobs, so the only samples it holds are
/// the ones the benchmark writes (not even its own metrics).
const PROMETHEUS_CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";

impl Peer {
    /// Starts `system` from `bin` on a fresh directory and port and waits until it is
    /// ready.
    pub fn start(system: System, bin: &Path) -> Result<Peer, String> {
        if !bin.is_file() {
            return Err(format!("{}: no such file", bin.display()));
        }
        let version = version_of(bin);
        let work_dir = fresh_dir(match system {
            System::Tsdb => "tsdb",
            System::Prometheus => "prometheus",
        })?;
        let data_dir = work_dir.join("data");
        let log = work_dir.join("server.log");
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        match system {
            System::Tsdb => {
                cmd.arg("start")
                    .arg(format!("--listen={listen}"))
                    .arg(format!("--data-dir={}", data_dir.display()));
            }
            System::Prometheus => {
                let config = work_dir.join("prometheus.yml");
                if let Err(e) = fs::write(&config, PROMETHEUS_CONFIG) {
                    let _ = fs::remove_dir_all(&work_dir);
                    return Err(format!("write {}: {e}", config.display()));
                }
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver")
                    // The data is hours old by the time it is queried; a short
                    // retention must not delete any of it.
                    .arg("--storage.tsdb.retention.time=10y");
            }
        }
        let spawned = File::create(&log)
            .and_then(|out| Ok((out.try_clone()?, out)))
            .map_err(|e| format!("create {}: {e}", log.display()))
            .and_then(|(out, err)| {
                cmd.stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .map_err(|e| format!("start {}: {e}", bin.display()))
            });
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&work_dir);
                return Err(e);
            }
        };
        // From here on the guard owns the process and the directory.
        let mut peer = Peer {
            system,
            url: format!("http://{listen}"),
            version,
            data_dir,
            child,
            work_dir,
            log,
        };
        peer.wait_ready()?;
        Ok(peer)
    }

    /// Polls `/-/ready` until it answers 200, the process exits, or the timeout.
    fn wait_ready(&mut self) -> Result<(), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let url = format!("{}/-/ready", self.url);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited before it was ready ({status}); log tail:\n{}",
                    self.system.name(),
                    self.log_tail()
                ));
            }
            if let Ok(resp) = agent.get(&url).call()
                && resp.status().as_u16() == 200
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "{} not ready at {url} after {}s; log tail:\n{}",
                    self.system.name(),
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last bytes of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = fs::read(&self.log).unwrap_or_default();
        let from = text.len().saturating_sub(LOG_TAIL_BYTES);
        String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned()
    }

    /// Persists tsdb's head into blocks (`POST /api/v1/admin/flush`), so queries read
    /// blocks as well as the head. Returns how long it took.
    pub fn flush(&self) -> Result<Duration, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let url = format!("{}/api/v1/admin/flush", self.url);
        let started = Instant::now();
        let mut resp = agent
            .post(&url)
            .send_empty()
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(format!(
                "POST {url}: HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(started.elapsed())
    }

    /// Bytes of all files under the data directory now.
    pub fn data_dir_bytes(&self) -> u64 {
        dir_bytes(&self.data_dir)
    }
}

/// Sum of file sizes under `dir`, recursively; unreadable entries count as 0, since
/// files come and go while a server compacts.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_loopback_and_nonzero() {
        let p = free_port().unwrap();
        assert_ne!(p, 0);
        // Still bindable right after.
        TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    #[test]
    fn a_missing_binary_is_an_error_not_a_hang() {
        let err = Peer::start(System::Tsdb, Path::new("/nonexistent/tsdb")).unwrap_err();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn a_server_that_exits_is_reported_with_its_log() {
        // `false` exits at once: the guard must notice and quote the (empty) log.
        let err = Peer::start(System::Prometheus, Path::new("/bin/false")).unwrap_err();
        assert!(err.contains("exited before it was ready"), "{err}");
    }

    #[test]
    fn dir_bytes_sums_recursively() {
        let dir = fresh_dir("test").unwrap();
        fs::create_dir(dir.join("a")).unwrap();
        fs::write(dir.join("x"), [0u8; 10]).unwrap();
        fs::write(dir.join("a/y"), [0u8; 5]).unwrap();
        assert_eq!(dir_bytes(&dir), 15);
        fs::remove_dir_all(&dir).unwrap();
    }
}
