//! `tsdb-bench compare`: the same data and the same queries against tsdb, Prometheus,
//! VictoriaMetrics and InfluxDB, in one command, with a witness that each did the
//! same work.
//!
//! The systems run one after the other, never together, so that none measures
//! another's background work on a small machine. Each gets a fresh directory and
//! loopback port and the same deterministic samples (the `load` code, same seed and
//! start time: remote_write, or line protocol for InfluxDB). Then, per system:
//!
//! 1. its CPU time over the load and its resident memory after it (`/proc`);
//! 2. SIGKILL right after the load (VictoriaMetrics first persists the writes it holds
//!    in memory, `/internal/force_flush`), a restart on the same directory, the time until it
//!    is ready and until a witness query counts every accepted sample (its recovery of
//!    what it acknowledged);
//! 3. flush and compaction, then its size on disk (disk.rs);
//! 4. every query once as a warm-up and `--query-runs` times timed (systems with
//!    PromQL), all evaluated at one fixed time just after the last sample, so every
//!    system is asked exactly the same questions however long the others took;
//! 5. its peak memory.
//!
//! The data ends near "now" because Prometheus' remote-write receiver only accepts
//! samples its head can still hold; it is written in time order for the same reason.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::disk;
use crate::r#gen::{DatasetFacts, Protocol};
use crate::load::{self, Encoding, LoadConfig, RunLength};
use crate::peers::{self, Peer, System};
use crate::query::{self, Fnv, Measured, Query, Shape};
use crate::report::{
    Agreement, Cell, Host, Ingest, Memory, Params, QueryRow, Replay, Report, Skipped, SystemParam,
    SystemResult, Witness,
};

/// After a restart, how long the witness count may stay unchanged below the accepted
/// count before the samples count as lost (VictoriaMetrics keeps the last second of
/// writes in memory, so a kill -9 loses them).
const WITNESS_QUIET: Duration = Duration::from_secs(5);
/// The longest the witness is polled after a restart.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(600);

/// InfluxQL's count of every sample (one row a measurement, summed).
pub const INFLUXQL_WITNESS: &str = "SELECT count(value) FROM /.*/";

#[derive(Clone, Debug)]
pub struct CompareConfig {
    /// The systems to run, in order, with their binaries.
    pub systems: Vec<(System, PathBuf)>,
    /// Systems left out, and why (for the report).
    pub skipped: Vec<(System, String)>,
    pub series: usize,
    pub points: u64,
    pub interval_ms: i64,
    pub connections: usize,
    pub samples_per_request: usize,
    pub query_runs: usize,
    pub seed: u64,
    pub pre_encode_max_bytes: u64,
    /// How the command was invoked, for the report.
    pub command_line: String,
}

/// The systems to run with their binaries, and the ones skipped with the reason.
pub type Picked = (Vec<(System, PathBuf)>, Vec<(System, String)>);

/// Which systems to run: the ones named in `only` (all when None) whose binary is
/// given or installed at its default path. A system named explicitly without a binary
/// is an error; one left out by default is returned as skipped, with the reason.
pub fn pick_systems(
    only: Option<&[String]>,
    bins: &[(System, Option<PathBuf>)],
) -> Result<Picked, String> {
    let wanted: Vec<System> = match only {
        None => System::ALL.to_vec(),
        Some(keys) => {
            let mut v = Vec::new();
            for k in keys {
                let s = System::from_key(k.trim()).ok_or_else(|| {
                    let all: Vec<&str> = System::ALL.iter().map(|s| s.key()).collect();
                    format!(
                        "unknown system {k:?} in --systems (known: {})",
                        all.join(", ")
                    )
                })?;
                if !v.contains(&s) {
                    v.push(s);
                }
            }
            v
        }
    };
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    for s in System::ALL {
        let given = bins
            .iter()
            .find(|(b, _)| *b == s)
            .and_then(|(_, p)| p.clone());
        let bin = given.or_else(|| s.default_bin().map(PathBuf::from));
        let reason = match &bin {
            _ if !wanted.contains(&s) => Some("not in --systems".to_string()),
            None => Some(format!("no --{}-bin given", s.key())),
            Some(b) if !b.is_file() => Some(format!("{}: no such file", b.display())),
            Some(_) => None,
        };
        match (reason, bin) {
            (None, Some(b)) => run.push((s, b)),
            (Some(r), _) if only.is_some() && wanted.contains(&s) => {
                return Err(format!("{}: {r}", s.name()));
            }
            (r, _) => skipped.push((s, r.unwrap_or_default())),
        }
    }
    if run.is_empty() {
        return Err("no system to run".into());
    }
    Ok((run, skipped))
}

/// Everything one system produced.
struct SystemRun {
    result: SystemResult,
    data: DatasetFacts,
    /// One a query, or empty without PromQL.
    measured: Vec<Measured>,
}

/// The PromQL witness: every sample in the data's span, counted at the fixed time,
/// one term a metric name (`count_over_time` drops the name, so counting all names in
/// one selector would make series that differ only by name collide), each `or
/// vector(0)` so a name with nothing left counts 0 instead of emptying the sum.
fn witness_promql(names: &[String], span_ms: i64, interval_ms: i64) -> String {
    // Longer than the span by one interval, so the first step (at or after start_ms)
    // is inside the left-open window whatever the host's offset.
    let window_s = (span_ms + interval_ms + 999) / 1000;
    names
        .iter()
        .map(|n| format!("(sum(count_over_time({n}[{window_s}s])) or vector(0))"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The metric names of the generated data, sorted.
fn metric_names(cfg: &CompareConfig) -> Vec<String> {
    let ds = crate::r#gen::Dataset::new(cfg.seed, cfg.series, 0, cfg.interval_ms);
    let names: std::collections::BTreeSet<String> = ds
        .series
        .iter()
        .flat_map(|s| s.labels.iter().filter(|(n, _)| *n == "__name__"))
        .map(|(_, v)| v.to_string())
        .collect();
    names.into_iter().collect()
}

/// Counts the samples a system holds now: the PromQL witness or InfluxQL's count.
fn count_samples(
    peer: &Peer,
    agent: &ureq::Agent,
    witness: &Query,
    eval_ms: i64,
) -> Result<u64, String> {
    let body = if peer.system.speaks_promql() {
        query::fetch(agent, &peer.url, witness, eval_ms)?
    } else {
        let url = format!("{}/query", peer.url);
        let mut resp = agent
            .get(&url)
            .query("db", peers::INFLUX_DB)
            .query("q", INFLUXQL_WITNESS)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        body
    };
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("witness answer is not JSON: {e}"))?;
    let number = |x: &serde_json::Value| {
        x.as_f64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0.0)
    };
    let total: f64 = if peer.system.speaks_promql() {
        v.pointer("/data/result")
            .and_then(serde_json::Value::as_array)
            .ok_or("witness answer has no data.result")?
            .iter()
            .filter_map(|r| r.pointer("/value/1"))
            .map(number)
            .sum()
    } else {
        v.pointer("/results/0/series")
            .and_then(serde_json::Value::as_array)
            .map(|series| {
                series
                    .iter()
                    .filter_map(|s| s.pointer("/values/0/1"))
                    .map(number)
                    .sum()
            })
            .unwrap_or(0.0)
    };
    Ok(total as u64)
}

/// The largest `duration_ms` of the `replaying WAL` lines in `log` (text or JSON).
fn replay_log_ms(log: &str) -> Option<u64> {
    replay_lines(log)
        .filter_map(|l| log_field(l, "duration_ms"))
        .max()
}

/// tsdb's `replaying WAL` lines, one a shard.
fn replay_lines(log: &str) -> impl Iterator<Item = &str> {
    log.lines().filter(|l| l.contains("replaying WAL"))
}

/// Those lines as (duration_ms, samples).
fn replay_log_lines(log: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    replay_lines(log).filter_map(|l| Some((log_field(l, "duration_ms")?, log_field(l, "samples")?)))
}

/// The number after field `name` of a log line, JSON (`"name":12`) or text
/// (`name=12`).
fn log_field(line: &str, name: &str) -> Option<u64> {
    let rest = [format!("\"{name}\":"), format!("{name}=")]
        .iter()
        .find_map(|key| line.find(key.as_str()).map(|at| at + key.len()))
        .and_then(|at| line.get(at..))?;
    let digits: String = rest
        .trim_start_matches(['"', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The slowest shard's replay rate, samples per second, from tsdb's log.
fn replay_log_rate(log: &str) -> Option<f64> {
    replay_log_lines(log)
        .filter(|(_, samples)| *samples > 0)
        .map(|(ms, samples)| samples as f64 * 1000.0 / ms.max(1) as f64)
        .min_by(f64::total_cmp)
}

/// Kills `peer` with SIGKILL, restarts it and polls the witness until it counts
/// `accepted` samples, or stops changing for `WITNESS_QUIET`.
fn kill_and_recover(
    peer: &mut Peer,
    accepted: u64,
    witness: &Query,
    eval_ms: i64,
) -> Result<Replay, String> {
    let name = peer.system.name();
    let (spawned, ready, log_offset) = peer.kill_and_restart()?;
    let agent = query::agent();
    let (mut last, mut last_change) = (None, Instant::now());
    let count = loop {
        // Errors while it warms up are retried until the timeout.
        let counted = count_samples(peer, &agent, witness, eval_ms);
        if let Err(e) = &counted
            && last.is_none()
            && spawned.elapsed() > ready + WITNESS_QUIET * 12
        {
            return Err(format!(
                "{name}: the witness query fails after the restart: {e}"
            ));
        }
        let now = counted.ok();
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        match last {
            Some(n) if n >= accepted => break n,
            Some(n) if last_change.elapsed() > WITNESS_QUIET => break n,
            _ if spawned.elapsed() > WITNESS_TIMEOUT => {
                return Err(format!(
                    "{name}: the witness query did not answer within {}s of the restart; log tail:\n{}",
                    WITNESS_TIMEOUT.as_secs(),
                    peer.log_tail()
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // A count that stopped short was final when it last changed.
    let witness_seconds = if count >= accepted {
        spawned.elapsed()
    } else {
        last_change.duration_since(spawned)
    }
    .as_secs_f64();
    let log = peer.log_since(log_offset);
    Ok(Replay {
        ready_seconds: ready.as_secs_f64(),
        witness_seconds,
        samples_after_restart: count,
        samples_per_second: count as f64 / witness_seconds.max(1e-9),
        log_replay_ms: match peer.system {
            System::Tsdb => replay_log_ms(&log),
            _ => None,
        },
        log_replay_samples: (peer.system == System::Tsdb)
            .then(|| replay_log_lines(&log).map(|(_, samples)| samples).sum()),
        log_replay_slowest_shard_samples_per_second: match peer.system {
            System::Tsdb => replay_log_rate(&log),
            _ => None,
        },
        flushed_before_kill: false,
    })
}

/// Runs one system through the whole sequence (see the module doc) and stops it.
fn run_system(
    system: System,
    bin: &std::path::Path,
    cfg: &CompareConfig,
    start_ms: i64,
    eval_ms: i64,
    queries: &[Query],
    witness: &Query,
) -> Result<SystemRun, String> {
    let name = system.name();
    eprintln!("{name}: starting {}", bin.display());
    let mut peer = Peer::start(system, bin)?;
    eprintln!(
        "{name}: ready at {} ({}); loading {} series x {} points",
        peer.url, peer.version, cfg.series, cfg.points
    );
    let load_cfg = LoadConfig {
        url: peer.write_url(),
        protocol: if system.speaks_promql() {
            Protocol::RemoteWrite
        } else {
            Protocol::Influx
        },
        series: cfg.series,
        run: RunLength::Points(cfg.points),
        interval_ms: cfg.interval_ms,
        start_ms,
        samples_per_request: cfg.samples_per_request,
        connections: cfg.connections,
        seed: cfg.seed,
        encoding: Encoding::Auto,
        pre_encode_max_bytes: cfg.pre_encode_max_bytes,
        dry_run: false,
    };
    let ticks = peers::clock_ticks();
    let pid = peer.pid();
    let cpu_before = peers::cpu_seconds(pid, ticks);
    let loaded = load::run(&load_cfg).map_err(|e| format!("{name}: load: {e}"))?;
    let cpu_after = peers::cpu_seconds(pid, ticks);
    let rss_after_load = peers::status_bytes(pid, "VmRSS").unwrap_or(0);
    let peak_load = peers::status_bytes(pid, "VmHWM").unwrap_or(0);
    for line in loaded.human().lines() {
        eprintln!("{name}:   {line}");
    }
    if loaded.failed() {
        eprintln!("{name}: server log tail:\n{}", peer.log_tail());
    }
    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => b - a,
        _ => return Err(format!("{name}: /proc/{pid}/stat is unreadable")),
    };
    let accepted = loaded.samples_accepted;

    // VictoriaMetrics acknowledges writes it still holds in memory, which a kill -9
    // loses; the data it then queries would not be the others'. Asking it to flush
    // first keeps the comparison on nearly the same data (it may still lose some: the
    // witness counts them, and BENCHMARKS.md has what it loses without the flush).
    let flushed_before_kill = peer.system == System::VictoriaMetrics;
    if flushed_before_kill {
        let url = format!("{}/internal/force_flush", peer.url.trim_end_matches('/'));
        peers::call(&peers::agent(Duration::from_secs(600)), "GET", &url)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    eprintln!("{name}: kill -9 and restart on the same directory");
    let mut replay = kill_and_recover(&mut peer, accepted, witness, eval_ms)?;
    replay.flushed_before_kill = flushed_before_kill;
    eprintln!(
        "{name}: ready after {:.2}s, {} of {accepted} samples counted after {:.2}s ({:.0} samples/s){}",
        replay.ready_seconds,
        replay.samples_after_restart,
        replay.witness_seconds,
        replay.samples_per_second,
        replay
            .log_replay_ms
            .map_or(String::new(), |ms| format!("; WAL replay logged {ms} ms")),
    );

    let on_disk = disk::settle(&peer).map_err(|e| format!("{name}: {e}"))?;
    eprintln!(
        "{name}: {:.1} MB on disk ({:.1} MB apparent) after {:.1}s: {}{}",
        on_disk.usage.allocated_bytes as f64 / 1e6,
        on_disk.usage.apparent_bytes as f64 / 1e6,
        on_disk.seconds,
        on_disk.method,
        if on_disk.settled {
            ""
        } else {
            " (still changing)"
        }
    );

    let agent = query::agent();
    let mut measured = Vec::with_capacity(queries.len());
    let mut answers = Fnv::new();
    if system.speaks_promql() {
        for (i, q) in queries.iter().enumerate() {
            let m = query::measure(&agent, &peer.url, q, eval_ms, cfg.query_runs);
            eprintln!(
                "{name}: query {:>2}/{} {:<32} median {:>9.2}ms p99 {:>9.2}ms {}",
                i + 1,
                queries.len(),
                q.name,
                m.median_ms,
                m.p99_ms,
                match &m.error {
                    Some(e) => format!("ERROR {e}"),
                    None => format!("{} series {} points", m.series, m.points),
                }
            );
            answers.write(q.name.as_bytes());
            answers.write(m.checksum.as_deref().unwrap_or("error").as_bytes());
            answers.write(b"\n");
            measured.push(m);
        }
    }
    let queries_failed = measured.iter().filter(|m| m.error.is_some()).count();
    if queries_failed > 0 {
        eprintln!("{name}: server log tail:\n{}", peer.log_tail());
    }
    let sum_of_medians_ms = measured
        .iter()
        .filter(|m| m.error.is_none())
        .map(|m| m.median_ms)
        .sum();
    let peak_after = peers::status_bytes(peer.pid(), "VmHWM").unwrap_or(0);
    let version = peer.version.clone();
    // Stop it now, before the next system starts.
    drop(peer);
    let bytes_per_sample = on_disk.usage.allocated_bytes as f64 / accepted.max(1) as f64;
    Ok(SystemRun {
        result: SystemResult {
            system,
            version,
            ingest: Ingest {
                samples_sent: loaded.samples_sent,
                samples_accepted: accepted,
                requests_ok: loaded.requests_ok,
                requests_failed: loaded.requests_failed,
                first_error: loaded.first_error.clone(),
                wall_seconds: loaded.wall_seconds,
                accepted_samples_per_second: loaded.accepted_samples_per_second,
                request_p50_ms: loaded.latency_ms.p50,
                request_p99_ms: loaded.latency_ms.p99,
                generator: loaded.generator.encoding,
                server_cpu_seconds: cpu,
                cpu_seconds_per_million_samples: cpu / (accepted.max(1) as f64 / 1e6),
            },
            memory: Memory {
                rss_after_load_bytes: rss_after_load,
                peak_rss_load_bytes: peak_load,
                peak_rss_after_restart_bytes: peak_after,
                peak_rss_bytes: peak_load.max(peak_after),
            },
            witness: Witness {
                samples_accepted: accepted,
                samples_after_restart: replay.samples_after_restart,
                answers_checksum: system
                    .speaks_promql()
                    .then(|| format!("{:016x}", answers.finish())),
            },
            replay,
            disk: on_disk,
            bytes_per_sample,
            queries_run: measured.len(),
            queries_failed,
            sum_of_medians_ms,
        },
        data: loaded.data,
        measured,
    })
}

/// `/proc/loadavg`, or `unknown`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn mem_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The query table: each system's measurement, and its answer compared with
/// Prometheus'.
fn query_rows(queries: &[Query], runs: &[SystemRun]) -> Vec<QueryRow> {
    let prom = runs.iter().find(|r| r.result.system == System::Prometheus);
    queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let reference = prom
                .and_then(|p| p.measured.get(i))
                .filter(|m| m.error.is_none())
                .and_then(|m| m.answer.as_ref());
            let cells = runs
                .iter()
                .map(|r| {
                    let measured = r.measured.get(i).cloned();
                    let answer = measured
                        .as_ref()
                        .filter(|m| m.error.is_none())
                        .and_then(|m| m.answer.as_ref());
                    let difference = match (answer, reference) {
                        (Some(a), Some(p)) if r.result.system != System::Prometheus => {
                            Some(a.difference(p))
                        }
                        _ => None,
                    };
                    Cell {
                        system: r.result.system,
                        measured,
                        equal_to_prometheus: difference.as_ref().map(Option::is_none),
                        difference: difference.flatten(),
                    }
                })
                .collect();
            QueryRow {
                query: q.clone(),
                cells,
            }
        })
        .collect()
}

/// Runs the whole comparison; Err for a setup failure (a binary missing, a server
/// that does not start, a failed flush).
pub fn run(cfg: &CompareConfig) -> Result<Report, String> {
    if cfg.series == 0 || cfg.points == 0 || cfg.query_runs == 0 {
        return Err("--series, --points and --query-runs must be at least 1".into());
    }
    if cfg.interval_ms <= 0 {
        return Err("--interval must be at least 1ms".into());
    }
    // Check every binary before the first, long, system run.
    for (s, bin) in &cfg.systems {
        if !bin.is_file() {
            return Err(format!(
                "{} binary {}: no such file",
                s.name(),
                bin.display()
            ));
        }
    }

    let started = Instant::now();
    let loadavg_start = loadavg();
    let span_ms = (cfg.points as i64).saturating_mul(cfg.interval_ms);
    // The data ends now, aligned to the interval so timestamps are round.
    let start_ms = {
        let s = load::now_ms().saturating_sub(span_ms);
        s - s.rem_euclid(cfg.interval_ms)
    };
    // Just after the last step (each host's offset is below one interval), so an
    // instant query sees every series' last sample.
    let eval_ms = start_ms + span_ms;
    let queries = query::dashboard_queries();
    let witness = Query {
        name: "witness",
        expr: witness_promql(&metric_names(cfg), span_ms, cfg.interval_ms),
        shape: Shape::Instant,
    };

    let mut runs = Vec::new();
    for (system, bin) in &cfg.systems {
        runs.push(run_system(
            *system, bin, cfg, start_ms, eval_ms, &queries, &witness,
        )?);
    }

    let rows = query_rows(&queries, &runs);
    let systems: Vec<SystemResult> = runs.iter().map(|r| r.result.clone()).collect();
    let ratios = System::ALL
        .into_iter()
        .filter(|s| *s != System::Tsdb)
        .filter_map(|peer| crate::report::ratios(&systems, &rows, peer))
        .collect();
    let prometheus_ran = systems.iter().any(|s| s.system == System::Prometheus);
    let agreement = systems
        .iter()
        .filter(|s| prometheus_ran && s.system != System::Prometheus)
        .filter(|s| s.system.speaks_promql())
        .map(|s| {
            let cells = rows
                .iter()
                .filter_map(|r| r.cells.iter().find(|c| c.system == s.system));
            let compared: Vec<bool> = cells.filter_map(|c| c.equal_to_prometheus).collect();
            Agreement {
                system: s.system,
                compared: compared.len(),
                equal: compared.iter().filter(|e| **e).count(),
            }
        })
        .collect();

    Ok(Report {
        tool: "tsdb-bench compare",
        params: Params {
            command_line: cfg.command_line.clone(),
            systems: cfg
                .systems
                .iter()
                .map(|(s, b)| SystemParam {
                    system: *s,
                    bin: b.display().to_string(),
                })
                .collect(),
            skipped: cfg
                .skipped
                .iter()
                .map(|(s, r)| Skipped {
                    system: *s,
                    reason: r.clone(),
                })
                .collect(),
            series: cfg.series,
            points: cfg.points,
            interval_ms: cfg.interval_ms,
            connections: cfg.connections,
            samples_per_request: cfg.samples_per_request,
            query_runs: cfg.query_runs,
            seed: cfg.seed,
            start_ms,
            eval_time_ms: eval_ms,
            instance_subset: query::SUBSET,
            witness_promql: witness.expr.clone(),
            witness_influxql: INFLUXQL_WITNESS,
        },
        host: Host {
            facts: load::host_facts(),
            mem_total_bytes: mem_total_bytes(),
            loadavg_start,
            loadavg_end: loadavg(),
        },
        data: runs.first().map(|r| r.data.clone()),
        systems,
        queries: rows,
        ratios,
        agreement,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_are_picked_by_flag_and_presence() {
        let bins = [
            (System::Tsdb, Some(PathBuf::from("/bin/true"))),
            (System::Prometheus, Some(PathBuf::from("/nonexistent/prom"))),
            (System::VictoriaMetrics, Some(PathBuf::from("/bin/sh"))),
            (
                System::Influxdb,
                Some(PathBuf::from("/nonexistent/influxd")),
            ),
        ];
        let (run, skipped) = pick_systems(None, &bins).unwrap();
        let keys: Vec<&str> = run.iter().map(|(s, _)| s.key()).collect();
        assert_eq!(keys, ["tsdb", "victoria-metrics"]);
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped[0].1.contains("/nonexistent/prom: no such file"),
            "{skipped:?}"
        );

        // Named explicitly, a missing binary is an error, not a skip.
        let only = vec!["tsdb".to_string(), "influxdb".to_string()];
        let err = pick_systems(Some(&only), &bins).unwrap_err();
        assert!(err.contains("InfluxDB: /nonexistent/influxd"), "{err}");
        let only = vec!["victoria-metrics".to_string()];
        let (run, skipped) = pick_systems(Some(&only), &bins).unwrap();
        assert_eq!(run.len(), 1);
        assert!(skipped.iter().all(|(_, r)| r == "not in --systems"));
        let err = pick_systems(Some(&["mysql".to_string()]), &bins).unwrap_err();
        assert!(err.contains("unknown system"), "{err}");
        let none = [(System::Tsdb, None)];
        let only = vec!["tsdb".to_string()];
        assert!(
            pick_systems(Some(&only), &none)
                .unwrap_err()
                .contains("--tsdb-bin")
        );
    }

    #[test]
    fn the_witness_window_covers_the_span_and_replay_lines_parse() {
        assert_eq!(
            witness_promql(&["a".into(), "b".into()], 7_200_000, 10_000),
            "(sum(count_over_time(a[7210s])) or vector(0)) + (sum(count_over_time(b[7210s])) or vector(0))"
        );
        let text = "2026-11-23T10:00:00Z INFO replaying WAL shard=0 samples=5 duration_ms=12\n\
                    2026-11-23T10:00:00Z INFO replaying WAL shard=1 samples=5 duration_ms=345\n\
                    other duration_ms=9999\n";
        assert_eq!(replay_log_ms(text), Some(345));
        let json = r#"{"msg":"replaying WAL","duration_ms":77}"#;
        assert_eq!(replay_log_ms(json), Some(77));
        assert_eq!(replay_log_ms("nothing"), None);
        // Per shard: 5 samples in 12 ms and 5 in 345 ms; the slowest sets the rate.
        assert_eq!(replay_log_lines(text).map(|(_, n)| n).sum::<u64>(), 10);
        assert_eq!(replay_log_rate(text), Some(5.0 * 1000.0 / 345.0));
        assert_eq!(replay_log_rate(json), None);
    }

    #[test]
    fn bad_parameters_are_refused_before_anything_starts() {
        let cfg = CompareConfig {
            systems: vec![(System::Tsdb, "/nonexistent/tsdb".into())],
            skipped: vec![],
            series: 10,
            points: 2,
            interval_ms: 10_000,
            connections: 1,
            samples_per_request: 10,
            query_runs: 1,
            seed: 1,
            pre_encode_max_bytes: 1 << 20,
            command_line: String::new(),
        };
        let err = run(&cfg).unwrap_err();
        assert!(err.contains("no such file"), "{err}");
        let err = run(&CompareConfig {
            query_runs: 0,
            ..cfg
        })
        .unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
    }
}
