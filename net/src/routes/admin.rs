//! Admin routes: `/api/v1/admin/flush` (persist the head into blocks now, like
//! VictoriaMetrics' force_flush), `/api/v1/admin/compact`, and `/api/v1/admin/readonly`
//! and `/writable` (the operator's switch, which `/writable` also uses to resume
//! shards stopped by a full disk).

use hyper::{Response, StatusCode};
use tsdb_engine::Error as EngineError;

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

/// Every shard refuses writes (503, cause `operator`) until `/writable`; reads go on.
/// Not persisted: a restart starts writable.
pub async fn readonly(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    tracing::info!(
        operation = "readonly",
        "admin: setting every shard read-only"
    );
    ctx.mesh.set_read_only().await?;
    Ok(no_content())
}

/// Clears the operator's switch and resumes shards stopped by a full disk. A shard
/// whose fault needs a restart (a failed fsync, an I/O error) stays read-only and the
/// answer is 409 saying so; a disk still full is 507.
pub async fn writable(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    tracing::info!(
        operation = "writable",
        "admin: setting every shard writable"
    );
    match ctx.mesh.set_writable().await {
        Ok(()) => Ok(no_content()),
        Err(e @ EngineError::ReadOnly { cause, .. }) if !cause.resumable() => Err(ApiError {
            read_only: Some(cause),
            ..ApiError::new(StatusCode::CONFLICT, "unavailable", e.to_string())
        }),
        Err(e) => Err(e.into()),
    }
}
