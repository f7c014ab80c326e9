//! What `tsdb-bench compare` reports: the JSON structure (these types, serialized)
//! and the ratios of tsdb to each peer. The Markdown form is in markdown.rs.

use serde::Serialize;

use crate::disk::OnDisk;
use crate::r#gen::DatasetFacts;
use crate::load::HostFacts;
use crate::peers::System;
use crate::query::{self, Measured, Query};

#[derive(Clone, Debug, Serialize)]
pub struct SystemParam {
    pub system: System,
    pub bin: String,
}

/// A system that was not run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub system: System,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub command_line: String,
    /// The systems run, in order.
    pub systems: Vec<SystemParam>,
    pub skipped: Vec<Skipped>,
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
    /// The PromQL query that counts every sample held (after the kill -9 restart).
    pub witness_promql: String,
    /// Its InfluxQL counterpart, whose per-measurement counts are summed.
    pub witness_influxql: &'static str,
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

/// Ingest as `tsdb-bench load` measured it, plus the server's CPU time during it.
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
    /// The server's user + system CPU time (all threads) during the load.
    pub server_cpu_seconds: f64,
    pub cpu_seconds_per_million_samples: f64,
}

/// Resident memory from `/proc/<pid>/status`.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    /// `VmRSS` right after the load.
    pub rss_after_load_bytes: u64,
    /// `VmHWM` of the loading process, just before it was killed.
    pub peak_rss_load_bytes: u64,
    /// `VmHWM` of the restarted process at the end of the run (replay, flush,
    /// compaction, queries).
    pub peak_rss_after_restart_bytes: u64,
    /// The larger of the two peaks.
    pub peak_rss_bytes: u64,
}

/// Recovery after SIGKILL right after the load.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// From the new process' spawn until its readiness route answered.
    pub ready_seconds: f64,
    /// From the spawn until the witness query counted every accepted sample (or, when
    /// some were lost, until the count stopped changing).
    pub witness_seconds: f64,
    pub samples_after_restart: u64,
    /// samples_after_restart / witness_seconds.
    pub samples_per_second: f64,
    /// tsdb: the largest `duration_ms` of its `replaying WAL` log lines (one a shard).
    pub log_replay_ms: Option<u64>,
    /// tsdb: samples its `replaying WAL` lines say were replayed (the rest of the
    /// witness count was already in blocks flushed during the load).
    pub log_replay_samples: Option<u64>,
    /// tsdb: samples / duration of the slowest shard's `replaying WAL` line: replay
    /// speed per core.
    pub log_replay_slowest_shard_samples_per_second: Option<f64>,
    /// VictoriaMetrics: `/internal/force_flush` was called just before the kill, so
    /// the samples it held only in memory were not lost.
    pub flushed_before_kill: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Witness {
    pub samples_accepted: u64,
    /// What the witness query counted after the kill -9 restart.
    pub samples_after_restart: u64,
    /// FNV-1a over every query's name and answer checksum, in order; None for a
    /// system without PromQL.
    pub answers_checksum: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SystemResult {
    pub system: System,
    pub version: String,
    pub ingest: Ingest,
    pub memory: Memory,
    pub replay: Replay,
    pub disk: OnDisk,
    /// disk.allocated_bytes / samples accepted.
    pub bytes_per_sample: f64,
    /// Queries asked (0 for a system without PromQL), failed, and the sum of the
    /// medians of those answered.
    pub queries_run: usize,
    pub queries_failed: usize,
    pub sum_of_medians_ms: f64,
    pub witness: Witness,
}

/// One system's answer to one query.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub system: System,
    /// None: not asked (no PromQL).
    pub measured: Option<Measured>,
    /// Compared with Prometheus' answer; None when either has no answer, or for
    /// Prometheus itself.
    pub equal_to_prometheus: Option<bool>,
    /// The first difference, when the answers differ.
    pub difference: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueryRow {
    #[serde(flatten)]
    pub query: Query,
    /// One a system, in the order of `systems`.
    pub cells: Vec<Cell>,
}

/// tsdb's figure divided by a peer's. For speeds (ingest, replay) above 1 means
/// tsdb is faster; for costs (CPU, memory, disk, query time) below 1 means tsdb
/// needs less.
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    pub peer: System,
    pub ingest_samples_per_second: Option<f64>,
    pub cpu_seconds_per_million_samples: Option<f64>,
    pub peak_rss: Option<f64>,
    pub bytes_per_sample: Option<f64>,
    /// Over the queries both answered (`queries_compared`).
    pub sum_of_query_medians: Option<f64>,
    pub queries_compared: usize,
    pub replay_samples_per_second: Option<f64>,
}

/// How many of the queries a system and Prometheus both answered were equal.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    pub system: System,
    pub compared: usize,
    pub equal: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub params: Params,
    pub host: Host,
    pub data: Option<DatasetFacts>,
    pub systems: Vec<SystemResult>,
    pub queries: Vec<QueryRow>,
    pub ratios: Vec<Ratios>,
    pub agreement: Vec<Agreement>,
    pub wall_seconds: f64,
}

impl Report {
    pub fn system(&self, s: System) -> Option<&SystemResult> {
        self.systems.iter().find(|r| r.system == s)
    }

    /// Why the run counts as failed (exit code 1), or none: a refused sample, a
    /// failed query, tsdb answering differently from Prometheus, or tsdb holding
    /// fewer samples after the kill -9 restart than it had acknowledged. A peer's
    /// differences and losses are reported, not failures.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.systems {
            let name = r.system.name();
            if r.ingest.requests_failed > 0 {
                out.push(format!(
                    "{name}: {} write requests failed",
                    r.ingest.requests_failed
                ));
            }
            if r.queries_failed > 0 {
                out.push(format!("{name}: {} queries failed", r.queries_failed));
            }
        }
        if let Some(t) = self.system(System::Tsdb) {
            if t.witness.samples_after_restart != t.witness.samples_accepted {
                out.push(format!(
                    "tsdb: {} samples after the kill -9 restart, {} accepted",
                    t.witness.samples_after_restart, t.witness.samples_accepted
                ));
            }
            for a in &self.agreement {
                if a.system == System::Tsdb && a.equal != a.compared {
                    out.push(format!(
                        "tsdb: {} of {} answers differ from Prometheus'",
                        a.compared - a.equal,
                        a.compared
                    ));
                }
            }
        }
        out
    }
}

/// The ratios of tsdb to `peer`.
pub fn ratios(report_systems: &[SystemResult], rows: &[QueryRow], peer: System) -> Option<Ratios> {
    let t = report_systems.iter().find(|r| r.system == System::Tsdb)?;
    let p = report_systems.iter().find(|r| r.system == peer)?;
    let r = |a: f64, b: f64| query::ratio(a, b);
    let answered = |c: Option<&Cell>| {
        c.and_then(|c| c.measured.as_ref())
            .filter(|m| m.error.is_none())
            .map(|m| m.median_ms)
    };
    let (mut n, mut ts, mut ps) = (0, 0.0, 0.0);
    for row in rows {
        let find = |s| answered(row.cells.iter().find(|c| c.system == s));
        if let (Some(a), Some(b)) = (find(System::Tsdb), find(peer)) {
            n += 1;
            ts += a;
            ps += b;
        }
    }
    Some(Ratios {
        peer,
        ingest_samples_per_second: r(
            t.ingest.accepted_samples_per_second,
            p.ingest.accepted_samples_per_second,
        ),
        cpu_seconds_per_million_samples: r(
            t.ingest.cpu_seconds_per_million_samples,
            p.ingest.cpu_seconds_per_million_samples,
        ),
        peak_rss: r(
            t.memory.peak_rss_bytes as f64,
            p.memory.peak_rss_bytes as f64,
        ),
        bytes_per_sample: r(t.bytes_per_sample, p.bytes_per_sample),
        sum_of_query_medians: if n > 0 { r(ts, ps) } else { None },
        queries_compared: n,
        replay_samples_per_second: r(t.replay.samples_per_second, p.replay.samples_per_second),
    })
}
