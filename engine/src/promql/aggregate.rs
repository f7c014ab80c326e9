//! Aggregation operators (`sum`, `avg`, `topk`, `count_values`, …) over one step's
//! vector, grouped by/without labels, mirroring Prometheus 2.42's `aggregation`:
//! the same incremental formulas (so NaN and ±Inf come out the same) and the same
//! heap discipline for `topk`/`bottomk` (so ties resolve the same way).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::QueryError;
use super::functions::{go_sort, quantile};
use super::plan::AggOp;
use super::value::{
    Sample, go_format_f, go_format_v, is_valid_label_name, only_names, with_label, without_names,
};
use crate::model::{Labels, METRIC_NAME};

/// The aggregation's parameter at this step.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    None,
    Number(f64),
    Label(String),
}

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: usize,
    /// The kept samples of topk/bottomk (a binary heap) or all values of quantile.
    heap: Vec<Sample>,
    values: Vec<f64>,
}

/// The labels a sample's group is known by (and that the result carries).
fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut names: Vec<&str> = grouping.iter().map(String::as_str).collect();
        names.push(METRIC_NAME);
        without_names(labels, &names)
    } else {
        only_names(labels, grouping)
    }
}

/// Whether label `name` is one of those that do not name the group.
fn left_out(name: &str, grouping: &[String], without: bool) -> bool {
    let listed = grouping.iter().any(|g| g == name);
    if without {
        listed || name == METRIC_NAME
    } else {
        !listed
    }
}

/// A hash of the labels [`group_labels`] keeps, computed without building them.
fn group_hash(labels: &Labels, grouping: &[String], without: bool) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for l in labels
        .iter()
        .filter(|l| !left_out(&l.name, grouping, without))
    {
        l.hash(&mut h);
    }
    h.finish()
}

/// Whether `group_labels(labels, …) == key`, without building the former.
fn in_group(labels: &Labels, key: &Labels, grouping: &[String], without: bool) -> bool {
    labels
        .iter()
        .filter(|l| !left_out(&l.name, grouping, without))
        .eq(key.iter())
}

/// Whether Go's `int64(f)` is well defined for `f` (`convertibleToInt64`).
fn convertible_to_i64(v: f64) -> bool {
    (-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&v)
}

pub(crate) fn aggregate(
    op: AggOp,
    grouping: &[String],
    without: bool,
    param: &Param,
    vector: &[Sample],
) -> Result<Vec<Sample>, QueryError> {
    let num = match param {
        Param::Number(n) => *n,
        _ => f64::NAN,
    };
    let mut k: usize = 0;
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        if !convertible_to_i64(num) {
            return Err(QueryError::Execution(format!(
                "Scalar value {} overflows int64",
                go_format_v(num)
            )));
        }
        let ki = num.trunc() as i64;
        if ki < 1 {
            return Ok(Vec::new());
        }
        k = usize::try_from(ki).unwrap_or(usize::MAX);
    }
    let mut grouping: Vec<String> = grouping.to_vec();
    let mut value_label = String::new();
    if op == AggOp::CountValues {
        if let Param::Label(l) = param {
            value_label = l.clone();
        }
        if !is_valid_label_name(&value_label) {
            return Err(QueryError::Execution(format!(
                "invalid label name {}",
                super::value::go_quote(&value_label)
            )));
        }
        if !without {
            grouping.push(value_label.clone());
            grouping.sort();
        }
    }

    // Groups by the hash of the labels that name them; a sample's group labels are
    // built only when it starts a new group.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in vector {
        let counted;
        let metric = if op == AggOp::CountValues {
            counted = with_label(&s.labels, &value_label, &go_format_f(s.value));
            &counted
        } else {
            &s.labels
        };
        let hash = group_hash(metric, &grouping, without);
        let found = index.get(&hash).and_then(|ids| {
            ids.iter().copied().find(|&i| {
                groups
                    .get(i)
                    .is_some_and(|g| in_group(metric, &g.labels, &grouping, without))
            })
        });
        let Some(gi) = found else {
            let mut g = Group {
                labels: group_labels(metric, &grouping, without),
                value: s.value,
                mean: s.value,
                count: 1,
                heap: Vec::new(),
                values: Vec::new(),
            };
            match op {
                AggOp::Stddev | AggOp::Stdvar => g.value = 0.0,
                AggOp::Topk | AggOp::Bottomk => g.heap.push(s.clone()),
                AggOp::Quantile => g.values.push(s.value),
                AggOp::Group => g.value = 1.0,
                _ => {}
            }
            index.entry(hash).or_default().push(groups.len());
            groups.push(g);
            continue;
        };
        let Some(g) = groups.get_mut(gi) else {
            continue;
        };
        let v = s.value;
        match op {
            AggOp::Sum => g.value += v,
            AggOp::Avg => {
                g.count += 1;
                let infinite_mean_stays = g.mean.is_infinite()
                    && ((v.is_infinite() && (g.mean > 0.0) == (v > 0.0))
                        || (!v.is_infinite() && !v.is_nan()));
                if !infinite_mean_stays {
                    // Dividing each term first avoids overflowing to ±Inf.
                    let n = g.count as f64;
                    g.mean += v / n - g.mean / n;
                }
            }
            AggOp::Group => {}
            AggOp::Max => {
                if g.value < v || g.value.is_nan() {
                    g.value = v;
                }
            }
            AggOp::Min => {
                if g.value > v || g.value.is_nan() {
                    g.value = v;
                }
            }
            AggOp::Count | AggOp::CountValues => g.count += 1,
            AggOp::Stddev | AggOp::Stdvar => {
                g.count += 1;
                let delta = v - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (v - g.mean);
            }
            AggOp::Topk => {
                // Min-heap on value, NaN counting as the smallest.
                let less = |a: &Sample, b: &Sample| a.value.is_nan() || a.value < b.value;
                heap_offer(&mut g.heap, k, s, less, |top| {
                    top.value < v || top.value.is_nan()
                });
            }
            AggOp::Bottomk => {
                let less = |a: &Sample, b: &Sample| a.value.is_nan() || a.value > b.value;
                heap_offer(&mut g.heap, k, s, less, |top| {
                    top.value > v || top.value.is_nan()
                });
            }
            AggOp::Quantile => g.values.push(v),
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        let value = match op {
            AggOp::Avg => g.mean,
            AggOp::Count | AggOp::CountValues => g.count as f64,
            AggOp::Stdvar => g.value / g.count as f64,
            AggOp::Stddev => (g.value / g.count as f64).sqrt(),
            AggOp::Topk | AggOp::Bottomk => {
                // The heap keeps the weakest element on top; emit strongest first.
                let mut heap = std::mem::take(&mut g.heap);
                if heap.len() > 1 {
                    if op == AggOp::Topk {
                        go_sort(&mut heap, |a, b| b.value.is_nan() || b.value < a.value);
                    } else {
                        go_sort(&mut heap, |a, b| b.value.is_nan() || b.value > a.value);
                    }
                }
                for s in heap {
                    out.push(Sample {
                        labels: s.labels,
                        timestamp_ms: 0,
                        value: s.value,
                    });
                }
                continue;
            }
            AggOp::Quantile => quantile(num, &mut g.values),
            _ => g.value,
        };
        out.push(Sample {
            labels: g.labels,
            timestamp_ms: 0,
            value,
        });
    }
    Ok(out)
}

/// Offers `s` to a bounded heap of at most `k` elements, as Prometheus does with Go's
/// `container/heap`: it enters if the heap is not full or `beats_top` says it beats
/// the element on top; with a full heap the top is popped first (replaced in place
/// when k == 1).
fn heap_offer(
    heap: &mut Vec<Sample>,
    k: usize,
    s: &Sample,
    less: impl Fn(&Sample, &Sample) -> bool + Copy,
    beats_top: impl Fn(&Sample) -> bool,
) {
    let enters = heap.len() < k || heap.first().is_some_and(beats_top);
    if !enters {
        return;
    }
    if heap.len() == k {
        if k == 1 {
            if let Some(top) = heap.first_mut() {
                *top = s.clone();
            }
            return;
        }
        heap_pop(heap, less);
    }
    heap.push(s.clone());
    let n = heap.len();
    heap_up(heap, n - 1, less);
}

fn heap_up(h: &mut [Sample], mut j: usize, less: impl Fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, n: usize, less: impl Fn(&Sample, &Sample) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

fn heap_pop(h: &mut Vec<Sample>, less: impl Fn(&Sample, &Sample) -> bool + Copy) {
    let n = h.len();
    if n == 0 {
        return;
    }
    h.swap(0, n - 1);
    heap_down(h, 0, n - 1, less);
    h.pop();
}
