//! Prometheus text exposition format 0.0.4, as scraped from `/metrics` and pushed to
//! the import endpoint: `metric_name{label="value",…} value [timestamp_ms]`.
//!
//! Comments (`# HELP`, `# TYPE`, OpenMetrics' `# EOF`, anything else after `#`) and
//! blank lines are skipped. Values use Go's float syntax, because that is what every
//! exporter's client library writes and what Prometheus' own parser accepts.
#![deny(clippy::indexing_slicing)]

use tsdb_engine::model::{Label, METRIC_NAME, Sample, SeriesSamples};

use super::{BatchBuilder, IngestLimits, WireError, at_line, build_labels, numbered_lines};

/// Parses an exposition body. Samples without a timestamp get `now_ms`; samples of the
/// same series are merged. One bad line refuses the whole request, with an error
/// naming the line.
pub fn parse(
    body: &[u8],
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<Vec<SeriesSamples>, WireError> {
    let mut batch = BatchBuilder::default();
    for (line_no, line) in numbered_lines(body) {
        let start = skip_whitespace(line, 0);
        let line = line.get(start..).unwrap_or_default();
        if line.is_empty() || line.first() == Some(&b'#') {
            continue;
        }
        parse_line(line, now_ms, limits, &mut batch).map_err(|e| at_line(line_no, e))?;
    }
    Ok(batch.finish())
}

fn parse_line(
    line: &[u8],
    now_ms: i64,
    limits: &IngestLimits,
    batch: &mut BatchBuilder,
) -> Result<(), WireError> {
    let name_end = name_end(line, 0, true);
    let name = ascii(line, 0, name_end);
    if name.is_empty() {
        return Err(bad(format!(
            "expected a metric name, found {:?}",
            lossy(line)
        )));
    }
    let mut labels = vec![Label::new(METRIC_NAME, name)];
    let mut pos = name_end;
    let brace = skip_whitespace(line, name_end);
    if line.get(brace) == Some(&b'{') {
        pos = parse_label_set(line, brace + 1, &mut labels)?;
    }

    let value_start = skip_whitespace(line, pos);
    if value_start == pos || value_start >= line.len() {
        return Err(bad(
            "expected whitespace and a value after the series".into()
        ));
    }
    let value_end = token_end(line, value_start);
    let raw = line.get(value_start..value_end).unwrap_or_default();
    let value = std::str::from_utf8(raw)
        .ok()
        .and_then(parse_go_float)
        .ok_or_else(|| bad(format!("invalid value {:?}", lossy(raw))))?;

    pos = skip_whitespace(line, value_end);
    let mut timestamp_ms = now_ms;
    if pos < line.len() && line.get(pos) != Some(&b'#') {
        let end = token_end(line, pos);
        let raw = line.get(pos..end).unwrap_or_default();
        timestamp_ms = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| bad(format!("invalid timestamp {:?}", lossy(raw))))?;
        pos = skip_whitespace(line, end);
    }
    // OpenMetrics puts an exemplar after ` # `; it is not a sample, so it is ignored.
    if pos < line.len() && line.get(pos) != Some(&b'#') {
        return Err(bad("unexpected text after the timestamp".into()));
    }

    let labels = build_labels(labels, limits)?;
    batch.push(labels, Sample::new(timestamp_ms, value), limits)
}

/// Parses `name="value",…}` (the `{` already consumed) into `labels`; returns the
/// position after the `}`. A trailing comma before `}` is allowed, as in Prometheus.
fn parse_label_set(line: &[u8], from: usize, labels: &mut Vec<Label>) -> Result<usize, WireError> {
    let mut pos = skip_whitespace(line, from);
    loop {
        if line.get(pos) == Some(&b'}') {
            return Ok(pos + 1);
        }
        let end = name_end(line, pos, false);
        let name = ascii(line, pos, end);
        if name.is_empty() {
            return Err(bad(match line.get(pos) {
                None => "label set is not closed with '}'".into(),
                Some(_) => format!(
                    "expected a label name, found {:?}",
                    lossy(line.get(pos..).unwrap_or_default())
                ),
            }));
        }
        pos = skip_whitespace(line, end);
        if line.get(pos) != Some(&b'=') {
            return Err(bad(format!("expected '=' after label name {name:?}")));
        }
        pos = skip_whitespace(line, pos + 1);
        if line.get(pos) != Some(&b'"') {
            return Err(bad(format!(
                "expected '\"' to open the value of label {name:?}"
            )));
        }
        let (value, after) = label_value(line, pos + 1)
            .ok_or_else(|| bad(format!("unterminated value of label {name:?}")))?;
        let value = String::from_utf8(value)
            .map_err(|_| bad(format!("value of label {name:?} is not valid UTF-8")))?;
        pos = skip_whitespace(line, after);
        match line.get(pos) {
            Some(b',') => pos = skip_whitespace(line, pos + 1),
            Some(b'}') => {}
            None => return Err(bad("label set is not closed with '}'".into())),
            Some(_) => return Err(bad(format!("expected ',' or '}}' after label {name:?}"))),
        }
        labels.push(Label::new(name, value));
    }
}

/// Reads a label value whose content starts at `from`, up to its closing quote.
/// Returns the unescaped bytes and the position after the quote. `\\`, `\"` and `\n`
/// are escapes; any other backslash is kept as is, as Prometheus keeps it.
fn label_value(line: &[u8], from: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = from;
    loop {
        match *line.get(i)? {
            b'"' => return Some((out, i + 1)),
            b'\\' => {
                match *line.get(i + 1)? {
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'n' => out.push(b'\n'),
                    other => out.extend_from_slice(&[b'\\', other]),
                }
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Parses a float as Go's `strconv.ParseFloat` does: decimal, hexadecimal with a `p`
/// exponent (`0x1.8p3`), and case-insensitive `NaN`, `Inf`, `Infinity` (signed, except
/// NaN).
fn parse_go_float(s: &str) -> Option<f64> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let magnitude =
        if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
            f64::INFINITY
        } else if unsigned.eq_ignore_ascii_case("nan") {
            if unsigned.len() != s.len() {
                return None;
            }
            f64::NAN
        } else if let Some(hex) = unsigned
            .strip_prefix("0x")
            .or_else(|| unsigned.strip_prefix("0X"))
        {
            parse_hex_float(hex)?
        } else {
            // Rust's syntax is Go's decimal syntax plus `inf`/`nan` spellings handled above
            // and a sign (already taken); only digits, point and exponent may remain.
            let decimal = unsigned
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if !decimal || unsigned.starts_with(['+', '-']) {
                return None;
            }
            unsigned.parse::<f64>().ok()?
        };
    Some(if negative { -magnitude } else { magnitude })
}

/// Parses the part of a hexadecimal float after `0x`: hex digits with an optional
/// point, then a mandatory binary exponent `p±d`. Underscores between digits are
/// allowed, as Go allows them after a base prefix. Correctly rounded except for
/// results in the subnormal range, which may be off by one ulp.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa_digits, exponent) = s.split_once(['p', 'P'])?;
    let exponent = parse_exponent(exponent)?;
    let mut mantissa = 0u64;
    // Binary exponent adjustment for digits after the point or dropped from the end.
    let mut shift = 0i64;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut sticky = false;
    for b in mantissa_digits.bytes() {
        if b == b'_' {
            continue;
        }
        if b == b'.' && !seen_point {
            seen_point = true;
            continue;
        }
        let digit = u64::from(char::from(b).to_digit(16)?);
        seen_digit = true;
        if mantissa >> 60 == 0 {
            mantissa = mantissa << 4 | digit;
            if seen_point {
                shift -= 4;
            }
        } else {
            // More than 60 significant bits: f64 keeps 53, so the rest only matters
            // for rounding, which a sticky low bit preserves.
            sticky |= digit != 0;
            if !seen_point {
                shift += 4;
            }
        }
    }
    if !seen_digit {
        return None;
    }
    let value = (mantissa | u64::from(sticky)) as f64;
    Some(scale_by_pow2(value, exponent.saturating_add(shift)))
}

/// A decimal exponent with optional sign; huge values saturate (the result is then 0
/// or infinity anyway).
fn parse_exponent(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let mut value = 0i64;
    let mut any = false;
    for b in digits.bytes() {
        if b == b'_' {
            continue;
        }
        let digit = i64::from(char::from(b).to_digit(10)?);
        any = true;
        value = value.saturating_mul(10).saturating_add(digit);
    }
    any.then_some(if negative { -value } else { value })
}

/// `value * 2^exponent`, in steps that stay exact while the result is normal.
fn scale_by_pow2(mut value: f64, exponent: i64) -> f64 {
    let mut exponent = exponent.clamp(-4000, 4000);
    while exponent > 1000 {
        value *= pow2(1000);
        exponent -= 1000;
    }
    while exponent < -1000 {
        value *= pow2(-1000);
        exponent += 1000;
    }
    value * pow2(exponent)
}

/// `2^e` for `-1022 <= e <= 1023`, built from its bits so it is exact.
fn pow2(e: i64) -> f64 {
    let biased = (e + 1023).clamp(1, 2046) as u64;
    f64::from_bits(biased << 52)
}

/// The end of a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or, without `colon`, a label
/// name (`[a-zA-Z_][a-zA-Z0-9_]*`) starting at `from`.
fn name_end(line: &[u8], from: usize, colon: bool) -> usize {
    let mut i = from;
    while let Some(&b) = line.get(i) {
        let ok = b.is_ascii_alphabetic()
            || b == b'_'
            || (colon && b == b':')
            || (i > from && b.is_ascii_digit());
        if !ok {
            break;
        }
        i += 1;
    }
    i
}

/// The bytes `from..to`, known to be ASCII name characters.
fn ascii(line: &[u8], from: usize, to: usize) -> String {
    String::from_utf8_lossy(line.get(from..to).unwrap_or_default()).into_owned()
}

fn token_end(line: &[u8], from: usize) -> usize {
    line.get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b' ' || b == b'\t'))
        .map_or(line.len(), |i| from + i)
}

fn skip_whitespace(line: &[u8], from: usize) -> usize {
    let mut i = from;
    while matches!(line.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// A short, printable excerpt of untrusted bytes for an error message.
fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).chars().take(64).collect()
}

fn bad(message: String) -> WireError {
    WireError::BadData(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn ok(body: &str) -> Vec<SeriesSamples> {
        parse(body.as_bytes(), NOW_MS, &IngestLimits::default())
            .unwrap_or_else(|e| panic!("{body:?}: {e}"))
    }

    /// Series as `(Prometheus notation, [(timestamp_ms, value)])`, for compact asserts.
    fn flat(body: &str) -> Vec<(String, Vec<(i64, f64)>)> {
        ok(body)
            .into_iter()
            .map(|s| {
                let samples = s
                    .samples
                    .iter()
                    .map(|s| (s.timestamp_ms, s.value))
                    .collect();
                (s.labels.to_string(), samples)
            })
            .collect()
    }

    fn err(body: &str) -> String {
        match parse(body.as_bytes(), NOW_MS, &IngestLimits::default()) {
            Ok(got) => panic!("{body:?} was accepted: {got:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_typical_scrape() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                    \n\
                    # A comment\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n\
                    rpc_duration_seconds{quantile=\"0.5\",} 4773\n\
                    ns:metric 1e-3\n\
                    # EOF\n";
        assert_eq!(
            flat(body),
            [
                (
                    "http_requests_total{code=\"200\", method=\"post\"}".to_string(),
                    vec![(1_395_066_363_000, 1027.0)]
                ),
                (
                    "http_requests_total{code=\"400\", method=\"post\"}".to_string(),
                    vec![(1_395_066_363_000, 3.0)]
                ),
                (
                    "metric_without_timestamp_and_labels{}".to_string(),
                    vec![(NOW_MS, 12.47)]
                ),
                (
                    "something_weird{problem=\"division by zero\"}".to_string(),
                    vec![(-3_982_045, f64::INFINITY)]
                ),
                (
                    "rpc_duration_seconds{quantile=\"0.5\"}".to_string(),
                    vec![(NOW_MS, 4773.0)]
                ),
                ("ns:metric{}".to_string(), vec![(NOW_MS, 0.001)]),
            ]
        );
    }

    #[test]
    fn label_value_escapes() {
        let got = ok(r#"m{a="q\"b\\n\n\t\x",b="",c="ü{},= "} 1"#);
        assert_eq!(got[0].labels.get("a"), Some("q\"b\\n\n\\t\\x"));
        assert_eq!(got[0].labels.get("b"), None, "empty values are dropped");
        assert_eq!(got[0].labels.get("c"), Some("ü{},= "));
    }

    #[test]
    fn whitespace_and_line_endings() {
        let body = "  m  { a = \"1\" , b=\"2\" , }\t2\t 5 \r\n\t\r\n  # indented comment\r\nm{b=\"2\",a=\"1\"} 3 6\r\nm{} 4";
        assert_eq!(
            flat(body),
            [
                ("m{a=\"1\", b=\"2\"}".to_string(), vec![(5, 2.0), (6, 3.0)]),
                ("m{}".to_string(), vec![(NOW_MS, 4.0)]),
            ]
        );
        assert!(ok("").is_empty());
        assert!(ok("# EOF").is_empty());
    }

    #[test]
    fn openmetrics_exemplars_are_ignored() {
        assert_eq!(
            flat("m_total 5 # {trace_id=\"abc\"} 1 1\nm_bucket{le=\"1\"} 2 7 # {} 1"),
            [
                ("m_total{}".to_string(), vec![(NOW_MS, 5.0)]),
                ("m_bucket{le=\"1\"}".to_string(), vec![(7, 2.0)]),
            ]
        );
    }

    #[test]
    fn go_float_syntax() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+2", 2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("-0", -0.0),
            ("Inf", f64::INFINITY),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1.7976931348623157e308", f64::MAX),
            ("4.9e-324", f64::from_bits(1)),
            ("1e400", f64::INFINITY),
            ("0x1p-2", 0.25),
            ("0X1.8P3", 12.0),
            ("-0x1_0p0", -16.0),
            ("0x.8p1", 1.0),
            ("0x1p1024", f64::INFINITY),
            ("0x1p-1074", f64::from_bits(1)),
            ("0x1fffffffffffffp0", 9_007_199_254_740_991.0),
            // 2^64 + 1 (65 bits): the sticky bit makes it round like the exact value.
            ("0x10000000000000001p0", 18_446_744_073_709_551_616.0),
            ("0x20000000000001.8p0", 9_007_199_254_740_994.0),
        ];
        for &(raw, want) in cases {
            let got = parse_go_float(raw);
            assert_eq!(
                got.map(f64::to_bits),
                Some(want.to_bits()),
                "{raw}: {got:?}"
            );
        }
        for raw in ["NaN", "nan", "NAN"] {
            assert!(parse_go_float(raw).is_some_and(f64::is_nan), "{raw}");
        }
        for raw in [
            "", "-", "+", "+NaN", "-nan", "1_000", "0x1", "0x1p", "0xp1", "0x1.8", "1e", "e1",
            "1.5.5", "infinit", "1ms", "--1", "+-1", "0b101", "١",
        ] {
            assert_eq!(parse_go_float(raw), None, "{raw}");
        }
    }

    #[test]
    fn merges_samples_of_the_same_series() {
        let got = flat("a{x=\"1\"} 1 1\na{x=\"2\"} 2 1\na{x=\"1\"} 3 2\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, [(1, 1.0), (2, 3.0)]);
    }

    #[test]
    fn errors_name_the_line_and_refuse_the_request() {
        let cases = [
            ("1abc 1", "expected a metric name, found \"1abc 1\""),
            (
                "{a=\"b\"} 1",
                "expected a metric name, found \"{a=\\\"b\\\"} 1\"",
            ),
            ("m", "expected whitespace and a value after the series"),
            ("m ", "expected whitespace and a value after the series"),
            (
                "m{a=\"b\"}",
                "expected whitespace and a value after the series",
            ),
            (
                "m{a=\"b\"}1",
                "expected whitespace and a value after the series",
            ),
            ("m-1 1", "expected whitespace and a value after the series"),
            ("m{a=\"b\"", "label set is not closed with '}'"),
            ("m{a=\"b\",", "label set is not closed with '}'"),
            ("m{a} 1", "expected '=' after label name \"a\""),
            ("m{a=b} 1", "expected '\"' to open the value of label \"a\""),
            ("m{a=\"b} 1", "unterminated value of label \"a\""),
            ("m{a=\"b\\", "unterminated value of label \"a\""),
            (
                "m{a=\"b\" c=\"d\"} 1",
                "expected ',' or '}' after label \"a\"",
            ),
            ("m{,} 1", "expected a label name, found \",} 1\""),
            (
                "m{1a=\"b\"} 1",
                "expected a label name, found \"1a=\\\"b\\\"} 1\"",
            ),
            ("m{a.b=\"c\"} 1", "expected '=' after label name \"a\""),
            ("m abc", "invalid value \"abc\""),
            ("m 1 2.5", "invalid timestamp \"2.5\""),
            ("m 1 2 3", "unexpected text after the timestamp"),
            ("m{a=\"1\",a=\"2\"} 1", "duplicate label name \"a\""),
            ("m{__name__=\"x\"} 1", "duplicate label name \"__name__\""),
        ];
        let mut wrong = Vec::new();
        for (line, want) in cases {
            let want = format!("line 3: {want}");
            let got = err(&format!("ok 1\n# comment\n{line}\nok 2"));
            if got != want {
                wrong.push(format!("{line}\n  want {want}\n  got  {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let e = parse(b"m{a=\"\xff\"} 1", 0, &IngestLimits::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: value of label \"a\" is not valid UTF-8"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = IngestLimits {
            series_per_request_max: 2,
            ..IngestLimits::default()
        };
        let e = parse(b"a 1\nb 1\na 2\nc 1\n", 0, &limits).unwrap_err();
        assert!(
            matches!(&e, WireError::Limit { limit: "series_per_request", message } if message.starts_with("line 4: ")),
            "{e:?}"
        );
        let limits = IngestLimits {
            label_value_bytes_max: 3,
            ..IngestLimits::default()
        };
        assert!(parse(b"m{a=\"abc\"} 1", 0, &limits).is_ok());
        let e = parse(b"m{a=\"abcd\"} 1", 0, &limits).unwrap_err();
        assert!(matches!(
            e,
            WireError::Limit {
                limit: "label_value_length",
                ..
            }
        ));
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let seeds: [&[u8]; 4] = [
            b"# HELP x y\n# TYPE x counter\nx_total{a=\"b\",c=\"d\\\"e\\\\\\n\",} 1027 1395066363000\n",
            b"m 0x1.8p3\nm{a=\"1\"} -Inf\r\nn NaN 5 # {t=\"x\"} 1\n# EOF\n",
            b"  m  { a = \"1\" , }\t2\t 5 \nmetric:sub 1e-300 -9223372036854775808\n",
            b"m 0x1_0000_0000_0000_0000_1p-1100\n",
        ];
        let mut rng = fuzz::Rng::new(0x5eed_0005);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let body = fuzz::mutate(&mut rng, &seeds);
            if parse(&body, NOW_MS, &IngestLimits::default()).is_ok() {
                accepted += 1;
            }
            // The float parser sees short, dense garbage too.
            if let Ok(s) = std::str::from_utf8(body.get(..body.len().min(24)).unwrap_or_default()) {
                std::hint::black_box(parse_go_float(s));
            }
        }
        assert!(accepted > 1000, "only {accepted} inputs accepted");
    }
}
