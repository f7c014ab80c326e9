//! Response building and the one mapping from errors to HTTP status codes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use tsdb_engine::Error as EngineError;

use crate::wire::WireError;

pub type Body = Full<Bytes>;

/// A failed request, in Prometheus' error vocabulary.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Prometheus' `errorType`: `bad_data`, `execution`, `unavailable`, `internal`, …
    pub kind: &'static str,
    pub message: String,
    /// The configured limit that was hit, if one was (for `tsdb_limit_hits_total`).
    pub limit: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            limit: None,
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_data", message)
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        )
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::BadData(m) => ApiError::bad_data(m),
            WireError::Limit { limit, message } => ApiError {
                limit: Some(limit),
                ..ApiError::bad_data(message)
            },
        }
    }
}

impl From<EngineError> for ApiError {
    /// The one place engine errors become HTTP statuses.
    fn from(e: EngineError) -> Self {
        if e.is_no_space() {
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "unavailable",
                e.to_string(),
            );
        }
        match e {
            EngineError::BadRequest(m) => ApiError::bad_data(m),
            EngineError::ReadOnly { .. } | EngineError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            EngineError::Io { .. }
            | EngineError::Corrupt { .. }
            | EngineError::ChecksumMismatch { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

fn with_body(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// `{"status":"error","errorType":…,"error":…}` with the error's status.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let body = serde_json::json!({
        "status": "error",
        "errorType": e.kind,
        "error": e.message,
    });
    let mut resp = with_body(e.status, "application/json", body.to_string());
    // The body of a request refused for its size or slowness was not read to its end,
    // so the connection cannot carry another request: say so, so clients don't reuse it.
    if matches!(
        e.status,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) {
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// `{"status":"success","data":…}`.
pub fn success(data: serde_json::Value) -> Response<Body> {
    let body = serde_json::json!({ "status": "success", "data": data });
    with_body(StatusCode::OK, "application/json", body.to_string())
}

pub fn no_content() -> Response<Body> {
    with_body(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_body(status, "text/plain; charset=utf-8", body)
}

pub fn raw(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    with_body(status, content_type, body)
}
