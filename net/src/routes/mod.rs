//! Routing: method and path to handler. Every handler has one shape:
//! parse the request → ask the engine → render the answer.

mod admin;
mod export;
mod health;
mod import;
mod influx;
mod meta;
mod metrics;
mod pprof;
mod query;
mod read;
mod status;
mod write;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tsdb_engine::mesh::AppendOutcome;

use crate::http::{ApiError, Body, no_content};
use crate::limits::{Charge, Limit};
use crate::params::Params;
use crate::server::Ctx;
use crate::wire::gzip;

pub(crate) use health::probe;

/// Dispatches a request to its handler.
pub async fn route(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let get_or_post = method == Method::GET || method == Method::POST;
    match path.as_str() {
        "/-/healthy" => health::healthy(),
        "/-/ready" => health::ready(ctx),
        p if ctx.metrics_path.as_deref() == Some(p) => match method {
            Method::GET => metrics::metrics(ctx, &req).await,
            _ => Err(method_not_allowed(&method, &path)),
        },
        // Before the readiness check: a slow start can be profiled.
        "/debug/pprof" | "/debug/pprof/" if method == Method::GET => pprof::index(ctx),
        "/debug/pprof/profile" if method == Method::GET => pprof::profile(ctx, &req).await,
        "/debug/pprof/heap" if method == Method::GET => pprof::heap(ctx).await,
        _ if !ctx.ready() => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "tsdb is starting: WAL replay is in progress",
        )),
        "/api/v1/write" if method == Method::POST => write::remote_write(ctx, req).await,
        "/write" | "/api/v2/write" if method == Method::POST => influx::write(ctx, req).await,
        "/api/v1/import" if method == Method::POST => import::json_lines(ctx, req).await,
        "/api/v1/import/prometheus" if method == Method::POST => import::exposition(ctx, req).await,
        "/api/v1/export" if get_or_post => export::export(ctx, req).await,
        "/api/v1/query" if get_or_post => query::instant(ctx, req).await,
        "/api/v1/query_range" if get_or_post => query::range(ctx, req).await,
        "/api/v1/format_query" if get_or_post => query::format(ctx, req).await,
        "/api/v1/query_exemplars" if get_or_post => query::exemplars(ctx, req).await,
        "/api/v1/read" if method == Method::POST => read::remote_read(ctx, req).await,
        "/api/v1/series" if get_or_post => meta::series(ctx, req).await,
        "/api/v1/labels" if get_or_post => meta::labels(ctx, req).await,
        // GET only: Prometheus (2.42 and since) registers no POST for it.
        p if is_label_values(p) && method == Method::GET => meta::label_values(ctx, req).await,
        "/api/v1/metadata" if method == Method::GET => meta::metadata(ctx, req).await,
        "/api/v1/status/buildinfo" if method == Method::GET => status::buildinfo(),
        "/api/v1/status/runtimeinfo" if method == Method::GET => status::runtimeinfo(ctx),
        "/api/v1/status/flags" if method == Method::GET => status::flags(ctx),
        "/api/v1/status/config" if method == Method::GET => status::config(ctx),
        "/api/v1/status/tsdb" if method == Method::GET => status::tsdb(ctx).await,
        "/api/v1/admin/flush" if method == Method::POST => admin::flush(ctx).await,
        "/api/v1/admin/compact" if method == Method::POST => admin::compact(ctx).await,
        "/api/v1/admin/readonly" if method == Method::POST => admin::readonly(ctx, req).await,
        "/api/v1/admin/retention" if method == Method::POST => admin::retention(ctx, req).await,
        "/api/v1/admin/snapshot" if method == Method::POST || method == Method::PUT => {
            admin::snapshot(ctx, req).await
        }
        "/api/v1/admin/writable" if method == Method::POST => admin::writable(ctx).await,
        "/debug/pprof/goroutine" if method == Method::GET => pprof::goroutine(ctx).await,
        "/debug/pprof/trace" if method == Method::GET => pprof::trace(ctx, &req).await,
        "/api/v1/admin/tsdb/delete_series" | "/api/v1/admin/delete_series"
            if method == Method::POST || method == Method::PUT =>
        {
            admin::delete_series(ctx, req).await
        }
        "/api/v1/admin/tsdb/clean_tombstones" | "/api/v1/admin/clean_tombstones"
            if method == Method::POST || method == Method::PUT =>
        {
            admin::clean_tombstones(ctx).await
        }
        "/api/v1/write"
        | "/write"
        | "/api/v2/write"
        | "/api/v1/import"
        | "/api/v1/import/prometheus"
        | "/api/v1/export"
        | "/api/v1/series"
        | "/api/v1/labels"
        | "/api/v1/query"
        | "/api/v1/query_range"
        | "/api/v1/format_query"
        | "/api/v1/query_exemplars"
        | "/api/v1/read"
        | "/api/v1/metadata"
        | "/api/v1/status/buildinfo"
        | "/api/v1/status/runtimeinfo"
        | "/api/v1/status/flags"
        | "/api/v1/status/config"
        | "/api/v1/status/tsdb"
        | "/api/v1/admin/flush"
        | "/api/v1/admin/compact"
        | "/api/v1/admin/readonly"
        | "/api/v1/admin/writable"
        | "/debug/pprof"
        | "/debug/pprof/"
        | "/debug/pprof/profile"
        | "/debug/pprof/heap"
        | "/debug/pprof/goroutine"
        | "/debug/pprof/trace"
        | "/api/v1/admin/retention"
        | "/api/v1/admin/snapshot"
        | "/api/v1/admin/tsdb/delete_series"
        | "/api/v1/admin/delete_series"
        | "/api/v1/admin/tsdb/clean_tombstones"
        | "/api/v1/admin/clean_tombstones" => Err(method_not_allowed(&method, &path)),
        p if is_label_values(p) => Err(method_not_allowed(&method, &path)),
        _ => Err(ApiError::not_found(&path)),
    }
}

/// Whether a path is a write route, for `tsdb_insert_errors_total`.
pub fn is_ingest(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/write"
            | "/write"
            | "/api/v2/write"
            | "/api/v1/import"
            | "/api/v1/import/prometheus"
    )
}

fn is_label_values(path: &str) -> bool {
    path.starts_with("/api/v1/label/") && path.ends_with("/values")
}

fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "bad_data",
        format!("method {method} is not allowed on {path}"),
    )
}

/// Bytes of an oversized body read and thrown away before answering 413, so a client
/// still sending gets the answer instead of a broken pipe; past this, the connection
/// is simply closed.
const OVERSIZED_BODY_DRAIN_BYTES_MAX: usize = 16 << 20;

/// A request body held in memory, charged to this core's budget of body bytes until
/// the request is answered.
#[derive(Debug)]
pub(crate) struct Payload<'a> {
    pub bytes: Bytes,
    pub charge: Charge<'a>,
}

impl std::ops::Deref for Payload<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads the whole body, refusing more than `max_body_bytes` (413), a client that sends
/// it slower than the read timeout allows (408), and a body this core has no room for
/// in its budget of bytes in flight (503 with `Retry-After`).
///
/// A refused body is still read to its end (up to a bound) and thrown away, so the
/// client, still sending, gets the answer instead of a reset connection.
pub(crate) async fn read_body(ctx: &Ctx, req: Request<Incoming>) -> Result<Payload<'_>, ApiError> {
    let mut charge = ctx.charge();
    // A declared length is charged whole up front: a body admitted is a body that fits,
    // and one that cannot fit is refused before it takes any memory.
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n <= ctx.max_body_bytes);
    let mut shed = declared.is_some_and(|n| !charge.try_add(n));
    let mut body = req.into_body();
    let read = async {
        let mut buf = bytes::BytesMut::with_capacity(if shed { 0 } else { declared.unwrap_or(0) });
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad_data(format!("reading request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= ctx.max_body_bytes && !shed {
                // Without a declared length, each frame is charged as it arrives.
                if seen > charge.bytes() as usize && !charge.try_add(seen - charge.bytes() as usize)
                {
                    shed = true;
                    buf = bytes::BytesMut::new();
                    charge.release();
                    continue;
                }
                buf.extend_from_slice(&data);
            } else if seen
                > ctx
                    .max_body_bytes
                    .saturating_add(OVERSIZED_BODY_DRAIN_BYTES_MAX)
            {
                break;
            }
        }
        if seen > ctx.max_body_bytes {
            return Err(ApiError {
                limit: Some(Limit::BodySize.as_str()),
                ..ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad_data",
                    format!(
                        "request body is larger than the limit of {} bytes (limits.max_body_size)",
                        ctx.max_body_bytes
                    ),
                )
            });
        }
        if shed {
            return Err(shed_bytes(ctx));
        }
        Ok(buf.freeze())
    };
    match monoio::time::timeout(ctx.read_timeout, read).await {
        Ok(r) => r.map(|bytes| Payload { bytes, charge }),
        Err(_) => Err(ApiError {
            limit: Some(Limit::BodyReadTimeout.as_str()),
            ..ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "bad_data",
                format!(
                    "request body not received within {:?} (server.read_timeout)",
                    ctx.read_timeout
                ),
            )
        }),
    }
}

/// The 503 of a body this core has no room for.
fn shed_bytes(ctx: &Ctx) -> ApiError {
    ApiError::shed(
        Limit::InflightBytes,
        format!(
            "this core holds its budget of {} request body bytes in flight (limits.max_inflight_body_size); retry later",
            ctx.inflight_body_bytes_max
        ),
    )
}

/// Charges `bytes` more to a request's payload, or refuses it with 503.
pub(crate) fn charge_more(
    ctx: &Ctx,
    payload: &mut Payload<'_>,
    bytes: usize,
) -> Result<(), ApiError> {
    if payload.charge.try_add(bytes) {
        Ok(())
    } else {
        Err(shed_bytes(ctx))
    }
}

/// The body of a text ingest route, decompressed when the client sent
/// `Content-Encoding: gzip` (bounded by the decoded limit: 413 past it), and charged
/// to the core's budget of bytes in flight.
pub(crate) async fn ingest_body(
    ctx: &Ctx,
    req: Request<Incoming>,
) -> Result<Payload<'_>, ApiError> {
    let encoding = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut payload = read_body(ctx, req).await?;
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(payload),
        Some("gzip" | "x-gzip") => {
            // The decoded size is found (and charged) before the decoded bytes are kept.
            let len = gzip::decoded_len(&payload, ctx.limits.decoded_body_bytes_max)?;
            charge_more(ctx, &mut payload, len)?;
            payload.bytes = Bytes::from(gzip::decode(&payload, len)?);
            Ok(payload)
        }
        Some(other) => Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..ApiError::bad_data(format!(
                "unsupported Content-Encoding {other:?}: send the body as is or gzip-compressed"
            ))
        }),
    }
}

/// The answer to a write that reached the shards: 204, or 429 when new series were
/// refused for the head series bound (the samples of existing series were written).
pub(crate) fn appended(ctx: &Ctx, outcome: AppendOutcome) -> Result<Response<Body>, ApiError> {
    ctx.core_metrics().samples_ingested(outcome.samples);
    if outcome.series_refused == 0 {
        return Ok(no_content());
    }
    Err(ApiError {
        limit: Some(Limit::SeriesCardinality.as_str()),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "bad_data",
            format!(
                "{} new series dropped: the head already holds the limit of {} series (limits.max_series); samples of existing series were written",
                outcome.series_refused, ctx.series_max
            ),
        )
    })
}

/// Whether a request is a POST with a form-encoded body.
pub(crate) fn is_form_post(req: &Request<Incoming>) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The request's parameters: query string, plus the body for form-encoded POSTs.
pub(crate) async fn params(ctx: &Ctx, req: Request<Incoming>) -> Result<Params, ApiError> {
    let query = req.uri().query().map(str::to_string);
    let is_form = is_form_post(&req);
    if is_form {
        let body = read_body(ctx, req).await?;
        Ok(Params::parse(query.as_deref(), Some(&body)))
    } else {
        Ok(Params::parse(query.as_deref(), None))
    }
}

/// Refuses `match[]` sets holding more regex matchers together than
/// `query.max_regex_matchers` (400, counted as `regex_matchers`), as a query is.
pub(crate) fn check_regex_matchers(
    ctx: &Ctx,
    sets: &[Vec<tsdb_engine::model::Matcher>],
) -> Result<(), ApiError> {
    let found: usize = sets
        .iter()
        .map(|s| tsdb_engine::model::regex_matchers(s))
        .sum();
    let limit = ctx.query.max_regex_matchers;
    if found > limit {
        return Err(ApiError {
            limit: Some(Limit::RegexMatchers.as_str()),
            ..ApiError::bad_data(format!(
                "match[] holds {found} regex matchers, more than the limit of {limit} (query.max_regex_matchers)"
            ))
        });
    }
    Ok(())
}

/// The current wall-clock time in milliseconds, for samples sent without a timestamp.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
