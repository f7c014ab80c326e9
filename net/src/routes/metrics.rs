//! The metrics route (`metrics.path`, `/metrics` by default): Prometheus text
//! exposition format 0.0.4, or OpenMetrics 1.0 to a scraper that asks for it with
//! `Accept: application/openmetrics-text`.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::http::{ApiError, Body, raw};
use crate::server::Ctx;

/// The exposition's `Content-Type`, as Prometheus' client libraries send it.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics' `Content-Type`.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(ctx: &Ctx, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let openmetrics = req
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    // While the shards replay their WAL they do not answer; the per-shard families
    // are left out until they do, so a scrape never waits on a replay.
    let shards = if ctx.ready() {
        ctx.mesh.status().await?
    } else {
        Vec::new()
    };
    let text = ctx.metrics.render(&shards);
    Ok(if openmetrics {
        raw(
            StatusCode::OK,
            OPENMETRICS_CONTENT_TYPE,
            crate::metrics::to_openmetrics(&text),
        )
    } else {
        raw(StatusCode::OK, CONTENT_TYPE, text)
    })
}
