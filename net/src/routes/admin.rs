//! Admin routes: `/api/v1/admin/flush` (persist the head into blocks now, like
//! VictoriaMetrics' force_flush) and `/api/v1/admin/compact`.

use hyper::Response;

use crate::http::{ApiError, Body, no_content};
use crate::server::Ctx;

pub async fn flush(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    tracing::info!(operation = "flush", "admin: flushing every shard's head");
    ctx.mesh.flush().await?;
    Ok(no_content())
}

pub async fn compact(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    tracing::info!(operation = "compact", "admin: compacting every shard");
    ctx.mesh.compact().await?;
    Ok(no_content())
}
