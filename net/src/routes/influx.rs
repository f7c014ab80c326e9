//! `POST /write` and `POST /api/v2/write`: InfluxDB line protocol with `precision=`,
//! plain or gzip-compressed.

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{appended, ingest_body, now_ms};
use crate::http::{ApiError, Body};
use crate::params::Params;
use crate::server::Ctx;
use crate::wire::line_protocol::{self, Precision};

pub async fn write(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let params = Params::parse(req.uri().query(), None);
    let precision = match params.get("precision") {
        None => Precision::Ns,
        Some(p) => Precision::parse(p).ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid precision {p:?}: use ns, us, ms, s, m or h"
            ))
        })?,
    };
    let body = ingest_body(ctx, req).await?;
    let batch = line_protocol::parse(&body, precision, now_ms(), &ctx.limits)?;
    let outcome = ctx.mesh.append(batch).await?;
    appended(ctx, outcome)
}
