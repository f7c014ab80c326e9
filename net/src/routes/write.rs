//! `POST /api/v1/write`: Prometheus remote_write 1.0.

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{appended, charge_more, read_body};
use crate::http::{ApiError, Body};
use crate::server::Ctx;
use crate::wire::remote_write;

pub async fn remote_write(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let mut body = read_body(ctx, req).await?;
    // The snappy header states the decoded size; within the decoder's limit, it is
    // charged to the core's budget before anything is decompressed.
    if let Some(n) = remote_write::decoded_len(&body)
        && n <= ctx.limits.decoded_body_bytes_max
    {
        charge_more(ctx, &mut body, n)?;
    }
    let batch = remote_write::decode(&body, &ctx.limits)?;
    let outcome = ctx.mesh.append_batch(batch).await?;
    appended(ctx, outcome)
}
