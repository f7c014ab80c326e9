//! `tsdb-bench compare`: the same data and the same queries against tsdb and
//! Prometheus, in one command, with a witness that both did the same work.
//!
//! The systems run one after the other, never together, so that neither measures the
//! other's background work on a small machine. Each gets a fresh directory and port,
//! the same deterministic samples over remote_write (the `load` code, same seed and same
//! start time), then — tsdb only — a flush so its queries read blocks as well as the
//! head, then every query once as a warm-up and `--query-runs` times timed. All
//! queries are evaluated at one fixed time just after the last sample, so the two
//! systems are asked exactly the same questions however long the other one took.
//!
//! The data ends near "now" because Prometheus' remote-write receiver only accepts
//! samples its head can still hold; it is written in time order for the same reason.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::r#gen::{DatasetFacts, Protocol};
use crate::load::{self, Encoding, HostFacts, LoadConfig, RunLength};
use crate::peers::{Peer, System};
use crate::query::{self, Fnv, Measured, Query};

#[derive(Clone, Debug)]
pub struct CompareConfig {
    pub tsdb_bin: PathBuf,
    /// None: Prometheus is not measured.
    pub prometheus_bin: Option<PathBuf>,
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

#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub command_line: String,
    pub tsdb_bin: String,
    pub prometheus_bin: Option<String>,
    pub series: usize,
    pub points: u64,
    pub interval_ms: i64,
    pub connections: usize,
    pub samples_per_request: usize,
    pub query_runs: usize,
    pub seed: u64,
    /// First sample step, ms since the epoch (each host adds its scrape offset).
    pub start_ms: i64,
    /// Every query is evaluated at (instant) or ends at (range) this time.
    pub eval_time_ms: i64,
    /// The regex selecting the hosts of per-instance panels.
    pub instance_subset: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Host {
    #[serde(flatten)]
    pub facts: HostFacts,
    pub mem_total_bytes: u64,
    /// `/proc/loadavg` when the comparison started and ended: on a shared machine,
    /// other work shows here.
    pub loadavg_start: String,
    pub loadavg_end: String,
}

/// Ingest as `tsdb-bench load` measured it.
#[derive(Clone, Debug, Serialize)]
pub struct Ingest {
    pub samples_sent: u64,
    pub samples_accepted: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub first_error: Option<String>,
    pub wall_seconds: f64,
    pub accepted_samples_per_second: f64,
    pub request_p50_ms: f64,
    pub request_p99_ms: f64,
    /// `pre-encoded` or `live` (then the generator shared the CPU with the server).
    pub generator: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Witness {
    pub samples_accepted: u64,
    /// FNV-1a over every query's name and answer checksum, in order.
    pub answers_checksum: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SystemResult {
    pub system: System,
    pub version: String,
    pub ingest: Ingest,
    /// tsdb's `POST /api/v1/admin/flush`; None for Prometheus, which has none.
    pub flush_seconds: Option<f64>,
    /// Bytes under the data directory before the queries ran. Prometheus keeps the
    /// two hours in its head, so its figure is the WAL, not compressed blocks.
    pub data_dir_bytes: u64,
    pub queries_failed: usize,
    /// Sum of the medians of the queries it answered.
    pub sum_of_medians_ms: f64,
    pub witness: Witness,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryRow {
    #[serde(flatten)]
    pub query: Query,
    pub tsdb: Option<Measured>,
    pub prometheus: Option<Measured>,
    /// tsdb median / Prometheus median: below 1 means tsdb was faster.
    pub ratio: Option<f64>,
    /// None when not both answered.
    pub answers_equal: Option<bool>,
    /// The first difference, when the answers differ.
    pub difference: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    /// Queries both systems answered; the sums below are over these only, so a
    /// failed query does not make a system look faster.
    pub queries_compared: usize,
    pub tsdb_sum_of_medians_ms: f64,
    pub prometheus_sum_of_medians_ms: f64,
    pub ratio: Option<f64>,
    pub answers_equal: usize,
    pub wall_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub params: Params,
    pub host: Host,
    pub data: Option<DatasetFacts>,
    pub systems: Vec<SystemResult>,
    pub queries: Vec<QueryRow>,
    pub totals: Totals,
}

impl Report {
    /// Exit code 1: some sample was refused or some query failed.
    pub fn failed(&self) -> bool {
        self.systems
            .iter()
            .any(|s| s.ingest.requests_failed > 0 || s.queries_failed > 0)
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
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

/// Everything one system produced.
struct SystemRun {
    result: SystemResult,
    data: DatasetFacts,
    measured: Vec<Measured>,
}

/// Starts one system, loads it, flushes it (tsdb), runs every query, stops it.
fn run_system(
    system: System,
    bin: &std::path::Path,
    cfg: &CompareConfig,
    start_ms: i64,
    eval_ms: i64,
    queries: &[Query],
) -> Result<SystemRun, String> {
    let name = system.name();
    eprintln!("{name}: starting {}", bin.display());
    let peer = Peer::start(system, bin)?;
    eprintln!(
        "{name}: ready at {} ({}); loading {} series x {} points",
        peer.url, peer.version, cfg.series, cfg.points
    );
    let load_cfg = LoadConfig {
        url: peer.url.clone(),
        protocol: Protocol::RemoteWrite,
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
    let loaded = load::run(&load_cfg).map_err(|e| format!("{name}: load: {e}"))?;
    for line in loaded.human().lines() {
        eprintln!("{name}:   {line}");
    }
    if loaded.failed() {
        eprintln!("{name}: server log tail:\n{}", peer.log_tail());
    }
    let flush_seconds = match system {
        System::Tsdb => {
            let took = peer.flush().map_err(|e| format!("{name}: flush: {e}"))?;
            eprintln!("{name}: flushed in {:.3}s", took.as_secs_f64());
            Some(took.as_secs_f64())
        }
        System::Prometheus => None,
    };
    let data_dir_bytes = peer.data_dir_bytes();

    let agent = query::agent();
    let mut measured = Vec::with_capacity(queries.len());
    let mut answers = Fnv::new();
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
    let queries_failed = measured.iter().filter(|m| m.error.is_some()).count();
    if queries_failed > 0 {
        eprintln!("{name}: server log tail:\n{}", peer.log_tail());
    }
    let sum_of_medians_ms = measured
        .iter()
        .filter(|m| m.error.is_none())
        .map(|m| m.median_ms)
        .sum();
    let version = peer.version.clone();
    // Stop it now, before the next system starts.
    drop(peer);
    Ok(SystemRun {
        result: SystemResult {
            system,
            version,
            ingest: Ingest {
                samples_sent: loaded.samples_sent,
                samples_accepted: loaded.samples_accepted,
                requests_ok: loaded.requests_ok,
                requests_failed: loaded.requests_failed,
                first_error: loaded.first_error.clone(),
                wall_seconds: loaded.wall_seconds,
                accepted_samples_per_second: loaded.accepted_samples_per_second,
                request_p50_ms: loaded.latency_ms.p50,
                request_p99_ms: loaded.latency_ms.p99,
                generator: loaded.generator.encoding,
            },
            flush_seconds,
            data_dir_bytes,
            queries_failed,
            sum_of_medians_ms,
            witness: Witness {
                samples_accepted: loaded.samples_accepted,
                answers_checksum: format!("{:016x}", answers.finish()),
            },
        },
        data: loaded.data,
        measured,
    })
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
    // Check both binaries before the first, long, system run.
    let mut systems = vec![(System::Tsdb, cfg.tsdb_bin.clone())];
    if let Some(p) = &cfg.prometheus_bin {
        systems.push((System::Prometheus, p.clone()));
    }
    for (s, bin) in &systems {
        if !bin.is_file() {
            return Err(format!(
                "{} binary {}: no such file",
                s.name(),
                bin.display()
            ));
        }
    }

    let started = Instant::now();
    let loadavg_start = read_trimmed("/proc/loadavg");
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

    let mut runs = Vec::new();
    for (system, bin) in &systems {
        runs.push(run_system(*system, bin, cfg, start_ms, eval_ms, &queries)?);
    }

    let find = |s: System| runs.iter().find(|r| r.result.system == s);
    let (tsdb, prom) = (find(System::Tsdb), find(System::Prometheus));
    let mut rows = Vec::with_capacity(queries.len());
    let mut totals = Totals {
        queries_compared: 0,
        tsdb_sum_of_medians_ms: 0.0,
        prometheus_sum_of_medians_ms: 0.0,
        ratio: None,
        answers_equal: 0,
        wall_seconds: 0.0,
    };
    for (i, q) in queries.iter().enumerate() {
        let t = tsdb.and_then(|r| r.measured.get(i)).cloned();
        let p = prom.and_then(|r| r.measured.get(i)).cloned();
        let (mut ratio, mut equal, mut difference) = (None, None, None);
        if let (Some(t), Some(p)) = (&t, &p)
            && let (Some(ta), Some(pa)) = (&t.answer, &p.answer)
            && t.error.is_none()
            && p.error.is_none()
        {
            ratio = query::ratio(t.median_ms, p.median_ms);
            difference = ta.difference(pa);
            equal = Some(difference.is_none());
            totals.queries_compared += 1;
            totals.tsdb_sum_of_medians_ms += t.median_ms;
            totals.prometheus_sum_of_medians_ms += p.median_ms;
            totals.answers_equal += usize::from(difference.is_none());
        }
        rows.push(QueryRow {
            query: q.clone(),
            tsdb: t,
            prometheus: p,
            ratio,
            answers_equal: equal,
            difference,
        });
    }
    totals.ratio = query::ratio(
        totals.tsdb_sum_of_medians_ms,
        totals.prometheus_sum_of_medians_ms,
    );
    totals.wall_seconds = started.elapsed().as_secs_f64();

    Ok(Report {
        tool: "tsdb-bench compare",
        params: Params {
            command_line: cfg.command_line.clone(),
            tsdb_bin: cfg.tsdb_bin.display().to_string(),
            prometheus_bin: cfg.prometheus_bin.as_ref().map(|p| p.display().to_string()),
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
        },
        host: Host {
            facts: load::host_facts(),
            mem_total_bytes: mem_total_bytes(),
            loadavg_start,
            loadavg_end: read_trimmed("/proc/loadavg"),
        },
        data: runs.first().map(|r| r.data.clone()),
        systems: runs.into_iter().map(|r| r.result).collect(),
        queries: rows,
        totals,
    })
}

/// `12.34`, or `-` for a missing number.
fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "-".into(),
    }
}

/// A cell's text with the characters that would break a Markdown table escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Report {
    /// The Markdown form: parameters, host, per-system ingest and witness, the query
    /// table with totals, and the differences in words.
    pub fn markdown(&self) -> String {
        let p = &self.params;
        let h = &self.host;
        let mut s = String::new();
        let _ = writeln!(s, "# tsdb vs Prometheus: query latency on the same data\n");
        let _ = writeln!(s, "Command: `{}`\n", p.command_line);
        let _ = writeln!(s, "## Parameters\n");
        let _ = writeln!(
            s,
            "- series {}, points {} per series, interval {} ms ({} samples per system)",
            p.series,
            p.points,
            p.interval_ms,
            p.series as u64 * p.points
        );
        let _ = writeln!(
            s,
            "- remote_write: {} connections, {} samples per request, seed {}",
            p.connections, p.samples_per_request, p.seed
        );
        let _ = writeln!(
            s,
            "- data from {} to {} ms; every query evaluated at (or ending at) {} ms",
            p.start_ms,
            p.start_ms + p.points as i64 * p.interval_ms,
            p.eval_time_ms
        );
        let _ = writeln!(
            s,
            "- each query: 1 warm-up, then {} timed runs (client-side: request sent to body read); p99 is nearest-rank, so the maximum below 100 runs",
            p.query_runs
        );
        let _ = writeln!(s, "- per-instance panels select `{}`", p.instance_subset);
        let _ = writeln!(s, "- tsdb: `{}`", p.tsdb_bin);
        let _ = writeln!(
            s,
            "- Prometheus: `{}`",
            p.prometheus_bin.as_deref().unwrap_or("(not run)")
        );
        if let Some(d) = &self.data {
            let _ = writeln!(
                s,
                "- data: {} hosts, {} metric names, {:.1} labels per series, {:.1} bytes as text per series",
                d.hosts, d.metric_names, d.mean_labels_per_series, d.mean_series_text_bytes
            );
        }
        let _ = writeln!(s, "\n## Host\n");
        let _ = writeln!(
            s,
            "- {} CPUs ({}), {:.1} GiB RAM, kernel {}",
            h.facts.nproc,
            h.facts.cpu_model,
            h.mem_total_bytes as f64 / f64::from(1u32 << 30),
            h.facts.kernel
        );
        let _ = writeln!(
            s,
            "- /proc/loadavg at start `{}`, at end `{}`",
            h.loadavg_start, h.loadavg_end
        );

        let _ = writeln!(s, "\n## Systems\n");
        let _ = writeln!(
            s,
            "| system | version | samples accepted | failed requests | ingest samples/s | load wall s | write p50 / p99 ms | flush s | data dir MB | queries failed | sum of medians ms | answers checksum |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for r in &self.systems {
            let i = &r.ingest;
            let _ = writeln!(
                s,
                "| {} | {} | {} of {} | {} | {:.0} | {:.1} | {:.2} / {:.2} | {} | {:.1} | {} | {:.2} | `{}` |",
                r.system.name(),
                cell(&r.version),
                r.witness.samples_accepted,
                i.samples_sent,
                i.requests_failed,
                i.accepted_samples_per_second,
                i.wall_seconds,
                i.request_p50_ms,
                i.request_p99_ms,
                r.flush_seconds.map_or("-".into(), |f| format!("{f:.2}")),
                r.data_dir_bytes as f64 / 1e6,
                r.queries_failed,
                r.sum_of_medians_ms,
                r.witness.answers_checksum
            );
        }
        for r in &self.systems {
            if let Some(e) = &r.ingest.first_error {
                let _ = writeln!(s, "\n{} first write error: {}", r.system.name(), cell(e));
            }
            if r.ingest.generator == "live" {
                let _ = writeln!(
                    s,
                    "\n{}: bodies were encoded live, so the generator shared the CPU with the server.",
                    r.system.name()
                );
            }
        }

        let _ = writeln!(s, "\n## Queries\n");
        let _ = writeln!(
            s,
            "| # | query | shape | tsdb median ms | tsdb p99 ms | Prometheus median ms | Prometheus p99 ms | tsdb/Prom | answers equal | series (tsdb / Prom) |"
        );
        let _ = writeln!(s, "|---:|---|---|---:|---:|---:|---:|---:|---|---|");
        let med = |m: &Option<Measured>| {
            ms(m.as_ref()
                .filter(|m| m.error.is_none())
                .map(|m| m.median_ms))
        };
        let p99 =
            |m: &Option<Measured>| ms(m.as_ref().filter(|m| m.error.is_none()).map(|m| m.p99_ms));
        let series = |m: &Option<Measured>| match m {
            Some(m) if m.error.is_some() => "error".to_string(),
            Some(m) => m.series.to_string(),
            None => "-".into(),
        };
        for (i, r) in self.queries.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {}: `{}` | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                i + 1,
                cell(r.query.name),
                cell(&r.query.expr),
                r.query.shape.describe(),
                med(&r.tsdb),
                p99(&r.tsdb),
                med(&r.prometheus),
                p99(&r.prometheus),
                r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
                match r.answers_equal {
                    Some(true) => "yes",
                    Some(false) => "**NO**",
                    None => "-",
                },
                series(&r.tsdb),
                series(&r.prometheus),
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "| | **total (sum of medians over the {} queries both answered)** | | **{:.2}** | | **{:.2}** | | **{}** | {} of {} equal | |",
            t.queries_compared,
            t.tsdb_sum_of_medians_ms,
            t.prometheus_sum_of_medians_ms,
            t.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            t.answers_equal,
            t.queries_compared
        );
        let _ = writeln!(
            s,
            "\ntsdb/Prom is the ratio of medians: below 1 means tsdb answered faster."
        );

        let differing: Vec<_> = self
            .queries
            .iter()
            .enumerate()
            .filter(|(_, r)| r.difference.is_some())
            .collect();
        let errors: Vec<String> = self
            .queries
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                [("tsdb", &r.tsdb), ("Prometheus", &r.prometheus)]
                    .into_iter()
                    .filter_map(move |(name, m)| {
                        let e = m.as_ref()?.error.as_ref()?;
                        Some(format!("- #{} on {name}: {}", i + 1, cell(e)))
                    })
            })
            .collect();
        if !differing.is_empty() {
            let _ = writeln!(
                s,
                "\n## Differing answers (first difference, tsdb vs Prometheus)\n"
            );
            for (i, r) in differing {
                let _ = writeln!(
                    s,
                    "- #{} {}: {}",
                    i + 1,
                    r.query.name,
                    cell(r.difference.as_deref().unwrap_or(""))
                );
            }
        }
        if !errors.is_empty() {
            let _ = writeln!(s, "\n## Failed queries\n");
            for e in errors {
                let _ = writeln!(s, "{e}");
            }
        }
        let _ = writeln!(s, "\nTotal wall time {:.1}s.", t.wall_seconds);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Canonical, Shape};

    fn measured(median_ms: f64, answer: &str) -> Measured {
        let canonical = Canonical {
            result_type: "vector".into(),
            series: vec![("{}".into(), vec![(0, answer.into())])],
        };
        Measured {
            runs_ms: vec![median_ms],
            median_ms,
            p99_ms: median_ms,
            max_ms: median_ms,
            result_type: Some("vector".into()),
            series: 1,
            points: 1,
            response_bytes: 10,
            checksum: Some(format!("{:016x}", canonical.checksum())),
            error: None,
            answer: Some(canonical),
        }
    }

    #[test]
    fn markdown_shows_ratios_totals_and_differences() {
        let q = |name| Query {
            name,
            expr: "sum(x{a=~\"b|c\"})".into(),
            shape: Shape::Instant,
        };
        let row = |name, t: Measured, p: Measured| {
            let difference = t
                .answer
                .as_ref()
                .and_then(|a| a.difference(p.answer.as_ref()?));
            QueryRow {
                query: q(name),
                ratio: query::ratio(t.median_ms, p.median_ms),
                answers_equal: Some(difference.is_none()),
                difference,
                tsdb: Some(t),
                prometheus: Some(p),
            }
        };
        let report = Report {
            tool: "tsdb-bench compare",
            params: Params {
                command_line: "tsdb-bench compare".into(),
                tsdb_bin: "tsdb".into(),
                prometheus_bin: Some("prometheus".into()),
                series: 10,
                points: 3,
                interval_ms: 10_000,
                connections: 1,
                samples_per_request: 10,
                query_runs: 1,
                seed: 1,
                start_ms: 0,
                eval_time_ms: 30_000,
                instance_subset: query::SUBSET,
            },
            host: Host {
                facts: load::host_facts(),
                mem_total_bytes: 1 << 30,
                loadavg_start: "0".into(),
                loadavg_end: "0".into(),
            },
            data: None,
            systems: vec![],
            queries: vec![
                row("same", measured(1.0, "1"), measured(4.0, "1")),
                row("differs", measured(3.0, "1"), measured(2.0, "2")),
            ],
            totals: Totals {
                queries_compared: 2,
                tsdb_sum_of_medians_ms: 4.0,
                prometheus_sum_of_medians_ms: 6.0,
                ratio: query::ratio(4.0, 6.0),
                answers_equal: 1,
                wall_seconds: 1.0,
            },
        };
        let md = report.markdown();
        assert!(md.contains("| 1 | same: `sum(x{a=~\"b\\|c\"})` | instant | 1.00 | 1.00 | 4.00 | 4.00 | 0.25 | yes | 1 / 1 |"), "{md}");
        assert!(md.contains("| 1.50 | **NO** |"), "{md}");
        assert!(
            md.contains("**4.00** | | **6.00** | | **0.67** | 1 of 2 equal"),
            "{md}"
        );
        assert!(
            md.contains("- #2 differs: 1 vs 1 series, 1 vs 1 points; {} at 0: 1 vs 2"),
            "{md}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["queries"][1]["answers_equal"], false);
        assert_eq!(json["queries"][0]["kind"], "instant");
        assert_eq!(json["queries"][0]["ratio"], 0.25);
        assert!(!report.failed());
    }

    #[test]
    fn missing_binaries_are_refused_before_anything_starts() {
        let cfg = CompareConfig {
            tsdb_bin: "/nonexistent/tsdb".into(),
            prometheus_bin: None,
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
