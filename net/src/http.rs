//! Response building and the one mapping from errors to HTTP status codes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use tsdb_engine::promql::QueryError;
use tsdb_engine::{Error as EngineError, ReadOnlyCause};

use crate::limits::{Limit, SHED_RETRY_AFTER_SECONDS};
use crate::metrics::InsertError;
use crate::render;
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
    /// Why the shard refused the write, when a read-only shard did. The shard logged
    /// the cause once when it turned read-only, so the refusals are not logged again.
    pub read_only: Option<ReadOnlyCause>,
    /// Answer with the bare message as plain text, as Go's `http.Error` does on
    /// Prometheus' protobuf endpoints (remote read), instead of the JSON error shape.
    pub plain_text: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            limit: None,
            read_only: None,
            plain_text: false,
        }
    }

    /// The same error, answered as plain text.
    pub fn plain_text(self) -> Self {
        ApiError {
            plain_text: true,
            ..self
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_data", message)
    }

    /// A request refused to shed load (503 with `Retry-After`).
    pub fn shed(limit: Limit, message: impl Into<String>) -> Self {
        ApiError {
            limit: Some(limit.as_str()),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// What a refused write counts as in `tsdb_insert_errors_total`.
    pub fn insert_error(&self) -> InsertError {
        if self.limit.is_some() {
            InsertError::Limit
        } else if self.status == StatusCode::INSUFFICIENT_STORAGE {
            InsertError::DiskFull
        } else if self.read_only.is_some() {
            InsertError::ReadOnly
        } else if self.status.is_client_error() {
            InsertError::BadData
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            InsertError::Unavailable
        } else {
            InsertError::Internal
        }
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
            // A body too large, before or after decompression, is 413 as the HTTP
            // spec words it; the other limits are about the content: 400.
            WireError::Limit { limit, message }
                if limit == Limit::DecodedBodySize.as_str()
                    || limit == Limit::BodySize.as_str() =>
            {
                ApiError {
                    limit: Some(limit),
                    ..ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "bad_data", message)
                }
            }
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
            // A full disk is 507 (Insufficient Storage): the client should retry later,
            // and the operator free space; every other read-only cause is 503.
            EngineError::ReadOnly { cause, .. } => {
                let status = if cause == ReadOnlyCause::DiskFull {
                    StatusCode::INSUFFICIENT_STORAGE
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                ApiError {
                    read_only: Some(cause),
                    ..ApiError::new(status, "unavailable", e.to_string())
                }
            }
            EngineError::Unavailable(_) => ApiError::new(
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

impl From<QueryError> for ApiError {
    /// The one place query errors become HTTP statuses, as Prometheus 2.42's
    /// `returnAPIError` and `respondError` do: `bad_data` 400, `execution` 422,
    /// `timeout` and `canceled` 503, storage errors `internal` 500.
    fn from(e: QueryError) -> Self {
        let message = e.to_string();
        match e {
            QueryError::BadData(_) => ApiError::bad_data(message),
            QueryError::Execution(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "execution", message)
            }
            QueryError::TooManySamples => ApiError {
                limit: Some("query_samples"),
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "execution", message)
            },
            QueryError::TooManyRegexMatchers(..) => ApiError {
                limit: Some(Limit::RegexMatchers.as_str()),
                ..ApiError::bad_data(message)
            },
            QueryError::Timeout(_) => ApiError {
                limit: Some(Limit::QueryTimeout.as_str()),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
            },
            QueryError::Canceled(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "canceled", message)
            }
            QueryError::Storage(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
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
    let mut resp = if e.plain_text {
        with_body(
            e.status,
            "text/plain; charset=utf-8",
            format!("{}\n", e.message),
        )
    } else {
        with_body(
            e.status,
            "application/json",
            render::error_body(e.kind, &e.message),
        )
    };
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
    // Load shed for a moment: say when to come back.
    if e.status == StatusCode::SERVICE_UNAVAILABLE && e.limit.is_some() {
        resp.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(SHED_RETRY_AFTER_SECONDS),
        );
    }
    resp
}

/// `{"status":"success","data":…}`, in Prometheus' bytes.
pub fn success(data: serde_json::Value) -> Response<Body> {
    success_json(&render::json_value(&data), &[])
}

/// `{"status":"success","data":…,"warnings":[…]}` around `data_json`, which is
/// already JSON; `warnings` is left out when empty, as Prometheus does.
pub fn success_json(data_json: &str, warnings: &[String]) -> Response<Body> {
    with_body(
        StatusCode::OK,
        "application/json",
        render::success_body(data_json, warnings),
    )
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
