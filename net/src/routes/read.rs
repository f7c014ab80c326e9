//! `POST /api/v1/read`: Prometheus remote read, as Prometheus 2.42's `read_handler.go`
//! answers it. Raw samples as stored, stale markers included: the reading
//! Prometheus evaluates them itself.
//!
//! Errors are plain text with Prometheus' status codes (400 for a request it cannot
//! decode or a sample limit hit), since clients read remote read errors as text.
//!
//! The streamed answer is built whole and then sent (the server's bodies are not
//! streamed), so it is bounded like the other: at most `max_samples` samples per
//! query, where Prometheus bounds only the `SAMPLES` answer.

use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tsdb_engine::head::SeriesData;

use super::read_body;
use crate::http::{ApiError, Body, raw};
use crate::server::Ctx;
use crate::wire::remote_read::{
    self, FRAME_BYTES_MAX, Query, ReadResponse, ResponseType, SAMPLES_CONTENT_TYPE,
    STREAMED_CONTENT_TYPE,
};

pub async fn remote_read(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    read(ctx, req).await.map_err(ApiError::plain_text)
}

async fn read(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = read_body(ctx, req).await?;
    let request = remote_read::decode_request(&body, ctx.limits.decoded_body_bytes_max)?;
    drop(body);
    match remote_read::negotiate(&request.accepted_response_types)? {
        ResponseType::Samples => {
            let mut results = Vec::with_capacity(request.queries.len());
            for query in &request.queries {
                let series = select(ctx, query).await?;
                results.push(remote_read::query_result(&series));
            }
            let body = remote_read::encode_response(&ReadResponse { results })?;
            let mut resp = raw(StatusCode::OK, SAMPLES_CONTENT_TYPE, body);
            resp.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            Ok(resp)
        }
        ResponseType::StreamedXorChunks => {
            let mut out = Vec::new();
            for (i, query) in request.queries.iter().enumerate() {
                let series = select(ctx, query).await?;
                for s in &series {
                    remote_read::push_series_frames(&mut out, i as i64, s, FRAME_BYTES_MAX);
                }
            }
            Ok(raw(StatusCode::OK, STREAMED_CONTENT_TYPE, out))
        }
    }
}

/// The series of one query, without those that have no sample in its range (as
/// Prometheus' block querier leaves them out), refused past the sample limit.
async fn select(ctx: &Ctx, query: &Query) -> Result<Vec<SeriesData>, ApiError> {
    let matchers = remote_read::matchers(query)?;
    super::check_regex_matchers(ctx, std::slice::from_ref(&matchers))?;
    // Prometheus' index intersects nothing for an empty matcher list: no series.
    if matchers.is_empty() {
        return Ok(Vec::new());
    }
    let mut series = ctx
        .mesh
        .select(&matchers, query.start_timestamp_ms, query.end_timestamp_ms)
        .await?;
    series.retain(|s| !s.samples.is_empty());
    check_sample_limit(&series, ctx.query.max_samples)?;
    Ok(series)
}

/// Prometheus' `--storage.remote.read-sample-limit` check, with its words and status.
fn check_sample_limit(series: &[SeriesData], samples_max: usize) -> Result<(), ApiError> {
    let samples: usize = series.iter().map(|s| s.samples.len()).sum();
    if samples > samples_max {
        return Err(ApiError {
            limit: Some("remote_read_samples"),
            ..ApiError::bad_data(format!("exceeded sample limit ({samples_max})"))
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb_engine::model::{Label, Labels, Sample};

    #[test]
    fn the_sample_limit_counts_a_whole_query() {
        let s = |n: i64| SeriesData {
            labels: Labels::new(vec![Label::new("__name__", "x")]).unwrap(),
            samples: (0..n).map(|i| Sample::new(i, 1.0)).collect(),
        };
        let series = vec![s(3), s(2)];
        assert!(check_sample_limit(&series, 5).is_ok());
        let err = check_sample_limit(&series, 4).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.message.as_str()),
            (400, "exceeded sample limit (4)")
        );
    }
}
