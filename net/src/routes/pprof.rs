//! `/debug/pprof/*`, the Go profiling routes: the index, `profile` (CPU, pprof
//! protobuf), `heap` (pprof protobuf), `goroutine` (a text dump of every shard's tasks
//! and queues) and `trace` (Chrome trace-event JSON of what the shards did).
//!
//! Each kind runs one at a time (409 otherwise). CPU and heap profiles run on a thread
//! of their own; the trace only opens and closes a window on every shard through the
//! mesh and awaits a timer in between.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tsdb_engine::limits::TRACE_EVENTS_PER_SHARD_MAX;
use tsdb_engine::mesh::ShardDump;
use tsdb_engine::trace::ShardTrace;

use crate::http::{ApiError, Body, raw, text};
use crate::params::Params;
use crate::pprof::{Kind, Profilers};
use crate::server::Ctx;

/// Bounds and defaults of `seconds`, as Go's `net/http/pprof` defaults them.
const PROFILE_SECONDS: (u64, u64, u64) = (30, 1, 300);
const TRACE_SECONDS: (u64, u64, u64) = (1, 1, 60);

/// How long after its window a trace stops recording on its own (a client gone
/// mid-window never sends the stop).
const TRACE_DEADLINE_SLACK: Duration = Duration::from_secs(5);

pub fn index(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let mut out = String::from("/debug/pprof/\n\nProfiles:\n");
    out.push_str(
        "  profile?seconds=N  CPU profile of every thread, pprof protobuf (gzip); N 1..300, default 30\n",
    );
    if ctx.pprof.heap.is_some() {
        out.push_str("  heap               live allocations (sampled), pprof protobuf (gzip)\n");
    }
    out.push_str(
        "  goroutine?debug=1  text: every shard's tasks, queues and state (debug=0 is the same text)\n",
    );
    out.push_str(
        "  trace?seconds=N    Chrome trace-event JSON of what each shard did; N 1..60, default 1\n",
    );
    out.push_str(
        "\nRead them with `go tool pprof URL` or `pprof URL`; load traces in ui.perfetto.dev.\n",
    );
    Ok(text(StatusCode::OK, out))
}

/// `seconds` of a request: `default` when absent, 400 outside `min..=max`.
fn seconds(req: &Request<Incoming>, (default, min, max): (u64, u64, u64)) -> Result<u64, ApiError> {
    let params = Params::parse(req.uri().query(), None);
    let Some(v) = params.get("seconds") else {
        return Ok(default);
    };
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_data(format!(
            "invalid seconds {v:?}: want a whole number from {min} to {max}"
        ))),
    }
}

fn busy(kind: Kind) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "unavailable",
        format!(
            "a {} is already running; only one runs at a time",
            kind.as_str()
        ),
    )
}

fn pprof_response(bytes: Vec<u8>, name: &str) -> Response<Body> {
    let mut resp = raw(StatusCode::OK, "application/octet-stream", bytes);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        resp.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    resp
}

pub async fn profile(ctx: &Ctx, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let secs = seconds(req, PROFILE_SECONDS)?;
    if ctx.pprof.cpu.is_none() {
        return Err(unavailable("CPU profiling"));
    }
    let running = ctx.pprof.begin(Kind::Cpu).ok_or_else(|| busy(Kind::Cpu))?;
    tracing::info!(
        operation = "pprof_profile",
        seconds = secs,
        "CPU profile started"
    );
    let bytes = Profilers::spawn(running, move |p| match &p.cpu {
        Some(cpu) => cpu(Duration::from_secs(secs)),
        None => Err("CPU profiling is not available".into()),
    })
    .await
    .map_err(internal)?;
    Ok(pprof_response(bytes, "profile"))
}

pub async fn heap(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    if ctx.pprof.heap.is_none() {
        return Err(unavailable("heap profiling"));
    }
    let running = ctx
        .pprof
        .begin(Kind::Heap)
        .ok_or_else(|| busy(Kind::Heap))?;
    let bytes = Profilers::spawn(running, |p| match &p.heap {
        Some(heap) => heap(),
        None => Err("heap profiling is not available".into()),
    })
    .await
    .map_err(internal)?;
    Ok(pprof_response(bytes, "heap"))
}

/// A profile this process cannot take: 404, as Go answers a profile it does not
/// have (a 5xx would be logged as a server fault; this is how the process was
/// started).
fn unavailable(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("{what} is off in this process"),
    )
}

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Every core's tasks and every shard's state, gathered through the mesh.
pub async fn goroutine(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let dumps = ctx.mesh.dump().await?;
    Ok(text(StatusCode::OK, render_tasks(ctx, &dumps)))
}

fn render_tasks(ctx: &Ctx, dumps: &[ShardDump]) -> String {
    let cores = dumps.len();
    let connections: u64 = (0..cores)
        .map(|c| ctx.metrics.core(c).connections.load(Ordering::Relaxed))
        .sum();
    let shard_tasks: u64 = dumps.iter().map(|d| d.status.tasks).sum();
    let total = connections + cores as u64 + shard_tasks;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tsdb: {total} tasks on {cores} cores (tsdb_goroutines counts the same: open connections, one accept loop per core, each shard's event loop and tickers)\n"
    );
    for (core, d) in dumps.iter().enumerate() {
        let m = ctx.metrics.core(core);
        let conns = m.connections.load(Ordering::Relaxed);
        let inflight = m.inflight_requests.load(Ordering::Relaxed);
        let writes = m.inflight_writes.load(Ordering::Relaxed);
        let s = &d.status;
        let cpu = d.cpu.map_or("unknown".to_string(), |c| c.to_string());
        let _ = writeln!(out, "shard {}: thread {}, cpu {cpu}", s.shard, d.thread);
        let _ = writeln!(out, "  tasks: {}", 1 + conns + s.tasks);
        let _ = writeln!(out, "    1 accept loop");
        let _ = writeln!(out, "    {conns} HTTP connections");
        for t in &d.tasks {
            let _ = writeln!(out, "    1 {t}");
        }
        let _ = writeln!(
            out,
            "  requests in flight on this core: {inflight} ({writes} writes, {} reads and others), body bytes held: {}",
            inflight.saturating_sub(writes),
            m.inflight_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "  mesh inbox: {} requests waiting (bound {})",
            d.inbox_depth, d.inbox_capacity
        );
        let _ = writeln!(
            out,
            "  head: {} series, {} samples, {} chunks, {} bytes",
            s.head_series, s.head_samples, s.head_chunks, s.head_bytes
        );
        let _ = writeln!(out, "  blocks: {} ({} bytes)", s.blocks, s.block_bytes);
        match d.wal_segment {
            Some(seq) => {
                let _ = writeln!(out, "  wal: segment {seq:08}, {} bytes", s.wal_bytes);
            }
            None => {
                let _ = writeln!(out, "  wal: disabled");
            }
        }
        let _ = writeln!(
            out,
            "  totals: {} samples appended, {} flushes, {} compactions",
            s.samples_appended, s.flushes, s.compactions
        );
        match (&s.read_only_cause, &s.read_only) {
            (Some(cause), Some(msg)) => {
                let _ = writeln!(out, "  state: read-only ({}): {msg}", cause.as_str());
            }
            _ => {
                let _ = writeln!(out, "  state: writable");
            }
        }
        out.push('\n');
    }
    out
}

/// Opens a trace window on every shard, waits it out, and renders what they recorded.
pub async fn trace(ctx: &Ctx, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let secs = seconds(req, TRACE_SECONDS)?;
    let _running = ctx
        .pprof
        .begin(Kind::Trace)
        .ok_or_else(|| busy(Kind::Trace))?;
    let window = Duration::from_secs(secs);
    tracing::info!(operation = "pprof_trace", seconds = secs, "trace started");
    ctx.mesh.trace_start(window + TRACE_DEADLINE_SLACK).await?;
    monoio::time::sleep(window).await;
    let traces = ctx.mesh.trace_stop().await?;
    let body = render_trace(secs, &traces);
    Ok(raw(StatusCode::OK, "application/json", body.to_string()))
}

fn render_trace(secs: u64, traces: &[ShardTrace]) -> Value {
    let pid = std::process::id();
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
        "args": {"name": "tsdb"},
    })];
    let mut shards = Vec::new();
    for t in traces {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": t.shard,
            "args": {"name": format!("shard {}", t.shard)},
        }));
        for e in &t.events {
            let args: serde_json::Map<String, Value> = e
                .args
                .iter()
                .filter(|(k, _)| !k.is_empty())
                .map(|&(k, v)| (k.to_string(), json!(v)))
                .collect();
            events.push(json!({
                "name": e.name, "cat": "shard", "ph": "X",
                "ts": e.start_us, "dur": e.dur_us,
                "pid": pid, "tid": t.shard, "args": args,
            }));
        }
        shards.push(json!({
            "shard": t.shard,
            "events": t.events.len(),
            "dropped": t.dropped,
            "truncated": t.dropped > 0,
        }));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": {
            "seconds": secs,
            "clock": "microseconds since each shard received the start of the trace",
            "events_per_shard_max": TRACE_EVENTS_PER_SHARD_MAX,
            "shards": shards,
        },
    })
}
