//! Scraping `/metrics` in black-box tests: the exposition parsed line by line, each
//! line checked against the Prometheus text format 0.0.4 (HELP and TYPE before a
//! family's samples, valid names, quoted and escaped label values, float values, no
//! family declared twice, no series twice), then looked up by name and labels.

use std::collections::HashSet;

/// One sample: metric name, labels in written order, value.
#[derive(Clone, Debug)]
pub struct MetricSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Clone, Debug)]
pub struct Scrape {
    pub samples: Vec<MetricSample>,
    pub text: String,
}

impl Scrape {
    /// Parses `text`, panicking with the line at fault on anything the format forbids.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut declared: HashSet<String> = HashSet::new();
        let mut seen_series: HashSet<String> = HashSet::new();
        let mut helped: Option<String> = None;
        let mut family: Option<(String, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}\n{text}", i + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(valid_metric_name(name), "bad name in HELP, {}", at());
                assert!(!help.is_empty(), "empty HELP, {}", at());
                helped = Some(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(valid_metric_name(name), "bad name in TYPE, {}", at());
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad type, {}",
                    at()
                );
                assert_eq!(helped.as_deref(), Some(name), "TYPE without HELP, {}", at());
                assert!(
                    declared.insert(name.to_string()),
                    "family declared twice, {}",
                    at()
                );
                family = Some((name.to_string(), kind.to_string()));
            } else if line.starts_with('#') {
                panic!("unexpected comment, {}", at());
            } else {
                assert!(!line.is_empty(), "empty line, {}", at());
                let (name, labels, value) =
                    parse_sample(line).unwrap_or_else(|e| panic!("{e}, {}", at()));
                let (fam, kind) = family
                    .clone()
                    .unwrap_or_else(|| panic!("sample before TYPE, {}", at()));
                let belongs = name == fam
                    || (matches!(kind.as_str(), "histogram" | "summary")
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{fam}{s}")));
                assert!(belongs, "sample outside its family {fam}, {}", at());
                if kind == "counter" {
                    assert!(value >= 0.0, "negative counter, {}", at());
                }
                let key = format!("{name}{labels:?}");
                assert!(seen_series.insert(key), "series twice, {}", at());
                samples.push(MetricSample {
                    name,
                    labels,
                    value,
                });
            }
        }
        Scrape {
            samples,
            text: text.to_string(),
        }
    }

    /// The value of the series `name` whose labels include every pair of `labels`;
    /// panics when none or several match.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&MetricSample> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name}{labels:?}: {} series match in\n{}",
            found.len(),
            self.text
        );
        found[0].value
    }

    /// The sum over every series of `name` (0 when there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// `tsdb_limit_hits_total{limit=…}`.
    pub fn limit_hits(&self, limit: &str) -> f64 {
        self.value("tsdb_limit_hits_total", &[("limit", limit)])
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

type Parsed = (String, Vec<(String, String)>, f64);

/// `name{a="x",b="y"} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Parsed, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "no value".to_string())?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut s = inner;
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=').ok_or("label without =")?;
            let lname = &s[..eq];
            if !valid_label_name(lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or("unquoted label value")?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape in label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            labels.push((lname.to_string(), value));
            s = &s[end + 1..];
            if let Some(after) = s.strip_prefix(',') {
                s = after;
            } else if !s.starts_with('}') {
                return Err("labels not separated by ,".into());
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut parts = rest.split(' ');
    let value = parts.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|e| format!("bad value {v:?}: {e}"))?,
    };
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|e| format!("bad timestamp {ts:?}: {e}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok((name.to_string(), labels, value))
}

impl super::Server {
    /// GETs `/metrics`, checks the answer's content type and every line, and parses it.
    pub fn metrics(&self) -> Scrape {
        let mut r = super::agent()
            .get(&self.url("/metrics"))
            .call()
            .expect("GET /metrics");
        assert_eq!(r.status().as_u16(), 200);
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        Scrape::parse(&r.body_mut().read_to_string().unwrap())
    }
}
