//! Admin routes: `/api/v1/admin/flush` (persist the head into blocks now, like
//! VictoriaMetrics' force_flush), `/api/v1/admin/compact`, `/api/v1/admin/readonly`
//! and `/writable` (the operator's switch, which `/writable` also uses to resume
//! shards stopped by a full disk; `?persist=true` makes it survive a restart),
//! `/api/v1/admin/retention` (a live retention change),
//! `/api/v1/admin/snapshot`, `/api/v1/admin/tsdb/delete_series` and
//! `/api/v1/admin/tsdb/clean_tombstones` (Prometheus' routes and answers).
//!
//! Every action logs one line, in [`logged`]: `operation`, what it was asked, and its
//! result.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tsdb_engine::Error as EngineError;

use crate::http::{ApiError, Body, no_content, success_json};
use crate::params::Params;
use crate::render::{object, rfc3339_ms, string};
use crate::routes::{now_ms, read_body};
use crate::server::Ctx;

/// Logs the one line of an admin action and hands its result back.
fn logged<T>(
    operation: &'static str,
    what: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match &result {
        Ok(_) => tracing::info!(operation, what, result = "ok", "admin action"),
        Err(e) => tracing::info!(
            operation,
            what,
            result = "error",
            status = e.status.as_u16(),
            error = %e.message,
            "admin action"
        ),
    }
    result
}

pub async fn flush(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let result = ctx.mesh.flush().await.map_err(ApiError::from);
    logged("flush", "flush every shard's head", result).map(|()| no_content())
}

pub async fn compact(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let result = ctx.mesh.compact().await.map_err(ApiError::from);
    logged("compact", "compact every shard", result).map(|()| no_content())
}

/// A boolean parameter as Go's `strconv.ParseBool` reads it (Prometheus' parsing of
/// `skip_head`); `default` when absent.
fn bool_param(params: &Params, key: &str, default: bool) -> Result<bool, ApiError> {
    match params.get(key) {
        None => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_data(format!(
            "cannot parse {key}={other:?}: expected true or false"
        ))),
    }
}

/// Every shard refuses writes (503, cause `operator`) until `/writable`; reads go on.
/// Without `persist=true` a restart starts writable; with it, shard 0 writes the
/// `<data-dir>/READONLY` marker (durably, before the answer) and every start honours it
/// until `/writable` removes it. `reason=` is kept in the marker.
pub async fn readonly(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let params = super::params(ctx, req).await?;
    let parsed = bool_param(&params, "persist", false);
    let persist = *parsed.as_ref().unwrap_or(&false);
    let reason = params.get("reason").unwrap_or("").to_string();
    let what = if persist {
        "set every shard read-only, persisted"
    } else {
        "set every shard read-only"
    };
    let result = match parsed {
        Err(e) => Err(e),
        Ok(_) => {
            let marker = persist.then(|| {
                object(&[
                    ("by", string("POST /api/v1/admin/readonly?persist=true")),
                    ("time", string(&rfc3339_ms(now_ms()))),
                    ("reason", string(&reason)),
                ])
            });
            ctx.mesh.set_read_only(marker).await.map_err(ApiError::from)
        }
    };
    logged("readonly", what, result).map(|()| no_content())
}

/// Clears the operator's switch (and its persisted marker) and resumes shards stopped
/// by a full disk. A shard whose fault needs a restart (a failed fsync, an I/O error)
/// stays read-only and the answer is 409 saying so; a disk still full is 507.
pub async fn writable(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let result = match ctx.mesh.set_writable().await {
        Ok(()) => Ok(no_content()),
        Err(e @ EngineError::ReadOnly { cause, .. }) if !cause.resumable() => Err(ApiError {
            read_only: Some(cause),
            ..ApiError::new(StatusCode::CONFLICT, "unavailable", e.to_string())
        }),
        Err(e) => Err(e.into()),
    };
    logged("writable", "set every shard writable", result)
}

/// `POST /api/v1/admin/retention` with `{"retention":"60d"}` (or `retention=60d` in
/// the query string or a form body): every shard uses the new retention at once and
/// runs a retention pass now. Not persisted: a restart goes back to the configured
/// value.
pub async fn retention(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let info = &ctx.info.retention;
    let previous = info.current();
    let mut what = String::from("set retention");
    let result = async {
        let value = retention_value(ctx, req).await?;
        what = format!("set retention to {value}");
        let new = info
            .parse(&value)
            .map_err(|e| ApiError::bad_data(format!("invalid retention {value:?}: {e}")))?;
        if new < Duration::from_millis(1) {
            return Err(ApiError::bad_data(
                "invalid retention: it must be above 0 (a retention of 0 would delete every block)",
            ));
        }
        let old = info.swap(new);
        let ms = i64::try_from(new.as_millis()).unwrap_or(i64::MAX);
        ctx.mesh.set_retention(ms).await?;
        Ok((info.format(new), info.format(old)))
    }
    .await;
    let (new, old) = logged("retention", &format!("{what} (was {previous})"), result)?;
    let data = object(&[("retention", string(&new)), ("previous", string(&old))]);
    Ok(success_json(&data, &[]))
}

/// The `retention` of the query string, a form body or a JSON body.
async fn retention_value(ctx: &Ctx, req: Request<Incoming>) -> Result<String, ApiError> {
    let query = req.uri().query().map(str::to_string);
    let is_form = super::is_form_post(&req);
    let body = read_body(ctx, req).await?;
    let params = Params::parse(query.as_deref(), is_form.then_some(&body[..]));
    if let Some(v) = params.get("retention") {
        return Ok(v.to_string());
    }
    // `curl -d '{"retention":"60d"}'` labels its JSON as a form: a body that opens
    // an object is JSON whatever its content type says.
    let json_like = body.trim_ascii_start().first() == Some(&b'{');
    if json_like || (!is_form && !body.iter().all(u8::is_ascii_whitespace)) {
        #[derive(serde::Deserialize)]
        struct RetentionBody {
            retention: Option<String>,
        }
        let parsed: RetentionBody = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_data(format!(
                "the body is not JSON like {{\"retention\":\"60d\"}}: {e}"
            ))
        })?;
        if let Some(v) = parsed.retention.filter(|v| !v.is_empty()) {
            return Ok(v);
        }
    }
    Err(ApiError::bad_data(
        "missing retention: send {\"retention\":\"60d\"} or retention=60d",
    ))
}

/// `POST /api/v1/admin/snapshot?skip_head=false`: hard links of every live block (after
/// flushing every head, unless `skip_head=true`) under
/// `<data-dir>/snapshots/<name>/`, answered as Prometheus answers:
/// `{"status":"success","data":{"name":"20261123T164000Z-2be650b6d019eb54"}}`.
pub async fn snapshot(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let params = super::params(ctx, req).await?;
    let name = snapshot_name(now_ms());
    let mut what = format!("snapshot {name}");
    let result = async {
        let skip_head = bool_param(&params, "skip_head", false)?;
        if skip_head {
            what.push_str(" (skip_head)");
        }
        let blocks = ctx.mesh.snapshot(&name, skip_head).await?;
        what.push_str(&format!(": {blocks} blocks"));
        Ok(())
    }
    .await;
    logged("snapshot", &what, result)?;
    Ok(success_json(&object(&[("name", string(&name))]), &[]))
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…` → 204, as
/// Prometheus: the matched series' samples in `[start, end]` (default: all time) are
/// gone from every read at once, durably; their bytes go at `clean_tombstones`.
pub async fn delete_series(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let params = super::params(ctx, req).await?;
    let selectors = params.all("match[]").join(" ");
    let mut what = format!("delete series {selectors}");
    let result = async {
        if params.all("match[]").is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let sets = crate::params::matcher_sets(&params).map_err(ApiError::bad_data)?;
        super::check_regex_matchers(ctx, &sets)?;
        let start = crate::params::time_param(&params, "start", crate::params::MIN_TIME_MS)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?;
        let end = crate::params::time_param(&params, "end", crate::params::MAX_TIME_MS)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?;
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        what.push_str(&format!(" from {start} to {end}"));
        ctx.mesh.delete_series(&sets, start, end).await?;
        Ok(())
    }
    .await;
    logged("delete_series", &what, result).map(|()| no_content())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones` → 204: every block holding deleted
/// data is rewritten without it (the head is flushed first), then the tombstones go.
pub async fn clean_tombstones(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let result = ctx.mesh.clean_tombstones().await.map_err(ApiError::from);
    let what = match &result {
        Ok(n) => format!("clean tombstones: {n} blocks rewritten"),
        Err(_) => "clean tombstones".to_string(),
    };
    logged("clean_tombstones", &what, result).map(|_| no_content())
}

/// Prometheus' snapshot name: the UTC time to the second, then 16 random hex digits.
fn snapshot_name(now_ms: i64) -> String {
    let time: String = rfc3339_ms(now_ms.div_euclid(1000) * 1000)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    // A randomly keyed hasher (std's, keyed from the OS at first use) over the time.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms);
    format!("{time}-{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_prometheus_shaped_and_differ() {
        // 2026-11-23T16:40:00.123Z
        let t = 1_795_452_000_123;
        let a = snapshot_name(t);
        let b = snapshot_name(t);
        assert!(a.starts_with("20261123T164000Z-"), "{a}");
        assert_eq!(a.len(), "20261123T164000Z-".len() + 16, "{a}");
        assert!(tsdb_engine::shard::valid_snapshot_name(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn booleans_parse_as_go_parses_them() {
        let p = Params::parse(Some("a=true&b=0&c=yes"), None);
        assert!(bool_param(&p, "a", false).unwrap());
        assert!(!bool_param(&p, "b", true).unwrap());
        assert!(bool_param(&p, "c", false).is_err());
        assert!(bool_param(&p, "missing", true).unwrap());
    }
}
