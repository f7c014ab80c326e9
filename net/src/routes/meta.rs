//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<name>/values`.

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value};

use super::params;
use crate::http::{ApiError, Body, success};
use crate::params::{MAX_TIME_MS, MIN_TIME_MS, matcher_sets, time_param};
use crate::server::Ctx;

pub async fn series(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let series = ctx.mesh.series(&sets, start, end).await?;
    let data: Vec<Value> = series
        .iter()
        .map(|l| {
            let m: Map<String, Value> = l
                .iter()
                .map(|l| (l.name.clone(), Value::String(l.value.clone())))
                .collect();
            Value::Object(m)
        })
        .collect();
    Ok(success(Value::Array(data)))
}

pub async fn labels(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let names = ctx.mesh.label_names(&sets, start, end).await?;
    Ok(success(Value::from(names)))
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
    let sets = matcher_sets(&p).map_err(ApiError::bad_data)?;
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    let values = ctx.mesh.label_values(&name, &sets, start, end).await?;
    Ok(success(Value::from(values)))
}
