//! The runner of data-driven PromQL case files, in a language modelled on
//! Prometheus' promql test files:
//!
//! ```text
//! load 1m                                  # samples at 0, 1m, 2m, …
//!   http_requests{job="api"} 0+10x5 _ stale 3 1x2
//! eval instant at 5m sum(http_requests)     # expected: one line per sample
//!   {} 50
//! eval_ordered instant at 5m sort(x)        # order matters
//! eval_fail instant at 5m foo[5m] + 1
//!   expected_fail_message binary expression must contain only scalar
//! eval range from 0 to 10m step 5m rate(x[5m])
//!   {job="api"} _ 0.1 0.1                   # `_`: no point at that step
//! clear                                    # forget all loaded series
//! ```
//!
//! Values: `a+bxN` is N+1 values from a in steps of b, `axN` is a N+1 times, `_xN`
//! is N gaps, `stale` is a staleness marker. An instant case is also run as a range
//! query around its time and must agree there, as Prometheus' own runner does.
//! [`check`] panics with the file, line and a diff on the first mismatch.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{InstantSample, MemStore, QueryError, QueryOptions, QueryValue, RangeSeries};
use crate::head::SeriesData;
use crate::model::{Label, Labels, STALE_NAN_BITS, Sample};

/// Runs a future that never waits (the in-memory store answers at once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Prometheus' duration syntax (`1h30m`, `500ms`, `0`), optionally negative.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let mult: i64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(if neg { -total } else { total })
}

/// A value of a series description: `None` is a gap.
type SeqValue = Option<f64>;

fn parse_number(s: &str) -> Option<f64> {
    if s == "stale" {
        return Some(f64::from_bits(STALE_NAN_BITS));
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    s.parse::<f64>().ok()
}

/// One item of a series description (`1`, `_`, `_x3`, `1x3`, `1+2x3`, `stale`).
fn parse_item(item: &str) -> Option<Vec<SeqValue>> {
    let (base, times) = match item.rfind('x') {
        Some(i)
            if item
                .get(i + 1..)
                .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())) =>
        {
            (
                item.get(..i)?,
                Some(item.get(i + 1..)?.parse::<u64>().ok()?),
            )
        }
        _ => (item, None),
    };
    if base == "_" {
        return Some(vec![None; usize::try_from(times.unwrap_or(1)).ok()?]);
    }
    let Some(times) = times else {
        return Some(vec![Some(parse_number(base)?)]);
    };
    // Split `a+b`/`a-b` at a sign that does not belong to an exponent.
    let bytes = base.as_bytes();
    let split = (1..bytes.len()).rev().find(|&i| {
        matches!(bytes.get(i), Some(b'+' | b'-')) && !matches!(bytes.get(i - 1), Some(b'e' | b'E'))
    });
    let (start, inc) = match split {
        Some(i) => (parse_number(base.get(..i)?)?, parse_number(base.get(i..)?)?),
        None => (parse_number(base)?, 0.0),
    };
    let mut out = Vec::new();
    let mut cur = start;
    for _ in 0..=times {
        out.push(Some(cur));
        cur += inc;
    }
    Some(out)
}

/// Parses `name{a="b", c="d"} values…` into labels and the rest of the line.
fn parse_series_desc(line: &str) -> Option<(Labels, &str)> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let mut pairs = Vec::new();
    let name = line.get(..name_end)?;
    if !name.is_empty() {
        pairs.push(Label::new(crate::model::METRIC_NAME, name));
    }
    let mut rest = line.get(name_end..)?;
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut consumed = None;
        loop {
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    consumed = Some(i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut lname = String::new();
            while let Some((_, c)) = chars.peek().copied() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    lname.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('=') {
                return None;
            }
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            let quote = chars.next().map(|(_, c)| c)?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                if c == quote {
                    break;
                }
                if c == '\\' {
                    let (_, e) = chars.next()?;
                    value.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    value.push(c);
                }
            }
            pairs.push(Label::new(lname, value));
        }
        rest = after.get(consumed?..)?;
    }
    Some((super::value::labels_from(pairs), rest))
}

fn parse_values(s: &str) -> Option<Vec<SeqValue>> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        out.extend(parse_item(item)?);
    }
    Some(out)
}

/// Prometheus' test comparison: equal, both NaN, or within a relative 1e-6.
fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < 1e-6 * min_normal;
    }
    diff / (a.abs() + b.abs()) < 1e-6
}

enum Expect {
    /// Samples of a vector (one value each) or series of a range vector.
    Vector(Vec<(Labels, Vec<f64>)>),
    Scalar(f64),
    Fail(Option<String>),
}

struct Runner<'a> {
    file: &'a str,
    series: Vec<SeriesData>,
    opts: QueryOptions,
    evals: usize,
}

fn fmt_vector(v: &[(Labels, f64)]) -> String {
    v.iter()
        .map(|(l, x)| format!("    {} {}\n", super::value::go_labels_string(l), x))
        .collect()
}

impl Runner<'_> {
    fn fail(&self, line: usize, msg: String) -> ! {
        panic!("{}:{}: {}", self.file, line, msg);
    }

    fn load(&mut self, step_ms: i64, defs: &[(usize, &str)]) {
        // Within one load a later definition of a series replaces an earlier one,
        // as in Prometheus' runner; across loads samples accumulate.
        let mut loaded: Vec<SeriesData> = Vec::new();
        for (l, def) in defs {
            let Some((labels, rest)) = parse_series_desc(def) else {
                self.fail(*l, format!("bad series description {def:?}"));
            };
            let Some(values) = parse_values(rest) else {
                self.fail(*l, format!("bad values {rest:?}"));
            };
            let samples: Vec<Sample> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some(Sample::new(i as i64 * step_ms, (*v)?)))
                .collect();
            loaded.retain(|s| s.labels != labels);
            loaded.push(SeriesData { labels, samples });
        }
        for new in loaded {
            match self.series.iter_mut().find(|s| s.labels == new.labels) {
                Some(s) => {
                    s.samples.extend(new.samples);
                    s.samples.sort_by_key(|x| x.timestamp_ms);
                    s.samples.dedup_by_key(|x| x.timestamp_ms);
                }
                None => self.series.push(new),
            }
        }
    }

    fn store(&self) -> MemStore {
        MemStore::new(self.series.clone())
    }

    fn instant(&self, query: &str, t: i64) -> Result<QueryValue, QueryError> {
        block_on(super::instant_query(&self.store(), query, t, &self.opts))
    }

    fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryValue, QueryError> {
        block_on(super::range_query(
            &self.store(),
            query,
            start,
            end,
            step,
            &self.opts,
        ))
    }

    fn compare_vector(
        &self,
        line: usize,
        query: &str,
        got: &[InstantSample],
        want: &[(Labels, f64)],
        ordered: bool,
    ) {
        let got_pairs: Vec<(Labels, f64)> =
            got.iter().map(|s| (s.labels.clone(), s.value)).collect();
        let mut ok = got.len() == want.len();
        if ok {
            if ordered {
                ok = got_pairs
                    .iter()
                    .zip(want)
                    .all(|((gl, gv), (wl, wv))| gl == wl && almost_equal(*gv, *wv));
            } else {
                ok = want.iter().all(|(wl, wv)| {
                    got_pairs
                        .iter()
                        .any(|(gl, gv)| gl == wl && almost_equal(*gv, *wv))
                });
            }
        }
        if !ok {
            self.fail(
                line,
                format!(
                    "{query}\n  expected:\n{}  got:\n{}",
                    fmt_vector(want),
                    fmt_vector(&got_pairs)
                ),
            );
        }
    }

    fn compare_matrix(
        &self,
        line: usize,
        query: &str,
        got: &[RangeSeries],
        want: &[(Labels, Vec<SeqValue>)],
        start: i64,
        step: i64,
    ) {
        let render_want = |w: &[(Labels, Vec<SeqValue>)]| -> String {
            w.iter()
                .map(|(l, vs)| {
                    let vals: Vec<String> = vs
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| {
                            v.map(|x| format!("{}@{}", x, start + i as i64 * step))
                        })
                        .collect();
                    format!(
                        "    {} {}\n",
                        super::value::go_labels_string(l),
                        vals.join(" ")
                    )
                })
                .collect()
        };
        let got_as: Vec<(Labels, Vec<SeqValue>)> = got
            .iter()
            .map(|s| {
                let mut vals: Vec<SeqValue> = Vec::new();
                for p in &s.points {
                    let i = usize::try_from((p.timestamp_ms - start) / step.max(1)).unwrap_or(0);
                    if vals.len() <= i {
                        vals.resize(i + 1, None);
                    }
                    if let Some(slot) = vals.get_mut(i) {
                        *slot = Some(p.value);
                    }
                }
                (s.labels.clone(), vals)
            })
            .collect();
        let same = |a: &[SeqValue], b: &[SeqValue]| {
            let n = a.len().max(b.len());
            (0..n).all(
                |i| match (a.get(i).copied().flatten(), b.get(i).copied().flatten()) {
                    (None, None) => true,
                    (Some(x), Some(y)) => almost_equal(x, y),
                    _ => false,
                },
            )
        };
        let ok = got_as.len() == want.len()
            && want
                .iter()
                .all(|(wl, wv)| got_as.iter().any(|(gl, gv)| gl == wl && same(gv, wv)));
        if !ok {
            self.fail(
                line,
                format!(
                    "{query}\n  expected:\n{}  got:\n{}",
                    render_want(want),
                    render_want(&got_as)
                ),
            );
        }
    }

    fn eval_instant(&mut self, line: usize, query: &str, t: i64, ordered: bool, expect: &Expect) {
        self.evals += 1;
        let res = self.instant(query, t);
        match (expect, res) {
            (Expect::Fail(msg), Err(e)) => {
                if let Some(m) = msg
                    && !e.to_string().contains(m.as_str())
                {
                    self.fail(
                        line,
                        format!("{query}: expected error containing {m:?}, got {e:?}"),
                    );
                }
            }
            (Expect::Fail(_), Ok(v)) => {
                self.fail(line, format!("{query}: expected an error, got {v:?}"))
            }
            (_, Err(e)) => self.fail(line, format!("{query}: unexpected error {e:?}")),
            (Expect::Scalar(want), Ok(QueryValue::Scalar(p))) => {
                if !almost_equal(p.value, *want) {
                    self.fail(
                        line,
                        format!("{query}: expected scalar {want}, got {}", p.value),
                    );
                }
                self.check_range_mode(line, query, t, expect);
            }
            (Expect::Vector(want), Ok(QueryValue::Vector(got))) => {
                let Some(want) = single_values(want) else {
                    self.fail(line, format!("{query}: expected one value per sample"));
                };
                self.compare_vector(line, query, &got, &want, ordered);
                if !ordered {
                    self.check_range_mode(line, query, t, expect);
                }
            }
            (Expect::Vector(want), Ok(QueryValue::Matrix(got))) => {
                // A range-vector result: each expected line lists the series'
                // samples in order.
                let ok = got.len() == want.len()
                    && want.iter().all(|(wl, wv)| {
                        got.iter().any(|s| {
                            &s.labels == wl
                                && s.points.len() == wv.len()
                                && s.points
                                    .iter()
                                    .zip(wv)
                                    .all(|(p, w)| almost_equal(p.value, *w))
                        })
                    });
                if !ok {
                    self.fail(line, format!("{query}: expected {want:?} got {got:?}"));
                }
            }
            (_, Ok(v)) => self.fail(line, format!("{query}: result of unexpected type {v:?}")),
        }
    }

    /// The instant result must also come out of a range query at the same time.
    fn check_range_mode(&self, line: usize, query: &str, t: i64, expect: &Expect) {
        // `@ start()`/`@ end()` mean other times in a range query.
        if query.contains("start()") || query.contains("end()") {
            return;
        }
        let res = match self.range(query, t - 60_000, t + 60_000, 60_000) {
            Ok(QueryValue::Matrix(m)) => m,
            other => self.fail(line, format!("{query}: in range mode: {other:?}")),
        };
        let at_t: Vec<InstantSample> = res
            .iter()
            .filter_map(|s| {
                let p = s.points.iter().find(|p| p.timestamp_ms == t)?;
                Some(InstantSample {
                    labels: s.labels.clone(),
                    timestamp_ms: t,
                    value: p.value,
                })
            })
            .collect();
        match expect {
            Expect::Scalar(want) => {
                let got = at_t.first().map(|s| s.value).unwrap_or(f64::NAN);
                if at_t.len() != 1 || !almost_equal(got, *want) {
                    self.fail(
                        line,
                        format!("{query}: in range mode: expected {want}, got {at_t:?}"),
                    );
                }
            }
            Expect::Vector(want) => {
                if let Some(want) = single_values(want) {
                    self.compare_vector(
                        line,
                        &format!("{query} (range mode)"),
                        &at_t,
                        &want,
                        false,
                    );
                }
            }
            _ => {}
        }
    }
}

/// Expected samples of an instant vector: one value per line.
fn single_values(want: &[(Labels, Vec<f64>)]) -> Option<Vec<(Labels, f64)>> {
    want.iter()
        .map(|(l, v)| match v.as_slice() {
            [x] => Some((l.clone(), *x)),
            _ => None,
        })
        .collect()
}

fn collect_block<'a>(lines: &[(usize, &'a str)], i: &mut usize) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    while let Some(&(n, l)) = lines.get(*i + 1) {
        if l.is_empty() {
            break;
        }
        out.push((n, l));
        *i += 1;
    }
    out
}

/// Splits `eval… instant at <t> <expr>` into its parts.
fn parse_instant_head(rest: &str) -> Option<(i64, &str)> {
    let rest = rest.trim_start().strip_prefix("instant")?.trim_start();
    let rest = rest.strip_prefix("at")?.trim_start();
    let (t, expr) = rest.split_once(char::is_whitespace)?;
    Some((parse_duration_ms(t)?, expr.trim()))
}

/// Splits `eval… range from <t> to <t> step <s> <expr>` into its parts.
fn parse_range_head(rest: &str) -> Option<(i64, i64, i64, &str)> {
    let rest = rest.trim_start().strip_prefix("range")?.trim_start();
    let mut parts = rest
        .splitn(7, char::is_whitespace)
        .filter(|p| !p.is_empty());
    if parts.next()? != "from" {
        return None;
    }
    let start = parse_duration_ms(parts.next()?)?;
    if parts.next()? != "to" {
        return None;
    }
    let end = parse_duration_ms(parts.next()?)?;
    if parts.next()? != "step" {
        return None;
    }
    let step = parse_duration_ms(parts.next()?)?;
    Some((start, end, step, parts.next()?.trim()))
}

/// Runs every command of one case file; panics on the first mismatch with
/// `file:line`, the query and the expected and actual results. Returns the number
/// of evaluations run.
pub fn check(file: &str, text: &str) -> usize {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = l.trim();
            (i + 1, if l.starts_with('#') { "" } else { l })
        })
        .collect();
    let mut r = Runner {
        file,
        series: Vec::new(),
        opts: QueryOptions::default(),
        evals: 0,
    };
    let mut i = 0;
    while let Some(&(n, l)) = lines.get(i) {
        if l.is_empty() {
            i += 1;
            continue;
        }
        let (cmd, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        match cmd {
            "clear" => r.series.clear(),
            "load" => {
                let Some(step) = parse_duration_ms(rest.trim()) else {
                    r.fail(n, format!("bad load step {rest:?}"));
                };
                let block = collect_block(&lines, &mut i);
                r.load(step, &block);
            }
            "eval" | "eval_fail" | "eval_ordered" => {
                let block = collect_block(&lines, &mut i);
                if let Some((start, end, step, query)) = parse_range_head(rest) {
                    r.evals += 1;
                    let res = r.range(query, start, end, step);
                    if cmd == "eval_fail" {
                        let msg = block.iter().find_map(|(_, b)| {
                            b.strip_prefix("expected_fail_message ").map(str::trim)
                        });
                        match res {
                            Err(e) if msg.is_none_or(|m| e.to_string().contains(m)) => {}
                            other => r.fail(
                                n,
                                format!("{query}: expected an error {msg:?}, got {other:?}"),
                            ),
                        }
                    } else {
                        let mut want = Vec::new();
                        for (bn, b) in &block {
                            let Some((labels, vals)) = parse_series_desc(b) else {
                                r.fail(*bn, format!("bad expected series {b:?}"));
                            };
                            let Some(vals) = parse_values(vals) else {
                                r.fail(*bn, format!("bad expected values {b:?}"));
                            };
                            want.push((labels, vals));
                        }
                        match res {
                            Ok(QueryValue::Matrix(m)) => {
                                r.compare_matrix(n, query, &m, &want, start, step)
                            }
                            other => {
                                r.fail(n, format!("{query}: expected a matrix, got {other:?}"))
                            }
                        }
                    }
                } else if let Some((t, query)) = parse_instant_head(rest) {
                    let expect = if cmd == "eval_fail" {
                        Expect::Fail(block.iter().find_map(|(_, b)| {
                            b.strip_prefix("expected_fail_message ")
                                .map(|m| m.trim().to_string())
                        }))
                    } else if let [(_, only)] = block.as_slice()
                        && let Some(v) = parse_number(only)
                    {
                        Expect::Scalar(v)
                    } else {
                        let mut want = Vec::new();
                        for (bn, b) in &block {
                            let Some((labels, vals)) = parse_series_desc(b) else {
                                r.fail(*bn, format!("bad expected sample {b:?}"));
                            };
                            match parse_values(vals) {
                                Some(v) if !v.is_empty() && v.iter().all(Option::is_some) => {
                                    want.push((labels, v.into_iter().flatten().collect()));
                                }
                                _ => r.fail(*bn, format!("expected values without gaps in {b:?}")),
                            }
                        }
                        Expect::Vector(want)
                    };
                    r.eval_instant(n, query, t, cmd == "eval_ordered", &expect);
                } else {
                    r.fail(n, format!("bad eval command {l:?}"));
                }
            }
            other => r.fail(n, format!("unknown command {other:?}")),
        }
        i += 1;
    }
    r.evals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_descriptions_expand() {
        assert_eq!(
            parse_item("1+2x3"),
            Some(vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)])
        );
        assert_eq!(parse_item("_x2"), Some(vec![None, None]));
        assert_eq!(parse_item("-1-1x1"), Some(vec![Some(-1.0), Some(-2.0)]));
        assert_eq!(parse_item("5x1"), Some(vec![Some(5.0), Some(5.0)]));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        let (l, rest) = parse_series_desc("foo{a=\"b c\", d='e'} 1 2").unwrap_or_default();
        assert_eq!(l.get("a"), Some("b c"));
        assert_eq!(l.get("d"), Some("e"));
        assert_eq!(rest.trim(), "1 2");
    }

    #[test]
    fn smoke() {
        let n = check(
            "smoke",
            "load 1m\n  up{job=\"a\"} 1 2 3\n  up{job=\"b\"} 4 5 6\n\neval instant at 2m sum(up)\n  {} 9\n\neval range from 0 to 2m step 1m up{job=\"a\"} * 2\n  {job=\"a\"} 2 4 6\n",
        );
        assert_eq!(n, 2);
    }
}
