//! `POST /api/v1/import` (JSON lines) and `POST /api/v1/import/prometheus` (text
//! exposition).

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{now_ms, read_body};
use crate::http::{ApiError, Body, no_content};
use crate::server::Ctx;
use crate::wire::{exposition, json_lines};

pub async fn json_lines(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = read_body(ctx, req).await?;
    let batch = json_lines::parse(&body, &ctx.limits)?;
    ctx.mesh.append(batch).await?;
    Ok(no_content())
}

pub async fn exposition(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = read_body(ctx, req).await?;
    let batch = exposition::parse(&body, now_ms(), &ctx.limits)?;
    ctx.mesh.append(batch).await?;
    Ok(no_content())
}
