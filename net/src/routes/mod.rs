//! Routing: method and path to handler. Every handler has one shape:
//! parse the request → ask the engine → render the answer.

mod admin;
mod export;
mod health;
mod import;
mod influx;
mod meta;
mod query;
mod read;
mod status;
mod write;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::http::{ApiError, Body};
use crate::params::Params;
use crate::server::Ctx;

/// Dispatches a request to its handler.
pub async fn route(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let get_or_post = method == Method::GET || method == Method::POST;
    match path.as_str() {
        "/-/healthy" => health::healthy(),
        "/-/ready" => health::ready(ctx),
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
        "/api/v1/admin/flush" if method == Method::POST => admin::flush(ctx).await,
        "/api/v1/admin/compact" if method == Method::POST => admin::compact(ctx).await,
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
        | "/api/v1/admin/flush"
        | "/api/v1/admin/compact" => Err(method_not_allowed(&method, &path)),
        p if is_label_values(p) => Err(method_not_allowed(&method, &path)),
        _ => Err(ApiError::not_found(&path)),
    }
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

/// Reads the whole body, refusing more than `max_body_bytes` (413) and a client that
/// sends it slower than the read timeout allows (408).
pub(crate) async fn read_body(ctx: &Ctx, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let mut body = req.into_body();
    let read = async {
        let mut buf = bytes::BytesMut::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad_data(format!("reading request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= ctx.max_body_bytes {
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
                limit: Some("body_size"),
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
        Ok(buf.freeze())
    };
    match monoio::time::timeout(ctx.read_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "bad_data",
            format!(
                "request body not received within {:?} (server.read_timeout)",
                ctx.read_timeout
            ),
        )),
    }
}

/// The request's parameters: query string, plus the body for form-encoded POSTs.
pub(crate) async fn params(ctx: &Ctx, req: Request<Incoming>) -> Result<Params, ApiError> {
    let query = req.uri().query().map(str::to_string);
    let is_form = req.method() == Method::POST
        && req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let body = read_body(ctx, req).await?;
        Ok(Params::parse(query.as_deref(), Some(&body)))
    } else {
        Ok(Params::parse(query.as_deref(), None))
    }
}

/// The current wall-clock time in milliseconds, for samples sent without a timestamp.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
