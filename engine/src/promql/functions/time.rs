//! Calendar functions (`year`, `month`, `day_of_week`, …) in UTC, over sample values
//! taken as Unix seconds, or over the evaluation time when called without argument.

use super::Func;
use super::math::scalar_sample;
use crate::promql::value::{Sample, drop_metric_name};

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// The calendar field `func` asks for, of `secs` seconds since the epoch.
fn field(func: Func, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match func {
        Func::Year => y as f64,
        Func::Month => f64::from(m),
        Func::DayOfMonth => f64::from(d),
        Func::DayOfWeek => (days + 4).rem_euclid(7) as f64,
        Func::DayOfYear => {
            let before: u32 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            f64::from(before + d)
        }
        Func::DaysInMonth => f64::from(days_in_month(y, m)),
        Func::Hour => (sod / 3600) as f64,
        Func::Minute => ((sod % 3600) / 60) as f64,
        _ => f64::NAN,
    }
}

/// Go's `int64(f)`: truncation toward zero; NaN and out-of-range values become the
/// minimum integer, as on amd64.
fn go_int64(v: f64) -> i64 {
    if v.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        i64::MIN
    } else {
        v.trunc() as i64
    }
}

pub(super) fn date_func(func: Func, vector: Option<&[Sample]>, ts: i64) -> Vec<Sample> {
    // Go's time arithmetic cannot represent the extreme instants; clamping keeps the
    // calendar maths in range for the values (NaN, ±Inf) that reach them.
    const LIMIT_SECS: i64 = 1 << 52;
    let secs_of = |s: i64| s.clamp(-LIMIT_SECS, LIMIT_SECS);
    match vector {
        // Go divides toward zero.
        None => vec![scalar_sample(field(func, secs_of(ts / 1000)))],
        Some(v) => v
            .iter()
            .map(|s| Sample {
                labels: drop_metric_name(&s.labels),
                timestamp_ms: s.timestamp_ms,
                value: field(func, secs_of(go_int64(s.value))),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields() {
        // 2023-02-28T13:45:00Z was a Tuesday.
        let t = 1_677_591_900;
        assert_eq!(field(Func::Year, t), 2023.0);
        assert_eq!(field(Func::Month, t), 2.0);
        assert_eq!(field(Func::DayOfMonth, t), 28.0);
        assert_eq!(field(Func::DayOfWeek, t), 2.0);
        assert_eq!(field(Func::DayOfYear, t), 59.0);
        assert_eq!(field(Func::DaysInMonth, t), 28.0);
        assert_eq!(field(Func::Hour, t), 13.0);
        assert_eq!(field(Func::Minute, t), 45.0);
        assert_eq!(field(Func::Year, -1), 1969.0);
        assert_eq!(field(Func::DayOfWeek, 0), 4.0);
    }
}
