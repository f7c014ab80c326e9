//! The `*_over_time` aggregations and `changes`/`resets`, over one window of one
//! series. Sums use Kahan-Neumaier compensation exactly as Prometheus 2.42 does, so
//! the last bits agree too.

use crate::promql::Point;

/// One step of Kahan-Neumaier summation: returns the new sum and compensation.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

pub(super) fn sum(points: &[Point]) -> Option<f64> {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in points {
        (sum, c) = kahan_sum_inc(p.value, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// The incremental mean, with Prometheus' special cases for infinities (an infinite
/// mean stays put unless an opposite infinity or a NaN arrives).
pub(super) fn avg(points: &[Point]) -> Option<f64> {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for p in points {
        count += 1.0;
        let v = p.value;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(v / count - mean / count, mean, c);
    }
    Some(if mean.is_infinite() { mean } else { mean + c })
}

pub(super) fn min(points: &[Point]) -> Option<f64> {
    let mut min = points.first()?.value;
    for p in points {
        if p.value < min || min.is_nan() {
            min = p.value;
        }
    }
    Some(min)
}

pub(super) fn max(points: &[Point]) -> Option<f64> {
    let mut max = points.first()?.value;
    for p in points {
        if p.value > max || max.is_nan() {
            max = p.value;
        }
    }
    Some(max)
}

/// The population variance, Welford's method with compensated sums.
pub(super) fn stdvar(points: &[Point]) -> Option<f64> {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.value - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.value - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

pub(super) fn changes(points: &[Point]) -> Option<f64> {
    let mut prev = points.first()?.value;
    let mut changes = 0usize;
    for p in points.iter().skip(1) {
        let cur = p.value;
        if cur != prev && !(cur.is_nan() && prev.is_nan()) {
            changes += 1;
        }
        prev = cur;
    }
    Some(changes as f64)
}

pub(super) fn resets(points: &[Point]) -> Option<f64> {
    let mut prev = points.first()?.value;
    let mut resets = 0usize;
    for p in points.iter().skip(1) {
        if p.value < prev {
            resets += 1;
        }
        prev = p.value;
    }
    Some(resets as f64)
}
