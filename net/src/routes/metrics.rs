//! The metrics route (`metrics.path`, `/metrics` by default): Prometheus text
//! exposition format 0.0.4.

use hyper::{Response, StatusCode};

use crate::http::{ApiError, Body, raw};
use crate::server::Ctx;

/// The exposition's `Content-Type`, as Prometheus' client libraries send it.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    // While the shards replay their WAL they do not answer; the per-shard families
    // are left out until they do, so a scrape never waits on a replay.
    let shards = if ctx.ready() {
        ctx.mesh.status().await?
    } else {
        Vec::new()
    };
    Ok(raw(
        StatusCode::OK,
        CONTENT_TYPE,
        ctx.metrics.render(&shards),
    ))
}
