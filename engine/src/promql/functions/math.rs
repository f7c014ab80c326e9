//! Element-wise functions over instant vectors (`abs`, `ln`, trigonometry, `clamp`,
//! `round`, …) and the sorting functions; all but sorting drop the metric name.

use super::{Func, go_sort};
use crate::model::Labels;
use crate::promql::value::{Sample, drop_metric_name};

/// A sample of a scalar result (no labels).
pub(super) fn scalar_sample(value: f64) -> Sample {
    Sample {
        labels: Labels::default(),
        timestamp_ms: 0,
        value,
    }
}

/// The element-wise operation of a simple function.
pub(super) fn simple(f: Func) -> Option<fn(f64) -> f64> {
    Some(match f {
        Func::Abs => f64::abs,
        Func::Ceil => f64::ceil,
        Func::Floor => f64::floor,
        Func::Exp => f64::exp,
        Func::Sqrt => f64::sqrt,
        Func::Ln => f64::ln,
        Func::Log2 => f64::log2,
        Func::Log10 => f64::log10,
        Func::Sin => f64::sin,
        Func::Cos => f64::cos,
        Func::Tan => f64::tan,
        Func::Asin => f64::asin,
        Func::Acos => f64::acos,
        Func::Atan => f64::atan,
        Func::Sinh => f64::sinh,
        Func::Cosh => f64::cosh,
        Func::Tanh => f64::tanh,
        Func::Asinh => f64::asinh,
        Func::Acosh => f64::acosh,
        Func::Atanh => f64::atanh,
        Func::Rad => |v| v * std::f64::consts::PI / 180.0,
        Func::Deg => |v| v * 180.0 / std::f64::consts::PI,
        Func::Sgn => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                // Zero (of either sign) and NaN are returned as they are.
                v
            }
        },
        _ => return None,
    })
}

/// Applies `op` to every sample, dropping the metric name.
pub(super) fn map(vector: &[Sample], op: impl Fn(f64) -> f64) -> Vec<Sample> {
    vector
        .iter()
        .map(|s| Sample {
            labels: drop_metric_name(&s.labels),
            timestamp_ms: s.timestamp_ms,
            value: op(s.value),
        })
        .collect()
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
pub(super) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
pub(super) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

pub(super) fn clamp(vector: &[Sample], min: f64, max: f64) -> Vec<Sample> {
    // An empty range yields nothing, as in Prometheus (NaN bounds do not).
    if max < min {
        return Vec::new();
    }
    map(vector, |v| go_max(min, go_min(max, v)))
}

pub(super) fn round(vector: &[Sample], to_nearest: f64) -> Vec<Sample> {
    // Prometheus multiplies by the inverse, which is less prone to float error than
    // dividing; ties round up.
    let inverse = 1.0 / to_nearest;
    map(vector, |v| (v * inverse + 0.5).floor() / inverse)
}

pub(super) fn timestamp(vector: &[Sample]) -> Vec<Sample> {
    vector
        .iter()
        .map(|s| Sample {
            labels: drop_metric_name(&s.labels),
            timestamp_ms: s.timestamp_ms,
            value: s.timestamp_ms as f64 / 1000.0,
        })
        .collect()
}

/// `sort`/`sort_desc`: NaN always sorts last; labels are kept.
pub(super) fn sort(vector: &[Sample], desc: bool) -> Vec<Sample> {
    let mut out = vector.to_vec();
    if desc {
        go_sort(&mut out, |a, b| b.value.is_nan() || b.value < a.value);
    } else {
        go_sort(&mut out, |a, b| b.value.is_nan() || b.value > a.value);
    }
    out
}
