//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query` and
//! `/api/v1/query_exemplars`.
//!
//! Parameters are checked as Prometheus 2.42's `web/api/v1/api.go` checks them: in its
//! order, with its words and its error classes, so a client sees the same answer to the
//! same mistake. Then the evaluator runs and the result is rendered as Prometheus
//! renders it ([`crate::render`]).

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use tsdb_engine::promql::{QueryError, QueryOptions, instant_query, range_query};

use super::{now_ms, params};
use crate::http::{ApiError, Body, no_content, success_json};
use crate::params::{
    MAX_TIME_MS, MIN_TIME_MS, Params, parse_duration_ns, required_time_param, time_param,
};
use crate::render;
use crate::server::Ctx;

/// Points one range query may return per series; Prometheus' fixed bound (60 s
/// resolution for a week, 1 h for a year).
pub const RANGE_POINTS_MAX: i128 = 11_000;

/// What the Go parser says about an empty query; promql-parser words it differently,
/// and this is the parse error clients meet most (an empty query box).
const EMPTY_QUERY_ERROR: &str = "1:1: parse error: no expression found in input";

const NANOS_PER_MILLI: i64 = 1_000_000;

/// A checked `/api/v1/query`.
#[derive(Debug)]
struct InstantQuery {
    query: String,
    time_ms: i64,
    opts: QueryOptions,
}

/// A checked `/api/v1/query_range`.
#[derive(Debug)]
struct RangeQuery {
    query: String,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: QueryOptions,
}

pub async fn instant(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let q = parse_instant(&p, now_ms(), &ctx.query)?;
    let value = instant_query(&ctx.mesh, &q.query, q.time_ms, &q.opts)
        .await
        .map_err(|e| match e {
            // Prometheus reports what `NewInstantQuery` refuses (the parse) as a bad
            // `query` parameter; errors of the evaluation itself keep their class.
            QueryError::BadData(m) => {
                QueryError::BadData(format!("invalid parameter \"query\": {m}"))
            }
            e => e,
        })?;
    Ok(success_json(&render::query_data(&value), &[]))
}

pub async fn range(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let q = parse_range(&p, &ctx.query)?;
    // Unlike the instant query, Prometheus reports a range query's parse error bare.
    let value = range_query(
        &ctx.mesh, &q.query, q.start_ms, q.end_ms, q.step_ms, &q.opts,
    )
    .await?;
    Ok(success_json(&render::query_data(&value), &[]))
}

pub async fn format(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let expr = parse_expr(&p)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    Ok(success_json(&render::string(&expr.prettify()), &[]))
}

/// tsdb stores no exemplars, so a valid request gets what Prometheus answers with
/// exemplar storage off: `[]`, or no content for a query without a selector.
pub async fn exemplars(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let p = params(ctx, req).await?;
    let start = time_param(&p, "start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = time_param(&p, "end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let expr = parse_expr(&p).map_err(ApiError::bad_data)?;
    if !has_selector(&expr) {
        return Ok(no_content());
    }
    Ok(success_json("[]", &[]))
}

fn parse_instant(p: &Params, now_ms: i64, base: &QueryOptions) -> Result<InstantQuery, ApiError> {
    let time_ms = time_param(p, "time", now_ms).map_err(ApiError::bad_data)?;
    let opts = query_options(p, base)?;
    let query = p.get("query").unwrap_or_default();
    if query.trim().is_empty() {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"query\": {EMPTY_QUERY_ERROR}"
        )));
    }
    Ok(InstantQuery {
        query: query.to_string(),
        time_ms,
        opts,
    })
}

fn parse_range(p: &Params, base: &QueryOptions) -> Result<RangeQuery, ApiError> {
    let start_ms = required_time_param(p, "start").map_err(ApiError::bad_data)?;
    let end_ms = required_time_param(p, "end").map_err(ApiError::bad_data)?;
    if end_ms < start_ms {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step_ns = parse_duration_ns(p.get("step").unwrap_or_default())
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if step_ns <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Go divides durations in nanoseconds, and `end.Sub(start)` saturates at the
    // largest duration; i128 keeps the product from overflowing on the way.
    let span_ns = (i128::from(end_ms) - i128::from(start_ms)) * i128::from(NANOS_PER_MILLI);
    let span_ns = span_ns.min(i128::from(i64::MAX));
    if span_ns / i128::from(step_ns) > RANGE_POINTS_MAX {
        return Err(ApiError {
            limit: Some("query_range_points"),
            ..ApiError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            )
        });
    }
    let opts = query_options(p, base)?;
    let query = p.get("query").unwrap_or_default();
    if query.trim().is_empty() {
        return Err(ApiError::bad_data(EMPTY_QUERY_ERROR));
    }
    // Prometheus evaluates in whole milliseconds, truncating the step. A step under
    // 1 ms passed the check above only for a span under 11 ms; 1 ms serves it
    // (Prometheus would divide by zero there).
    let step_ms = (step_ns / NANOS_PER_MILLI).max(1);
    Ok(RangeQuery {
        query: query.to_string(),
        start_ms,
        end_ms,
        step_ms,
        opts,
    })
}

/// The server's query options, with the request's `timeout` if it is shorter.
fn query_options(p: &Params, base: &QueryOptions) -> Result<QueryOptions, ApiError> {
    let mut opts = base.clone();
    if let Some(s) = p.get("timeout") {
        let ns = parse_duration_ns(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?;
        // A negative timeout has already expired, as Go's context would have.
        let requested = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
        opts.timeout = opts.timeout.min(requested);
    }
    Ok(opts)
}

/// Parses the `query` parameter, reporting an empty one as the Go parser does.
fn parse_expr(p: &Params) -> Result<Expr, String> {
    let query = p.get("query").unwrap_or_default();
    if query.trim().is_empty() {
        return Err(EMPTY_QUERY_ERROR.into());
    }
    tsdb_engine::promql::parse(query)
}

/// Whether `expr` selects any series (Prometheus' `parser.ExtractSelectors` is
/// not empty).
fn has_selector(expr: &Expr) -> bool {
    struct Finder(bool);
    impl ExprVisitor for Finder {
        type Error = std::convert::Infallible;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, Self::Error> {
            if matches!(e, Expr::VectorSelector(_) | Expr::MatrixSelector(_)) {
                self.0 = true;
            }
            Ok(!self.0)
        }
    }
    let mut f = Finder(false);
    let _ = walk_expr(&mut f, expr);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Params {
        Params::parse(Some(q), None)
    }

    fn range_err(q: &str) -> (u16, String) {
        let e = parse_range(&p(q), &QueryOptions::default()).unwrap_err();
        (e.status.as_u16(), e.message)
    }

    #[test]
    fn instant_queries_default_to_now_and_shorten_the_timeout() {
        let q = parse_instant(&p("query=up"), 42, &QueryOptions::default()).unwrap();
        assert_eq!((q.query.as_str(), q.time_ms), ("up", 42));
        assert_eq!(q.opts.timeout, QueryOptions::default().timeout);
        let q = parse_instant(
            &p("query=up&time=1.5&timeout=2s"),
            0,
            &QueryOptions::default(),
        )
        .unwrap();
        assert_eq!((q.time_ms, q.opts.timeout), (1500, Duration::from_secs(2)));
        let q = parse_instant(&p("query=up&timeout=1h"), 0, &QueryOptions::default()).unwrap();
        assert_eq!(q.opts.timeout, QueryOptions::default().timeout);
    }

    #[test]
    fn instant_query_errors_read_as_prometheus() {
        let err = |q: &str| {
            parse_instant(&p(q), 0, &QueryOptions::default())
                .unwrap_err()
                .message
        };
        assert_eq!(
            err(""),
            r#"invalid parameter "query": 1:1: parse error: no expression found in input"#
        );
        assert_eq!(
            err("query=up&time=x"),
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "x" to a valid timestamp"#
        );
        assert_eq!(
            err("query=up&timeout=x"),
            r#"invalid parameter "timeout": cannot parse "x" to a valid duration"#
        );
    }

    #[test]
    fn range_steps_parse_as_seconds_or_durations() {
        let q = parse_range(
            &p("query=up&start=0&end=60&step=15s"),
            &QueryOptions::default(),
        )
        .unwrap();
        assert_eq!((q.start_ms, q.end_ms, q.step_ms), (0, 60_000, 15_000));
        let q = parse_range(
            &p("query=up&start=0&end=60&step=1.5"),
            &QueryOptions::default(),
        )
        .unwrap();
        assert_eq!(q.step_ms, 1_500);
        let q = parse_range(
            &p("query=up&start=0&end=60&step=1m30s"),
            &QueryOptions::default(),
        )
        .unwrap();
        assert_eq!(q.step_ms, 90_000);
        // Exactly 11,000 steps is still allowed.
        assert!(
            parse_range(
                &p("query=up&start=0&end=11000&step=1"),
                &QueryOptions::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn range_query_errors_read_as_prometheus() {
        assert_eq!(
            range_err("query=up&end=1&step=1"),
            (
                400,
                r#"invalid parameter "start": cannot parse "" to a valid timestamp"#.into()
            )
        );
        assert_eq!(
            range_err("query=up&start=2&end=1&step=1"),
            (
                400,
                r#"invalid parameter "end": end timestamp must not be before start time"#.into()
            )
        );
        assert_eq!(
            range_err("query=up&start=1&end=2"),
            (
                400,
                r#"invalid parameter "step": cannot parse "" to a valid duration"#.into()
            )
        );
        for step in ["0", "-1", "0s"] {
            assert_eq!(
                range_err(&format!("query=up&start=1&end=2&step={step}")),
                (400, r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#.into()),
                "{step}"
            );
        }
        assert_eq!(
            range_err("query=up&start=0&end=11001&step=1"),
            (400, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into())
        );
        assert_eq!(
            range_err("start=0&end=1&step=1"),
            (400, EMPTY_QUERY_ERROR.into())
        );
    }

    #[test]
    fn selectors_are_found_anywhere() {
        let has = |q: &str| has_selector(&tsdb_engine::promql::parse(q).unwrap());
        assert!(has("up"));
        assert!(has("rate(x[5m])"));
        assert!(has("1 + sum(x)"));
        assert!(!has("1 + 1"));
        assert!(!has("time()"));
    }
}
