//! Rates and trends over a window: `rate`/`increase`/`delta` with Prometheus'
//! extrapolation (`extrapolatedRate`), `irate`/`idelta`, the least-squares `deriv`
//! and `predict_linear`, and `holt_winters`.

use super::Window;
use super::over_time::kahan_sum_inc;
use crate::promql::value::go_format_f6;
use crate::promql::{Point, QueryError};

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter
/// resets when `is_counter`, extrapolated towards the window's edges when the first
/// and last samples are close to them (within 1.1 average sample intervals), and
/// never extrapolated below zero for counters.
pub(super) fn extrapolated_rate(
    points: &[Point],
    w: Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = match points {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut result = last.value - first.value;
    if is_counter {
        let mut prev = first.value;
        for p in points.iter().skip(1) {
            if p.value < prev {
                result += prev;
            }
            prev = p.value;
        }
    }
    let mut duration_to_start = (first.timestamp_ms - w.start_ms) as f64 / 1000.0;
    let duration_to_end = (w.end_ms - last.timestamp_ms) as f64 / 1000.0;
    let sampled_interval = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= w.range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
pub(super) fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    let (prev, last) = match points {
        [.., prev, last] => (*prev, *last),
        _ => return None,
    };
    let mut result = if is_rate && last.value < prev.value {
        // A counter reset: the counter restarted from zero.
        last.value
    } else {
        last.value - prev.value
    };
    let interval = last.timestamp_ms - prev.timestamp_ms;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept at `intercept_ms`, with compensated sums.
fn linear_regression(points: &[Point], intercept_ms: i64) -> (f64, f64) {
    let mut n = 0.0f64;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = points.first().map(|p| p.value).unwrap_or(f64::NAN);
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.value != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.timestamp_ms - intercept_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let sum_x = sum_x + c_x;
    let sum_y = sum_y + c_y;
    let sum_xy = sum_xy + c_xy;
    let sum_x2 = sum_x2 + c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

pub(super) fn deriv(points: &[Point]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    // The first sample's time as origin keeps the sums small (Prometheus #2674).
    let origin = points.first()?.timestamp_ms;
    Some(linear_regression(points, origin).0)
}

pub(super) fn predict_linear(points: &[Point], duration_s: f64, ts: i64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(points, ts);
    Some(slope * duration_s + intercept)
}

/// Double exponential smoothing with smoothing factor `sf` and trend factor `tf`.
pub(super) fn holt_winters(points: &[Point], sf: f64, tf: f64) -> Result<Option<f64>, QueryError> {
    // Written as Prometheus writes it, so a NaN factor passes the check as it does
    // there.
    if sf <= 0.0 || sf >= 1.0 {
        return Err(QueryError::Execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_format_f6(sf)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(QueryError::Execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_format_f6(tf)
        )));
    }
    let (p0, p1) = match points {
        [p0, p1, ..] => (p0.value, p1.value),
        _ => return Ok(None),
    };
    let (mut s0, mut s1) = (0.0f64, p0);
    let mut b = p1 - p0;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.value;
        // The trend at the previous point; at the first step it is the raw slope.
        if i - 1 != 0 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}
