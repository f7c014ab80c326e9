//! Prometheus' JSON, byte for byte: the response envelope, query results, and the
//! number and string formats of Prometheus 2.42 (Go's `encoding/json` and
//! `json-iterator` in standard-library mode, plus Prometheus' own `jsonutil`).
//!
//! serde_json is not used for responses because its bytes differ from Go's: it sorts
//! struct fields it has no order for (`data` before `status`), does not escape `<`,
//! `>` and `&`, and writes `\b`/`\f` where Go writes `\u0008`/`\u000c`. Clients that
//! compare or cache responses (and our own differential tests) see those bytes.
//!
//! Three float formats coexist in Prometheus' answers, and each is mirrored here:
//! - sample values of vectors and matrices ([`push_sample_value`]): `jsonutil.MarshalValue`,
//!   `strconv.FormatFloat(v, 'f', -1, 64)` but `'e'` below 1e-6 and from 1e21 on;
//! - timestamps of vectors and matrices ([`push_timestamp`]): `jsonutil.MarshalTimestamp`,
//!   integer seconds and a 3-digit millisecond fraction unless it is zero (`.120`);
//! - scalar and string results (`promql.Scalar.MarshalJSON`): the timestamp as a Go
//!   JSON float (`1700000000.12`) and the value always in `'f'` format.

use std::fmt::Write as _;

use serde_json::Value;
use tsdb_engine::model::Labels;
use tsdb_engine::promql::{InstantSample, QueryValue, RangeSeries};

/// Appends `s` as a JSON string the way Go's `encoding/json` does with HTML escaping
/// on (its default, and json-iterator's standard-library mode): `<`, `>`, `&`, U+2028
/// and U+2029 as `\u` escapes, control characters other than `\n`, `\r`, `\t` as
/// `\u00xx` (Go before 1.22 has no `\b`/`\f` short forms; 2.42 is built with 1.19).
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) & 0xf]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that reads back as
/// `v`, never with an exponent; `NaN`, `+Inf`, `-Inf`.
pub fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Shortest round-trip digits in plain decimal notation, ties to even as Go
    // breaks them; one implementation, shared with the evaluator's labels.
    tsdb_engine::promql::go_format_f(v)
}

/// `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, `d.ddde±dd` with an
/// exponent of at least two digits; `NaN`, `+Inf`, `-Inf`.
pub fn format_float_e(v: f64) -> String {
    if !v.is_finite() {
        return format_float_f(v);
    }
    // Rust's `{:e}` has the same shortest digits but writes `1e21` and `1.5e-7`.
    let rust = format!("{v:e}");
    let Some((mantissa, exp)) = rust.split_once('e') else {
        return rust;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let pad = if digits.len() < 2 { "0" } else { "" };
    format!("{mantissa}e{sign}{pad}{digits}")
}

/// A float64 as Go's `encoding/json` writes a number: `'f'` format, except `'e'`
/// below 1e-6 and from 1e21 on, with a one-digit negative exponent kept short
/// (`1e-7`, but `1e+21`). Non-finite numbers do not occur where this is used
/// (timestamps); they are written as Prometheus writes values so the JSON stays valid.
pub fn push_go_json_float(out: &mut String, v: f64) {
    if !v.is_finite() {
        push_json_str(out, &format_float_f(v));
        return;
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = format_float_e(v);
        // Go: "clean up e-09 to e-9".
        if let Some(at) = s.find("e-0")
            && s.len() == at + 4
        {
            s.remove(at + 2);
        }
        out.push_str(&s);
    } else {
        out.push_str(&format_float_f(v));
    }
}

/// `jsonutil.MarshalValue`: a sample value as a JSON string.
pub fn push_sample_value(out: &mut String, v: f64) {
    let abs = v.abs();
    // Go sends NaN down the 'f' branch and this down the 'e' one; both print "NaN".
    let s = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        format_float_e(v)
    } else {
        format_float_f(v)
    };
    out.push('"');
    out.push_str(&s);
    out.push('"');
}

/// `jsonutil.MarshalTimestamp`: milliseconds as seconds, with a fraction only when it
/// is not zero, always three digits (`1700000000.120`, `1700000000.005`).
pub fn push_timestamp(out: &mut String, t_ms: i64) {
    if t_ms < 0 {
        out.push('-');
    }
    let t = t_ms.unsigned_abs();
    let _ = write!(out, "{}", t / 1000);
    let fraction = t % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// A label set as `labels.Labels.MarshalJSON` writes it: an object with sorted keys.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    // `Labels` is sorted by name by construction, which is the byte order Go uses
    // for map keys.
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &l.name);
        out.push(':');
        push_json_str(out, &l.value);
    }
    out.push('}');
}

/// Any JSON value in Go's bytes: object keys in sorted order (as Go writes maps;
/// serde_json's map is sorted too), numbers as Go writes int and float64.
pub fn push_json_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                push_go_json_float(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => push_json_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_value(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, k);
                out.push(':');
                push_json_value(out, x);
            }
            out.push('}');
        }
    }
}

/// A JSON value as Go writes it.
pub fn json_value(v: &Value) -> String {
    let mut out = String::new();
    push_json_value(&mut out, v);
    out
}

/// An object with fields in the given order (a Go struct), values already JSON.
pub fn object(fields: &[(&str, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::new();
    push_json_str(&mut out, s);
    out
}

/// `{"status":"success","data":…}` with `warnings` after `data` when there are any,
/// the field order of Prometheus' `response` struct.
pub fn success_body(data_json: &str, warnings: &[String]) -> String {
    let mut out = String::with_capacity(data_json.len() + 32);
    out.push_str(r#"{"status":"success","data":"#);
    out.push_str(data_json);
    if !warnings.is_empty() {
        out.push_str(r#","warnings":["#);
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, w);
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// `{"status":"error","errorType":…,"error":…}`.
pub fn error_body(kind: &str, message: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    push_json_str(&mut out, kind);
    out.push_str(r#","error":"#);
    push_json_str(&mut out, message);
    out.push('}');
    out
}

/// The `data` of a query answer: `{"resultType":…,"result":…}`.
pub fn query_data(value: &QueryValue) -> String {
    let mut out = String::new();
    out.push_str(r#"{"resultType":"#);
    match value {
        QueryValue::Scalar(p) => {
            out.push_str(r#""scalar","result":["#);
            push_go_json_float(&mut out, p.timestamp_ms as f64 / 1000.0);
            out.push(',');
            push_json_str(&mut out, &format_float_f(p.value));
            out.push(']');
        }
        QueryValue::String {
            timestamp_ms,
            value,
        } => {
            out.push_str(r#""string","result":["#);
            push_go_json_float(&mut out, *timestamp_ms as f64 / 1000.0);
            out.push(',');
            push_json_str(&mut out, value);
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push_str(r#""vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_instant_sample(&mut out, s);
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push_str(r#""matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_range_series(&mut out, s);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn push_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t_ms);
    out.push(',');
    push_sample_value(out, v);
    out.push(']');
}

/// `{"metric":{…},"value":[t,"v"]}`.
fn push_instant_sample(out: &mut String, s: &InstantSample) {
    out.push_str(r#"{"metric":"#);
    push_labels(out, &s.labels);
    out.push_str(r#","value":"#);
    push_point(out, s.timestamp_ms, s.value);
    out.push('}');
}

/// `{"metric":{…},"values":[[t,"v"],…]}`; Prometheus leaves `values` out of a series
/// without points.
fn push_range_series(out: &mut String, s: &RangeSeries) {
    out.push_str(r#"{"metric":"#);
    push_labels(out, &s.labels);
    if !s.points.is_empty() {
        out.push_str(r#","values":["#);
        for (i, p) in s.points.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_point(out, p.timestamp_ms, p.value);
        }
        out.push(']');
    }
    out.push('}');
}

/// Unix milliseconds as Go's `time.Time` JSON (RFC 3339 with nanoseconds, trailing
/// zeros of the fraction dropped), in UTC.
pub fn rfc3339_ms(t_ms: i64) -> String {
    let secs = t_ms.div_euclid(1000);
    let ms = t_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if ms != 0 {
        let frac = format!("{ms:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// algorithm, the inverse of `params::days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb_engine::model::Label;
    use tsdb_engine::promql::Point;

    fn value(v: f64) -> String {
        let mut s = String::new();
        push_sample_value(&mut s, v);
        s
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
    }

    /// `strconv.FormatFloat(v, 'f', -1, 64)` outputs, as Go prints them.
    #[test]
    fn floats_format_like_go_f() {
        let table: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (100.0, "100"),
            (123456789.0, "123456789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (1.5e-7, "0.00000015"),
            (1e20, "100000000000000000000"),
            (123e-10, "0.0000000123"),
            (1700000000.123, "1700000000.123"),
            (9007199254740993.0, "9007199254740992"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in table {
            assert_eq!(format_float_f(v), want, "{v:?}");
        }
        // 17 significant digits, then zeros up to 309 digits before the point.
        let max = format!("17976931348623157{}", "0".repeat(292));
        assert_eq!(format_float_f(f64::MAX), max);
    }

    /// `strconv.FormatFloat(v, 'e', -1, 64)` outputs.
    #[test]
    fn floats_format_like_go_e() {
        let table: &[(f64, &str)] = &[
            (1e21, "1e+21"),
            (1e-7, "1e-07"),
            (1.5e-7, "1.5e-07"),
            (-2.5e22, "-2.5e+22"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (123456.0, "1.23456e+05"),
            (f64::INFINITY, "+Inf"),
        ];
        for &(v, want) in table {
            assert_eq!(format_float_e(v), want, "{v:?}");
        }
    }

    /// What Prometheus 2.42 writes for sample values (`jsonutil.MarshalValue`).
    #[test]
    fn sample_values_render_like_prometheus() {
        for (v, want) in [
            (1.0, r#""1""#),
            (0.0, r#""0""#),
            (-0.0, r#""-0""#),
            (0.5, r#""0.5""#),
            (1e-6, r#""0.000001""#),
            (9.99e-7, r#""9.99e-07""#),
            (1e21, r#""1e+21""#),
            (1e20, r#""100000000000000000000""#),
            (f64::NAN, r#""NaN""#),
            (f64::INFINITY, r#""+Inf""#),
            (f64::NEG_INFINITY, r#""-Inf""#),
        ] {
            assert_eq!(value(v), want, "{v:?}");
        }
    }

    /// Go's `encoding/json` float64 numbers, used for scalar/string timestamps.
    #[test]
    fn go_json_floats() {
        for (v, want) in [
            (0.0, "0"),
            (1700000000.0, "1700000000"),
            (1700000000.12, "1700000000.12"),
            (0.001, "0.001"),
            (-1.5, "-1.5"),
            (1e-7, "1e-7"),
            (1e21, "1e+21"),
        ] {
            let mut s = String::new();
            push_go_json_float(&mut s, v);
            assert_eq!(s, want, "{v:?}");
        }
    }

    #[test]
    fn timestamps_render_like_marshal_timestamp() {
        for (t, want) in [
            (1_700_000_000_000, "1700000000"),
            (1_700_000_000_123, "1700000000.123"),
            (1_700_000_000_120, "1700000000.120"),
            (1_700_000_000_005, "1700000000.005"),
            (1_700_000_000_050, "1700000000.050"),
            (0, "0"),
            (5, "0.005"),
            (-1_500, "-1.500"),
        ] {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            assert_eq!(s, want, "{t}");
        }
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(
            string("\n\r\t\u{8}\u{c}\u{1f}"),
            r#""\n\r\t\u0008\u000c\u001f""#
        );
        assert_eq!(
            string("\u{2028}\u{2029}é\u{7f}"),
            "\"\\u2028\\u2029é\u{7f}\""
        );
    }

    #[test]
    fn query_results_render_like_prometheus() {
        let v = QueryValue::Vector(vec![InstantSample {
            labels: labels(&[("__name__", "up"), ("job", "a<b")]),
            timestamp_ms: 1_700_000_000_120,
            value: 1.0,
        }]);
        assert_eq!(
            query_data(&v),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"value":[1700000000.120,"1"]}]}"#
        );
        let m = QueryValue::Matrix(vec![
            RangeSeries {
                labels: labels(&[("job", "a")]),
                points: vec![
                    Point {
                        timestamp_ms: 1_700_000_000_000,
                        value: 0.25,
                    },
                    Point {
                        timestamp_ms: 1_700_000_015_000,
                        value: f64::NAN,
                    },
                ],
            },
            RangeSeries {
                // An aggregation's result has no labels: `{}`.
                labels: Labels::default(),
                points: vec![],
            },
        ]);
        assert_eq!(
            query_data(&m),
            r#"{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1700000000,"0.25"],[1700000015,"NaN"]]},{"metric":{}}]}"#
        );
        let s = QueryValue::Scalar(Point {
            timestamp_ms: 1_700_000_000_120,
            value: 1e21,
        });
        assert_eq!(
            query_data(&s),
            r#"{"resultType":"scalar","result":[1700000000.12,"1000000000000000000000"]}"#
        );
        let st = QueryValue::String {
            timestamp_ms: 1_700_000_000_000,
            value: "a\"b".into(),
        };
        assert_eq!(
            query_data(&st),
            r#"{"resultType":"string","result":[1700000000,"a\"b"]}"#
        );
        assert_eq!(
            query_data(&QueryValue::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
    }

    #[test]
    fn envelopes_keep_prometheus_field_order() {
        assert_eq!(success_body("[]", &[]), r#"{"status":"success","data":[]}"#);
        assert_eq!(
            success_body(r#"["a"]"#, &["results truncated due to limit".into()]),
            r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#
        );
        assert_eq!(
            error_body("bad_data", "x \"y\""),
            r#"{"status":"error","errorType":"bad_data","error":"x \"y\""}"#
        );
        let v: Value = serde_json::from_str(r#"{"b":[1,-2,1.5,null,true],"a":"<"}"#).unwrap();
        assert_eq!(json_value(&v), r#"{"a":"\u003c","b":[1,-2,1.5,null,true]}"#);
    }

    #[test]
    fn times_render_as_rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_ms(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
