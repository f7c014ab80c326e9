//! The query side of `compare`: a fixed set of dashboard-like PromQL queries over the
//! generated node-exporter data, a runner that times them over the Prometheus HTTP API,
//! and the canonical form of an answer that lets two systems' answers be compared and
//! checksummed.
//!
//! Canonical form: series sorted by their label set (labels sorted by name), each point
//! as integer milliseconds and the value rounded to 9 significant digits, so that two
//! engines that sum in a different order still agree, while a wrong value, a missing
//! point or a missing series does not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// The instances a "per host" dashboard panel shows: 20 hosts (`host-0` to `host-19`),
/// as a dashboard's instance variable would select. Queries over the whole fleet are
/// there too, but a panel drawing a line per CPU of a thousand hosts is not realistic.
pub const SUBSET: &str = r#"instance=~"host-1?[0-9]:9100""#;

/// Largest response body read; a bound so that a runaway answer fails loudly instead
/// of exhausting memory. The largest answer of the fixed set is a few MB.
const RESPONSE_BYTES_MAX: u64 = 1 << 30;

/// Time one query may take before it counts as failed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Instant (at the evaluation time) or range (ending at it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    Instant,
    Range { window_s: i64, step_s: i64 },
}

impl Shape {
    /// `instant`, `range 1h step 60s`.
    pub fn describe(self) -> String {
        match self {
            Shape::Instant => "instant".into(),
            Shape::Range { window_s, step_s } => {
                let window = if window_s % 3600 == 0 {
                    format!("{}h", window_s / 3600)
                } else {
                    format!("{}m", window_s / 60)
                };
                format!("range {window} step {step_s}s")
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Query {
    /// Short name for tables.
    pub name: &'static str,
    pub expr: String,
    #[serde(flatten)]
    pub shape: Shape,
}

/// The fixed set, in report order. Only metrics the generator produces (see gen.rs),
/// so every query has a non-empty answer on a fleet of at least 20 hosts.
pub fn dashboard_queries() -> Vec<Query> {
    const I: Shape = Shape::Instant;
    const R1H: Shape = Shape::Range {
        window_s: 3600,
        step_s: 60,
    };
    const R2H: Shape = Shape::Range {
        window_s: 7200,
        step_s: 60,
    };
    let s = SUBSET;
    let q = |name, expr: String, shape| Query { name, expr, shape };
    vec![
        // Instant: the single-stat and table panels.
        q(
            "cpu busy by instance",
            format!(r#"sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle",{s}}}[5m]))"#),
            I,
        ),
        q(
            "memory available ratio",
            format!("node_memory_MemAvailable_bytes{{{s}}} / node_memory_MemTotal_bytes{{{s}}}"),
            I,
        ),
        q(
            "top 10 network receivers",
            "topk(10, rate(node_network_receive_bytes_total[5m]))".into(),
            I,
        ),
        q(
            "load1 by instance",
            format!("avg by (instance) (node_load1{{{s}}})"),
            I,
        ),
        q("hosts by env", "count by (env) (node_uname_info)".into(), I),
        q(
            "hosts by region and zone",
            "count by (region, zone) (node_boot_time_seconds)".into(),
            I,
        ),
        q("series count", r#"count({__name__=~"node_.+"})"#.into(), I),
        q(
            "load1 max over 1h",
            format!("max_over_time(node_load1{{{s}}}[1h])"),
            I,
        ),
        q(
            "network transmit increase 1h",
            format!(r#"increase(node_network_transmit_bytes_total{{device!="lo",{s}}}[1h])"#),
            I,
        ),
        q(
            "filesystem used %",
            format!(
                r#"100 * (1 - node_filesystem_avail_bytes{{fstype!="tmpfs",{s}}} / node_filesystem_size_bytes{{fstype!="tmpfs",{s}}})"#
            ),
            I,
        ),
        q(
            "disk io time rate",
            format!("rate(node_disk_io_time_seconds_total{{{s}}}[5m])"),
            I,
        ),
        q(
            "fleet idle cpu",
            r#"sum(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#.into(),
            I,
        ),
        q("hosts with load1 > 2", "count(node_load1 > 2)".into(), I),
        q(
            "load5 p90 over fleet",
            "quantile(0.9, node_load5)".into(),
            I,
        ),
        q(
            "memory by region",
            "sum by (region) (node_memory_MemTotal_bytes)".into(),
            I,
        ),
        // Range: the graph panels.
        q(
            "cpu busy by instance",
            format!(r#"sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle",{s}}}[5m]))"#),
            R1H,
        ),
        q(
            "memory used ratio",
            format!(
                "1 - node_memory_MemAvailable_bytes{{{s}}} / node_memory_MemTotal_bytes{{{s}}}"
            ),
            R2H,
        ),
        q(
            "network receive by instance",
            format!(
                r#"sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo",{s}}}[5m]))"#
            ),
            R1H,
        ),
        q(
            "load1 by instance",
            format!("avg by (instance) (node_load1{{{s}}})"),
            R2H,
        ),
        q(
            "disk io time rate",
            format!("rate(node_disk_io_time_seconds_total{{{s}}}[5m])"),
            R1H,
        ),
        q(
            "top 5 context switchers",
            "topk(5, sum by (instance) (rate(node_context_switches_total[5m])))".into(),
            R1H,
        ),
        q(
            "filesystem free ratio",
            format!(
                r#"min by (instance, mountpoint) (node_filesystem_avail_bytes{{fstype!="tmpfs",{s}}} / node_filesystem_size_bytes{{fstype!="tmpfs",{s}}})"#
            ),
            R2H,
        ),
        q(
            "procs running max 10m",
            format!("max_over_time(node_procs_running{{{s}}}[10m])"),
            R1H,
        ),
        q(
            "fleet interrupts",
            "sum(rate(node_intr_total[5m]))".into(),
            R2H,
        ),
        q(
            "hosts with load15 > 1 by env",
            "count by (env) (node_load15 > 1)".into(),
            R1H,
        ),
        q(
            "transmit packets irate",
            format!("avg(irate(node_network_transmit_packets_total{{{s}}}[5m]))"),
            R1H,
        ),
        q(
            "inodes free deriv",
            format!("deriv(node_filesystem_files_free{{{s}}}[15m])"),
            R1H,
        ),
    ]
}

/// One point of a canonical answer: ms timestamp and the value's canonical text.
pub type Point = (i64, String);

/// An answer in canonical form (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    /// `vector`, `matrix`, `scalar` or `string`.
    pub result_type: String,
    /// `(labels as {a="b",…}, points)`, sorted by the labels. A scalar or string is one
    /// series with empty labels.
    pub series: Vec<(String, Vec<Point>)>,
}

/// A value rounded to 9 significant digits, in one spelling per number: `1.23456789e3`,
/// `0` for both zeros, and Prometheus' `NaN`, `+Inf`, `-Inf`.
pub fn canonical_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.8e}")
    }
}

/// A `[timestamp_seconds, "value"]` pair of the JSON API.
fn point(p: &Value, string_value: bool) -> Result<Point, String> {
    let (Some(ts), Some(v)) = (p.get(0), p.get(1)) else {
        return Err(format!("point is not [time, value]: {p}"));
    };
    let ts = ts
        .as_f64()
        .ok_or_else(|| format!("timestamp is not a number: {ts}"))?;
    let v = v
        .as_str()
        .ok_or_else(|| format!("value is not a string: {v}"))?;
    let text = if string_value {
        v.to_string()
    } else {
        // Prometheus spells infinities `+Inf`/`-Inf`; Rust parses `inf`, `+inf`, `-inf`.
        let parsed: f64 = v
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| format!("value is not a number: {v:?}"))?;
        canonical_value(parsed)
    };
    // Seconds with millisecond decimals; round to undo the binary fraction.
    Ok(((ts * 1000.0).round() as i64, text))
}

/// `{a="b",c="d"}` with the labels sorted by name and values JSON-escaped.
fn labels(metric: Option<&Value>) -> String {
    let mut sorted: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(Value::Object(m)) = metric {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                other => other.to_string(),
            };
            sorted.insert(k, v);
        }
    }
    let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// Parses an API response body into canonical form; Err for an error response or a
/// body that is not the API's shape.
pub fn canonicalize(body: &[u8]) -> Result<Canonical, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if v.get("status").and_then(Value::as_str) != Some("success") {
        let what = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error text");
        return Err(format!("query failed: {what}"));
    }
    let data = v.get("data").ok_or("response has no data")?;
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or("response has no data.resultType")?
        .to_string();
    let result = data.get("result").ok_or("response has no data.result")?;
    let mut series = match result_type.as_str() {
        "vector" | "matrix" => {
            let items = result.as_array().ok_or("data.result is not an array")?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let points = if result_type == "vector" {
                    let p = item.get("value").ok_or("vector element has no value")?;
                    vec![point(p, false)?]
                } else {
                    let values = item
                        .get("values")
                        .and_then(Value::as_array)
                        .ok_or("matrix element has no values")?;
                    values
                        .iter()
                        .map(|p| point(p, false))
                        .collect::<Result<Vec<_>, _>>()?
                };
                out.push((labels(item.get("metric")), points));
            }
            out
        }
        "scalar" => vec![(labels(None), vec![point(result, false)?])],
        "string" => vec![(labels(None), vec![point(result, true)?])],
        other => return Err(format!("unknown resultType {other:?}")),
    };
    series.sort();
    Ok(Canonical {
        result_type,
        series,
    })
}

/// FNV-1a, 64 bits: a few lines, stable across versions and platforms, and enough to
/// tell two answers apart (this is a witness, not a defence against forgery).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv::new()
    }
}

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Canonical {
    /// The canonical text's FNV-1a hash.
    pub fn checksum(&self) -> u64 {
        let mut h = Fnv::new();
        h.write(self.result_type.as_bytes());
        h.write(b"\n");
        for (labels, points) in &self.series {
            h.write(labels.as_bytes());
            for (ts, v) in points {
                h.write(format!(" {ts} {v}").as_bytes());
            }
            h.write(b"\n");
        }
        h.finish()
    }

    pub fn points(&self) -> usize {
        self.series.iter().map(|(_, p)| p.len()).sum()
    }

    /// None when equal, else the first difference in words (for the report).
    pub fn difference(&self, other: &Canonical) -> Option<String> {
        if self == other {
            return None;
        }
        if self.result_type != other.result_type {
            return Some(format!(
                "result type {} vs {}",
                self.result_type, other.result_type
            ));
        }
        let counts = format!(
            "{} vs {} series, {} vs {} points",
            self.series.len(),
            other.series.len(),
            self.points(),
            other.points()
        );
        for (a, b) in self.series.iter().zip(&other.series) {
            if a.0 != b.0 {
                return Some(format!(
                    "{counts}; first differing series {} vs {}",
                    a.0, b.0
                ));
            }
            for (p, q) in a.1.iter().zip(&b.1) {
                if p != q {
                    return Some(format!(
                        "{counts}; {} at {}: {} vs {} (at {})",
                        a.0, p.0, p.1, q.1, q.0
                    ));
                }
            }
            if a.1.len() != b.1.len() {
                return Some(format!(
                    "{counts}; {} has {} vs {} points",
                    a.0,
                    a.1.len(),
                    b.1.len()
                ));
            }
        }
        Some(counts)
    }
}

/// Median; the mean of the middle two for an even count; NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match (v.get(n.wrapping_sub(1) / 2), v.get(n / 2)) {
        (Some(a), Some(b)) if n.is_multiple_of(2) => (a + b) / 2.0,
        (_, Some(b)) => *b,
        _ => f64::NAN,
    }
}

/// Nearest-rank percentile (`q` in 0..=1): the smallest value with at least q of the
/// values at or below it. For p99 of fewer than 100 runs that is the maximum.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v.get(rank.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// `a / b`, or None when either is missing (NaN) or b is 0.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        None
    } else {
        Some(a / b)
    }
}

/// Sends one query (form-encoded POST, as Grafana does) and returns the response body,
/// or an error for a transport failure or a non-200 status.
pub fn fetch(agent: &ureq::Agent, base: &str, q: &Query, eval_ms: i64) -> Result<Vec<u8>, String> {
    let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let (path, form): (&str, Vec<(&str, String)>) = match q.shape {
        Shape::Instant => (
            "/api/v1/query",
            vec![("query", q.expr.clone()), ("time", secs(eval_ms))],
        ),
        Shape::Range { window_s, step_s } => (
            "/api/v1/query_range",
            vec![
                ("query", q.expr.clone()),
                ("start", secs(eval_ms - window_s * 1000)),
                ("end", secs(eval_ms)),
                ("step", step_s.to_string()),
            ],
        ),
    };
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut resp = agent
        .post(&url)
        // ureq asks for gzip by default; Prometheus would then spend time compressing
        // and tsdb would not, so both are asked for the same identity encoding.
        .header("Accept-Encoding", "identity")
        .send_form(form)
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(RESPONSE_BYTES_MAX)
        .read_to_vec()
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.trim().chars().take(300).collect();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(body)
}

/// One query's timings and answer on one system.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// Client-side latency of each timed run (request sent to body read), in ms.
    pub runs_ms: Vec<f64>,
    pub median_ms: f64,
    /// Nearest rank; the maximum when there are fewer than 100 runs.
    pub p99_ms: f64,
    pub max_ms: f64,
    pub result_type: Option<String>,
    pub series: usize,
    pub points: usize,
    pub response_bytes: usize,
    /// FNV-1a of the canonical answer, 16 hex digits.
    pub checksum: Option<String>,
    /// The first failure, if any run failed (the timings then cover the runs before).
    pub error: Option<String>,
    #[serde(skip)]
    pub answer: Option<Canonical>,
}

/// An HTTP agent for the query runner: one keep-alive connection, statuses as values.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(QUERY_TIMEOUT))
        .build()
        .into()
}

/// Runs `q` once untimed (warm-up; its answer is the one canonicalized), then `runs`
/// times timed. Stops at the first failure.
pub fn measure(agent: &ureq::Agent, base: &str, q: &Query, eval_ms: i64, runs: usize) -> Measured {
    let mut m = Measured {
        runs_ms: Vec::with_capacity(runs),
        median_ms: f64::NAN,
        p99_ms: f64::NAN,
        max_ms: f64::NAN,
        result_type: None,
        series: 0,
        points: 0,
        response_bytes: 0,
        checksum: None,
        error: None,
        answer: None,
    };
    match fetch(agent, base, q, eval_ms).and_then(|body| Ok((canonicalize(&body)?, body.len()))) {
        Ok((answer, bytes)) => {
            m.result_type = Some(answer.result_type.clone());
            m.series = answer.series.len();
            m.points = answer.points();
            m.response_bytes = bytes;
            m.checksum = Some(format!("{:016x}", answer.checksum()));
            m.answer = Some(answer);
        }
        Err(e) => {
            m.error = Some(e);
            return m;
        }
    }
    for _ in 0..runs {
        let started = Instant::now();
        match fetch(agent, base, q, eval_ms) {
            Ok(_) => m.runs_ms.push(started.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                m.error = Some(e);
                break;
            }
        }
    }
    m.median_ms = median(&m.runs_ms);
    m.p99_ms = percentile(&m.runs_ms, 0.99);
    m.max_ms = percentile(&m.runs_ms, 1.0);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn canonical_form_ignores_order_and_last_digit_noise() {
        // Same answer, series and labels in another order, values off in the 12th
        // digit, timestamps written differently.
        let a = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"b","job":"node"},"value":[1700000000.5,"0.1"]},
            {"metric":{"job":"node","instance":"a"},"value":[1700000000.5,"3"]}]}}"#;
        let b = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a","job":"node"},"value":[1700000000.500,"3.0000000000001"]},
            {"metric":{"job":"node","instance":"b"},"value":[1700000000.5,"0.10000000000000002"]}]}}"#;
        let (ca, cb) = (canonicalize(a).unwrap(), canonicalize(b).unwrap());
        assert_eq!(ca, cb);
        assert_eq!(ca.checksum(), cb.checksum());
        assert_eq!(ca.difference(&cb), None);
        assert_eq!(ca.series[0].0, r#"{instance="a",job="node"}"#);
        assert_eq!(
            ca.series[0].1,
            vec![(1_700_000_000_500, "3.00000000e0".into())]
        );

        // A difference in the 9th digit is a different answer, and says where.
        let c = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a","job":"node"},"value":[1700000000.5,"3.00000001"]},
            {"metric":{"instance":"b","job":"node"},"value":[1700000000.5,"0.1"]}]}}"#;
        let cc = canonicalize(c).unwrap();
        assert_ne!(ca.checksum(), cc.checksum());
        let d = ca.difference(&cc).unwrap();
        assert!(
            d.contains(r#"{instance="a",job="node"} at 1700000000500"#),
            "{d}"
        );

        // A missing series is a difference too.
        let e = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a","job":"node"},"value":[1700000000.5,"3"]}]}}"#;
        let d = ca.difference(&canonicalize(e).unwrap()).unwrap();
        assert!(d.starts_with("2 vs 1 series"), "{d}");
    }

    #[test]
    fn canonical_values_and_shapes() {
        assert_eq!(canonical_value(0.0), "0");
        assert_eq!(canonical_value(-0.0), "0");
        assert_eq!(canonical_value(f64::NAN), "NaN");
        assert_eq!(canonical_value(f64::INFINITY), "+Inf");
        assert_eq!(canonical_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(canonical_value(123_456_789_012.0), "1.23456789e11");
        assert_eq!(canonical_value(-0.000_123_456_789_4), "-1.23456789e-4");

        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"x"},"values":[[10,"+Inf"],[70,"NaN"],[130,"-Inf"]]}]}}"#;
        let c = canonicalize(m).unwrap();
        assert_eq!(c.result_type, "matrix");
        assert_eq!(c.points(), 3);
        assert_eq!(
            c.series[0].1,
            vec![
                (10_000, "+Inf".into()),
                (70_000, "NaN".into()),
                (130_000, "-Inf".into())
            ]
        );
        let s = br#"{"status":"success","data":{"resultType":"scalar","result":[5,"2"]}}"#;
        assert_eq!(
            canonicalize(s).unwrap().series,
            vec![("{}".into(), vec![(5000, "2.00000000e0".into())])]
        );

        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(canonicalize(err).unwrap_err().contains("parse error"));
        assert!(canonicalize(b"not json").is_err());
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(Fnv::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn median_percentile_and_ratio() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        // p99 of 10 runs is the maximum; p50 by nearest rank is the 5th.
        assert_eq!(percentile(&ten, 0.99), 10.0);
        assert_eq!(percentile(&ten, 0.5), 5.0);
        let hundred: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.99), 198.0);
        assert!(percentile(&[], 0.99).is_nan());
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn every_query_is_distinct_and_uses_generated_metrics() {
        let qs = dashboard_queries();
        assert!(qs.len() >= 20, "{}", qs.len());
        let mut seen = std::collections::HashSet::new();
        for q in &qs {
            assert!(
                seen.insert((q.expr.clone(), q.shape)),
                "duplicate {}",
                q.expr
            );
            assert!(q.expr.contains("node_"), "{}", q.expr);
        }
        // Names the generator does not produce would make an empty, meaningless answer.
        let ds = crate::r#gen::Dataset::new(1, 5_000, 0, 10_000);
        let names: std::collections::HashSet<String> = ds
            .series
            .iter()
            .flat_map(|s| s.labels.iter().filter(|(n, _)| *n == "__name__"))
            .map(|(_, v)| v.to_string())
            .collect();
        for q in &qs {
            for word in q
                .expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            {
                if word.starts_with("node_") && word.len() > 5 {
                    assert!(names.contains(word), "{word} in {}", q.expr);
                }
            }
        }
    }

    /// An HTTP/1.1 server that answers every request with `body` (200), keeping the
    /// connection alive, and records the request bodies (the form parameters).
    fn fixed_json_server(
        body: &'static str,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let forms = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (n, f) = (count.clone(), forms.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (n, f) = (n.clone(), f.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let Some(form) = crate::load::read_test_request(&mut reader) else {
                            return;
                        };
                        f.lock().unwrap().push(String::from_utf8(form).unwrap());
                        n.fetch_add(1, Ordering::SeqCst);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        conn.write_all(head.as_bytes()).unwrap();
                        conn.write_all(body.as_bytes()).unwrap();
                    }
                });
            }
        });
        (format!("http://{addr}"), count, forms)
    }

    #[test]
    fn runner_against_fake_server_times_every_run_and_checksums_the_answer() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"instance":"host-1:9100"},"values":[[1700000000,"1.5"],[1700000060,"2"]]}]}}"#;
        let (url, count, forms) = fixed_json_server(body);
        let q = Query {
            name: "t",
            expr: r#"sum by (instance) (rate(x{a!="b"}[5m]))"#.into(),
            shape: Shape::Range {
                window_s: 3600,
                step_s: 60,
            },
        };
        let m = measure(&agent(), &url, &q, 1_700_003_600_000, 5);
        assert_eq!(m.error, None);
        // One warm-up plus five timed runs.
        assert_eq!(count.load(Ordering::SeqCst), 6);
        assert_eq!(m.runs_ms.len(), 5);
        assert!(m.median_ms > 0.0 && m.median_ms <= m.p99_ms && m.p99_ms == m.max_ms);
        assert_eq!((m.series, m.points), (1, 2));
        assert_eq!(m.result_type.as_deref(), Some("matrix"));
        let expect = canonicalize(body.as_bytes()).unwrap().checksum();
        assert_eq!(m.checksum, Some(format!("{expect:016x}")));
        // The parameters went as a form, times in seconds with ms decimals.
        let form = forms.lock().unwrap()[0].clone();
        assert!(form.contains("start=1700000000.000"), "{form}");
        assert!(form.contains("end=1700003600.000"), "{form}");
        assert!(form.contains("step=60"), "{form}");
        let query = form
            .split('&')
            .find_map(|kv| kv.strip_prefix("query="))
            .unwrap();
        assert_eq!(form_decode(query), q.expr, "{form}");
    }

    /// `application/x-www-form-urlencoded` value decoding: `+` is a space, `%XX` a byte.
    fn form_decode(s: &str) -> String {
        let mut out = Vec::new();
        let mut bytes = s.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap());
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn runner_reports_an_error_answer() {
        let (url, count, _) =
            fixed_json_server(r#"{"status":"error","errorType":"bad_data","error":"boom"}"#);
        let q = Query {
            name: "t",
            expr: "x".into(),
            shape: Shape::Instant,
        };
        let m = measure(&agent(), &url, &q, 0, 3);
        assert!(m.error.as_deref().unwrap_or("").contains("boom"), "{m:?}");
        // No timed runs after a failed warm-up.
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(m.median_ms.is_nan());
    }
}
