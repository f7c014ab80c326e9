//! InfluxDB line protocol (1.x `/write` and 2.x `/api/v2/write`), mapped to series the
//! way VictoriaMetrics maps it: a field named `value` becomes the metric named after the
//! measurement, any other field `f` becomes `<measurement>_f`, and tags become labels.
//!
//! Syntax: `measurement[,tag=v…] field=v[,field=v…] [timestamp]`, one point per line.
//! Lines are split at every newline byte, so a string field cannot span lines (string
//! fields are dropped anyway: a series holds numbers only). Names that Prometheus would
//! refuse are sanitized (invalid characters become `_`) rather than refused, because
//! Influx clients have no way to know our naming rules.
#![deny(clippy::indexing_slicing)]

use tsdb_engine::model::{Label, METRIC_NAME, Sample, SeriesSamples};

use super::{BatchBuilder, IngestLimits, WireError, at_line, build_labels, numbered_lines};

/// The unit of the timestamps in a request (the `precision=` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds: InfluxDB's default when no precision is given.
    #[default]
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
}

impl Precision {
    /// Parses a `precision=` value as InfluxDB 1.x (`n`, `u`, `ms`, `s`, `m`, `h`) and
    /// 2.x (`ns`, `us`, `ms`, `s`) spell it.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "ns" | "n" => Some(Precision::Ns),
            // Micro sign (U+00B5) and Greek mu (U+03BC) look alike; accept both.
            "us" | "u" | "\u{b5}" | "\u{b5}s" | "\u{3bc}" | "\u{3bc}s" => Some(Precision::Us),
            "ms" => Some(Precision::Ms),
            "s" => Some(Precision::S),
            "m" => Some(Precision::M),
            "h" => Some(Precision::H),
            _ => None,
        }
    }

    /// Converts a timestamp in this unit to milliseconds; sub-millisecond parts are
    /// floored (toward -inf, so that ordering is kept for pre-1970 timestamps). `None`
    /// when the result does not fit an `i64`.
    fn timestamp_ms(self, ts: i64) -> Option<i64> {
        match self {
            Precision::Ns => Some(ts.div_euclid(1_000_000)),
            Precision::Us => Some(ts.div_euclid(1_000)),
            Precision::Ms => Some(ts),
            Precision::S => ts.checked_mul(1_000),
            Precision::M => ts.checked_mul(60_000),
            Precision::H => ts.checked_mul(3_600_000),
        }
    }
}

/// Parses a line-protocol body. Points without a timestamp get `now_ms`. Samples of the
/// same series are merged into one [`SeriesSamples`]. One bad line refuses the whole
/// request, with an error naming the line.
pub fn parse(
    body: &[u8],
    precision: Precision,
    now_ms: i64,
    limits: &IngestLimits,
) -> Result<Vec<SeriesSamples>, WireError> {
    let mut batch = BatchBuilder::default();
    for (line_no, line) in numbered_lines(body) {
        let line = trim_start(line);
        if line.is_empty() || line.first() == Some(&b'#') {
            continue;
        }
        parse_line(line, precision, now_ms, limits, &mut batch).map_err(|e| at_line(line_no, e))?;
    }
    Ok(batch.finish())
}

/// One parsed line, before it is turned into series.
struct Point {
    measurement: String,
    tags: Vec<Label>,
    /// Numeric fields only: string fields are dropped, as VictoriaMetrics drops them.
    fields: Vec<(String, f64)>,
    timestamp: Option<i64>,
}

fn parse_line(
    line: &[u8],
    precision: Precision,
    now_ms: i64,
    limits: &IngestLimits,
    batch: &mut BatchBuilder,
) -> Result<(), WireError> {
    let point = parse_point(line)?;
    let timestamp_ms = match point.timestamp {
        Some(ts) => precision.timestamp_ms(ts).ok_or_else(|| {
            bad(format!(
                "timestamp {ts} is out of range for precision {precision:?}"
            ))
        })?,
        None => now_ms,
    };
    for (key, value) in point.fields {
        let name = if key == "value" {
            sanitize_name(&point.measurement, true)
        } else {
            sanitize_name(&format!("{}_{key}", point.measurement), true)
        };
        let mut labels = Vec::with_capacity(point.tags.len() + 1);
        labels.push(Label::new(METRIC_NAME, name));
        labels.extend(point.tags.iter().cloned());
        let labels = build_labels(labels, limits)?;
        batch.push(labels, Sample::new(timestamp_ms, value), limits)?;
    }
    Ok(())
}

fn parse_point(line: &[u8]) -> Result<Point, WireError> {
    let end = scan(line, 0, b", ");
    let measurement = unescape(line.get(..end).unwrap_or_default(), "measurement")?;
    if measurement.is_empty() {
        return Err(bad("missing measurement".into()));
    }
    let mut pos = end;

    let mut tags = Vec::new();
    while line.get(pos) == Some(&b',') {
        let key_start = pos + 1;
        let key_end = scan(line, key_start, b"=, ");
        let key = unescape(line.get(key_start..key_end).unwrap_or_default(), "tag key")?;
        if line.get(key_end) != Some(&b'=') {
            return Err(bad(format!("tag {key:?} has no '=' and value")));
        }
        if key.is_empty() {
            return Err(bad("empty tag key".into()));
        }
        let value_end = scan(line, key_end + 1, b", ");
        let value = unescape(
            line.get(key_end + 1..value_end).unwrap_or_default(),
            "tag value",
        )?;
        // An empty tag value is kept here and dropped by `Labels::new`, as Prometheus
        // treats an empty label value as an absent label.
        tags.push(Label::new(sanitize_name(&key, false), value));
        pos = value_end;
    }
    pos = skip_whitespace(line, pos);
    if pos >= line.len() {
        return Err(bad(format!("measurement {measurement:?} has no fields")));
    }

    let mut fields = Vec::new();
    loop {
        let key_end = scan(line, pos, b"=, ");
        let key = unescape(line.get(pos..key_end).unwrap_or_default(), "field key")?;
        if line.get(key_end) != Some(&b'=') {
            return Err(bad(format!("field {key:?} has no '=' and value")));
        }
        if key.is_empty() {
            return Err(bad("empty field key".into()));
        }
        pos = key_end + 1;
        if line.get(pos) == Some(&b'"') {
            // String fields carry no number; skip to the closing quote.
            pos = closing_quote(line, pos + 1)
                .ok_or_else(|| bad(format!("unterminated string in field {key:?}")))?
                + 1;
            if !matches!(line.get(pos), Some(b',' | b' ' | b'\t') | None) {
                return Err(bad(format!(
                    "unexpected text after the value of field {key:?}"
                )));
            }
        } else {
            let end = find(line, pos, b", ");
            let raw = line.get(pos..end).unwrap_or_default();
            let value = parse_field_value(raw)
                .ok_or_else(|| bad(format!("invalid value {:?} of field {key:?}", lossy(raw))))?;
            fields.push((key, value));
            pos = end;
        }
        if line.get(pos) == Some(&b',') {
            pos += 1;
        } else {
            break;
        }
    }

    pos = skip_whitespace(line, pos);
    let timestamp = if pos < line.len() {
        let end = find(line, pos, b" \t");
        let raw = line.get(pos..end).unwrap_or_default();
        let ts = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| bad(format!("invalid timestamp {:?}", lossy(raw))))?;
        if skip_whitespace(line, end) < line.len() {
            return Err(bad("unexpected text after the timestamp".into()));
        }
        Some(ts)
    } else {
        None
    };
    Ok(Point {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// Parses an unquoted field value: float, `12i`, `12u` or a boolean (as 1 or 0).
fn parse_field_value(raw: &[u8]) -> Option<f64> {
    match raw {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => return Some(1.0),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => return Some(0.0),
        _ => {}
    }
    let s = std::str::from_utf8(raw).ok()?;
    if let Some(int) = s.strip_suffix('i') {
        return int.parse::<i64>().ok().map(|v| v as f64);
    }
    if let Some(uint) = s.strip_suffix('u') {
        return uint.parse::<u64>().ok().map(|v| v as f64);
    }
    // Rust's float syntax also takes `inf`, `NaN` and `infinity`, which InfluxDB
    // refuses; only digits, sign, point and exponent are let through.
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// The index of the first byte in `stops` at or after `from` that is not escaped by a
/// backslash, or the line's length.
fn scan(line: &[u8], from: usize, stops: &[u8]) -> usize {
    let mut i = from;
    while let Some(&b) = line.get(i) {
        if b == b'\\' {
            i += 2;
        } else if stops.contains(&b) {
            return i;
        } else {
            i += 1;
        }
    }
    i.min(line.len())
}

/// The index of the first byte in `stops` at or after `from`, ignoring escapes (numbers
/// and timestamps have none), or the line's length.
fn find(line: &[u8], from: usize, stops: &[u8]) -> usize {
    line.get(from..)
        .and_then(|rest| rest.iter().position(|b| stops.contains(b)))
        .map_or(line.len(), |i| from + i)
}

/// The index of the `"` closing a string field whose content starts at `from`.
/// Backslash escapes the next byte (`\"` and `\\` in InfluxDB's grammar).
fn closing_quote(line: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(&b) = line.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Removes InfluxDB's escapes: a backslash before space, comma, equals sign or
/// backslash stands for that byte; any other backslash is literal (as in InfluxDB and
/// VictoriaMetrics).
fn unescape(raw: &[u8], what: &str) -> Result<String, WireError> {
    let bytes = if raw.contains(&b'\\') {
        let mut out = Vec::with_capacity(raw.len());
        let mut iter = raw.iter().copied().peekable();
        while let Some(b) = iter.next() {
            if b == b'\\'
                && let Some(&next) = iter.peek()
                && matches!(next, b' ' | b',' | b'=' | b'\\')
            {
                out.push(next);
                iter.next();
            } else {
                out.push(b);
            }
        }
        out
    } else {
        raw.to_vec()
    };
    String::from_utf8(bytes).map_err(|_| bad(format!("{what} is not valid UTF-8")))
}

/// Makes `name` a valid Prometheus metric name (`allow_colon`) or label name: every
/// other character becomes `_`, and a leading digit gets a `_` in front.
fn sanitize_name(name: &str, allow_colon: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
            c
        } else {
            '_'
        }
    }));
    out
}

fn trim_start(line: &[u8]) -> &[u8] {
    line.get(skip_whitespace(line, 0)..).unwrap_or_default()
}

fn skip_whitespace(line: &[u8], from: usize) -> usize {
    let mut i = from;
    while matches!(line.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i.min(line.len())
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
        parse(
            body.as_bytes(),
            Precision::Ns,
            NOW_MS,
            &IngestLimits::default(),
        )
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
        match parse(
            body.as_bytes(),
            Precision::Ns,
            NOW_MS,
            &IngestLimits::default(),
        ) {
            Ok(got) => panic!("{body:?} was accepted: {got:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn precision_names() {
        for (s, p) in [
            ("ns", Precision::Ns),
            ("n", Precision::Ns),
            ("u", Precision::Us),
            ("us", Precision::Us),
            ("\u{b5}", Precision::Us),
            ("\u{3bc}s", Precision::Us),
            ("ms", Precision::Ms),
            ("s", Precision::S),
            ("m", Precision::M),
            ("h", Precision::H),
        ] {
            assert_eq!(Precision::parse(s), Some(p), "{s}");
        }
        for s in ["", "NS", "sec", "d", "mss"] {
            assert_eq!(Precision::parse(s), None, "{s}");
        }
        assert_eq!(Precision::default(), Precision::Ns);
    }

    #[test]
    fn maps_fields_to_metrics_and_tags_to_labels() {
        assert_eq!(
            flat("cpu,host=a,region=eu value=0.5,usage_idle=90,load=2i 1700000000123456789"),
            [
                (
                    "cpu{host=\"a\", region=\"eu\"}".to_string(),
                    vec![(1_700_000_000_123, 0.5)]
                ),
                (
                    "cpu_usage_idle{host=\"a\", region=\"eu\"}".to_string(),
                    vec![(1_700_000_000_123, 90.0)]
                ),
                (
                    "cpu_load{host=\"a\", region=\"eu\"}".to_string(),
                    vec![(1_700_000_000_123, 2.0)]
                ),
            ]
        );
        assert_eq!(
            flat("mem free=1"),
            [("mem_free{}".to_string(), vec![(NOW_MS, 1.0)])]
        );
    }

    #[test]
    fn field_value_kinds() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("1.5", 1.5),
            ("-2e3", -2000.0),
            ("+3.25E-2", 0.0325),
            (".5", 0.5),
            ("12i", 12.0),
            ("-12i", -12.0),
            ("9223372036854775807i", 9_223_372_036_854_775_807.0),
            ("12u", 12.0),
            ("18446744073709551615u", 18_446_744_073_709_551_615.0),
        ];
        for &(raw, want) in cases {
            let got = ok(&format!("m f={raw}"));
            assert_eq!(got[0].samples[0].value, want, "{raw}");
        }
        for raw in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(ok(&format!("m f={raw}"))[0].samples[0].value, 1.0, "{raw}");
        }
        for raw in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(ok(&format!("m f={raw}"))[0].samples[0].value, 0.0, "{raw}");
        }
    }

    #[test]
    fn refuses_bad_field_values() {
        for raw in [
            "",
            "abc",
            "1.5.5",
            "inf",
            "NaN",
            "-",
            "1e",
            "12x",
            "1.5i",
            "-1u",
            "tRUE",
            "99999999999999999999i",
            "1_000",
            "0x10",
        ] {
            let e = err(&format!("m f={raw}"));
            assert!(e.starts_with("line 1: "), "{raw}: {e}");
        }
    }

    #[test]
    fn string_fields_are_skipped() {
        assert_eq!(
            flat(r#"m,t=1 msg="hello, world = \"quoted\" \\",value=3,other="x" 5000000"#),
            [("m{t=\"1\"}".to_string(), vec![(5, 3.0)])]
        );
        // A line whose only fields are strings yields nothing and is not an error.
        assert!(ok(r#"m msg="a b""#).is_empty());
        assert!(ok(r#"m msg="""#).is_empty());
    }

    #[test]
    fn escapes() {
        assert_eq!(
            flat(r"my\ meas\,ure,tag\ key=va\,l\ u\=e\\,x=a\b f\ ield=1 0"),
            [(
                "my_meas_ure_f_ield{tag_key=\"va,l u=e\\\\\", x=\"a\\\\b\"}".to_string(),
                vec![(0, 1.0)]
            )]
        );
        // A backslash before any other byte is literal; `\\` is one backslash.
        let got = ok(r"m,t=a\\ f=1");
        assert_eq!(got[0].labels.get("t"), Some("a\\"));
        let got = ok(r"m,t=a\b\ c f=1");
        assert_eq!(got[0].labels.get("t"), Some(r"a\b c"));
        let got = ok("m,t=x\\ y f=1");
        assert_eq!(
            got[0].labels.get("t"),
            Some("x y"),
            "escaped space joins the tag"
        );
        assert_eq!(
            err("m,t=x\\ f=1"),
            "line 1: measurement \"m\" has no fields"
        );
    }

    #[test]
    fn sanitizes_names() {
        let got = ok("cpu.load-avg,host.name=a,9x=b,ünï=c 1m=1,value=2");
        assert_eq!(got[0].labels.metric_name(), Some("cpu_load_avg_1m"));
        assert_eq!(got[0].labels.get("host_name"), Some("a"));
        assert_eq!(got[0].labels.get("_9x"), Some("b"));
        assert_eq!(got[0].labels.get("_n_"), Some("c"));
        assert_eq!(got[1].labels.metric_name(), Some("cpu_load_avg"));
        assert_eq!(ok("9m value=1")[0].labels.metric_name(), Some("_9m"));
        assert_eq!(ok("a:b value=1")[0].labels.metric_name(), Some("a:b"));
        assert_eq!(ok("m,a:b=1 value=1")[0].labels.get("a_b"), Some("1"));
    }

    #[test]
    fn timestamps_and_precision() {
        let ts = |line: &str, p: Precision| {
            parse(line.as_bytes(), p, NOW_MS, &IngestLimits::default())
                .map(|got| got[0].samples[0].timestamp_ms)
        };
        assert_eq!(ts("m f=1 1500000000", Precision::Ns), Ok(1500));
        assert_eq!(ts("m f=1 -1", Precision::Ns), Ok(-1), "floored toward -inf");
        assert_eq!(ts("m f=1 -1000001", Precision::Ns), Ok(-2));
        assert_eq!(ts("m f=1 1500999", Precision::Us), Ok(1500));
        assert_eq!(ts("m f=1 1500", Precision::Ms), Ok(1500));
        assert_eq!(ts("m f=1 2", Precision::S), Ok(2000));
        assert_eq!(ts("m f=1 2", Precision::M), Ok(120_000));
        assert_eq!(ts("m f=1 2", Precision::H), Ok(7_200_000));
        assert_eq!(ts("m f=1", Precision::H), Ok(NOW_MS));
        assert_eq!(ts("m f=1   ", Precision::S), Ok(NOW_MS));
        assert_eq!(ts("m f=1  \t 3 \t", Precision::S), Ok(3000));
        assert!(ts("m f=1 9223372036854775807", Precision::H).is_err());
        assert_eq!(
            ts("m f=1 9223372036854775807", Precision::Ns),
            Ok(9_223_372_036_854)
        );
    }

    #[test]
    fn skips_blank_lines_and_comments_and_tolerates_crlf() {
        let body =
            "# a comment\r\n\r\n  \t\n  m value=1 1000000\r\n#m value=2\n   m value=3 2000000\r\n";
        assert_eq!(flat(body), [("m{}".to_string(), vec![(1, 1.0), (2, 3.0)])]);
        assert!(ok("").is_empty());
        assert!(ok("\n\n").is_empty());
    }

    #[test]
    fn merges_samples_of_the_same_series() {
        let body = "m,a=1 value=1 1000000\nm,b=2 value=2 1000000\nm,a=1 value=3 2000000\nm,a=1 x=4 2000000";
        let got = flat(body);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], ("m{a=\"1\"}".to_string(), vec![(1, 1.0), (2, 3.0)]));
        assert_eq!(got[1].0, "m{b=\"2\"}");
        assert_eq!(got[2].0, "m_x{a=\"1\"}");
        // Tag order does not matter: labels are sorted.
        assert_eq!(flat("m,a=1,b=2 value=1 0\nm,b=2,a=1 value=2 0").len(), 1);
    }

    #[test]
    fn empty_tag_values_are_dropped() {
        assert_eq!(
            flat("m,t= value=1 0"),
            [("m{}".to_string(), vec![(0, 1.0)])]
        );
    }

    #[test]
    fn errors_name_the_line_and_refuse_the_request() {
        let cases = [
            ("m value=1\nm\n", "line 2: measurement \"m\" has no fields"),
            ("m,t=1", "line 1: measurement \"m\" has no fields"),
            ("m,t=1 ", "line 1: measurement \"m\" has no fields"),
            (
                "\n\nm f=\"abc",
                "line 3: unterminated string in field \"f\"",
            ),
            (
                "m f=\"abc\\\"",
                "line 1: unterminated string in field \"f\"",
            ),
            (
                "m f=\"a\"x",
                "line 1: unexpected text after the value of field \"f\"",
            ),
            ("m f=1 12x", "line 1: invalid timestamp \"12x\""),
            ("m f=1 1 2", "line 1: unexpected text after the timestamp"),
            ("m f=1,", "line 1: field \"\" has no '=' and value"),
            ("m f", "line 1: field \"f\" has no '=' and value"),
            ("m =1", "line 1: empty field key"),
            ("m,t f=1", "line 1: tag \"t\" has no '=' and value"),
            ("m,=1 f=1", "line 1: empty tag key"),
            (",t=1 f=1", "line 1: missing measurement"),
            ("m f=1,g=zz", "line 1: invalid value \"zz\" of field \"g\""),
            (
                "m,__name__=x value=1",
                "line 1: duplicate label name \"__name__\"",
            ),
            ("m,a=1,a=2 value=1", "line 1: duplicate label name \"a\""),
        ];
        for (body, want) in cases {
            assert_eq!(err(body), want, "{body:?}");
        }
        let e = parse(
            b"m,t=\xff value=1",
            Precision::Ns,
            0,
            &IngestLimits::default(),
        );
        assert_eq!(
            e,
            Err(WireError::BadData(
                "line 1: tag value is not valid UTF-8".into()
            ))
        );
    }

    #[test]
    fn limits_are_enforced_and_name_the_line() {
        let limits = IngestLimits {
            series_per_request_max: 2,
            ..IngestLimits::default()
        };
        let body = b"m,i=1 value=1\nm,i=1 value=1\nm,i=2 value=1\nm,i=3 value=1\n";
        let e = parse(body, Precision::Ns, 0, &limits).unwrap_err();
        assert!(
            matches!(&e, WireError::Limit { limit: "series_per_request", message } if message.starts_with("line 4: ")),
            "{e:?}"
        );
        let limits = IngestLimits {
            labels_per_series_max: 2,
            ..IngestLimits::default()
        };
        assert!(parse(b"m,a=1 value=1", Precision::Ns, 0, &limits).is_ok());
        let e = parse(b"m,a=1,b=2 value=1", Precision::Ns, 0, &limits).unwrap_err();
        assert!(matches!(
            e,
            WireError::Limit {
                limit: "labels_per_series",
                ..
            }
        ));
    }

    /// Found by reading the fan-out the fuzz harness exercises: one line of a long
    /// measurement and many fields decoded into a series per field, each repeating
    /// the measurement, so memory grew with the product of the two.
    #[test]
    fn regression_fan_out_of_fields_is_charged_against_the_decoded_size() {
        let fields: Vec<String> = (0..5_000).map(|i| format!("f{i}=1")).collect();
        let long = format!("{} {}", "m".repeat(10_000), fields.join(","));
        let short = format!("m {}", fields.join(","));
        // Even at 64 times the body (the server allows 8 times the largest body).
        let limits = |body: &str| IngestLimits {
            decoded_body_bytes_max: 64 * body.len(),
            ..IngestLimits::default()
        };
        // 5,000 series of a 10 kB name: 100 MB held for a 50 kB body.
        let e = parse(long.as_bytes(), Precision::Ns, 0, &limits(&long)).unwrap_err();
        assert!(
            matches!(&e, WireError::Limit { limit: "decoded_body_size", message } if message.starts_with("line 1: ")),
            "{e:?}"
        );
        // The same fields under a short name fit.
        let got = parse(short.as_bytes(), Precision::Ns, 0, &limits(&long)).unwrap();
        assert_eq!(got.len(), 5_000);
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let seeds: [&[u8]; 4] = [
            b"cpu,host=a,region=eu value=0.5,usage_idle=90,load=2i 1700000000123456789\n",
            br#"my\ m\,x,t\ k=v\,a\=l\\ f\ 1=1u,s="a \"b\" \\",b=TRUE -5"#,
            b"# comment\r\n\r\nm,a=1 x=1.5e3,y=-2i\nm,a=1 x=2 1\n",
            b"m f=\"unterminated\nm,t= value=t 9223372036854775807",
        ];
        let mut rng = fuzz::Rng::new(0x5eed_0002);
        let limits = IngestLimits::default();
        let mut accepted = 0;
        for i in 0..20_000 {
            let body = fuzz::mutate(&mut rng, &seeds);
            let precision = [Precision::Ns, Precision::S, Precision::H][i % 3];
            if let Ok(batch) = parse(&body, precision, NOW_MS, &limits) {
                accepted += 1;
                for series in batch {
                    assert!(!series.samples.is_empty());
                }
            }
        }
        assert!(accepted > 1000, "only {accepted} inputs accepted");
    }
}
