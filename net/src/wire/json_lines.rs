//! VictoriaMetrics' JSON lines format (`/api/v1/import`, `/api/v1/export`): one object
//! per line, `{"metric":{"__name__":"up","job":"a"},"values":[1,2.5],"timestamps":[…]}`.
//!
//! [`parse`] reads it with serde_json straight into our types (no intermediate
//! `serde_json::Value` tree); [`write_series`] writes it so that [`parse`] reads back
//! the same bits. Non-finite values travel as the strings `"NaN"`, `"+Inf"`, `"-Inf"`.
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::io::Write as _;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use tsdb_engine::model::{Label, Labels, Sample, SeriesSamples, is_stale_nan};

use super::{BatchBuilder, IngestLimits, WireError, at_line, build_labels, numbered_lines};

/// Parses a JSON lines body. Blank lines are skipped; samples of the same series are
/// merged. One bad line refuses the whole request, with an error naming the line.
pub fn parse(body: &[u8], limits: &IngestLimits) -> Result<Vec<SeriesSamples>, WireError> {
    let mut batch = BatchBuilder::default();
    for (line_no, line) in numbered_lines(body) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        parse_line(line, limits, &mut batch).map_err(|e| at_line(line_no, e))?;
    }
    Ok(batch.finish())
}

fn parse_line(
    line: &[u8],
    limits: &IngestLimits,
    batch: &mut BatchBuilder,
) -> Result<(), WireError> {
    // serde would also read a struct from an array of its fields; the format has
    // objects only.
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(WireError::BadData("expected a JSON object".into()));
    }
    let parsed: JsonLine = serde_json::from_slice(line).map_err(json_error)?;
    if parsed.values.len() != parsed.timestamps.len() {
        return Err(WireError::BadData(format!(
            "{} values but {} timestamps; they must pair up",
            parsed.values.len(),
            parsed.timestamps.len()
        )));
    }
    let labels = build_labels(parsed.metric.0, limits)?;
    if parsed.values.is_empty() {
        return Ok(());
    }
    let samples = parsed
        .timestamps
        .iter()
        .zip(&parsed.values)
        .map(|(&timestamp_ms, value)| Sample::new(timestamp_ms, value.0))
        .collect();
    batch.extend(labels, samples, limits)
}

/// Restates a serde_json error without its position "at line 1 column 7" (every line
/// is parsed on its own, so serde_json's line number is always 1); the caller adds ours.
fn json_error(e: serde_json::Error) -> WireError {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    WireError::BadData(format!("column {}: {message}", e.column()))
}

/// One line as it is on the wire.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    metric: Metric,
    values: Vec<Value>,
    timestamps: Vec<i64>,
}

/// The `metric` object, read straight into label pairs. Duplicate names are kept here
/// so that [`build_labels`] refuses them, rather than silently keeping the last one.
struct Metric(Vec<Label>);

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MetricVisitor;
        impl<'de> Visitor<'de> for MetricVisitor {
            type Value = Metric;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of label names to string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metric, A::Error> {
                let mut labels = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    labels.push(Label::new(name, value));
                }
                Ok(Metric(labels))
            }
        }
        d.deserialize_map(MetricVisitor)
    }
}

/// One sample value: a JSON number, or a string naming a non-finite value.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a number or one of "NaN", "Inf", "+Inf", "-Inf""#)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value(v))
            }

            // `as` rounds to nearest, as parsing the same digits as a float would.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value(v as f64))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                let value = if v.eq_ignore_ascii_case("nan") {
                    f64::NAN
                } else if v.eq_ignore_ascii_case("inf") || v.eq_ignore_ascii_case("+inf") {
                    f64::INFINITY
                } else if v.eq_ignore_ascii_case("-inf") {
                    f64::NEG_INFINITY
                } else {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                };
                Ok(Value(value))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// Appends one line for `labels` and `samples` (timestamps in ms). Staleness markers
/// are internal to Prometheus' model and are not exported; if nothing else is left,
/// nothing is written.
pub fn write_series(out: &mut Vec<u8>, labels: &Labels, samples: &[Sample]) {
    if samples.iter().all(|s| is_stale_nan(s.value)) {
        return;
    }
    let exported = || samples.iter().filter(|s| !is_stale_nan(s.value));
    out.extend_from_slice(br#"{"metric":{"#);
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(out, &label.name);
        out.push(b':');
        write_json_string(out, &label.value);
    }
    out.extend_from_slice(br#"},"values":["#);
    for (i, sample) in exported().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, sample.value);
    }
    out.extend_from_slice(br#"],"timestamps":["#);
    for (i, sample) in exported().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing to a Vec<u8> cannot fail.
        let _ = write!(out, "{}", sample.timestamp_ms);
    }
    out.extend_from_slice(b"]}\n");
}

/// Writes `v` as the shortest decimal that parses back to the same bits (Rust's float
/// formatting guarantees that), `1` rather than `1.0` for integral values.
fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(br#""NaN""#);
    } else if v == f64::INFINITY {
        out.extend_from_slice(br#""+Inf""#);
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(br#""-Inf""#);
    } else {
        // `{:?}` switches to exponent notation for very large and very small values,
        // which keeps 1e308 short; its output is always valid JSON once a trailing
        // ".0" is dropped (`-0` parses back as negative zero). Writing to a Vec<u8>
        // cannot fail.
        let _ = write!(out, "{v:?}");
        if out.ends_with(b".0") {
            out.truncate(out.len() - 2);
        }
    }
}

/// Writes `s` as a JSON string: quotes, backslashes and control characters escaped.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(br#"\""#),
            b'\\' => out.extend_from_slice(br"\\"),
            b'\n' => out.extend_from_slice(br"\n"),
            b'\r' => out.extend_from_slice(br"\r"),
            b'\t' => out.extend_from_slice(br"\t"),
            0..0x20 => {
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                out.extend_from_slice(br"\u00");
                out.push(hex(b >> 4));
                out.push(hex(b & 0xf));
            }
            // Other bytes, including those of multi-byte UTF-8 characters, go as is.
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz;
    use tsdb_engine::model::STALE_NAN_BITS;

    fn ok(body: &str) -> Vec<SeriesSamples> {
        parse(body.as_bytes(), &IngestLimits::default()).unwrap_or_else(|e| panic!("{body:?}: {e}"))
    }

    fn err(body: &str) -> String {
        match parse(body.as_bytes(), &IngestLimits::default()) {
            Ok(got) => panic!("{body:?} was accepted: {got:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
    }

    fn written(labels: &Labels, samples: &[Sample]) -> String {
        let mut out = Vec::new();
        write_series(&mut out, labels, samples);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_the_documented_example() {
        let got = ok(
            r#"{"metric":{"__name__":"up","job":"a"},"values":[1,2.5],"timestamps":[1700000000000,1700000010000]}"#,
        );
        assert_eq!(
            got,
            [SeriesSamples {
                labels: labels(&[("__name__", "up"), ("job", "a")]),
                samples: vec![
                    Sample::new(1_700_000_000_000, 1.0),
                    Sample::new(1_700_000_010_000, 2.5)
                ],
            }]
        );
    }

    #[test]
    fn parses_special_values_and_big_integers() {
        let got = ok(
            r#"{"values":["NaN","+Inf","-Inf","Inf",-0,18446744073709551615,-9223372036854775808],"timestamps":[1,2,3,4,5,6,7],"metric":{"__name__":"x"}}"#,
        );
        let v: Vec<f64> = got[0].samples.iter().map(|s| s.value).collect();
        assert!(v[0].is_nan());
        assert_eq!(v[1..4], [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]);
        assert_eq!(v[4].to_bits(), (-0.0f64).to_bits());
        assert_eq!(v[5], 18_446_744_073_709_551_615.0);
        assert_eq!(v[6], -9_223_372_036_854_775_808.0);
    }

    #[test]
    fn skips_blank_lines_merges_series_and_tolerates_crlf() {
        let body = "\n{\"metric\":{\"__name__\":\"a\"},\"values\":[1],\"timestamps\":[1]}\r\n  \r\n\
                    {\"metric\":{\"__name__\":\"b\"},\"values\":[2],\"timestamps\":[2]}\n\
                    { \"metric\" : { \"__name__\" : \"a\" } , \"values\" : [ 3 ] , \"timestamps\" : [ 3 ] }\n";
        let got = ok(body);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples, [Sample::new(1, 1.0), Sample::new(3, 3.0)]);
        assert_eq!(got[1].samples, [Sample::new(2, 2.0)]);
        assert!(ok("").is_empty());
        assert!(ok(r#"{"metric":{"__name__":"a"},"values":[],"timestamps":[]}"#).is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let good = r#"{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]}"#;
        let cases = [
            (
                r#"{"metric":{"__name__":"a"},"values":[1,2],"timestamps":[1]}"#,
                "line 2: 2 values but 1 timestamps; they must pair up",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[null],"timestamps":[1]}"#,
                r#"line 2: column 41: invalid type: null, expected a number or one of "NaN", "Inf", "+Inf", "-Inf""#,
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":["1"],"timestamps":[1]}"#,
                r#"line 2: column 40: invalid value: string "1", expected a number or one of "NaN", "Inf", "+Inf", "-Inf""#,
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1],"timestamps":[1.5]}"#,
                "line 2: column 57: invalid type: floating point `1.5`, expected i64",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1],"timestamps":[1],"extra":1}"#,
                "line 2: column 64: unknown field `extra`, expected one of `metric`, `values`, `timestamps`",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1]}"#,
                "line 2: column 40: missing field `timestamps`",
            ),
            (
                r#"{"metric":{"__name__":"a"},"metric":{},"values":[1],"timestamps":[1]}"#,
                "line 2: column 35: duplicate field `metric`",
            ),
            (
                r#"{"metric":{"__name__":1},"values":[1],"timestamps":[1]}"#,
                "line 2: column 23: invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"metric":{"a":"1","a":"2"},"values":[1],"timestamps":[1]}"#,
                r#"line 2: duplicate label name "a""#,
            ),
            (
                r#"{"metric":{"__name__":"a b"},"values":[1],"timestamps":[1]}"#,
                r#"line 2: invalid metric name "a b""#,
            ),
            (
                r#"{"metric":{},"values":[1],"timestamps":[1]}"#,
                "line 2: series has no labels",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]} x"#,
                "line 2: column 59: trailing characters",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1],"#,
                "line 2: column 40: EOF while parsing a value",
            ),
            (
                r#"{"metric":{"__name__":"a"},"values":[1e400],"timestamps":[1]}"#,
                "line 2: column 42: number out of range",
            ),
            // serde would read a struct from an array of its fields; we do not.
            (
                r#"[{"__name__":"a"},[1],[1]]"#,
                "line 2: expected a JSON object",
            ),
            ("1", "line 2: expected a JSON object"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .map(|(line, want)| (line, want, err(&format!("{good}\n{line}\n{good}"))))
            .filter(|(_, want, got)| got != *want)
            .map(|(line, want, got)| format!("{line}\n  want {want}\n  got  {got}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let e = parse(b"\xff", &IngestLimits::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 1: expected a JSON object");
        let e = parse(b"{\xff", &IngestLimits::default()).unwrap_err();
        assert!(e.to_string().starts_with("line 1: column 2: "), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = IngestLimits {
            series_per_request_max: 1,
            ..IngestLimits::default()
        };
        let body = "{\"metric\":{\"__name__\":\"a\"},\"values\":[1],\"timestamps\":[1]}\n\
                    {\"metric\":{\"__name__\":\"a\"},\"values\":[1],\"timestamps\":[2]}\n\
                    {\"metric\":{\"__name__\":\"b\"},\"values\":[1],\"timestamps\":[1]}\n";
        let e = parse(body.as_bytes(), &limits).unwrap_err();
        assert!(
            matches!(&e, WireError::Limit { limit: "series_per_request", message } if message.starts_with("line 3: ")),
            "{e:?}"
        );
        let limits = IngestLimits {
            label_name_bytes_max: 3,
            ..IngestLimits::default()
        };
        let e = parse(
            br#"{"metric":{"long":"a"},"values":[],"timestamps":[]}"#,
            &limits,
        );
        assert!(matches!(
            e,
            Err(WireError::Limit {
                limit: "label_name_length",
                ..
            })
        ));
    }

    #[test]
    fn writes_the_documented_format() {
        let l = labels(&[("job", "a"), ("__name__", "up")]);
        assert_eq!(
            written(
                &l,
                &[
                    Sample::new(1_700_000_000_000, 1.0),
                    Sample::new(1_700_000_010_000, 2.5),
                    Sample::new(3, f64::NAN),
                    Sample::new(4, f64::INFINITY),
                    Sample::new(5, f64::NEG_INFINITY),
                    Sample::new(-6, 1e308),
                ]
            ),
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"values\":[1,2.5,\"NaN\",\"+Inf\",\"-Inf\",1e308],\
             \"timestamps\":[1700000000000,1700000010000,3,4,5,-6]}\n"
        );
    }

    #[test]
    fn stale_markers_are_not_written() {
        let l = labels(&[("__name__", "up")]);
        let stale = f64::from_bits(STALE_NAN_BITS);
        assert_eq!(
            written(
                &l,
                &[
                    Sample::new(1, stale),
                    Sample::new(2, 7.0),
                    Sample::new(3, stale)
                ]
            ),
            "{\"metric\":{\"__name__\":\"up\"},\"values\":[7],\"timestamps\":[2]}\n"
        );
        assert_eq!(written(&l, &[Sample::new(1, stale)]), "");
        assert_eq!(written(&l, &[]), "");
    }

    #[test]
    fn label_values_are_escaped_and_read_back() {
        let l = labels(&[
            ("__name__", "up"),
            (
                "a",
                "quote\" backslash\\ newline\n tab\t cr\r bell\u{7} nul\u{0}",
            ),
            ("b", "ünïcödé ✓ \u{2028} 🦀"),
        ]);
        let line = written(&l, &[Sample::new(1, 1.0)]);
        assert!(line.contains(r#"bell\u0007 nul\u0000"#), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        let got = ok(&line);
        assert_eq!(got[0].labels, l);
    }

    #[test]
    fn values_round_trip_bit_exactly() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1.0 / 3.0,
            1e308,
            -1e308,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 2.0,               // subnormal
            f64::from_bits(1),                     // smallest subnormal
            f64::from_bits(0x000f_ffff_ffff_ffff), // largest subnormal
            f64::EPSILON,
            1e16,
            1e15 + 0.5,
            123_456_789.012_345_68,
            (1u64 << 53) as f64,
            -((1u64 << 53) as f64),
            ((1u64 << 53) - 1) as f64,
            9_007_199_254_740_993.0, // 2^53 + 1 rounds to 2^53
            u64::MAX as f64,
            i64::MIN as f64,
        ];
        for i in 0..=53 {
            values.push((1u64 << i) as f64);
            values.push(((1u64 << i) - 1) as f64);
            values.push(-((1u64 << i) as f64));
        }
        let mut rng = fuzz::Rng::new(0x5eed_0003);
        while values.len() < 20_000 {
            // Random bit patterns cover every exponent; integers cover the `1` path.
            let v = f64::from_bits(rng.next());
            if v.is_finite() {
                values.push(v);
            }
            values.push((rng.next() >> (11 + rng.below(53))) as f64);
        }
        let l = labels(&[("__name__", "x")]);
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64 - 10, v))
            .collect();
        let mut body = Vec::new();
        for chunk in samples.chunks(1000) {
            write_series(&mut body, &l, chunk);
        }
        let got = parse(&body, &IngestLimits::default()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples.len(), samples.len());
        for (want, got) in samples.iter().zip(&got[0].samples) {
            assert_eq!(want.timestamp_ms, got.timestamp_ms);
            assert_eq!(
                want.value.to_bits(),
                got.value.to_bits(),
                "{:?} came back as {:?}",
                want.value,
                got.value
            );
        }
        // Integral values are written without a fraction.
        assert_eq!(
            written(&l, &[Sample::new(0, 9_007_199_254_740_992.0)])
                .matches("[9007199254740992]")
                .count(),
            1
        );
        assert_eq!(
            written(&l, &[Sample::new(0, -0.0)]).matches("[-0]").count(),
            1
        );
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let seeds: [&[u8]; 3] = [
            br#"{"metric":{"__name__":"up","job":"a"},"values":[1,2.5],"timestamps":[1700000000000,1700000010000]}"#,
            b"{\"metric\":{\"__name__\":\"x\",\"a\":\"\\u00e9\\n\\\"\"},\"values\":[\"NaN\",-1e-300,\"-Inf\"],\"timestamps\":[-1,0,1]}\n\n{\"metric\":{\"__name__\":\"x\"},\"values\":[3],\"timestamps\":[9]}\r\n",
            br#"{"values":[18446744073709551616],"timestamps":[9223372036854775807],"metric":{"__name__":"b"}}"#,
        ];
        let mut rng = fuzz::Rng::new(0x5eed_0004);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let body = fuzz::mutate(&mut rng, &seeds);
            if let Ok(batch) = parse(&body, &IngestLimits::default()) {
                accepted += 1;
                // Whatever was accepted must survive a write/parse round trip.
                let mut out = Vec::new();
                for s in &batch {
                    write_series(&mut out, &s.labels, &s.samples);
                }
                let again = parse(&out, &IngestLimits::default()).unwrap();
                assert_eq!(again.len(), batch.len());
            }
        }
        assert!(accepted > 500, "only {accepted} inputs accepted");
    }
}
