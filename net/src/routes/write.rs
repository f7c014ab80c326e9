//! `POST /api/v1/write`: Prometheus remote_write 1.0.

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::read_body;
use crate::http::{ApiError, Body, no_content};
use crate::server::Ctx;
use crate::wire::remote_write;

pub async fn remote_write(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = read_body(ctx, req).await?;
    let batch = remote_write::decode(&body, &ctx.limits)?;
    ctx.mesh.append(batch).await?;
    Ok(no_content())
}
