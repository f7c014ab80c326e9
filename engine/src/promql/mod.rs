//! PromQL evaluation over the shards: parse with `promql-parser`, fetch every selector's
//! series once through a [`Queryable`], then evaluate in memory, answer for answer as
//! Prometheus 2.42 does.
//!
//! This is the interface the HTTP routes build on; the evaluator lives in the
//! submodules.

use std::future::Future;
use std::time::Duration;

use crate::head::SeriesData;
use crate::model::{Labels, Matcher};

/// Where an evaluation gets its series from: the mesh in the server, a plain in-memory
/// store in tests.
pub trait Queryable {
    /// Series selected by `matchers` with their samples in `[min, max]` (inclusive),
    /// sorted by labels, samples sorted by time, one per timestamp. Stale markers are
    /// included (the evaluator needs them).
    fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> impl Future<Output = crate::Result<Vec<SeriesData>>>;
}

impl Queryable for crate::mesh::Mesh {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> crate::Result<Vec<SeriesData>> {
        crate::mesh::Mesh::select(self, matchers, min_time_ms, max_time_ms).await
    }
}

/// Bounds and knobs of one query.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// How far back an instant selector looks for a sample (Prometheus' 5 m).
    pub lookback_delta_ms: i64,
    /// Samples a query may hold in memory at once (Prometheus' `--query.max-samples`).
    pub max_samples: usize,
    /// Wall-clock budget of the whole query.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// One point of a range-vector result or a scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series of a range result (a matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// The result of a query, typed as Prometheus types it (`resultType`).
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    Scalar(Point),
    String { timestamp_ms: i64, value: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
}

/// Why a query failed, in Prometheus' vocabulary (`errorType`).
#[derive(Clone, Debug, PartialEq)]
pub enum QueryError {
    /// The query does not parse or is of the wrong type: `bad_data`, HTTP 400.
    BadData(String),
    /// Evaluation failed (e.g. many-to-many matching): `execution`, HTTP 422.
    Execution(String),
    /// The query ran past its timeout: `timeout`, HTTP 503.
    Timeout(String),
    /// The query was canceled: `canceled`, HTTP 503.
    Canceled(String),
    /// Too many samples: `execution`, HTTP 422, Prometheus' exact message.
    TooManySamples,
    /// Storage failed: `internal`, HTTP 500.
    Storage(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::BadData(m)
            | QueryError::Execution(m)
            | QueryError::Timeout(m)
            | QueryError::Canceled(m)
            | QueryError::Storage(m) => f.write_str(m),
            QueryError::TooManySamples => f.write_str(
                "query processing would load too many samples into memory in query execution",
            ),
        }
    }
}

impl std::error::Error for QueryError {}
