//! Quantiles: `histogram_quantile` over classic `le` buckets (Prometheus'
//! `bucketQuantile`, with bucket coalescing and the monotonicity fix) and the
//! interpolating `quantile` shared by the `quantile` aggregation and
//! `quantile_over_time`.

use std::collections::HashMap;

use crate::model::Labels;
use crate::promql::value::{Sample, without_names};

/// The φ-quantile of `values` (sorted in place), interpolating between neighbours.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Prometheus' heap order puts it.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = f64::max(0.0, rank.floor());
    let upper = f64::min(n - 1.0, lower + 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| values.get(i as usize).copied().unwrap_or(f64::NAN);
    at(lower) * (1.0 - weight) + at(upper) * weight
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    upper_bound: f64,
    count: f64,
}

/// Go's `strconv.ParseFloat` for the spellings `le` values take.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special && !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok()
}

fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let n = buckets.len();
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket among all but the last whose count reaches the rank.
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    if b == n - 1 {
        return buckets[n - 2].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Merges buckets of equal upper bound (the input is sorted).
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Raises every count to at least the largest count below it, so a histogram whose
/// buckets were scraped at slightly different moments still gives sane answers.
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let Some(first) = buckets.first() else { return };
    let mut max = first.count;
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

/// `histogram_quantile(q, v)` over classic buckets: series are grouped by their
/// labels without `le`; the result drops `le` and the metric name. Samples without a
/// parseable `le` are ignored.
pub(super) fn histogram_quantile(q: f64, vector: &[Sample]) -> Vec<Sample> {
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut ordered: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    for s in vector {
        let Some(upper_bound) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let key = without_names(&s.labels, &["le"]);
        let idx = match groups.get(&key) {
            Some(i) => *i,
            None => {
                let metric = without_names(&s.labels, &["le", crate::model::METRIC_NAME]);
                ordered.push((metric, Vec::new()));
                groups.insert(key, ordered.len() - 1);
                ordered.len() - 1
            }
        };
        if let Some((_, b)) = ordered.get_mut(idx) {
            b.push(Bucket {
                upper_bound,
                count: s.value,
            });
        }
    }
    ordered
        .into_iter()
        .map(|(labels, mut buckets)| Sample {
            labels,
            timestamp_ms: 0,
            value: bucket_quantile(q, &mut buckets),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![
            Bucket {
                upper_bound: 1.0,
                count: 10.0,
            },
            Bucket {
                upper_bound: 2.0,
                count: 20.0,
            },
            Bucket {
                upper_bound: f64::INFINITY,
                count: 20.0,
            },
        ];
        assert_eq!(bucket_quantile(0.5, &mut b), 1.0);
        assert_eq!(bucket_quantile(0.75, &mut b), 1.5);
        assert_eq!(bucket_quantile(1.0, &mut b), 2.0);
    }

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
    }
}
