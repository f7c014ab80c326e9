//! `/-/healthy` (the process answers) and `/-/ready` (WAL replay is done).

use hyper::{Response, StatusCode};

use crate::http::{ApiError, Body, text};
use crate::server::Ctx;

pub fn healthy() -> Result<Response<Body>, ApiError> {
    Ok(text(StatusCode::OK, HEALTHY))
}

pub fn ready(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let (status, body) = ready_answer(ctx);
    Ok(text(status, body))
}

const HEALTHY: &str = "tsdb is Healthy.\n";

fn ready_answer(ctx: &Ctx) -> (StatusCode, &'static str) {
    if ctx.ready() {
        (StatusCode::OK, "tsdb is Ready.\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: WAL replay in progress.\n",
        )
    }
}

/// The answer to a probe path, for a connection the server otherwise refuses (over
/// `server.max_connections`): a liveness probe failing because of client load would
/// get a healthy server restarted.
pub(crate) fn probe(ctx: &Ctx, path: &str) -> Option<(StatusCode, &'static str)> {
    match path {
        "/-/healthy" => Some((StatusCode::OK, HEALTHY)),
        "/-/ready" => Some(ready_answer(ctx)),
        _ => None,
    }
}
