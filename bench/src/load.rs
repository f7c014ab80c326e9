//! The load loop: sends the generated samples in time order over N keep-alive
//! connections and measures what the server accepted and how fast.
//!
//! Request `i` carries step `i / chunks` of chunk `i % chunks` (a chunk is a fixed run
//! of `samples_per_request` consecutive series), so requests are numbered in time
//! order. Workers take the next number from a shared counter — a slow request on one
//! connection does not hold the others back — but a request waits until the previous
//! step of the same chunk has been answered. That keeps every series' samples in
//! timestamp order at the server, as Prometheus' remote-write shards do; without it
//! the server's out-of-order path would be measured instead of its normal append.
//!
//! Bodies are either all encoded before the clock starts (when they fit the memory
//! budget) or encoded by each worker just before it sends; the report says which, and
//! how fast the generator alone is, so that a result limited by the generator is seen.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::r#gen::{BodyEncoder, Cursor, Dataset, DatasetFacts, Protocol, Wire};

/// How many steps to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RunLength {
    /// This many samples per series.
    Points(u64),
    /// As many steps as fit in this much wall-clock time (requests already taken when
    /// it ends are still sent).
    Duration(Duration),
}

/// When the bodies are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Before timing if the estimated size fits `--pre-encode-max-mb`, else live.
    Auto,
    /// All bodies before timing.
    Pre,
    /// Each worker encodes a body just before sending it.
    Live,
}

#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080`; a query string (`?db=x`)
    /// is appended to the protocol's write path.
    pub url: String,
    pub protocol: Protocol,
    pub series: usize,
    pub run: RunLength,
    pub interval_ms: i64,
    pub start_ms: i64,
    pub samples_per_request: usize,
    pub connections: usize,
    pub seed: u64,
    pub encoding: Encoding,
    pub pre_encode_max_bytes: u64,
    /// Encode only; nothing is sent. Measures the generator.
    pub dry_run: bool,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub url: String,
    pub protocol: Protocol,
    pub series: usize,
    /// Samples per series (planned with `--points`; sent with `--duration`).
    pub points: u64,
    pub duration_seconds: Option<f64>,
    pub interval_ms: i64,
    pub start_ms: i64,
    pub samples_per_request: usize,
    pub connections: usize,
    pub seed: u64,
    pub dry_run: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostFacts {
    pub nproc: usize,
    pub kernel: String,
    pub cpu_model: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct GeneratorFacts {
    /// `pre-encoded` or `live`.
    pub encoding: &'static str,
    /// Threads that encoded: the pre-encoding threads, or the workers.
    pub threads: usize,
    pub encoded_samples: u64,
    /// Seconds spent encoding, summed over the threads.
    pub encode_thread_seconds: f64,
    /// Encoding throughput of one thread.
    pub samples_per_second_per_thread: f64,
    /// Wall time of pre-encoding (0 when live).
    pub pre_encode_wall_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencyMs {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Witness {
    pub samples_accepted: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub params: Params,
    pub host: HostFacts,
    pub data: DatasetFacts,
    pub generator: GeneratorFacts,
    pub requests_planned: Option<u64>,
    pub samples_sent: u64,
    pub samples_accepted: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub first_error: Option<String>,
    pub body_bytes_sent: u64,
    pub wall_seconds: f64,
    pub accepted_samples_per_second: f64,
    pub requests_per_second: f64,
    pub latency_ms: LatencyMs,
    /// Requests that had to wait for the previous step of their chunk to be answered.
    pub order_waits: u64,
    pub witness: Witness,
}

impl Report {
    /// Whether the run counts as a failure (exit code 1).
    pub fn failed(&self) -> bool {
        self.requests_failed > 0
    }

    /// The human-readable form, for stderr.
    pub fn human(&self) -> String {
        let p = &self.params;
        let g = &self.generator;
        let l = &self.latency_ms;
        let length = match p.duration_seconds {
            Some(d) => format!("duration {d}s ({} points sent)", p.points),
            None => format!("points {}", p.points),
        };
        let mut s = format!(
            "tsdb-bench load{}\n\
             params     protocol {} url {} series {} {} interval {}ms start_ms {}\n\
             \x20          samples/request {} connections {} seed {}\n\
             host       nproc {} kernel {} cpu {}\n\
             data       {} hosts, {} metric names, {:.1} labels/series, {:.1} label bytes/series (names+values), {:.1} bytes as text\n\
             generator  {} on {} thread(s): {:.0} samples/s per thread ({} samples in {:.3} thread-s{})\n",
            if p.dry_run {
                " (dry run: encode only, nothing sent)"
            } else {
                ""
            },
            p.protocol.name(),
            p.url,
            p.series,
            length,
            p.interval_ms,
            p.start_ms,
            p.samples_per_request,
            p.connections,
            p.seed,
            self.host.nproc,
            self.host.kernel,
            self.host.cpu_model,
            self.data.hosts,
            self.data.metric_names,
            self.data.mean_labels_per_series,
            self.data.mean_label_bytes,
            self.data.mean_series_text_bytes,
            g.encoding,
            g.threads,
            g.samples_per_second_per_thread,
            g.encoded_samples,
            g.encode_thread_seconds,
            if g.pre_encode_wall_seconds > 0.0 {
                format!(", {:.3}s wall before timing", g.pre_encode_wall_seconds)
            } else {
                String::new()
            },
        );
        if p.dry_run {
            s += &format!(
                "result     {} samples encoded in {:.3}s wall = {:.0} samples/s over {} thread(s), {:.1} MB of bodies\n",
                self.samples_sent,
                self.wall_seconds,
                self.samples_sent as f64 / self.wall_seconds.max(1e-9),
                p.connections,
                self.body_bytes_sent as f64 / 1e6,
            );
            return s;
        }
        s += &format!(
            "requests   ok {} failed {}{}\n\
             samples    sent {} accepted {}\n\
             bodies     {:.1} MB sent, {:.1} KB/request\n\
             wall       {:.3}s\n\
             rate       {:.0} accepted samples/s, {:.1} requests/s\n\
             latency    p50 {:.2}ms p90 {:.2}ms p99 {:.2}ms max {:.2}ms (mean {:.2}ms, {} requests)\n\
             ordering   {} requests waited for their chunk's previous step\n\
             witness    samples_accepted={}\n",
            self.requests_ok,
            self.requests_failed,
            match &self.first_error {
                Some(e) => format!(" (first error: {e})"),
                None => String::new(),
            },
            self.samples_sent,
            self.samples_accepted,
            self.body_bytes_sent as f64 / 1e6,
            self.body_bytes_sent as f64
                / 1e3
                / (self.requests_ok + self.requests_failed).max(1) as f64,
            self.wall_seconds,
            self.accepted_samples_per_second,
            self.requests_per_second,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean,
            l.count,
            self.order_waits,
            self.samples_accepted,
        );
        s
    }
}

/// The machine a result was measured on, for the report.
pub fn host_facts() -> HostFacts {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    // /proc holds what `uname -r` prints, without spawning a process.
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    HostFacts {
        nproc,
        kernel,
        cpu_model,
    }
}

/// Per-chunk "steps answered", so that a chunk's step k is sent only after its step
/// k-1 was answered. A mutex and condvar suffice: a few thousand requests per second
/// at most, and a wait is the exception.
struct Gate {
    done: Mutex<Vec<u64>>,
    cv: Condvar,
}

impl Gate {
    fn new(chunks: usize) -> Gate {
        Gate {
            done: Mutex::new(vec![0; chunks]),
            cv: Condvar::new(),
        }
    }

    /// Blocks until steps 0..step of `chunk` are answered; true if it had to wait.
    fn wait_turn(&self, chunk: usize, step: u64) -> bool {
        // A poisoned lock means a worker panicked; the counts are still meaningful.
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let ready = |d: &Vec<u64>| d.get(chunk).is_none_or(|&n| n >= step);
        if ready(&done) {
            return false;
        }
        let _done = self
            .cv
            .wait_while(done, |d| !ready(d))
            .unwrap_or_else(PoisonError::into_inner);
        true
    }

    fn finish(&self, chunk: usize, step: u64) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = done.get_mut(chunk) {
            *n = step + 1;
        }
        drop(done);
        self.cv.notify_all();
    }
}

/// Where workers get their bodies.
enum Bodies {
    /// Indexed by request number.
    Pre(Vec<Vec<u8>>),
    /// One cursor per chunk; the gate guarantees a chunk's steps are encoded in order.
    Live(Vec<Mutex<Cursor>>),
}

struct WorkerStats {
    hist: Histogram<u64>,
    ok: u64,
    failed: u64,
    samples_sent: u64,
    samples_accepted: u64,
    bytes: u64,
    encode: Duration,
    encoded_samples: u64,
    order_waits: u64,
    steps_taken: u64,
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    // Microseconds, 1 µs to 1 h, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| format!("histogram: {e}"))
}

/// POSTs one body; Ok on 200/204, else the error text (status and the start of the
/// server's message, or the transport error).
fn send(agent: &ureq::Agent, url: &str, protocol: Protocol, body: &[u8]) -> Result<(), String> {
    let mut req = agent.post(url);
    for (name, value) in protocol.headers() {
        req = req.header(*name, *value);
    }
    match req.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            // Read the body to its end even on success, so the connection can be reused.
            let text = resp.body_mut().read_to_vec().unwrap_or_default();
            if status == 200 || status == 204 {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&text);
                let text: String = text.trim().chars().take(300).collect();
                Err(format!("HTTP {status}: {text}"))
            }
        }
        Err(e) => Err(format!("request failed: {e}")),
    }
}

/// Shared, read-only state of a run.
struct Plan<'a> {
    cfg: &'a LoadConfig,
    ds: &'a Dataset,
    wire: &'a Wire,
    chunks: &'a [Range<usize>],
    total: Option<u64>,
    deadline: Option<Instant>,
    url: String,
    bodies: &'a Bodies,
    next: AtomicU64,
    gate: Gate,
    first_error: Mutex<Option<String>>,
}

fn worker(plan: &Plan<'_>) -> Result<WorkerStats, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut enc = BodyEncoder::new();
    let mut st = WorkerStats {
        hist: new_histogram()?,
        ok: 0,
        failed: 0,
        samples_sent: 0,
        samples_accepted: 0,
        bytes: 0,
        encode: Duration::ZERO,
        encoded_samples: 0,
        order_waits: 0,
        steps_taken: 0,
    };
    let nchunks = plan.chunks.len() as u64;
    loop {
        // The deadline is checked before taking a number: every number taken is sent,
        // so no later request of the same chunk can wait forever for it.
        if plan.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if plan.total.is_some_and(|t| i >= t) {
            break;
        }
        let (step, chunk) = (i / nchunks, (i % nchunks) as usize);
        st.steps_taken = st.steps_taken.max(step + 1);
        if plan.gate.wait_turn(chunk, step) {
            st.order_waits += 1;
        }
        let samples = plan.chunks.get(chunk).map_or(0, |r| r.len()) as u64;
        let body: Result<&[u8], String> = match plan.bodies {
            Bodies::Pre(all) => all
                .get(i as usize)
                .map(Vec::as_slice)
                .ok_or_else(|| format!("BUG: no pre-encoded body {i}")),
            Bodies::Live(cursors) => match cursors.get(chunk) {
                None => Err(format!("BUG: no chunk {chunk}")),
                Some(c) => {
                    let t = Instant::now();
                    let mut cursor = c.lock().unwrap_or_else(PoisonError::into_inner);
                    while cursor.step() < step {
                        cursor.advance(plan.ds);
                    }
                    let body = enc.encode(plan.wire, plan.ds, &cursor);
                    drop(cursor);
                    st.encode += t.elapsed();
                    st.encoded_samples += samples;
                    body
                }
            },
        };
        let result = body.and_then(|body| {
            st.bytes += body.len() as u64;
            st.samples_sent += samples;
            if plan.cfg.dry_run {
                return Ok(());
            }
            let t = Instant::now();
            let r = send(&agent, &plan.url, plan.cfg.protocol, body);
            st.hist.saturating_record(t.elapsed().as_micros() as u64);
            r
        });
        plan.gate.finish(chunk, step);
        match result {
            Ok(()) => {
                st.ok += 1;
                if !plan.cfg.dry_run {
                    st.samples_accepted += samples;
                }
            }
            Err(e) => {
                st.failed += 1;
                let mut first = plan
                    .first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if first.is_none() {
                    *first = Some(e);
                }
            }
        }
    }
    Ok(st)
}

/// One pre-encoding thread's bodies, by request number, and its busy time.
type EncodedPart = (Vec<(usize, Vec<u8>)>, Duration);

/// Encodes every body before timing, chunks spread over `threads` threads (each
/// chunk's cursor walks its steps in order on one thread).
fn pre_encode(
    ds: &Dataset,
    wire: &Wire,
    chunks: &[Range<usize>],
    steps: u64,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Duration), String> {
    let nchunks = chunks.len();
    let results: Vec<Result<EncodedPart, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let start = Instant::now();
                    let mut enc = BodyEncoder::new();
                    let mut out = Vec::new();
                    for (c, range) in chunks.iter().enumerate().skip(t).step_by(threads) {
                        let mut cursor = ds.cursor(range.clone());
                        for step in 0..steps {
                            if step > 0 {
                                cursor.advance(ds);
                            }
                            let body = enc.encode(wire, ds, &cursor)?;
                            out.push((step as usize * nchunks + c, body.to_vec()));
                        }
                    }
                    Ok((out, start.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("pre-encoding thread panicked".into()))
            })
            .collect()
    });
    let mut bodies = vec![Vec::new(); nchunks * steps as usize];
    let mut busy = Duration::ZERO;
    for r in results {
        let (part, took) = r?;
        busy += took;
        for (i, body) in part {
            if let Some(slot) = bodies.get_mut(i) {
                *slot = body;
            }
        }
    }
    Ok((bodies, busy))
}

/// Runs the load and returns its report; Err only for a setup problem (nothing sent).
pub fn run(cfg: &LoadConfig) -> Result<Report, String> {
    if cfg.series == 0 || cfg.samples_per_request == 0 || cfg.connections == 0 {
        return Err("--series, --samples-per-request and --connections must be at least 1".into());
    }
    if cfg.interval_ms <= 0 {
        return Err("--interval must be at least 1ms".into());
    }
    let ds = Dataset::new(cfg.seed, cfg.series, cfg.start_ms, cfg.interval_ms);
    let wire = Wire::new(&ds, cfg.protocol);
    let chunks: Vec<Range<usize>> = (0..cfg.series)
        .step_by(cfg.samples_per_request)
        .map(|lo| lo..(lo + cfg.samples_per_request).min(cfg.series))
        .collect();
    let nchunks = chunks.len() as u64;
    let steps = match cfg.run {
        RunLength::Points(n) => Some(n),
        RunLength::Duration(_) => None,
    };
    let total = steps.map(|s| s * nchunks);

    // Pre-encode when asked, or when the whole run fits the budget: estimated from
    // step 0, which costs one step's encoding.
    let pre = match (cfg.encoding, steps) {
        (_, None) => false,
        _ if cfg.dry_run => false,
        (Encoding::Live, _) => false,
        (Encoding::Pre, _) => true,
        (Encoding::Auto, Some(steps)) => {
            let mut enc = BodyEncoder::new();
            let mut step0 = 0u64;
            for r in &chunks {
                step0 += enc.encode(&wire, &ds, &ds.cursor(r.clone()))?.len() as u64;
            }
            step0.saturating_mul(steps) <= cfg.pre_encode_max_bytes
        }
    };
    let host = host_facts();
    let (bodies, pre_wall, pre_busy, pre_threads) = match steps {
        Some(steps) if pre => {
            let threads = cfg.connections.min(host.nproc).max(1);
            let t = Instant::now();
            let (bodies, busy) = pre_encode(&ds, &wire, &chunks, steps, threads)?;
            (Bodies::Pre(bodies), t.elapsed(), busy, threads)
        }
        _ => (
            Bodies::Live(
                chunks
                    .iter()
                    .map(|r| Mutex::new(ds.cursor(r.clone())))
                    .collect(),
            ),
            Duration::ZERO,
            Duration::ZERO,
            0,
        ),
    };

    // A query string on the URL (InfluxDB's `?db=NAME`) goes after the protocol's path.
    let (base, extra_query) = cfg.url.split_once('?').unwrap_or((&cfg.url, ""));
    let base = base.trim_end_matches('/');
    let path = cfg.protocol.path();
    let url = match (extra_query, path.contains('?')) {
        ("", _) => format!("{base}{path}"),
        (q, true) => format!("{base}{path}&{q}"),
        (q, false) => format!("{base}{path}?{q}"),
    };
    // The clock starts here: dataset and pre-encoding above are not timed.
    let started = Instant::now();
    let plan = Plan {
        cfg,
        ds: &ds,
        wire: &wire,
        chunks: &chunks,
        total,
        deadline: match cfg.run {
            RunLength::Duration(d) => Some(started + d),
            RunLength::Points(_) => None,
        },
        url,
        bodies: &bodies,
        next: AtomicU64::new(0),
        gate: Gate::new(chunks.len()),
        first_error: Mutex::new(None),
    };
    let stats: Vec<Result<WorkerStats, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.connections)
            .map(|_| s.spawn(|| worker(&plan)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let wall = started.elapsed();

    let mut hist = new_histogram()?;
    let (mut ok, mut failed, mut sent, mut accepted, mut bytes, mut waits, mut steps_taken) =
        (0, 0, 0, 0, 0, 0, 0);
    let (mut encode, mut encoded) = (Duration::ZERO, 0u64);
    for st in stats {
        let st = st?;
        hist.add(&st.hist)
            .map_err(|e| format!("merging histograms: {e}"))?;
        ok += st.ok;
        failed += st.failed;
        sent += st.samples_sent;
        accepted += st.samples_accepted;
        bytes += st.bytes;
        waits += st.order_waits;
        steps_taken = steps_taken.max(st.steps_taken);
        encode += st.encode;
        encoded += st.encoded_samples;
    }
    let first_error = plan
        .first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);

    let (encoding, threads, encode_busy, encoded_samples) = if pre {
        let planned = cfg.series as u64 * steps.unwrap_or(0);
        ("pre-encoded", pre_threads, pre_busy, planned)
    } else {
        ("live", cfg.connections, encode, encoded)
    };
    let secs = wall.as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Report {
        tool: "tsdb-bench load",
        params: Params {
            url: cfg.url.clone(),
            protocol: cfg.protocol,
            series: cfg.series,
            points: steps.unwrap_or(steps_taken),
            duration_seconds: match cfg.run {
                RunLength::Duration(d) => Some(d.as_secs_f64()),
                RunLength::Points(_) => None,
            },
            interval_ms: cfg.interval_ms,
            start_ms: cfg.start_ms,
            samples_per_request: cfg.samples_per_request,
            connections: cfg.connections,
            seed: cfg.seed,
            dry_run: cfg.dry_run,
        },
        host,
        data: ds.facts(),
        generator: GeneratorFacts {
            encoding,
            threads,
            encoded_samples,
            encode_thread_seconds: encode_busy.as_secs_f64(),
            samples_per_second_per_thread: encoded_samples as f64
                / encode_busy.as_secs_f64().max(1e-9),
            pre_encode_wall_seconds: pre_wall.as_secs_f64(),
        },
        requests_planned: total,
        samples_sent: sent,
        samples_accepted: accepted,
        requests_ok: ok,
        requests_failed: failed,
        first_error,
        body_bytes_sent: bytes,
        wall_seconds: wall.as_secs_f64(),
        accepted_samples_per_second: accepted as f64 / secs,
        requests_per_second: (ok + failed) as f64 / secs,
        latency_ms: LatencyMs {
            count: hist.len(),
            p50: ms(hist.value_at_quantile(0.50)),
            p90: ms(hist.value_at_quantile(0.90)),
            p99: ms(hist.value_at_quantile(0.99)),
            max: ms(hist.max()),
            mean: hist.mean() / 1000.0,
        },
        order_waits: waits,
        witness: Witness {
            samples_accepted: accepted,
        },
    })
}

/// Reads one HTTP/1.1 request from a test server's connection: the request line and
/// headers up to the blank line, then `Content-Length` bytes of body. `None` when the
/// client closed the connection. Shared by the fake servers of the tests.
#[cfg(test)]
pub(crate) fn read_test_request(
    reader: &mut std::io::BufReader<std::net::TcpStream>,
) -> Option<Vec<u8>> {
    use std::io::{BufRead, Read};
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// A minimal HTTP/1.1 server answering 204 to every request, keeping connections
    /// alive; counts the requests and the samples in them (decoded with the server's
    /// own decoders, so a malformed body would show).
    fn fake_server(protocol: Protocol) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let (rq, sm) = (requests.clone(), samples.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (rq, sm) = (rq.clone(), sm.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let Some(body) = read_test_request(&mut reader) else {
                            return;
                        };
                        let limits = tsdb_net::wire::IngestLimits::default();
                        let batch = match protocol {
                            Protocol::RemoteWrite => {
                                tsdb_net::wire::remote_write::decode(&body, &limits)
                                    .unwrap()
                                    .to_series()
                            }
                            Protocol::Influx => tsdb_net::wire::line_protocol::parse(
                                &body,
                                tsdb_net::wire::line_protocol::Precision::Ms,
                                0,
                                &limits,
                            )
                            .unwrap(),
                        };
                        let n: usize = batch.iter().map(|s| s.samples.len()).sum();
                        sm.fetch_add(n, Ordering::SeqCst);
                        rq.fetch_add(1, Ordering::SeqCst);
                        conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                    }
                });
            }
        });
        (format!("http://{addr}"), requests, samples)
    }

    fn config(url: String, protocol: Protocol) -> LoadConfig {
        LoadConfig {
            url,
            protocol,
            series: 50,
            run: RunLength::Points(3),
            interval_ms: 10_000,
            start_ms: 1_700_000_000_000,
            samples_per_request: 20,
            connections: 2,
            seed: 1,
            encoding: Encoding::Auto,
            pre_encode_max_bytes: 1 << 30,
            dry_run: false,
        }
    }

    #[test]
    fn load_against_fake_server_counts_every_sample() {
        for (protocol, encoding) in [
            (Protocol::RemoteWrite, Encoding::Auto),
            (Protocol::RemoteWrite, Encoding::Live),
            (Protocol::Influx, Encoding::Pre),
        ] {
            let (url, requests, samples) = fake_server(protocol);
            let cfg = LoadConfig {
                encoding,
                ..config(url, protocol)
            };
            let report = run(&cfg).unwrap();
            // 50 series in chunks of 20 → 3 requests per step, 3 steps.
            assert_eq!(report.samples_accepted, 150, "{}", report.human());
            assert_eq!(report.witness.samples_accepted, 150);
            assert_eq!(report.samples_sent, 150);
            assert_eq!(report.requests_ok, 9);
            assert_eq!(report.requests_failed, 0);
            assert!(!report.failed());
            assert_eq!(report.latency_ms.count, 9);
            assert_eq!(requests.load(Ordering::SeqCst), 9);
            assert_eq!(samples.load(Ordering::SeqCst), 150);
            let expect = if encoding == Encoding::Live {
                "live"
            } else {
                "pre-encoded"
            };
            assert_eq!(report.generator.encoding, expect);
            // The JSON form carries the witness.
            let json = serde_json::to_value(&report).unwrap();
            assert_eq!(json["witness"]["samples_accepted"], 150);
        }
    }

    #[test]
    fn refused_connections_are_failures_with_a_first_error() {
        // Bind then drop: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let report = run(&config(
            format!("http://127.0.0.1:{port}"),
            Protocol::RemoteWrite,
        ))
        .unwrap();
        assert!(report.failed());
        assert_eq!(report.requests_failed, 9);
        assert_eq!(report.samples_accepted, 0);
        assert!(report.first_error.is_some(), "{}", report.human());
    }

    #[test]
    fn dry_run_encodes_everything_and_sends_nothing() {
        let cfg = LoadConfig {
            dry_run: true,
            ..config("http://127.0.0.1:9".into(), Protocol::RemoteWrite)
        };
        let report = run(&cfg).unwrap();
        assert_eq!(report.samples_sent, 150);
        assert_eq!(report.samples_accepted, 0);
        assert_eq!(report.generator.encoded_samples, 150);
        assert!(!report.failed());
    }

    #[test]
    fn duration_mode_stops() {
        let (url, _, samples) = fake_server(Protocol::RemoteWrite);
        let cfg = LoadConfig {
            run: RunLength::Duration(Duration::from_millis(300)),
            ..config(url, Protocol::RemoteWrite)
        };
        let report = run(&cfg).unwrap();
        assert!(report.samples_accepted > 0);
        assert_eq!(
            report.samples_accepted as usize,
            samples.load(Ordering::SeqCst)
        );
        assert!(report.wall_seconds < 5.0);
    }
}
