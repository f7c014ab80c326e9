//! The PromQL function library of Prometheus 2.42: the registry (names, types, which
//! functions depend on the evaluation time) and the dispatch to the implementations,
//! which live in one file per family.

mod histogram;
mod labels;
mod math;
mod over_time;
mod rate;
mod time;

pub(crate) use histogram::quantile;
pub(crate) use labels::CallState;

use super::Point;
use super::QueryError;
use super::plan::{Node, ValueType};
use super::value::Sample;

/// Every function Prometheus 2.42 knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Abs,
    Absent,
    AbsentOverTime,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    AvgOverTime,
    Ceil,
    Changes,
    Clamp,
    ClampMax,
    ClampMin,
    Cos,
    Cosh,
    CountOverTime,
    DaysInMonth,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    Deg,
    Delta,
    Deriv,
    Exp,
    Floor,
    HistogramCount,
    HistogramFraction,
    HistogramQuantile,
    HistogramSum,
    HoltWinters,
    Hour,
    Idelta,
    Increase,
    Irate,
    LabelReplace,
    LabelJoin,
    LastOverTime,
    Ln,
    Log10,
    Log2,
    MaxOverTime,
    MinOverTime,
    Minute,
    Month,
    Pi,
    PredictLinear,
    PresentOverTime,
    QuantileOverTime,
    Rad,
    Rate,
    Resets,
    Round,
    Scalar,
    Sgn,
    Sin,
    Sinh,
    Sort,
    SortDesc,
    Sqrt,
    StddevOverTime,
    StdvarOverTime,
    SumOverTime,
    Tan,
    Tanh,
    Time,
    Timestamp,
    Vector,
    Year,
}

/// `holt_winters` was renamed in later Prometheus versions, so the parser no longer
/// knows it; it is registered once so 2.42 queries parse.
pub(crate) fn register_parser_extras() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use promql_parser::parser::value::ValueType as P;
        // An error means it is already known, which is just as good.
        let _ = promql_parser::parser::register_extra_functions(vec![
            promql_parser::parser::Function::new(
                "holt_winters",
                vec![P::Matrix, P::Scalar, P::Scalar],
                0,
                P::Vector,
                false,
            ),
        ]);
    });
}

impl Func {
    pub(crate) fn from_name(name: &str) -> Option<Func> {
        use Func::*;
        Some(match name {
            "abs" => Abs,
            "absent" => Absent,
            "absent_over_time" => AbsentOverTime,
            "acos" => Acos,
            "acosh" => Acosh,
            "asin" => Asin,
            "asinh" => Asinh,
            "atan" => Atan,
            "atanh" => Atanh,
            "avg_over_time" => AvgOverTime,
            "ceil" => Ceil,
            "changes" => Changes,
            "clamp" => Clamp,
            "clamp_max" => ClampMax,
            "clamp_min" => ClampMin,
            "cos" => Cos,
            "cosh" => Cosh,
            "count_over_time" => CountOverTime,
            "days_in_month" => DaysInMonth,
            "day_of_month" => DayOfMonth,
            "day_of_week" => DayOfWeek,
            "day_of_year" => DayOfYear,
            "deg" => Deg,
            "delta" => Delta,
            "deriv" => Deriv,
            "exp" => Exp,
            "floor" => Floor,
            "histogram_count" => HistogramCount,
            "histogram_fraction" => HistogramFraction,
            "histogram_quantile" => HistogramQuantile,
            "histogram_sum" => HistogramSum,
            "holt_winters" => HoltWinters,
            "hour" => Hour,
            "idelta" => Idelta,
            "increase" => Increase,
            "irate" => Irate,
            "label_replace" => LabelReplace,
            "label_join" => LabelJoin,
            "last_over_time" => LastOverTime,
            "ln" => Ln,
            "log10" => Log10,
            "log2" => Log2,
            "max_over_time" => MaxOverTime,
            "min_over_time" => MinOverTime,
            "minute" => Minute,
            "month" => Month,
            "pi" => Pi,
            "predict_linear" => PredictLinear,
            "present_over_time" => PresentOverTime,
            "quantile_over_time" => QuantileOverTime,
            "rad" => Rad,
            "rate" => Rate,
            "resets" => Resets,
            "round" => Round,
            "scalar" => Scalar,
            "sgn" => Sgn,
            "sin" => Sin,
            "sinh" => Sinh,
            "sort" => Sort,
            "sort_desc" => SortDesc,
            "sqrt" => Sqrt,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "sum_over_time" => SumOverTime,
            "tan" => Tan,
            "tanh" => Tanh,
            "time" => Time,
            "timestamp" => Timestamp,
            "vector" => Vector,
            "year" => Year,
            _ => return None,
        })
    }

    pub(crate) fn return_type(self) -> ValueType {
        match self {
            Func::Pi | Func::Scalar | Func::Time => ValueType::Scalar,
            _ => ValueType::Vector,
        }
    }

    /// Functions whose result depends on the evaluation time even when their
    /// arguments do not (`AtModifierUnsafeFunctions`).
    pub(crate) fn is_at_unsafe(self) -> bool {
        matches!(
            self,
            Func::DaysInMonth
                | Func::DayOfMonth
                | Func::DayOfWeek
                | Func::DayOfYear
                | Func::Hour
                | Func::Minute
                | Func::Month
                | Func::Year
                | Func::PredictLinear
                | Func::Time
                | Func::Timestamp
        )
    }
}

/// The window a range function sees at one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Evaluation time of the step.
    pub ts: i64,
    /// Inclusive bounds of the window, after offset.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The selector's range.
    pub range_ms: i64,
}

/// Applies a function over a range vector to one series' points in one window;
/// `scalars` holds the other arguments' values at this step (by argument index).
/// `None` drops the series at this step.
pub(crate) fn call_range(
    func: Func,
    points: &[Point],
    scalars: &[f64],
    w: Window,
) -> Result<Option<f64>, QueryError> {
    let arg = |i: usize| scalars.get(i).copied().unwrap_or(f64::NAN);
    Ok(match func {
        Func::Rate => rate::extrapolated_rate(points, w, true, true),
        Func::Increase => rate::extrapolated_rate(points, w, true, false),
        Func::Delta => rate::extrapolated_rate(points, w, false, false),
        Func::Irate => rate::instant_value(points, true),
        Func::Idelta => rate::instant_value(points, false),
        Func::Deriv => rate::deriv(points),
        Func::PredictLinear => rate::predict_linear(points, arg(1), w.ts),
        Func::HoltWinters => rate::holt_winters(points, arg(1), arg(2))?,
        Func::AvgOverTime => over_time::avg(points),
        Func::CountOverTime => Some(points.len() as f64),
        Func::SumOverTime => over_time::sum(points),
        Func::MinOverTime => over_time::min(points),
        Func::MaxOverTime => over_time::max(points),
        Func::LastOverTime => points.last().map(|p| p.value),
        Func::StddevOverTime => over_time::stdvar(points).map(f64::sqrt),
        Func::StdvarOverTime => over_time::stdvar(points),
        Func::QuantileOverTime => {
            let mut values: Vec<f64> = points.iter().map(|p| p.value).collect();
            Some(quantile(arg(0), &mut values))
        }
        Func::PresentOverTime | Func::AbsentOverTime => Some(1.0),
        Func::Changes => over_time::changes(points),
        Func::Resets => over_time::resets(points),
        other => {
            return Err(QueryError::Execution(format!(
                "BUG: function {other:?} called with a range vector"
            )));
        }
    })
}

/// Applies a function without a range-vector argument at one step. `args` holds each
/// argument's vector at this step (empty for string arguments; a scalar is a vector
/// of one sample); `nodes` are the argument expressions (for string literals and
/// `absent()`'s labels).
pub(crate) fn call_instant(
    func: Func,
    args: &[Vec<Sample>],
    nodes: &[Node],
    ts: i64,
    state: &mut CallState,
) -> Result<Vec<Sample>, QueryError> {
    let scalar = |i: usize| {
        args.get(i)
            .and_then(|v| v.first())
            .map(|s| s.value)
            .unwrap_or(f64::NAN)
    };
    let vector = || args.first().map(Vec::as_slice).unwrap_or(&[]);
    Ok(match func {
        Func::Time => vec![math::scalar_sample(ts as f64 / 1000.0)],
        Func::Pi => vec![math::scalar_sample(std::f64::consts::PI)],
        Func::Scalar => {
            let v = vector();
            let value = match v {
                [one] => one.value,
                _ => f64::NAN,
            };
            vec![math::scalar_sample(value)]
        }
        Func::Vector => vec![math::scalar_sample(scalar(0))],
        Func::Absent => {
            if vector().is_empty() {
                let labels = nodes
                    .first()
                    .map(super::plan::absent_labels)
                    .unwrap_or_default();
                vec![Sample {
                    labels,
                    timestamp_ms: 0,
                    value: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        Func::Sort => math::sort(vector(), false),
        Func::SortDesc => math::sort(vector(), true),
        Func::Clamp => math::clamp(vector(), scalar(1), scalar(2)),
        Func::ClampMax => math::map(vector(), |v| math::go_min(scalar(1), v)),
        Func::ClampMin => math::map(vector(), |v| math::go_max(scalar(1), v)),
        Func::Round => {
            let to_nearest = if nodes.len() >= 2 { scalar(1) } else { 1.0 };
            math::round(vector(), to_nearest)
        }
        Func::Timestamp => math::timestamp(vector()),
        Func::HistogramQuantile => {
            histogram::histogram_quantile(scalar(0), args.get(1).map(Vec::as_slice).unwrap_or(&[]))
        }
        // Only native histograms have these; a float sample gives nothing.
        Func::HistogramCount | Func::HistogramSum | Func::HistogramFraction => Vec::new(),
        Func::LabelReplace => labels::label_replace(vector(), nodes, state)?,
        Func::LabelJoin => labels::label_join(vector(), nodes)?,
        Func::DaysInMonth
        | Func::DayOfMonth
        | Func::DayOfWeek
        | Func::DayOfYear
        | Func::Hour
        | Func::Minute
        | Func::Month
        | Func::Year => time::date_func(func, args.first().map(Vec::as_slice), ts),
        f => match math::simple(f) {
            Some(op) => math::map(vector(), op),
            None => {
                return Err(QueryError::Execution(format!(
                    "BUG: function {f:?} called without a range vector"
                )));
            }
        },
    })
}

/// Whether the function takes a range vector (and so is evaluated per series over
/// windows rather than per step over vectors).
pub(crate) fn is_range_func(func: Func) -> bool {
    matches!(
        func,
        Func::Rate
            | Func::Increase
            | Func::Delta
            | Func::Irate
            | Func::Idelta
            | Func::Deriv
            | Func::PredictLinear
            | Func::HoltWinters
            | Func::AvgOverTime
            | Func::CountOverTime
            | Func::SumOverTime
            | Func::MinOverTime
            | Func::MaxOverTime
            | Func::LastOverTime
            | Func::StddevOverTime
            | Func::StdvarOverTime
            | Func::QuantileOverTime
            | Func::PresentOverTime
            | Func::AbsentOverTime
            | Func::Changes
            | Func::Resets
    )
}

/// Go's `sort.Sort` over small inputs is an insertion sort, which keeps equal
/// elements in input order; mirroring it keeps ties where Prometheus puts them.
/// Larger inputs use a stable sort on a total order derived from the same `less`.
pub(crate) fn go_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    if v.len() <= 12 {
        for i in 1..v.len() {
            let mut j = i;
            while j > 0 {
                let (Some(a), Some(b)) = (v.get(j), v.get(j - 1)) else {
                    break;
                };
                if !less(a, b) {
                    break;
                }
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    v.sort_by(|a, b| {
        if less(a, b) && !less(b, a) {
            std::cmp::Ordering::Less
        } else if less(b, a) && !less(a, b) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}
