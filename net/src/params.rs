//! Request parameters as Prometheus parses them: query string and form body merged,
//! times as unix seconds or RFC 3339, and `match[]` series selectors.

use std::collections::HashMap;

use tsdb_engine::model::{METRIC_NAME, Matcher};

/// The parameters of a request: every value of every key, query string first.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, Vec<String>>,
}

impl Params {
    /// Parses a query string and, for form posts, the body.
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Params {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut add = |bytes: &[u8]| {
            for (k, v) in form_urlencoded::parse(bytes) {
                values
                    .entry(k.into_owned())
                    .or_default()
                    .push(v.into_owned());
            }
        };
        if let Some(q) = query {
            add(q.as_bytes());
        }
        if let Some(b) = form_body {
            add(b);
        }
        Params { values }
    }

    /// The first value of `key`, if given and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.values.get(key).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The earliest and latest times a query may name (Prometheus' `minTime`/`maxTime`
/// are far beyond what a sample can carry; i64 milliseconds bound ours).
pub const MIN_TIME_MS: i64 = i64::MIN / 2;
pub const MAX_TIME_MS: i64 = i64::MAX / 2;

/// Parses a time parameter: unix seconds (with fraction) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Ok(if ms < 0.0 { MIN_TIME_MS } else { MAX_TIME_MS });
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses an optional time parameter, with a default; the error reads as Prometheus'
/// `parseTimeParam` wrapped by `invalidParamError`.
pub fn time_param(params: &Params, key: &str, default: i64) -> Result<i64, String> {
    match params.get(key) {
        None => Ok(default),
        Some(s) => parse_time(s).map_err(|e| {
            format!("invalid parameter \"{key}\": Invalid time value for '{key}': {e}")
        }),
    }
}

/// Parses a required time parameter as `query_range` does (`start`, `end`): a missing
/// one is an unparsable empty string.
pub fn required_time_param(params: &Params, key: &str) -> Result<i64, String> {
    parse_time(params.get(key).unwrap_or_default())
        .map_err(|e| format!("invalid parameter \"{key}\": {e}"))
}

/// Nanoseconds in a second, for Prometheus' durations (Go's `time.Duration`).
const NANOS_PER_SECOND: f64 = 1e9;

/// Parses a duration as Prometheus' API does: float seconds (`15`, `0.5`, `-1`), else
/// a Prometheus duration (`1m30s`, `1d`, `0`). Nanoseconds, since Go's
/// `time.Duration` is, and the step checks compare in it.
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        let ns = secs * NANOS_PER_SECOND;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        // Go converts NaN to i64::MIN on amd64; both are then refused as "not
        // positive" by the callers that need a positive duration.
        return Ok(if ns.is_nan() { i64::MIN } else { ns as i64 });
    }
    parse_prometheus_duration_ms(s)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `model.ParseDuration` of prometheus/common: `0`, or units `y w d h m s ms` in that
/// order, each at most once, with integer counts. Milliseconds; `None` if invalid or
/// out of range.
pub fn parse_prometheus_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let (num, tail) = rest.split_at(digits);
        let n: i64 = num.parse().ok()?;
        // "ms" must be tried before "m"; the order check below keeps "5m5m" out.
        let (unit_idx, unit_len) = if tail.starts_with("ms") {
            (6, 2)
        } else {
            let i = UNITS
                .iter()
                .take(6)
                .position(|(u, _)| tail.starts_with(u))?;
            (i, 1)
        };
        if unit_idx < next_unit {
            return None;
        }
        let (_, mult) = UNITS.get(unit_idx)?;
        total = total.checked_add(n.checked_mul(*mult)?)?;
        next_unit = unit_idx + 1;
        rest = tail.get(unit_len..)?;
    }
    Some(total)
}

/// Parses `limit` as later Prometheus versions do (2.42 has none for these routes):
/// empty or absent is 0, no limit; negative is refused.
pub fn limit_param(params: &Params) -> Result<usize, String> {
    let Some(s) = params.get("limit") else {
        return Ok(0);
    };
    let n: i64 = s.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("invalid parameter \"limit\": strconv.Atoi: parsing {s:?}: {why}")
    })?;
    if n < 0 {
        return Err("invalid parameter \"limit\": limit must be non-negative".into());
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to unix milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = padded.parse().ok()?;
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let off = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1000 + frac_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses one `match[]` selector into its matcher sets (one set, or several with
/// `or`). The selector must be a plain instant-vector selector.
pub fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr =
        tsdb_engine::promql::parse(s).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        ));
    };
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, String> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in ms {
            let kind = match m.op {
                promql_parser::label::MatchOp::Equal => "=",
                promql_parser::label::MatchOp::NotEqual => "!=",
                promql_parser::label::MatchOp::Re(_) => "=~",
                promql_parser::label::MatchOp::NotRe(_) => "!~",
            };
            out.push(Matcher::new(&m.name, kind, &m.value).map_err(|e| {
                format!(
                    "invalid parameter \"match[]\": bad regex {:?}: {e}",
                    m.value
                )
            })?);
        }
        if out.iter().all(Matcher::matches_empty) {
            return Err(
                "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher".into(),
            );
        }
        Ok(out)
    };
    let mut sets = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        sets.push(convert(&vs.matchers.matchers)?);
    } else {
        for group in &vs.matchers.or_matchers {
            sets.push(convert(group)?);
        }
    }
    Ok(sets)
}

/// Parses every `match[]` of a request.
pub fn matcher_sets(params: &Params) -> Result<Vec<Vec<Matcher>>, String> {
    let mut out = Vec::new();
    for s in params.all("match[]") {
        out.extend(parse_selector(s)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_time("2023-11-15T00:13:20+02:00"),
            Ok(1_700_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_parse_like_prometheus() {
        const S: i64 = 1_000_000_000;
        assert_eq!(parse_duration_ns("15"), Ok(15 * S));
        assert_eq!(parse_duration_ns("0.5"), Ok(S / 2));
        assert_eq!(parse_duration_ns("-1"), Ok(-S));
        assert_eq!(parse_duration_ns("15s"), Ok(15 * S));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90 * S));
        assert_eq!(parse_duration_ns("1h"), Ok(3600 * S));
        assert_eq!(parse_duration_ns("2d"), Ok(2 * 86_400 * S));
        assert_eq!(parse_duration_ns("1w"), Ok(7 * 86_400 * S));
        assert_eq!(parse_duration_ns("1y"), Ok(365 * 86_400 * S));
        assert_eq!(parse_duration_ns("100ms"), Ok(S / 10));
        assert_eq!(parse_duration_ns("1m5ms"), Ok(60 * S + 5_000_000));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        for bad in ["", "s", "1.5s", "5m1h", "1s1s", "-1s", "1 s", "1x", "1mss"] {
            assert_eq!(
                parse_duration_ns(bad),
                Err(format!("cannot parse {bad:?} to a valid duration")),
                "{bad:?}"
            );
        }
        assert!(
            parse_duration_ns("1e300")
                .unwrap_err()
                .ends_with("It overflows int64")
        );
        assert!(parse_duration_ns("999999999999y").is_err());
    }

    #[test]
    fn limits_parse_like_later_prometheus() {
        let p = |q: &str| Params::parse(Some(q), None);
        assert_eq!(limit_param(&p("")), Ok(0));
        assert_eq!(limit_param(&p("limit=")), Ok(0));
        assert_eq!(limit_param(&p("limit=5")), Ok(5));
        assert_eq!(
            limit_param(&p("limit=x")),
            Err(r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#.into())
        );
        assert_eq!(
            limit_param(&p("limit=-1")),
            Err(r#"invalid parameter "limit": limit must be non-negative"#.into())
        );
    }

    #[test]
    fn time_params_explain_like_prometheus() {
        let p = Params::parse(Some("start=x"), None);
        assert_eq!(
            time_param(&p, "start", 0),
            Err(r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#.into())
        );
        assert_eq!(
            required_time_param(&p, "end"),
            Err(r#"invalid parameter "end": cannot parse "" to a valid timestamp"#.into())
        );
    }

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job=~"a.*",env!="prod"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 3);
        assert!(parse_selector("rate(x[5m])").is_err());
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector("up{").is_err());
    }

    #[test]
    fn params_merge_query_and_form() {
        let p = Params::parse(Some("match[]=a&start=1"), Some(b"match[]=b&end=2"));
        assert_eq!(p.all("match[]"), ["a", "b"]);
        assert_eq!(p.get("start"), Some("1"));
        assert_eq!(p.get("end"), Some("2"));
    }
}
