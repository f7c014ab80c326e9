//! The process's metrics and their Prometheus text exposition (format 0.0.4).
//!
//! Counters live in atomics, one cache-line-aligned block per core: a core only ever
//! adds to its own block (relaxed, uncontended), and a scrape sums the blocks. The
//! shards' state (read-only, WAL errors, head series) is asked from the shards at
//! scrape time through the mesh, as every other read is. Nothing here takes a lock.
//!
//! New metrics are added by giving them a field here and a family in
//! [`Metrics::render`]; the names and meaning follow the operations guide.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tsdb_engine::ReadOnlyCause;
use tsdb_engine::histogram::DurationHistogram;
use tsdb_engine::mesh::ShardStatus;

use crate::auth::AuthFailure;
use crate::limits::Limit;

/// Why a write was refused, for `tsdb_insert_errors_total{reason=…}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The payload does not parse or breaks the data model (400).
    BadData,
    /// A limit refused it (400, 408, 413, 429, 503 when shedding load).
    Limit,
    /// The owning shard is read-only for a reason other than a full disk (503).
    ReadOnly,
    /// The owning shard is read-only because the disk is full (507).
    DiskFull,
    /// The server is starting or stopping (503).
    Unavailable,
    /// Anything else (500).
    Internal,
}

impl InsertError {
    pub const ALL: [InsertError; 6] = [
        InsertError::BadData,
        InsertError::Limit,
        InsertError::ReadOnly,
        InsertError::DiskFull,
        InsertError::Unavailable,
        InsertError::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InsertError::BadData => "bad_data",
            InsertError::Limit => "limit",
            InsertError::ReadOnly => "read_only",
            InsertError::DiskFull => "disk_full",
            InsertError::Unavailable => "unavailable",
            InsertError::Internal => "internal",
        }
    }
}

/// Upper bounds, in seconds, of the buckets of every latency histogram (those of
/// Prometheus' client libraries); `+Inf` is implied.
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram of one core: per-bucket (not cumulative) counts, the count
/// and the sum in nanoseconds. Summed over the cores and made cumulative at render.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|&le| secs <= le)
            && let Some(b) = self.buckets.get(i)
        {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The query routes, for `tsdb_queries_total{route=…}` and
/// `tsdb_query_errors_total{route=…}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryRoute {
    /// `/api/v1/query`.
    Instant,
    /// `/api/v1/query_range`.
    Range,
}

impl QueryRoute {
    pub const ALL: [QueryRoute; 2] = [QueryRoute::Instant, QueryRoute::Range];

    pub fn from_path(path: &str) -> Option<QueryRoute> {
        match path {
            "/api/v1/query" => Some(QueryRoute::Instant),
            "/api/v1/query_range" => Some(QueryRoute::Range),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryRoute::Instant => "query",
            QueryRoute::Range => "query_range",
        }
    }
}

/// What the process reports of itself, read by the binary (net opens no file and
/// knows nothing of the allocator) at each scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// When the process started, unix seconds.
    pub start_time_seconds: f64,
    /// Bytes allocated by the application, as the allocator counts them.
    pub alloc_bytes: u64,
}

/// Reads [`ProcessStats`]; called once per scrape, on the scraped core.
pub struct ProcessSource(pub Box<dyn Fn() -> ProcessStats + Send + Sync>);

impl std::fmt::Debug for ProcessSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessSource")
    }
}

/// One core's counters and gauges. Aligned so two cores never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreMetrics {
    limit_hits: [AtomicU64; Limit::ALL.len()],
    insert_errors: [AtomicU64; InsertError::ALL.len()],
    /// Requests being handled on this core (bounded by
    /// [`crate::limits::INFLIGHT_REQUESTS_PER_CORE_MAX`]).
    pub(crate) inflight_requests: AtomicU64,
    /// Request body bytes held on this core (bounded by its budget).
    pub(crate) inflight_bytes: AtomicU64,
    /// Of `inflight_requests`, the writes (for `/debug/pprof/goroutine`).
    pub(crate) inflight_writes: AtomicU64,
    /// Connections open on this core (their sum is the process-wide count, give or
    /// take a connection being opened or closed).
    pub(crate) connections: AtomicU64,
    samples_ingested: AtomicU64,
    /// Every write request answered on this core, whatever its status.
    insert_duration: Histogram,
    queries: [AtomicU64; QueryRoute::ALL.len()],
    query_errors: [AtomicU64; QueryRoute::ALL.len()],
    /// Every query request answered on this core, whatever its status.
    query_duration: Histogram,
    auth_failures: [AtomicU64; AuthFailure::ALL.len()],
    tls_handshake_errors: AtomicU64,
}

impl CoreMetrics {
    pub fn limit_hit(&self, limit: Limit) {
        if let Some(c) = self.limit_hits.get(limit.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn insert_error(&self, reason: InsertError) {
        if let Some(c) = self.insert_errors.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Samples the shards acknowledged.
    pub fn samples_ingested(&self, n: u64) {
        self.samples_ingested.fetch_add(n, Ordering::Relaxed);
    }

    /// A write request answered after `took`.
    pub fn insert_done(&self, took: Duration) {
        self.insert_duration.observe(took);
    }

    /// A query request answered after `took`; `failed` when its status was an error.
    pub fn query_done(&self, route: QueryRoute, took: Duration, failed: bool) {
        if let Some(c) = self.queries.get(route as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if failed && let Some(c) = self.query_errors.get(route as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.query_duration.observe(took);
    }

    /// A request refused by authentication or authorization.
    pub fn auth_failure(&self, reason: AuthFailure) {
        if let Some(c) = self.auth_failures.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A TLS handshake that failed or timed out.
    pub fn tls_handshake_error(&self) {
        self.tls_handshake_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every core's metrics, plus the process-wide connection count.
#[derive(Debug)]
pub struct Metrics {
    cores: Box<[CoreMetrics]>,
    /// Open connections across the process, checked against `server.max_connections`
    /// once per connection (never per request).
    connections: AtomicU64,
    /// The process' own figures; `None` leaves the `process_*` families and
    /// `tsdb_memory_alloc_bytes` out.
    process: Option<ProcessSource>,
}

impl Metrics {
    pub fn new(cores: usize) -> Metrics {
        Metrics {
            cores: (0..cores.max(1)).map(|_| CoreMetrics::default()).collect(),
            connections: AtomicU64::new(0),
            process: None,
        }
    }

    /// As [`Metrics::new`], with the process' figures read from `process` at scrape.
    pub fn with_process(cores: usize, process: ProcessSource) -> Metrics {
        Metrics {
            process: Some(process),
            ..Metrics::new(cores)
        }
    }

    /// The block of core `core` (core 0's for an out-of-range index, which is a wiring
    /// mistake but not worth losing a count over).
    pub fn core(&self, core: usize) -> &CoreMetrics {
        match self.cores.get(core).or_else(|| self.cores.first()) {
            Some(c) => c,
            None => panic!("BUG: metrics built with no core"),
        }
    }

    /// Counts a new connection if fewer than `max` are open; false if the limit is hit.
    pub fn open_connection(&self, max: u64) -> bool {
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn close_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    fn sum(&self, f: impl Fn(&CoreMetrics) -> &AtomicU64) -> u64 {
        self.cores
            .iter()
            .map(|c| f(c).load(Ordering::Relaxed))
            .sum()
    }

    /// The exposition: HELP and TYPE, then the samples, for every family. `shards` is
    /// empty while the shards are still replaying their WAL.
    pub fn render(&self, shards: &[ShardStatus]) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "tsdb_limit_hits_total",
            "counter",
            "Requests and connections refused because a limit was hit, by limit.",
        );
        for l in Limit::ALL {
            let n = self.sum(|c| &c.limit_hits[l.index()]);
            sample(
                &mut out,
                "tsdb_limit_hits_total",
                &[("limit", l.as_str())],
                n,
            );
        }
        family(
            &mut out,
            "tsdb_insert_errors_total",
            "counter",
            "Write requests that failed, by reason.",
        );
        for r in InsertError::ALL {
            let n = self.sum(|c| &c.insert_errors[r as usize]);
            sample(
                &mut out,
                "tsdb_insert_errors_total",
                &[("reason", r.as_str())],
                n,
            );
        }
        family(
            &mut out,
            "tsdb_samples_ingested_total",
            "counter",
            "Samples written and acknowledged, over every write route.",
        );
        sample(
            &mut out,
            "tsdb_samples_ingested_total",
            &[],
            self.sum(|c| &c.samples_ingested),
        );
        self.histogram(
            &mut out,
            "tsdb_insert_duration_seconds",
            "Time to answer a write request, from its head to its answer, whatever the answer.",
            |c| &c.insert_duration,
        );
        family(
            &mut out,
            "tsdb_queries_total",
            "counter",
            "PromQL query requests answered, by route.",
        );
        for r in QueryRoute::ALL {
            let n = self.sum(|c| &c.queries[r as usize]);
            sample(&mut out, "tsdb_queries_total", &[("route", r.as_str())], n);
        }
        family(
            &mut out,
            "tsdb_query_errors_total",
            "counter",
            "PromQL query requests answered with an error status, by route.",
        );
        for r in QueryRoute::ALL {
            let n = self.sum(|c| &c.query_errors[r as usize]);
            sample(
                &mut out,
                "tsdb_query_errors_total",
                &[("route", r.as_str())],
                n,
            );
        }
        self.histogram(
            &mut out,
            "tsdb_query_duration_seconds",
            "Time to answer a PromQL query request (query and query_range), whatever the answer.",
            |c| &c.query_duration,
        );
        family(
            &mut out,
            "tsdb_http_connections",
            "gauge",
            "Open HTTP connections.",
        );
        sample(
            &mut out,
            "tsdb_http_connections",
            &[],
            self.connections.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "tsdb_http_inflight_requests",
            "gauge",
            "Requests being handled.",
        );
        sample(
            &mut out,
            "tsdb_http_inflight_requests",
            &[],
            self.sum(|c| &c.inflight_requests),
        );
        family(
            &mut out,
            "tsdb_http_inflight_body_bytes",
            "gauge",
            "Request body bytes held in memory, as received and decompressed.",
        );
        sample(
            &mut out,
            "tsdb_http_inflight_body_bytes",
            &[],
            self.sum(|c| &c.inflight_bytes),
        );
        family(
            &mut out,
            "tsdb_auth_failures_total",
            "counter",
            "Requests refused by --auth-file: missing or invalid credentials (401), or a role that may not use the route (403).",
        );
        for r in AuthFailure::ALL {
            let n = self.sum(|c| &c.auth_failures[r as usize]);
            sample(
                &mut out,
                "tsdb_auth_failures_total",
                &[("reason", r.as_str())],
                n,
            );
        }
        family(
            &mut out,
            "tsdb_tls_handshake_errors_total",
            "counter",
            "TLS handshakes that failed or did not finish within server.read_timeout.",
        );
        sample(
            &mut out,
            "tsdb_tls_handshake_errors_total",
            &[],
            self.sum(|c| &c.tls_handshake_errors),
        );
        render_shards(&mut out, shards);
        family(
            &mut out,
            "tsdb_goroutines",
            "gauge",
            "Live tasks: one per open connection, one accept loop per core, and each shard's event loop and tickers.",
        );
        let shard_tasks: u64 = shards.iter().map(|s| s.tasks).sum();
        let tasks =
            self.connections.load(Ordering::Relaxed) + self.cores.len() as u64 + shard_tasks;
        sample(&mut out, "tsdb_goroutines", &[], tasks);
        if let Some(process) = &self.process {
            render_process(&mut out, &(process.0)());
        }
        out
    }

    /// A histogram family summed over the cores: cumulative `_bucket{le}`, `_sum`,
    /// `_count`.
    fn histogram(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        f: impl Fn(&CoreMetrics) -> &Histogram,
    ) {
        family(out, name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            cumulative += self
                .cores
                .iter()
                .map(|c| f(c).buckets.get(i).map_or(0, |b| b.load(Ordering::Relaxed)))
                .sum::<u64>();
            sample(out, &bucket, &[("le", &le.to_string())], cumulative);
        }
        let count = self.sum(|c| &f(c).count);
        sample(out, &bucket, &[("le", "+Inf")], count);
        let nanos = self.sum(|c| &f(c).sum_nanos);
        sample_f64(out, &format!("{name}_sum"), nanos as f64 / 1e9);
        sample(out, &format!("{name}_count"), &[], count);
    }
}

fn render_process(out: &mut String, p: &ProcessStats) {
    family(
        out,
        "tsdb_memory_alloc_bytes",
        "gauge",
        "Bytes allocated by tsdb and not yet freed (jemalloc's stats.allocated).",
    );
    sample(out, "tsdb_memory_alloc_bytes", &[], p.alloc_bytes);
    family(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
    );
    sample_f64(out, "process_cpu_seconds_total", p.cpu_seconds);
    family(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    sample(out, "process_resident_memory_bytes", &[], p.resident_bytes);
    family(
        out,
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
    );
    sample(out, "process_open_fds", &[], p.open_fds);
    family(
        out,
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
    );
    sample(out, "process_max_fds", &[], p.max_fds);
    family(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    sample_f64(out, "process_start_time_seconds", p.start_time_seconds);
}

fn render_shards(out: &mut String, shards: &[ShardStatus]) {
    let per_shard =
        |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&ShardStatus) -> u64| {
            family(out, name, kind, help);
            for s in shards {
                sample(out, name, &[("shard", &s.shard.to_string())], f(s));
            }
        };
    per_shard(
        out,
        "tsdb_shard_read_only",
        "gauge",
        "Whether a shard refuses writes (1) or takes them (0).",
        &|s| u64::from(s.read_only_cause.is_some()),
    );
    family(
        out,
        "tsdb_shard_read_only_reason",
        "gauge",
        "Why a shard refuses writes: 1 for its cause, 0 for the others.",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for cause in ReadOnlyCause::ALL {
            let on = u64::from(s.read_only_cause == Some(cause));
            sample(
                out,
                "tsdb_shard_read_only_reason",
                &[("shard", &shard), ("reason", cause.as_str())],
                on,
            );
        }
    }
    per_shard(
        out,
        "tsdb_wal_write_errors_total",
        "counter",
        "WAL writes that failed (a full disk, an I/O error).",
        &|s| s.wal_write_errors,
    );
    per_shard(
        out,
        "tsdb_wal_fsync_errors_total",
        "counter",
        "WAL fsyncs that failed; the shard then stays read-only until restart.",
        &|s| s.wal_fsync_errors,
    );
    per_shard(
        out,
        "tsdb_shard_head_series",
        "gauge",
        "Series in a shard's head (the in-memory part not yet flushed to a block).",
        &|s| s.head_series,
    );
    family(
        out,
        "tsdb_wal_replay_duration_seconds",
        "gauge",
        "How long a shard's WAL replay took when it opened.",
    );
    for s in shards {
        let shard = s.shard.to_string();
        let secs = s.wal_replay_duration.as_secs_f64();
        sample(
            out,
            "tsdb_wal_replay_duration_seconds",
            &[("shard", &shard)],
            secs,
        );
    }
    per_shard_histogram(
        out,
        shards,
        "tsdb_wal_fsync_duration_seconds",
        "How long a shard's WAL fdatasyncs took.",
        &|s| &s.wal_fsync,
    );
    per_shard_histogram(
        out,
        shards,
        "tsdb_compaction_duration_seconds",
        "How long a shard's compactions (merges of blocks into one) took.",
        &|s| &s.compaction_durations,
    );
    // Process-wide totals: left without a sample while the shards replay their WAL.
    let total =
        |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&ShardStatus) -> u64| {
            family(out, name, kind, help);
            if !shards.is_empty() {
                sample(out, name, &[], shards.iter().map(f).sum::<u64>());
            }
        };
    total(
        out,
        "tsdb_head_series",
        "gauge",
        "Series in the heads of every shard (the in-memory part not yet flushed to a block).",
        &|s| s.head_series,
    );
    total(
        out,
        "tsdb_blocks_total",
        "gauge",
        "Blocks in place (read by queries) over every shard.",
        &|s| s.blocks,
    );
    total(
        out,
        "tsdb_wal_size_bytes",
        "gauge",
        "Bytes of WAL segments on disk over every shard.",
        &|s| s.wal_bytes,
    );
    total(
        out,
        "tsdb_head_flushes_total",
        "counter",
        "Heads flushed to a block since start, over every shard.",
        &|s| s.flushes,
    );
    total(
        out,
        "tsdb_compactions_total",
        "counter",
        "Compactions (blocks merged into one) since start, over every shard.",
        &|s| s.compactions,
    );
}

/// One histogram family with a `shard` label, from each shard's counts.
fn per_shard_histogram(
    out: &mut String,
    shards: &[ShardStatus],
    name: &str,
    help: &str,
    get: &dyn Fn(&ShardStatus) -> &DurationHistogram,
) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for s in shards {
        let shard = s.shard.to_string();
        let h = get(s);
        let mut cumulative = 0;
        for (le, n) in h.bounds.iter().zip(&h.buckets) {
            cumulative += n;
            let le = le.to_string();
            sample(out, &bucket, &[("shard", &shard), ("le", &le)], cumulative);
        }
        sample(out, &bucket, &[("shard", &shard), ("le", "+Inf")], h.count);
        let shard_label = [("shard", shard.as_str())];
        sample(
            out,
            &format!("{name}_sum"),
            &shard_label,
            h.sum.as_secs_f64(),
        );
        sample(out, &format!("{name}_count"), &shard_label, h.count);
    }
}

/// The exposition of [`Metrics::render`] as OpenMetrics 1.0 text: a counter family is
/// named without its samples' `_total` suffix in `# HELP` and `# TYPE`, and the
/// exposition ends with `# EOF`. Everything else (histograms, gauges, label and value
/// syntax) is already valid in both formats.
pub fn to_openmetrics(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    // Counter families, by the name their TYPE line gives.
    let counters: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    for line in lines {
        let header = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match header {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = match name.strip_suffix("_total") {
                    Some(base) if counters.contains(name) => base,
                    _ => name,
                };
                let _ = writeln!(out, "{prefix}{name} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample_f64(out: &mut String, name: &str, value: f64) {
    sample(out, name, &[], value);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            // Label values here are our own names and numbers; escape anyway, as the
            // format requires, so a future value cannot break a line.
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let m = Metrics::new(1);
        let om = to_openmetrics(&m.render(&[]));
        assert!(om.ends_with("\n# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE tsdb_samples_ingested counter\n"),
            "{om}"
        );
        assert!(om.contains("# HELP tsdb_samples_ingested Samples"), "{om}");
        assert!(om.contains("\ntsdb_samples_ingested_total 0\n"), "{om}");
        // A gauge keeps its name, `_total` or not; histograms are unchanged.
        assert!(om.contains("# TYPE tsdb_blocks_total gauge\n"), "{om}");
        assert!(om.contains("# TYPE tsdb_query_duration_seconds histogram\n"));
        assert_eq!(om.matches("# EOF").count(), 1);
    }

    #[test]
    fn counts_per_core_and_renders_every_family() {
        let m = Metrics::new(2);
        m.core(0).limit_hit(Limit::BodySize);
        m.core(1).limit_hit(Limit::BodySize);
        m.core(1).insert_error(InsertError::DiskFull);
        assert!(m.open_connection(1));
        assert!(!m.open_connection(1));
        let status = ShardStatus {
            shard: 3,
            read_only_cause: Some(ReadOnlyCause::DiskFull),
            ..ShardStatus::default()
        };
        m.core(0)
            .query_done(QueryRoute::Instant, Duration::from_millis(20), true);
        m.core(1)
            .query_done(QueryRoute::Range, Duration::from_secs(60), false);
        m.core(1).samples_ingested(5);
        let text = m.render(&[status]);
        assert!(text.contains("tsdb_samples_ingested_total 5\n"), "{text}");
        assert!(text.contains("tsdb_queries_total{route=\"query\"} 1\n"));
        assert!(text.contains("tsdb_query_errors_total{route=\"query\"} 1\n"));
        assert!(text.contains("tsdb_query_errors_total{route=\"query_range\"} 0\n"));
        // 20ms falls in the 0.025 bucket; 60s in none but +Inf.
        assert!(text.contains("tsdb_query_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("tsdb_query_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("tsdb_query_duration_seconds_bucket{le=\"10\"} 1\n"));
        assert!(text.contains("tsdb_query_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("tsdb_query_duration_seconds_sum 60.02\n"));
        assert!(text.contains("tsdb_query_duration_seconds_count 2\n"));
        assert!(text.contains("tsdb_head_series 0\n"));
        assert!(
            text.contains("tsdb_limit_hits_total{limit=\"body_size\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tsdb_insert_errors_total{reason=\"disk_full\"} 1\n"));
        assert!(text.contains("tsdb_http_connections 1\n"));
        assert!(text.contains("tsdb_shard_read_only{shard=\"3\"} 1\n"));
        assert!(text.contains("tsdb_shard_read_only_reason{shard=\"3\",reason=\"disk_full\"} 1\n"));
        assert!(text.contains("tsdb_shard_read_only_reason{shard=\"3\",reason=\"operator\"} 0\n"));
        // Every sample follows its family's HELP and TYPE.
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap_or_default().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
    }
}
