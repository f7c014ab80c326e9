//! `POST /api/v1/import` (JSON lines) and `POST /api/v1/import/prometheus` (text
//! exposition), each plain or gzip-compressed.

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{appended, ingest_body, now_ms};
use crate::http::{ApiError, Body};
use crate::server::Ctx;
use crate::wire::{exposition, json_lines};

pub async fn json_lines(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = ingest_body(ctx, req).await?;
    let batch = json_lines::parse(&body, &ctx.limits)?;
    let outcome = ctx.mesh.append(batch).await?;
    appended(ctx, outcome)
}

pub async fn exposition(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = ingest_body(ctx, req).await?;
    let batch = exposition::parse(&body, now_ms(), &ctx.limits)?;
    let outcome = ctx.mesh.append(batch).await?;
    appended(ctx, outcome)
}
