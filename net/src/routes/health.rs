//! `/-/healthy` (the process answers) and `/-/ready` (WAL replay is done).

use hyper::{Response, StatusCode};

use crate::http::{ApiError, Body, text};
use crate::server::Ctx;

pub fn healthy() -> Result<Response<Body>, ApiError> {
    Ok(text(StatusCode::OK, "tsdb is Healthy.\n"))
}

pub fn ready(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    if ctx.ready() {
        Ok(text(StatusCode::OK, "tsdb is Ready.\n"))
    } else {
        Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: WAL replay in progress.\n",
        ))
    }
}
