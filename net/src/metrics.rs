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

use tsdb_engine::ReadOnlyCause;
use tsdb_engine::mesh::ShardStatus;

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
}

/// Every core's metrics, plus the process-wide connection count.
#[derive(Debug)]
pub struct Metrics {
    cores: Box<[CoreMetrics]>,
    /// Open connections across the process, checked against `server.max_connections`
    /// once per connection (never per request).
    connections: AtomicU64,
}

impl Metrics {
    pub fn new(cores: usize) -> Metrics {
        Metrics {
            cores: (0..cores.max(1)).map(|_| CoreMetrics::default()).collect(),
            connections: AtomicU64::new(0),
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
        render_shards(&mut out, shards);
        out
    }
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
        "tsdb_head_series",
        "gauge",
        "Series in the head (the in-memory part not yet flushed to a block).",
        &|s| s.head_series,
    );
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
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
        let text = m.render(&[status]);
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
