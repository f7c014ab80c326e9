//! Binary operators over one step: scalar/scalar, vector/scalar and vector/vector
//! with `on`/`ignoring` matching, `group_left`/`group_right` and the set operators,
//! with Prometheus 2.42's label rules and error messages.

use std::collections::{HashMap, HashSet};

use super::QueryError;
use super::plan::{BinOp, Card, Matching};
use super::value::{
    Sample, drop_metric_name, go_labels_string, only_names, with_label, without_names,
};
use crate::model::{Labels, METRIC_NAME};

/// Arithmetic or comparison of two scalars (comparisons give 0 or 1).
pub(crate) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        // Go's `math.Pow` has C's special cases (`Pow(1, NaN)` is 1, …).
        BinOp::Pow => l.powf(r),
        BinOp::Mod => go_mod(l, r),
        BinOp::Atan2 => l.atan2(r),
        BinOp::Eql => b(l == r),
        BinOp::Neq => b(l != r),
        BinOp::Gtr => b(l > r),
        BinOp::Lss => b(l < r),
        BinOp::Gte => b(l >= r),
        BinOp::Lte => b(l <= r),
        // The parser refuses set operators between scalars.
        BinOp::And | BinOp::Or | BinOp::Unless => f64::NAN,
    }
}

/// Go's `math.Mod`: the result has the sign of `x` and the same special cases as
/// C's `fmod`, which Rust's `%` on floats is.
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// The value and whether to keep it, for an element-wise operation (comparisons
/// keep the left value when true).
fn elem_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Eql => (l, l == r),
        BinOp::Neq => (l, l != r),
        BinOp::Gtr => (l, l > r),
        BinOp::Lss => (l, l < r),
        BinOp::Gte => (l, l >= r),
        BinOp::Lte => (l, l <= r),
        _ => (scalar_binop(op, l, r), true),
    }
}

/// A vector and a scalar; `swap` when the scalar was on the left.
pub(crate) fn vector_scalar(
    op: BinOp,
    vector: &[Sample],
    scalar: f64,
    swap: bool,
    return_bool: bool,
) -> Vec<Sample> {
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (mut lv, mut rv) = (s.value, scalar);
        if swap {
            std::mem::swap(&mut lv, &mut rv);
        }
        let (mut value, mut keep) = elem_binop(op, lv, rv);
        // A filtering comparison keeps the vector's value even when it is on the
        // right.
        if op.is_comparison() && swap {
            value = rv;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let labels = if op.drops_metric_name() || return_bool {
                drop_metric_name(&s.labels)
            } else {
                s.labels.clone()
            };
            out.push(Sample {
                labels,
                timestamp_ms: s.timestamp_ms,
                value,
            });
        }
    }
    out
}

/// The signature two samples match on.
fn signature(labels: &Labels, m: &Matching) -> Labels {
    if m.on {
        only_names(labels, &m.labels)
    } else {
        let mut names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        names.push(METRIC_NAME);
        without_names(labels, &names)
    }
}

/// `and`, `or`, `unless`.
pub(crate) fn set_op(op: BinOp, lhs: &[Sample], rhs: &[Sample], m: &Matching) -> Vec<Sample> {
    match op {
        BinOp::And => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let right: HashSet<Labels> = rhs.iter().map(|s| signature(&s.labels, m)).collect();
            lhs.iter()
                .filter(|s| right.contains(&signature(&s.labels, m)))
                .cloned()
                .collect()
        }
        BinOp::Or => {
            if lhs.is_empty() {
                return rhs.to_vec();
            }
            if rhs.is_empty() {
                return lhs.to_vec();
            }
            let left: HashSet<Labels> = lhs.iter().map(|s| signature(&s.labels, m)).collect();
            let mut out = lhs.to_vec();
            out.extend(
                rhs.iter()
                    .filter(|s| !left.contains(&signature(&s.labels, m)))
                    .cloned(),
            );
            out
        }
        _ => {
            if lhs.is_empty() || rhs.is_empty() {
                return lhs.to_vec();
            }
            let right: HashSet<Labels> = rhs.iter().map(|s| signature(&s.labels, m)).collect();
            lhs.iter()
                .filter(|s| !right.contains(&signature(&s.labels, m)))
                .cloned()
                .collect()
        }
    }
}

/// The labels of a matched pair's result (`resultMetric`).
fn result_labels(l: &Labels, r: &Labels, op: BinOp, m: &Matching) -> Labels {
    let mut out = if op.drops_metric_name() {
        drop_metric_name(l)
    } else {
        l.clone()
    };
    if m.card == Card::OneToOne {
        out = if m.on {
            only_names(&out, &m.labels)
        } else {
            without_names(&out, &m.labels)
        };
    }
    for name in &m.include {
        // Labels named in group_x(...) come from the "one" side, or are removed.
        out = with_label(&out, name, r.get(name).unwrap_or(""));
    }
    out
}

/// Arithmetic and comparisons between two vectors.
pub(crate) fn vector_vector(
    op: BinOp,
    lhs: &[Sample],
    rhs: &[Sample],
    m: &Matching,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    // For one-to-many, swap the sides and swap back when computing values.
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut right: HashMap<Labels, &Sample> = HashMap::with_capacity(rhs.len());
    for rs in rhs {
        let sig = signature(&rs.labels, m);
        if let Some(dup) = right.get(&sig) {
            let one_side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            let matched = if m.on {
                only_names(&rs.labels, &m.labels)
            } else {
                let mut names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
                names.push(METRIC_NAME);
                without_names(&rs.labels, &names)
            };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels_string(&matched),
                one_side,
                go_labels_string(&rs.labels),
                go_labels_string(&dup.labels),
            )));
        }
        right.insert(sig, rs);
    }
    // One-to-one: which signatures matched already; many-to-one: which result label
    // sets each signature produced.
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in lhs {
        let sig = signature(&ls.labels, m);
        let Some(rs) = right.get(&sig) else { continue };
        let (mut vl, mut vr) = (ls.value, rs.value);
        if m.card == Card::OneToMany {
            std::mem::swap(&mut vl, &mut vr);
        }
        let (mut value, keep) = elem_binop(op, vl, vr);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut labels = result_labels(&ls.labels, &rs.labels, op, m);
        if return_bool {
            labels = drop_metric_name(&labels);
        }
        if m.card == Card::OneToOne {
            if matched.contains_key(&sig) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            matched.insert(sig, HashSet::new());
        } else {
            let set = matched.entry(sig).or_default();
            if !set.insert(labels.clone()) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
        }
        out.push(Sample {
            labels,
            timestamp_ms: 0,
            value,
        });
    }
    Ok(out)
}
