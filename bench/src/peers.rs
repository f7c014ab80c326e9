//! The systems `compare` measures — tsdb, Prometheus, VictoriaMetrics and InfluxDB —
//! each started as a child process on a fresh temporary directory and free loopback
//! ports (never a system's default port), and the facts `/proc` gives about it.
//!
//! A [`Peer`] is a guard: dropping it kills the process and removes its directory, so
//! an error anywhere in a comparison (or a panic in the harness) leaves no server
//! running and no data behind. Each child's stdout and stderr go to a log file in that
//! directory, whose tail is quoted when the server fails to come up. A peer can be
//! killed with SIGKILL and started again on the same directory and port, to time its
//! recovery.

use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to answer its readiness route. All start in well under
/// a second on an empty directory; after a kill -9 they first replay what they logged,
/// which for the full run is tens of seconds on a small machine.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// How much of a failed server's log an error quotes.
const LOG_TAIL_BYTES: usize = 2000;

/// The InfluxDB database the samples are written to.
pub const INFLUX_DB: &str = "bench";

/// Which system a peer runs; it decides the command line, the routes and the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Tsdb,
    Prometheus,
    VictoriaMetrics,
    Influxdb,
}

impl System {
    /// Every system, in the order they run and are reported.
    pub const ALL: [System; 4] = [
        System::Tsdb,
        System::Prometheus,
        System::VictoriaMetrics,
        System::Influxdb,
    ];

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            System::Tsdb => "tsdb",
            System::Prometheus => "Prometheus",
            System::VictoriaMetrics => "VictoriaMetrics",
            System::Influxdb => "InfluxDB",
        }
    }

    /// The name `--systems` takes.
    pub fn key(self) -> &'static str {
        match self {
            System::Tsdb => "tsdb",
            System::Prometheus => "prometheus",
            System::VictoriaMetrics => "victoria-metrics",
            System::Influxdb => "influxdb",
        }
    }

    pub fn from_key(key: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Where Debian installs it (tsdb has no default).
    pub fn default_bin(self) -> Option<&'static str> {
        match self {
            System::Tsdb => None,
            System::Prometheus => Some("/usr/bin/prometheus"),
            System::VictoriaMetrics => Some("/usr/bin/victoria-metrics"),
            System::Influxdb => Some("/usr/bin/influxd"),
        }
    }

    /// Whether it answers the PromQL HTTP API (InfluxDB does not).
    pub fn speaks_promql(self) -> bool {
        self != System::Influxdb
    }

    /// The route that answers 2xx once the server serves.
    fn ready_path(self) -> &'static str {
        match self {
            System::Tsdb | System::Prometheus => "/-/ready",
            System::VictoriaMetrics => "/health",
            System::Influxdb => "/ping",
        }
    }
}

/// A running server; killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct Peer {
    pub system: System,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The first line the binary's version command printed.
    pub version: String,
    /// The data directory the server was given.
    pub data_dir: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    child: Child,
    /// Holds `data_dir`, the log and any config file.
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
pub fn fresh_dir(label: &str) -> Result<PathBuf, String> {
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

/// The first non-empty line `bin ARG` prints (on stdout or stderr: Prometheus' flag
/// library has used both), or None.
fn first_line(bin: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The version a binary reports; for one that reports none (Debian's VictoriaMetrics
/// is built without it), the version of the Debian package that installed it.
pub fn version_of(system: System, bin: &Path) -> String {
    let b = bin.to_string_lossy();
    let arg = match system {
        System::Influxdb => "version",
        System::VictoriaMetrics => "-version",
        System::Tsdb | System::Prometheus => "--version",
    };
    if let Some(v) = first_line(&b, &[arg]) {
        return v;
    }
    let package = first_line("dpkg-query", &["-S", b.as_ref()])
        .and_then(|l| l.split_once(':').map(|(p, _)| p.to_string()));
    match package.and_then(|p| first_line("dpkg-query", &["-W", p.as_str()])) {
        Some(line) => format!("{} (Debian package)", line.replace('\t', " ")),
        None => "unknown".into(),
    }
}

/// Minimal Prometheus configuration: no scrape jobs, so the only samples it holds are
/// the ones the benchmark writes (not even its own metrics).
const PROMETHEUS_CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";

/// InfluxDB 1.x configuration: everything under `dir`, HTTP and RPC on the given
/// loopback ports, no phoning home, no self-monitoring database (it would add samples
/// and work), no per-database limits, and caches that go to TSM files and compact
/// fully a few seconds after the writes stop, so its size on disk can be measured.
fn influx_config(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = dir.display();
    format!(
        "reporting-disabled = true\n\
         bind-address = \"127.0.0.1:{rpc_port}\"\n\
         [meta]\n  dir = \"{d}/meta\"\n\
         [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
         \x20 cache-snapshot-write-cold-duration = \"5s\"\n\
         \x20 compact-full-write-cold-duration = \"5s\"\n\
         \x20 max-series-per-database = 0\n  max-values-per-tag = 0\n\
         [monitor]\n  store-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n\
         [continuous_queries]\n  enabled = false\n"
    )
}

/// An HTTP agent that returns statuses as values.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Sends a request and returns the body of a 2xx answer, or the error in words.
pub fn call(agent: &ureq::Agent, method: &str, url: &str) -> Result<Vec<u8>, String> {
    let sent = match method {
        "POST" => agent.post(url).send_empty(),
        _ => agent.get(url).call(),
    };
    let mut resp = sent.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(format!(
            "{method} {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok(body)
}

impl Peer {
    /// Starts `system` from `bin` on a fresh directory and port and waits until it is
    /// ready (for InfluxDB: and its database exists).
    pub fn start(system: System, bin: &Path) -> Result<Peer, String> {
        if !bin.is_file() {
            return Err(format!("{}: no such file", bin.display()));
        }
        let version = version_of(system, bin);
        let work_dir = fresh_dir(system.key())?;
        let data_dir = work_dir.join("data");
        let log = work_dir.join("server.log");
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let args: Vec<String> = match system {
            System::Tsdb => vec![
                "start".into(),
                format!("--listen={listen}"),
                format!("--data-dir={}", data_dir.display()),
            ],
            System::Prometheus => {
                let config = work_dir.join("prometheus.yml");
                let written = fs::write(&config, PROMETHEUS_CONFIG);
                if let Err(e) = written {
                    let _ = fs::remove_dir_all(&work_dir);
                    return Err(format!("write {}: {e}", config.display()));
                }
                vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", data_dir.display()),
                    format!("--web.listen-address={listen}"),
                    "--web.enable-remote-write-receiver".into(),
                    // For the snapshot that measures its size on disk.
                    "--web.enable-admin-api".into(),
                    // The data is hours old by the time it is queried; a short
                    // retention must not delete any of it.
                    "--storage.tsdb.retention.time=10y".into(),
                ]
            }
            System::VictoriaMetrics => vec![
                format!("-storageDataPath={}", data_dir.display()),
                format!("-httpListenAddr={listen}"),
                "-retentionPeriod=100y".into(),
                // Its default hides the last 30 s from queries, which would change
                // the answers about data that ends now.
                "-search.latencyOffset=0s".into(),
            ],
            System::Influxdb => {
                let config = work_dir.join("influxdb.conf");
                let rpc_port = free_port()?;
                let written = fs::write(&config, influx_config(&data_dir, port, rpc_port));
                if let Err(e) = written {
                    let _ = fs::remove_dir_all(&work_dir);
                    return Err(format!("write {}: {e}", config.display()));
                }
                vec!["run".into(), "-config".into(), config.display().to_string()]
            }
        };
        let child = match spawn(bin, &args, &log) {
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
            bin: bin.to_path_buf(),
            args,
            child,
            work_dir,
            log,
        };
        peer.wait_ready()?;
        if system == System::Influxdb {
            let url = format!(
                "{}/query?q=CREATE+DATABASE+{INFLUX_DB}",
                peer.url.trim_end_matches('/')
            );
            call(&agent(Duration::from_secs(30)), "POST", &url)?;
        }
        Ok(peer)
    }

    /// The URL the load is sent to (InfluxDB: with its database).
    pub fn write_url(&self) -> String {
        match self.system {
            System::Influxdb => format!("{}?db={INFLUX_DB}", self.url),
            _ => self.url.clone(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL, starts it again on the same directory and port
    /// and waits until it is ready. Returns the time from the new spawn to ready and
    /// the log's length before the restart (what the new process logs starts there).
    pub fn kill_and_restart(&mut self) -> Result<(Instant, Duration, u64), String> {
        // Child::kill is SIGKILL on Unix: no shutdown handler runs.
        self.child
            .kill()
            .map_err(|e| format!("kill -9 {}: {e}", self.child.id()))?;
        let _ = self.child.wait();
        let log_offset = fs::metadata(&self.log).map_or(0, |m| m.len());
        let spawned = Instant::now();
        self.child = spawn(&self.bin, &self.args, &self.log)?;
        self.wait_ready()?;
        Ok((spawned, spawned.elapsed(), log_offset))
    }

    /// Polls the readiness route until it answers 2xx, the process exits, or the
    /// timeout.
    fn wait_ready(&mut self) -> Result<(), String> {
        let agent = agent(Duration::from_secs(2));
        let url = format!("{}{}", self.url, self.system.ready_path());
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
                && resp.status().is_success()
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
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log from byte `offset` on.
    pub fn log_since(&self, offset: u64) -> String {
        let text = fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned()
    }

    /// The last bytes of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let len = fs::metadata(&self.log).map_or(0, |m| m.len());
        self.log_since(len.saturating_sub(LOG_TAIL_BYTES as u64))
    }
}

/// Starts `bin args`, stdout and stderr appended to `log`.
fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|out| Ok((out.try_clone()?, out)))
        .map_err(|e| format!("open {}: {e}", log.display()));
    let (out, err): (File, File) = out?;
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times: `getconf CLK_TCK`, which is
/// 100 on every Linux this runs on (the fallback).
pub fn clock_ticks() -> f64 {
    first_line("getconf", &["CLK_TCK"])
        .and_then(|l| l.parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system, all threads) the process has used so far.
pub fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; the fields
    // after its closing parenthesis start at field 3, so utime (14) and stime (15)
    // are the 12th and 13th there.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// A `/proc/<pid>/status` memory line (`VmHWM`, `VmRSS`) in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
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
        for system in System::ALL {
            let err = Peer::start(system, Path::new("/bin/false")).unwrap_err();
            assert!(err.contains("exited before it was ready"), "{err}");
        }
    }

    #[test]
    fn proc_figures_of_this_process() {
        let pid = std::process::id();
        let ticks = clock_ticks();
        // Burn a little CPU so the figure is above zero at 100 ticks per second.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let cpu = cpu_seconds(pid, ticks).unwrap();
        assert!(cpu > 0.0 && cpu < 1e6, "{cpu}");
        let hwm = status_bytes(pid, "VmHWM").unwrap();
        let rss = status_bytes(pid, "VmRSS").unwrap();
        assert!(rss > 0 && hwm >= rss, "{hwm} {rss}");
        assert_eq!(status_bytes(pid, "NoSuchKey"), None);
        assert_eq!(cpu_seconds(u32::MAX, ticks), None);
    }

    #[test]
    fn keys_round_trip_and_influx_config_keeps_off_default_ports() {
        for s in System::ALL {
            assert_eq!(System::from_key(s.key()), Some(s));
        }
        assert_eq!(System::from_key("mysql"), None);
        let c = influx_config(Path::new("/x"), 1234, 5678);
        assert!(c.contains("bind-address = \"127.0.0.1:1234\""), "{c}");
        assert!(c.contains("bind-address = \"127.0.0.1:5678\""), "{c}");
        assert!(!c.contains("8086") && !c.contains("8088"), "{c}");
        assert!(c.contains("wal-dir = \"/x/wal\""), "{c}");
    }
}
