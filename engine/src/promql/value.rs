//! The evaluator's inner values: series of points over the evaluation steps, and the
//! label-set helpers every operator shares (dropping `__name__`, keeping or removing
//! names, Go-compatible formatting for error messages and `count_values`).

use super::Point;
use crate::model::{Label, Labels, METRIC_NAME};

/// One series of an evaluated matrix: a label set and its points, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// Every node evaluates to a matrix over the evaluation steps (a scalar is one series
/// with empty labels and a point at every step), or, for a string literal, a string.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Matrix(Vec<Series>),
    String(String),
}

/// One element of an instant vector during a step.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// Builds a label set from pairs in any order: empty values are dropped (an empty
/// value means "no label" in Prometheus) and a later pair of the same name wins.
pub(crate) fn labels_from(mut pairs: Vec<Label>) -> Labels {
    pairs.retain(|l| !l.value.is_empty());
    // A stable sort keeps insertion order among equal names, so keeping the last of
    // each run makes later pairs win, as Prometheus' label builder does.
    pairs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
    for l in pairs {
        match out.last_mut() {
            Some(last) if last.name == l.name => *last = l,
            _ => out.push(l),
        }
    }
    if out.is_empty() {
        return Labels::default();
    }
    // The pairs are sorted and unique by construction, so this cannot fail; an empty
    // set is the only safe fallback if it ever did.
    Labels::from_sorted(out).unwrap_or_default()
}

/// `labels` without the metric name.
pub(crate) fn drop_metric_name(labels: &Labels) -> Labels {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    without_names(labels, &[METRIC_NAME])
}

/// `labels` without any of `names`.
pub(crate) fn without_names<S: AsRef<str>>(labels: &Labels, names: &[S]) -> Labels {
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
        .cloned()
        .collect();
    labels_from(kept)
}

/// Only the labels of `labels` named in `names`.
pub(crate) fn only_names<S: AsRef<str>>(labels: &Labels, names: &[S]) -> Labels {
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
        .cloned()
        .collect();
    labels_from(kept)
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
pub(crate) fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut pairs: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    if !value.is_empty() {
        pairs.push(Label::new(name, value));
    }
    labels_from(pairs)
}

/// Whether two samples of `labels` share a label set (Prometheus refuses such
/// vectors: "vector cannot contain metrics with the same labelset").
pub(crate) fn has_duplicate_labels<'a>(labels: impl Iterator<Item = &'a Labels>) -> bool {
    let all: Vec<&Labels> = labels.collect();
    if all.len() < 2 {
        return false;
    }
    // Sorting one-shot hashes costs far less than a hash set of label sets hashed
    // string by string; only label sets with equal hashes are compared.
    let mut hashed: Vec<(u64, usize)> = all
        .iter()
        .enumerate()
        .map(|(i, l)| (l.stable_hash(), i))
        .collect();
    hashed.sort_unstable();
    hashed.chunk_by(|a, b| a.0 == b.0).any(|run| {
        run.iter()
            .enumerate()
            .any(|(k, a)| run.iter().skip(k + 1).any(|b| all.get(a.1) == all.get(b.1)))
    })
}

/// Prometheus' `labels.String()`: `{a="b", c="d"}` with Go-quoted values and the
/// metric name as an ordinary label.
pub(crate) fn go_labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        s.push_str(&go_quote(&l.value));
    }
    s.push('}');
    s
}

/// Go's `strconv.Quote` for the characters label values usually hold.
pub(crate) fn go_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\u{7}' => s.push_str("\\a"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\u{b}' => s.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that round-trips,
/// never in exponent form (what `count_values` writes into its label).
pub fn go_format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display is the shortest round-trip decimal without an exponent, as
        // Go's is, except where two shortest decimals are exactly as close to `v`:
        // Go then takes the one with the even last digit, Rust the upper one.
        round_half_even(format!("{v}"), v)
    }
}

/// Replaces Rust's shortest decimal `shortest` of `v` by the other shortest decimal
/// when `v` lies exactly halfway between them and the other one ends in an even digit,
/// as Go's `strconv` chooses (e.g. 1000000000000000.25 → "1000000000000000.2").
fn round_half_even(shortest: String, v: f64) -> String {
    let Some((_, frac)) = shortest.split_once('.') else {
        return shortest;
    };
    let digits = frac.len();
    // A precision this large prints the exact binary value (at most 1074 fraction
    // digits), so the tail below says whether `v` is exactly on the halfway point.
    let exact = format!("{:.1100}", v);
    let Some((int_part, exact_frac)) = exact.split_once('.') else {
        return shortest;
    };
    let (kept, tail) = exact_frac.split_at(digits.min(exact_frac.len()));
    let mut tail_chars = tail.chars();
    let is_tie = tail_chars.next() == Some('5') && tail_chars.all(|c| c == '0');
    let even = kept
        .chars()
        .last()
        .and_then(|c| c.to_digit(10))
        .is_some_and(|d| d % 2 == 0);
    if !is_tie || !even {
        return shortest;
    }
    let truncated = format!("{int_part}.{kept}");
    if truncated.parse::<f64>().ok() == Some(v) && truncated != shortest {
        truncated
    } else {
        shortest
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`: shortest digits,
/// exponent form below 1e-4 and from 1e+06 up), for error messages that quote a value.
pub(crate) fn go_format_v(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits with a decimal exponent.
    let e = format!("{v:e}");
    let (mantissa, exp) = match e.split_once('e') {
        Some((m, x)) => (m.to_string(), x.parse::<i32>().unwrap_or(0)),
        None => return e,
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Go's `%f` (six decimals) as Prometheus' holt_winters error message uses it.
pub(crate) fn go_format_f6(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Whether `name` is a valid label name for Prometheus' `model.LabelName.IsValid`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    crate::model::is_valid_label_name(name)
}

#[cfg(test)]
mod go_float_tests {
    use super::go_format_f;

    #[test]
    #[expect(
        clippy::excessive_precision,
        reason = "the literals are exact binary values on a decimal halfway point, which is the point"
    )]
    fn exact_ties_round_to_even_like_go() {
        assert_eq!(go_format_f(1000000000000000.25), "1000000000000000.2");
        assert_eq!(go_format_f(-1000000000000000.25), "-1000000000000000.2");
        assert_eq!(go_format_f(1000000000000000.75), "1000000000000000.8");
        assert_eq!(go_format_f(0.1), "0.1");
        assert_eq!(go_format_f(2.5), "2.5");
        assert_eq!(go_format_f(-0.0), "-0");
        assert_eq!(go_format_f(1e21), "1000000000000000000000");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats_match() {
        assert_eq!(go_format_v(1e21), "1e+21");
        assert_eq!(go_format_v(1e6), "1e+06");
        assert_eq!(go_format_v(123456.0), "123456");
        assert_eq!(go_format_v(1234567.0), "1.234567e+06");
        assert_eq!(go_format_v(0.0001), "0.0001");
        assert_eq!(go_format_v(0.00001), "1e-05");
        assert_eq!(go_format_v(-2.5), "-2.5");
        assert_eq!(go_format_f(1e21), "1000000000000000000000");
        assert_eq!(go_format_f(0.1), "0.1");
        assert_eq!(go_format_f(f64::INFINITY), "+Inf");
        assert_eq!(go_format_f6(0.5), "0.500000");
    }

    #[test]
    fn labels_from_drops_empty_and_keeps_last() {
        let l = labels_from(vec![
            Label::new("b", "1"),
            Label::new("a", ""),
            Label::new("b", "2"),
        ]);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.len(), 1);
    }
}
