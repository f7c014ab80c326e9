//! PromQL evaluation over the shards: parse with `promql-parser`, fetch every selector's
//! series once through a [`Queryable`] (as compressed chunks, see [`crate::select`]),
//! then evaluate, decoding one series at a time, answer for answer as Prometheus 2.42
//! does.
//!
//! This is the interface the HTTP routes build on; the evaluator lives in the
//! submodules.

mod aggregate;
mod binary;
pub mod cases;
mod eval;
mod functions;
mod parse;
mod plan;
mod value;

pub use parse::parse;
pub use value::go_format_f;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::head::SeriesData;
use crate::limits::QUERY_SHARD_DECODE_SAMPLES_MAX;
use crate::model::{Labels, Matcher};
use crate::select::SelectedSeries;

/// Where an evaluation gets its series from: the mesh in the server, a plain in-memory
/// store in tests.
pub trait Queryable {
    /// Series selected by `matchers` with their samples in `[min, max]` (inclusive),
    /// sorted by labels, each decoding to samples sorted by time, one per timestamp
    /// (possibly none). Stale markers are included (the evaluator needs them). The
    /// store may hand series over decoded until it has decoded `decode_samples_max`
    /// samples, and compressed after that.
    fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
        decode_samples_max: usize,
    ) -> impl Future<Output = crate::Result<Vec<SelectedSeries>>>;
}

impl Queryable for crate::mesh::Mesh {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
        decode_samples_max: usize,
    ) -> crate::Result<Vec<SelectedSeries>> {
        crate::mesh::Mesh::select_chunks(
            self,
            matchers,
            min_time_ms,
            max_time_ms,
            decode_samples_max,
        )
        .await
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
    /// Regex matchers the query's selectors may hold together.
    pub max_regex_matchers: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_regex_matchers: crate::limits::REGEX_MATCHERS_DEFAULT,
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
    /// More regex matchers than `max_regex_matchers` (found, limit): `bad_data`, 400.
    TooManyRegexMatchers(usize, usize),
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
            QueryError::TooManyRegexMatchers(found, limit) => write!(
                f,
                "the query holds {found} regex matchers, more than the limit of {limit} (query.max_regex_matchers)"
            ),
        }
    }
}

impl std::error::Error for QueryError {}

/// Evaluates `query` at one instant, as Prometheus' `/api/v1/query` does.
///
/// Vector results are sorted by labels unless the expression is `sort(…)`,
/// `sort_desc(…)`, `topk(…)` or `bottomk(…)`, whose order is kept; matrix results
/// are sorted by labels.
pub async fn instant_query<Q: Queryable>(
    q: &Q,
    query: &str,
    time_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryValue, QueryError> {
    let deadline = deadline_of(opts);
    let plan = plan::plan(query, time_ms, time_ms, opts.lookback_delta_ms)?;
    check_regex_matchers(&plan, opts)?;
    let data = fetch(q, &plan).await?;
    let mut ev = eval::Evaluator::new(&data, opts.lookback_delta_ms, opts.max_samples, deadline);
    let steps = eval::Steps {
        start: time_ms,
        end: time_ms,
        interval: 1,
    };
    let mat = match ev.eval(&plan.root, steps)? {
        value::Value::String(s) => {
            return Ok(QueryValue::String {
                timestamp_ms: time_ms,
                value: s,
            });
        }
        value::Value::Matrix(m) => m,
    };
    Ok(match plan.root.value_type() {
        plan::ValueType::Scalar => {
            let value = mat
                .first()
                .and_then(|s| s.points.first())
                .map(|p| p.value)
                .unwrap_or(f64::NAN);
            QueryValue::Scalar(Point {
                timestamp_ms: time_ms,
                value,
            })
        }
        plan::ValueType::Matrix => QueryValue::Matrix(to_range_series(mat)),
        _ => {
            let mut samples: Vec<InstantSample> = mat
                .into_iter()
                .filter_map(|s| {
                    let p = s.points.first()?;
                    Some(InstantSample {
                        labels: s.labels,
                        timestamp_ms: time_ms,
                        value: p.value,
                    })
                })
                .collect();
            // sort(), sort_desc() and topk()/bottomk() order their output the
            // same way every time in Prometheus; anything else is sorted here.
            let keeps_order = match plan.root.unwrap_invariant() {
                plan::Node::Call(c) => {
                    matches!(c.func, functions::Func::Sort | functions::Func::SortDesc)
                }
                plan::Node::Aggregate(a) => {
                    matches!(a.op, plan::AggOp::Topk | plan::AggOp::Bottomk)
                }
                _ => false,
            };
            if !keeps_order {
                samples.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            QueryValue::Vector(samples)
        }
    })
}

/// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive, as
/// Prometheus' `/api/v1/query_range` does; the answer is always a matrix, sorted by
/// labels (a scalar expression gives one series without labels).
pub async fn range_query<Q: Queryable>(
    q: &Q,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryValue, QueryError> {
    if end_ms < start_ms {
        return Err(QueryError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    if step_ms <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) > 11_000 {
        return Err(QueryError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let deadline = deadline_of(opts);
    let plan = plan::plan(query, start_ms, end_ms, opts.lookback_delta_ms)?;
    check_regex_matchers(&plan, opts)?;
    let ty = plan.root.value_type();
    if ty != plan::ValueType::Scalar && ty != plan::ValueType::Vector {
        return Err(QueryError::BadData(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            ty.documented()
        )));
    }
    let data = fetch(q, &plan).await?;
    let mut ev = eval::Evaluator::new(&data, opts.lookback_delta_ms, opts.max_samples, deadline);
    let steps = eval::Steps {
        start: start_ms,
        end: end_ms,
        interval: step_ms,
    };
    match ev.eval(&plan.root, steps)? {
        value::Value::Matrix(m) => Ok(QueryValue::Matrix(to_range_series(m))),
        value::Value::String(_) => Err(QueryError::Execution(
            "BUG: string result of a range query".into(),
        )),
    }
}

/// Refuses a query whose selectors hold more regex matchers than the options allow.
fn check_regex_matchers(plan: &plan::Plan, opts: &QueryOptions) -> Result<(), QueryError> {
    let found: usize = plan
        .fetches
        .iter()
        .map(|f| crate::model::regex_matchers(&f.matchers))
        .sum();
    if found > opts.max_regex_matchers {
        return Err(QueryError::TooManyRegexMatchers(
            found,
            opts.max_regex_matchers,
        ));
    }
    Ok(())
}

fn deadline_of(opts: &QueryOptions) -> Instant {
    let now = Instant::now();
    // A timeout too large to represent means no deadline worth checking.
    now.checked_add(opts.timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

fn to_range_series(mut mat: Vec<value::Series>) -> Vec<RangeSeries> {
    mat.sort_by(|a, b| a.labels.cmp(&b.labels));
    mat.into_iter()
        .map(|s| RangeSeries {
            labels: s.labels,
            points: s.points,
        })
        .collect()
}

/// Fetches every selector's series once, over the window the plan computed. The
/// stores decode at most [`QUERY_SHARD_DECODE_SAMPLES_MAX`] samples per shard over the
/// whole query (each select gets what the earlier ones left); beyond that the series
/// stay compressed until the evaluator reaches them.
async fn fetch<Q: Queryable>(
    q: &Q,
    plan: &plan::Plan,
) -> Result<Vec<Vec<SelectedSeries>>, QueryError> {
    let mut data = Vec::with_capacity(plan.fetches.len());
    let mut decode_budget = QUERY_SHARD_DECODE_SAMPLES_MAX;
    for f in &plan.fetches {
        if f.min_time_ms > f.max_time_ms {
            data.push(Vec::new());
            continue;
        }
        let series = q
            .select(&f.matchers, f.min_time_ms, f.max_time_ms, decode_budget)
            .await
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        let decoded: usize = series.iter().map(SelectedSeries::decoded_samples).sum();
        decode_budget = decode_budget.saturating_sub(decoded);
        data.push(series);
    }
    Ok(data)
}

/// A plain in-memory [`Queryable`], for tests and the case runner. It answers as the
/// shards answer a large select: every series as compressed chunks (a few samples
/// each, the smaller of the packed and XOR encodings), which the evaluator clips to
/// the window and decodes, so the case files exercise that path.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    series: Vec<(Labels, Vec<crate::select::Piece>)>,
}

/// Samples per chunk of a [`MemStore`] series: small, so windows start and end
/// inside chunks.
const MEM_STORE_CHUNK_SAMPLES: usize = 4;

impl MemStore {
    /// A store holding `series`; it is sorted by labels here so `select` answers in
    /// the order the trait promises.
    pub fn new(mut series: Vec<SeriesData>) -> Self {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let series = series
            .into_iter()
            .map(|mut s| {
                crate::head::sort_dedup(&mut s.samples);
                let pieces = s
                    .samples
                    .chunks(MEM_STORE_CHUNK_SAMPLES)
                    .filter_map(|c| {
                        let (encoding, data) = crate::chunk::encode_smallest(c);
                        Some(crate::select::Piece::Chunk {
                            chunk: crate::block::ChunkData {
                                min_time: c.first()?.timestamp_ms,
                                max_time: c.last()?.timestamp_ms,
                                num_samples: u32::try_from(c.len()).ok()?,
                                encoding,
                                data: data.into(),
                            },
                            origin: crate::select::Origin::Head,
                        })
                    })
                    .collect();
                (s.labels, pieces)
            })
            .collect();
        MemStore { series }
    }
}

impl Queryable for MemStore {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
        _decode_samples_max: usize,
    ) -> crate::Result<Vec<SelectedSeries>> {
        let out = self
            .series
            .iter()
            .filter(|(labels, _)| crate::model::matches_all(matchers, labels))
            .map(|(labels, pieces)| SelectedSeries {
                labels: labels.clone(),
                min_time_ms,
                max_time_ms,
                parts: vec![crate::select::Part {
                    pieces: pieces.clone(),
                    deleted: Vec::new(),
                }],
            })
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Sample};

    fn store() -> MemStore {
        let series = (0..10)
            .map(|i| SeriesData {
                labels: Labels::new(vec![
                    Label::new("__name__", "m"),
                    Label::new("i", i.to_string()),
                ])
                .unwrap_or_default(),
                samples: (0..100).map(|t| Sample::new(t * 1000, t as f64)).collect(),
            })
            .collect();
        MemStore::new(series)
    }

    fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn too_many_samples_is_refused() {
        let opts = QueryOptions {
            max_samples: 10,
            ..QueryOptions::default()
        };
        let r = run(instant_query(
            &store(),
            "sum_over_time(m[10s])",
            50_000,
            &opts,
        ));
        assert_eq!(r, Err(QueryError::TooManySamples));
        let r = run(instant_query(&store(), "m", 50_000, &opts));
        assert!(matches!(r, Ok(QueryValue::Vector(v)) if v.len() == 10));
    }

    #[test]
    fn regex_matchers_are_bounded() {
        let opts = QueryOptions {
            max_regex_matchers: 2,
            ..QueryOptions::default()
        };
        let q = r#"m{i=~"1|2"} + m{i!~"3"}"#;
        assert!(run(instant_query(&store(), q, 50_000, &opts)).is_ok());
        let q = r#"m{i=~"1|2"} + m{i!~"3"} + {__name__=~"m"}"#;
        let r = run(instant_query(&store(), q, 50_000, &opts));
        assert_eq!(r, Err(QueryError::TooManyRegexMatchers(3, 2)));
        let r = run(range_query(&store(), q, 0, 2000, 1000, &opts));
        assert_eq!(r, Err(QueryError::TooManyRegexMatchers(3, 2)));
    }

    #[test]
    fn timeout_is_reported() {
        let opts = QueryOptions {
            timeout: Duration::ZERO,
            ..QueryOptions::default()
        };
        let r = run(instant_query(&store(), "m", 50_000, &opts));
        assert_eq!(
            r,
            Err(QueryError::Timeout(
                "query timed out in expression evaluation".into()
            ))
        );
    }

    #[test]
    fn range_query_shapes() {
        let opts = QueryOptions::default();
        let r = run(range_query(&store(), "1", 0, 2000, 1000, &opts));
        let Ok(QueryValue::Matrix(m)) = r else {
            panic!("unexpected {r:?}");
        };
        assert_eq!(m.len(), 1);
        assert!(m[0].labels.is_empty());
        assert_eq!(m[0].points.len(), 3);
        let r = run(range_query(&store(), "m[1m]", 0, 2000, 1000, &opts));
        assert!(matches!(r, Err(QueryError::BadData(_))));
        let r = run(range_query(&store(), "m", 0, 2000, 0, &opts));
        assert!(matches!(r, Err(QueryError::BadData(_))));
        let r = run(instant_query(&store(), "sum(", 0, &opts));
        assert!(matches!(r, Err(QueryError::BadData(_))));
        let r = run(instant_query(&store(), "\"hi\"", 5, &opts));
        assert_eq!(
            r,
            Ok(QueryValue::String {
                timestamp_ms: 5,
                value: "hi".into()
            })
        );
    }

    #[test]
    fn hostile_queries_do_not_panic() {
        let opts = QueryOptions {
            timeout: Duration::from_millis(200),
            ..QueryOptions::default()
        };
        for q in [
            "m @ 9223372036854775",
            "m offset 100000000y",
            "count_over_time(m[1000y:1ms])",
            "m[5m:1ms] offset -1000y",
            "topk(9e18, m)",
            "day_of_week(vector(1e300))",
            "year(vector(NaN))",
            "histogram_quantile(0.5, label_replace(m, \"le\", \"$1\", \"i\", \"(.*)\"))",
            "label_replace(m, \"a\", \"$99\", \"i\", \"(.*)\")",
            "-(-m) ^ m % 0",
            "quantile(NaN, m)",
            "absent_over_time(nonexistent[1ms])",
        ] {
            let _ = run(instant_query(&store(), q, i64::MAX / 2, &opts));
            let _ = run(instant_query(&store(), q, i64::MIN / 2, &opts));
            let _ = run(range_query(&store(), q, -5000, 5000, 1000, &opts));
        }
    }
}
