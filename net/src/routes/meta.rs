//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` and
//! `/api/v1/metadata`.
//!
//! The first three take `limit` as later Prometheus versions do (2.42 has none): the
//! answer is cut to `limit` entries with the warning "results truncated due to limit"
//! when there were more; 0 or none means no limit.

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value};

use super::params;
use crate::http::{ApiError, Body, success, success_json};
use crate::params::{MAX_TIME_MS, MIN_TIME_MS, limit_param, matcher_sets, time_param};
use crate::render;
use crate::server::Ctx;

/// Prometheus' warning for an answer cut by `limit`.
const TRUNCATED_WARNING: &str = "results truncated due to limit";

pub async fn series(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let limit = limit_param(&p).map_err(ApiError::bad_data)?;
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    super::check_regex_matchers(ctx, &sets)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let mut series = ctx.mesh.series(&sets, start, end).await?;
    let warnings = truncate(&mut series, limit);
    let data: Vec<Value> = series
        .iter()
        .map(|l| {
            let m: Map<String, Value> = l
                .iter()
                .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                .collect();
            Value::Object(m)
        })
        .collect();
    Ok(success_json(
        &render::json_value(&Value::Array(data)),
        &warnings,
    ))
}

pub async fn labels(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let limit = limit_param(&p).map_err(ApiError::bad_data)?;
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    super::check_regex_matchers(ctx, &sets)?;
    let mut names = ctx.mesh.label_names(&sets, start, end).await?;
    let warnings = truncate(&mut names, limit);
    Ok(success_json(
        &render::json_value(&Value::from(names)),
        &warnings,
    ))
}

pub async fn label_values(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let name = path
        .strip_prefix("/api/v1/label/")
        .and_then(|p| p.strip_suffix("/values"))
        .unwrap_or_default();
    let name: String = form_urlencoded::parse(format!("n={name}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !tsdb_engine::model::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let p = params(ctx, req).await?;
    let limit = limit_param(&p).map_err(ApiError::bad_data)?;
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    super::check_regex_matchers(ctx, &sets)?;
    let mut values = ctx.mesh.label_values(&name, &sets, start, end).await?;
    let warnings = truncate(&mut values, limit);
    Ok(success_json(
        &render::json_value(&Value::from(values)),
        &warnings,
    ))
}

/// tsdb keeps no metric metadata yet, so this is Prometheus' answer when it has none:
/// `{}`, after checking `limit` as 2.42 does.
pub async fn metadata(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    if let Some(s) = p.get("limit")
        && s.parse::<i64>().is_err()
    {
        return Err(ApiError::bad_data("limit must be a number"));
    }
    Ok(success(Value::Object(Map::new())))
}

/// Cuts `items` to `limit` (0: no limit) and returns the warnings to send.
fn truncate<T>(items: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        vec![TRUNCATED_WARNING.to_string()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_warns_only_when_something_was_cut() {
        let mut v = vec![1, 2, 3];
        assert!(truncate(&mut v, 0).is_empty());
        assert!(truncate(&mut v, 3).is_empty());
        assert_eq!(truncate(&mut v, 2), [TRUNCATED_WARNING]);
        assert_eq!(v, [1, 2]);
    }
}
