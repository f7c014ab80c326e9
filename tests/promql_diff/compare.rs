//! Compares two Prometheus API answers to the same query: both errors with the same
//! HTTP status and `errorType`, or both successes with the same `resultType`, the same
//! series (as sets keyed by labels, or in order when the query sorts), the same
//! timestamps, and values equal within [`REL_TOLERANCE`] (NaN equals NaN, ±Inf exact).
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: a failed step should fail the test loudly"
)]

use std::collections::BTreeMap;

use serde_json::Value;

/// Float results may differ in the last bits when an implementation sums in another
/// order; anything beyond this is a real difference.
pub const REL_TOLERANCE: f64 = 1e-9;

/// What a query answered: HTTP status and the parsed body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// How strictly series lists are compared.
#[derive(Clone, Copy, Debug, Default)]
pub struct How {
    /// The query sorts its result (sort, sort_desc at the top): order matters.
    pub ordered: bool,
    /// The query selects by rank (topk, bottomk): among equal values Prometheus keeps
    /// whichever came first, and the order of an inner result is Go map order in 2.42
    /// (`rangeEval` assembles its matrix from a map). Where the labels differ, each
    /// timestamp's values must still agree as a multiset.
    pub ties_free: bool,
}

impl How {
    pub fn for_query(q: &str) -> How {
        How {
            ordered: top_level_sort(q),
            ties_free: q.contains("topk") || q.contains("bottomk"),
        }
    }
}

/// Whether the whole expression is `sort(…)` or `sort_desc(…)` (not, say, a binary
/// operation whose left side is one): only then is the order part of the answer.
fn top_level_sort(q: &str) -> bool {
    let q = q.trim();
    let Some(rest) = q
        .strip_prefix("sort(")
        .or_else(|| q.strip_prefix("sort_desc("))
    else {
        return false;
    };
    let mut depth = 1;
    let mut quote: Option<char> = None;
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1 == rest.len();
                }
            }
            _ => {}
        }
    }
    false
}

/// `None` when the answers agree, else the first difference, in words.
pub fn first_difference(tsdb: &Answer, prom: &Answer, how: How) -> Option<String> {
    let t: Value = match serde_json::from_str(&tsdb.body) {
        Ok(v) => v,
        Err(e) => return Some(format!("tsdb body is not JSON: {e}")),
    };
    let p: Value = serde_json::from_str(&prom.body).unwrap();
    if t["status"] != p["status"] {
        return Some(format!(
            "status: tsdb {} ({}), prometheus {} ({})",
            t["status"], tsdb.status, p["status"], prom.status
        ));
    }
    if p["status"] == "error" {
        if tsdb.status != prom.status || t["errorType"] != p["errorType"] {
            return Some(format!(
                "error: tsdb {} {}, prometheus {} {}",
                tsdb.status, t["errorType"], prom.status, p["errorType"]
            ));
        }
        return None;
    }
    if tsdb.status != prom.status {
        return Some(format!(
            "HTTP status: tsdb {}, prometheus {}",
            tsdb.status, prom.status
        ));
    }
    let diff = compare_data(&t["data"], &p["data"], how.ordered, REL_TOLERANCE)?;
    let listed = matches!(p["data"]["resultType"].as_str(), Some("vector" | "matrix"));
    if how.ties_free
        && listed
        && t["data"]["resultType"] == p["data"]["resultType"]
        && same_values_per_timestamp(&t["data"]["result"], &p["data"]["result"])
    {
        return None;
    }
    Some(diff)
}

/// Whether two answers that agree are also equal to the last bit in every value (the
/// run counts those that are not: an evaluation order or a libm that differs).
pub fn bit_exact(tsdb: &Answer, prom: &Answer) -> bool {
    let parse = |b: &str| serde_json::from_str::<Value>(b).unwrap_or_default();
    let (t, p) = (parse(&tsdb.body), parse(&prom.body));
    p["status"] != "success" || compare_data(&t["data"], &p["data"], false, 0.0).is_none()
}

/// Each timestamp's values as a sorted list, for rank selections with ties.
fn values_by_timestamp(result: &Value) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for series in result.as_array().into_iter().flatten() {
        let points: Vec<&Value> = match (&series["value"], &series["values"]) {
            (Value::Array(p), _) if !p.is_empty() => vec![&series["value"]],
            (_, Value::Array(ps)) => ps.iter().collect(),
            _ => Vec::new(),
        };
        for p in points {
            let v = p[1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
            out.entry(p[0].to_string()).or_default().push(v);
        }
    }
    for v in out.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    out
}

fn same_values_per_timestamp(t: &Value, p: &Value) -> bool {
    let (t, p) = (values_by_timestamp(t), values_by_timestamp(p));
    t.len() == p.len()
        && t.iter().zip(&p).all(|((tt, tv), (pt, pv))| {
            tt == pt && tv.len() == pv.len() && tv.iter().zip(pv).all(|(a, b)| floats_equal(*a, *b))
        })
}

fn compare_data(t: &Value, p: &Value, ordered: bool, tol: f64) -> Option<String> {
    if t["resultType"] != p["resultType"] {
        return Some(format!(
            "resultType: tsdb {}, prometheus {}",
            t["resultType"], p["resultType"]
        ));
    }
    let (tr, pr) = (&t["result"], &p["result"]);
    match p["resultType"].as_str().unwrap_or_default() {
        "scalar" | "string" => compare_point(tr, pr, tol),
        "vector" => compare_series_list(tr, pr, "value", ordered, tol),
        "matrix" => compare_series_list(tr, pr, "values", false, tol),
        other => Some(format!("unknown resultType {other}")),
    }
}

fn labels_key(series: &Value) -> String {
    // serde_json's map is ordered by key, so this is canonical.
    series["metric"].to_string()
}

fn compare_series_list(
    t: &Value,
    p: &Value,
    field: &str,
    ordered: bool,
    tol: f64,
) -> Option<String> {
    let (Some(t), Some(p)) = (t.as_array(), p.as_array()) else {
        return Some("result is not an array".into());
    };
    let index = |list: &[Value]| -> BTreeMap<String, Value> {
        list.iter()
            .map(|s| (labels_key(s), s[field].clone()))
            .collect()
    };
    let (mut ti, pi) = (index(t), index(p));
    if ti.len() != t.len() {
        return Some("tsdb returned the same labels twice".into());
    }
    if tol > 0.0 {
        pair_numeric_labels(&mut ti, &pi, tol);
    }
    let missing: Vec<&String> = pi.keys().filter(|k| !ti.contains_key(*k)).collect();
    let extra: Vec<&String> = ti.keys().filter(|k| !pi.contains_key(*k)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Some(format!(
            "series differ: {} from prometheus missing in tsdb {:?}; {} extra in tsdb {:?}",
            missing.len(),
            missing.iter().take(3).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(3).collect::<Vec<_>>()
        ));
    }
    for (k, pv) in &pi {
        let tv = &ti[k];
        let diff = if field == "values" {
            compare_points(tv, pv, tol)
        } else {
            compare_point(tv, pv, tol)
        };
        if let Some(d) = diff {
            return Some(format!("{k}: {d}"));
        }
    }
    if ordered {
        // Ties may come out in any order, so the order is checked on the values.
        for (i, (ts, ps)) in t.iter().zip(p).enumerate() {
            if let Some(d) = compare_point(&ts[field], &ps[field], tol) {
                return Some(format!(
                    "order differs at position {i}: tsdb {} prometheus {}: {d}",
                    labels_key(ts),
                    labels_key(ps)
                ));
            }
        }
    }
    None
}

/// `count_values` writes a value into a label, so a last-bit difference in the value
/// (a libm that rounds otherwise) shows up as other labels. Renames each tsdb series
/// that Prometheus lacks to the Prometheus series it would be, were label values that
/// are numbers compared like sample values. Two spellings of the *same* number still
/// differ: that is a formatting bug, not arithmetic.
fn pair_numeric_labels(ti: &mut BTreeMap<String, Value>, pi: &BTreeMap<String, Value>, tol: f64) {
    let parse = |k: &str| -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(k).unwrap_or_default();
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let near = |a: &str, b: &str| {
        a == b
            || match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x != y && floats_within(x, y, tol),
                _ => false,
            }
    };
    let missing: Vec<String> = pi
        .keys()
        .filter(|k| !ti.contains_key(*k))
        .cloned()
        .collect();
    for pk in missing {
        let pl = parse(&pk);
        let found = ti.keys().find(|tk| {
            !pi.contains_key(*tk) && {
                let tl = parse(tk);
                tl.len() == pl.len()
                    && tl
                        .iter()
                        .zip(&pl)
                        .all(|((tn, tv), (pn, pv))| tn == pn && near(tv, pv))
            }
        });
        if let Some(tk) = found.cloned() {
            let v = ti.remove(&tk).unwrap_or_default();
            ti.insert(pk, v);
        }
    }
}

fn compare_points(t: &Value, p: &Value, tol: f64) -> Option<String> {
    let (Some(t), Some(p)) = (t.as_array(), p.as_array()) else {
        return Some("values is not an array".into());
    };
    for (i, (tp, pp)) in t.iter().zip(p).enumerate() {
        if let Some(d) = compare_point(tp, pp, tol) {
            return Some(format!("point {i}: {d}"));
        }
    }
    if t.len() != p.len() {
        let (short, long, who) = if t.len() < p.len() {
            (t, p, "prometheus")
        } else {
            (p, t, "tsdb")
        };
        return Some(format!(
            "{} points in tsdb, {} in prometheus; first extra in {who}: {}",
            t.len(),
            p.len(),
            long[short.len()]
        ));
    }
    None
}

/// A `[timestamp, "value"]` pair.
fn compare_point(t: &Value, p: &Value, tol: f64) -> Option<String> {
    let tt = t[0].as_f64();
    let pt = p[0].as_f64();
    if tt != pt {
        return Some(format!("timestamp: tsdb {t}, prometheus {p}"));
    }
    let (Some(tv), Some(pv)) = (t[1].as_str(), p[1].as_str()) else {
        return Some(format!("value is not a string: tsdb {t}, prometheus {p}"));
    };
    if tv == pv {
        return None;
    }
    match (tv.parse::<f64>(), pv.parse::<f64>()) {
        (Ok(a), Ok(b)) if floats_within(a, b, tol) => None,
        (Err(_), Err(_)) if tv == pv => None,
        _ => Some(format!("value: tsdb {t}, prometheus {p}")),
    }
}

/// NaN equals NaN, infinities exactly, everything else within [`REL_TOLERANCE`].
pub fn floats_equal(a: f64, b: f64) -> bool {
    floats_within(a, b, REL_TOLERANCE)
}

/// Also equal: two residues of a cancelling sum of O(1) values (zero or between 1e-20
/// and 1e-15), which depend on the order of summation; Prometheus' own order of series
/// is Go map order in range queries, so its answer varies from run to run there.
/// Values like the data set's 1e-300 stay outside this band and compare strictly.
fn floats_within(a: f64, b: f64, tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    let residue = |x: f64| x == 0.0 || (1e-20..1e-15).contains(&x.abs());
    let cancelled = tol > 0.0 && residue(a) && residue(b);
    a == b || cancelled || (a - b).abs() <= tol * a.abs().max(b.abs())
}

/// Shortens a body for a failure report.
pub fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}
