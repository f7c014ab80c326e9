//! `GET|POST /api/v1/export`: series and samples as JSON lines, the import format, so
//! anything written can be read back and imported elsewhere.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tsdb_engine::model::Matcher;

use super::params;
use crate::http::{ApiError, Body, raw};
use crate::params::{MAX_TIME_MS, MIN_TIME_MS, matcher_sets, time_param};
use crate::server::Ctx;
use crate::wire::json_lines;

pub async fn export(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let mut sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    super::check_regex_matchers(ctx, &sets)?;
    if sets.is_empty() {
        // VictoriaMetrics exports everything when no match[] is given.
        sets.push(vec![
            Matcher::new("__name__", "=~", ".+").map_err(|e| ApiError::bad_data(e.to_string()))?,
        ]);
    }
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let mut merged = Vec::new();
    for set in &sets {
        merged.extend(ctx.mesh.select(set, start, end).await?);
    }
    let series = tsdb_engine::mesh::merge_series(merged);
    let mut out = Vec::new();
    for s in &series {
        json_lines::write_series(&mut out, &s.labels, &s.samples);
    }
    Ok(raw(StatusCode::OK, "application/stream+json", out))
}
