//! The evaluator: every node is evaluated over all steps of its evaluation at once,
//! into a matrix (Prometheus' `evaluator.eval`). Step-wise operators go through
//! [`Evaluator::range_eval`], which slices the argument matrices into one vector per
//! step; functions over range vectors walk each series' windows; subqueries evaluate
//! their body over their own aligned steps.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::aggregate::{Param, aggregate};
use super::binary::{scalar_binop, set_op, vector_scalar, vector_vector};
use super::functions::{self, CallState, Func, Window};
use super::plan::{self, Aggregate, Binary, Call, Node, Selector, Subquery, ValueType};
use super::value::{Sample, Series, Value, drop_metric_name, has_duplicate_labels};
use super::{Point, QueryError};
use crate::model::{Labels, is_stale_nan};
use crate::select::SelectedSeries;

const TIMEOUT_MESSAGE: &str = "query timed out in expression evaluation";
const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// The evaluation times of one evaluation: `start`, `start + interval`, … up to and
/// including `end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Steps {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl Steps {
    pub(crate) fn count(&self) -> usize {
        if self.end < self.start || self.interval <= 0 {
            return 0;
        }
        let n = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.interval) + 1;
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    pub(crate) fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, interval) = (self.start, self.interval);
        (0..self.count()).map(move |i| {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            start.saturating_add(i.saturating_mul(interval))
        })
    }
}

/// A timestamped value, from storage or from an evaluated subquery.
trait TimeValue {
    fn t(&self) -> i64;
    fn v(&self) -> f64;
}

impl TimeValue for crate::model::Sample {
    fn t(&self) -> i64 {
        self.timestamp_ms
    }
    fn v(&self) -> f64 {
        self.value
    }
}

impl TimeValue for Point {
    fn t(&self) -> i64 {
        self.timestamp_ms
    }
    fn v(&self) -> f64 {
        self.value
    }
}

/// The sample an instant selector sees at `ref_ms`: the latest at or before it,
/// unless older than the lookback window or a staleness marker.
fn select_single<T: TimeValue>(samples: &[T], ref_ms: i64, lookback_ms: i64) -> Option<(i64, f64)> {
    let idx = samples.partition_point(|s| s.t() <= ref_ms);
    let s = samples.get(idx.checked_sub(1)?)?;
    if s.t() < ref_ms.saturating_sub(lookback_ms) || is_stale_nan(s.v()) {
        return None;
    }
    Some((s.t(), s.v()))
}

pub(crate) struct Evaluator<'a> {
    data: &'a [Vec<SelectedSeries>],
    lookback_ms: i64,
    max_samples: usize,
    current_samples: usize,
    deadline: Instant,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        data: &'a [Vec<SelectedSeries>],
        lookback_ms: i64,
        max_samples: usize,
        deadline: Instant,
    ) -> Self {
        Evaluator {
            data,
            lookback_ms,
            max_samples,
            current_samples: 0,
            deadline,
        }
    }

    fn check_deadline(&self) -> Result<(), QueryError> {
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout(TIMEOUT_MESSAGE.into()));
        }
        Ok(())
    }

    /// Checks the deadline on every 1024th step, so long step loops stay cheap yet
    /// still end when a query has run out of time.
    fn check_deadline_every(&self, step: usize) -> Result<(), QueryError> {
        if step.is_multiple_of(1024) {
            self.check_deadline()?;
        }
        Ok(())
    }

    fn series_of(&self, sel: &Selector) -> &'a [SelectedSeries] {
        self.data.get(sel.id).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn eval(&mut self, node: &Node, st: Steps) -> Result<Value, QueryError> {
        self.check_deadline()?;
        let mat = match node {
            Node::Str(s) => return Ok(Value::String(s.clone())),
            Node::Number(v) => {
                let v = *v;
                self.range_eval(st, &[], |_, _| Ok(vec![scalar(v)]))?
            }
            Node::Vector(sel) => self.vector_selector(sel, st)?,
            Node::Matrix(sel, range) => {
                if st.start != st.end {
                    return Err(QueryError::Execution(
                        "cannot do range evaluation of matrix selector".into(),
                    ));
                }
                self.matrix_selector(sel, *range, st.start)?
            }
            Node::Subquery(sq) => self.subquery(sq, st)?,
            Node::Aggregate(a) => self.aggregate(a, st)?,
            Node::Neg(e) => {
                let mut mat = self.eval_matrix(e, st)?;
                for s in &mut mat {
                    s.labels = drop_metric_name(&s.labels);
                    for p in &mut s.points {
                        p.value = -p.value;
                    }
                }
                if has_duplicate_labels(mat.iter().map(|s| &s.labels)) {
                    return Err(QueryError::Execution(DUPLICATE_LABELSET.into()));
                }
                mat
            }
            Node::Binary(b) => self.binary(b, st)?,
            Node::Call(c) => self.call(c, st)?,
            Node::StepInvariant(e) => match e.as_ref() {
                Node::Str(s) => return Ok(Value::String(s.clone())),
                inner => self.step_invariant(inner, st)?,
            },
        };
        Ok(Value::Matrix(mat))
    }

    fn eval_matrix(&mut self, node: &Node, st: Steps) -> Result<Vec<Series>, QueryError> {
        match self.eval(node, st)? {
            Value::Matrix(m) => Ok(m),
            Value::String(_) => Err(QueryError::Execution(
                "BUG: string where a matrix was expected".into(),
            )),
        }
    }

    /// Evaluates `exprs` over `st`, then calls `f` at every step with each
    /// expression's vector at that step, and gathers the results into series
    /// (Prometheus' `rangeEval`). String expressions give empty vectors.
    fn range_eval(
        &mut self,
        st: Steps,
        exprs: &[&Node],
        mut f: impl FnMut(&[Vec<Sample>], i64) -> Result<Vec<Sample>, QueryError>,
    ) -> Result<Vec<Series>, QueryError> {
        let original = self.current_samples;
        let mut mats = Vec::with_capacity(exprs.len());
        for e in exprs {
            if e.value_type() == ValueType::String {
                mats.push(Vec::new());
            } else {
                mats.push(self.eval_matrix(e, st)?);
            }
        }
        let mut cursors: Vec<Vec<usize>> = mats.iter().map(|m| vec![0; m.len()]).collect();
        let mut vectors: Vec<Vec<Sample>> = vec![Vec::new(); exprs.len()];
        let mut temp = self.current_samples;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        let mut total_points = 0usize;
        for ts in st.times() {
            self.check_deadline()?;
            self.current_samples = temp;
            for ((mat, cur), vec) in mats.iter().zip(&mut cursors).zip(&mut vectors) {
                vec.clear();
                for (s, c) in mat.iter().zip(cur.iter_mut()) {
                    let Some(p) = s.points.get(*c) else { continue };
                    if p.timestamp_ms != ts {
                        continue;
                    }
                    if self.current_samples >= self.max_samples {
                        return Err(QueryError::TooManySamples);
                    }
                    vec.push(Sample {
                        labels: s.labels.clone(),
                        timestamp_ms: p.timestamp_ms,
                        value: p.value,
                    });
                    *c += 1;
                    self.current_samples += 1;
                }
            }
            let result = f(&vectors, ts)?;
            if has_duplicate_labels(result.iter().map(|s| &s.labels)) {
                return Err(QueryError::Execution(DUPLICATE_LABELSET.into()));
            }
            self.current_samples += result.len();
            temp += result.len();
            if self.current_samples > self.max_samples {
                return Err(QueryError::TooManySamples);
            }
            if st.start == st.end {
                // An instant evaluation keeps the function's order (sort() relies
                // on it).
                self.current_samples = original + result.len();
                return Ok(result
                    .into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        points: vec![Point {
                            timestamp_ms: ts,
                            value: s.value,
                        }],
                    })
                    .collect());
            }
            total_points += result.len();
            for s in result {
                let point = Point {
                    timestamp_ms: ts,
                    value: s.value,
                };
                match index.get(&s.labels) {
                    Some(&i) => {
                        if let Some(series) = out.get_mut(i) {
                            series.points.push(point);
                        }
                    }
                    None => {
                        index.insert(s.labels.clone(), out.len());
                        out.push(Series {
                            labels: s.labels,
                            points: vec![point],
                        });
                    }
                }
            }
        }
        self.current_samples = original + total_points;
        Ok(out)
    }

    fn vector_selector(&mut self, sel: &Selector, st: Steps) -> Result<Vec<Series>, QueryError> {
        let offset = sel.eff_offset_ms.get();
        let mut out = Vec::new();
        let mut samples = Vec::new();
        for s in self.series_of(sel) {
            self.check_deadline()?;
            decode(s, &mut samples)?;
            let mut points = Vec::new();
            for (step, ts) in st.times().enumerate() {
                self.check_deadline_every(step)?;
                let Some((_, v)) =
                    select_single(&samples, ts.saturating_sub(offset), self.lookback_ms)
                else {
                    continue;
                };
                if self.current_samples >= self.max_samples {
                    return Err(QueryError::TooManySamples);
                }
                self.current_samples += 1;
                points.push(Point {
                    timestamp_ms: ts,
                    value: v,
                });
            }
            if !points.is_empty() {
                out.push(Series {
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
        Ok(out)
    }

    /// The non-stale samples in `[min_ms, max_ms]`, counted against the limit.
    fn window<T: TimeValue>(
        &mut self,
        samples: &[T],
        min_ms: i64,
        max_ms: i64,
    ) -> Result<Vec<Point>, QueryError> {
        let mut out = Vec::new();
        self.window_into(samples, min_ms, max_ms, &mut out)?;
        Ok(out)
    }

    /// [`Self::window`] into `out` (cleared first), so a step loop reuses one buffer.
    fn window_into<T: TimeValue>(
        &mut self,
        samples: &[T],
        min_ms: i64,
        max_ms: i64,
        out: &mut Vec<Point>,
    ) -> Result<(), QueryError> {
        out.clear();
        let lo = samples.partition_point(|s| s.t() < min_ms);
        let hi = samples.partition_point(|s| s.t() <= max_ms);
        for s in samples.get(lo..hi).unwrap_or(&[]) {
            if is_stale_nan(s.v()) {
                continue;
            }
            if self.current_samples >= self.max_samples {
                return Err(QueryError::TooManySamples);
            }
            self.current_samples += 1;
            out.push(Point {
                timestamp_ms: s.t(),
                value: s.v(),
            });
        }
        Ok(())
    }

    fn matrix_selector(
        &mut self,
        sel: &Selector,
        range: i64,
        ts: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let max_ms = ts.saturating_sub(sel.eff_offset_ms.get());
        let min_ms = max_ms.saturating_sub(range);
        let mut out = Vec::new();
        let mut samples = Vec::new();
        for s in self.series_of(sel) {
            self.check_deadline()?;
            decode(s, &mut samples)?;
            let points = self.window(&samples, min_ms, max_ms)?;
            if !points.is_empty() {
                out.push(Series {
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
        Ok(out)
    }

    fn subquery(&mut self, sq: &Subquery, st: Steps) -> Result<Vec<Series>, QueryError> {
        let offset = sq.eff_offset_ms.get();
        let interval = sq.step_ms.max(1);
        let end = st.end.saturating_sub(offset);
        // The first step is the first multiple of the interval at or after the
        // start of the range, so results line up across evaluation times.
        let lowest = st.start.saturating_sub(offset).saturating_sub(sq.range_ms);
        let mut start = interval.saturating_mul(lowest / interval);
        if start < lowest {
            start = start.saturating_add(interval);
        }
        if start != st.start {
            plan::set_offset_for_at(start, &sq.expr);
        }
        self.eval_matrix(
            &sq.expr,
            Steps {
                start,
                end,
                interval,
            },
        )
    }

    fn step_invariant(&mut self, inner: &Node, st: Steps) -> Result<Vec<Series>, QueryError> {
        if matches!(inner, Node::Number(_) | Node::Str(_)) {
            return self.eval_matrix(inner, st);
        }
        let once = Steps {
            start: st.start,
            end: st.start,
            interval: st.interval,
        };
        let mut mat = self.eval_matrix(inner, once)?;
        if matches!(inner, Node::Matrix(..) | Node::Subquery(_)) {
            return Ok(mat);
        }
        for s in &mut mat {
            let value = match s.points.as_slice() {
                [p] => p.value,
                _ => {
                    return Err(QueryError::Execution("unexpected number of samples".into()));
                }
            };
            for (step, ts) in st.times().enumerate().skip(1) {
                self.check_deadline_every(step)?;
                s.points.push(Point {
                    timestamp_ms: ts,
                    value,
                });
                self.current_samples += 1;
                if self.current_samples > self.max_samples {
                    return Err(QueryError::TooManySamples);
                }
            }
        }
        Ok(mat)
    }

    fn aggregate(&mut self, a: &Aggregate, st: Steps) -> Result<Vec<Series>, QueryError> {
        let (op, grouping, without) = (a.op, a.grouping.as_slice(), a.without);
        if let Some(Node::Str(label)) = a.param.as_ref().map(Node::unwrap_invariant) {
            let param = Param::Label(label.clone());
            return self.range_eval(st, &[&a.expr], |v, _| {
                aggregate(
                    op,
                    grouping,
                    without,
                    &param,
                    v.first().map(Vec::as_slice).unwrap_or(&[]),
                )
            });
        }
        match &a.param {
            Some(p) => self.range_eval(st, &[p, &a.expr], |v, _| {
                let param = Param::Number(first_value(v.first()));
                aggregate(
                    op,
                    grouping,
                    without,
                    &param,
                    v.get(1).map(Vec::as_slice).unwrap_or(&[]),
                )
            }),
            None => self.range_eval(st, &[&a.expr], |v, _| {
                aggregate(
                    op,
                    grouping,
                    without,
                    &Param::None,
                    v.first().map(Vec::as_slice).unwrap_or(&[]),
                )
            }),
        }
    }

    fn binary(&mut self, b: &Binary, st: Steps) -> Result<Vec<Series>, QueryError> {
        let (op, rb) = (b.op, b.return_bool);
        let m = &b.matching;
        let empty: &[Sample] = &[];
        match (b.lhs.value_type(), b.rhs.value_type()) {
            (ValueType::Scalar, ValueType::Scalar) => {
                self.range_eval(st, &[&b.lhs, &b.rhs], |v, _| {
                    Ok(vec![scalar(scalar_binop(
                        op,
                        first_value(v.first()),
                        first_value(v.get(1)),
                    ))])
                })
            }
            (ValueType::Vector, ValueType::Vector) => {
                self.range_eval(st, &[&b.lhs, &b.rhs], |v, _| {
                    let l = v.first().map(Vec::as_slice).unwrap_or(empty);
                    let r = v.get(1).map(Vec::as_slice).unwrap_or(empty);
                    if op.is_set() {
                        Ok(set_op(op, l, r, m))
                    } else {
                        vector_vector(op, l, r, m, rb)
                    }
                })
            }
            (ValueType::Vector, ValueType::Scalar) => {
                self.range_eval(st, &[&b.lhs, &b.rhs], |v, _| {
                    let l = v.first().map(Vec::as_slice).unwrap_or(empty);
                    Ok(vector_scalar(op, l, first_value(v.get(1)), false, rb))
                })
            }
            (ValueType::Scalar, ValueType::Vector) => {
                self.range_eval(st, &[&b.lhs, &b.rhs], |v, _| {
                    let r = v.get(1).map(Vec::as_slice).unwrap_or(empty);
                    Ok(vector_scalar(op, r, first_value(v.first()), true, rb))
                })
            }
            (l, r) => Err(QueryError::Execution(format!(
                "BUG: binary operation between {} and {}",
                l.documented(),
                r.documented()
            ))),
        }
    }

    fn call(&mut self, c: &Call, st: Steps) -> Result<Vec<Series>, QueryError> {
        // timestamp() of a selector reports the samples' own times, which the
        // step-aligned matrix of a selector no longer has.
        if c.func == Func::Timestamp
            && let Some(Node::Vector(sel)) = c.args.first().map(Node::unwrap_invariant)
        {
            let series = self.series_of(sel);
            // Steps run outside series here, so every series is decoded once first.
            let mut decoded = Vec::with_capacity(series.len());
            for s in series {
                self.check_deadline()?;
                let mut samples = Vec::new();
                decode(s, &mut samples)?;
                decoded.push(samples);
            }
            let lookback = self.lookback_ms;
            return self.range_eval(st, &[], |_, ts| {
                // Prometheus re-derives the offset from `@` here and ignores the
                // written offset in that case.
                let offset = match sel.at_ms {
                    Some(at) => ts.saturating_sub(at),
                    None => sel.eff_offset_ms.get(),
                };
                let vector: Vec<Sample> = series
                    .iter()
                    .zip(&decoded)
                    .filter_map(|(s, samples)| {
                        let (t, v) = select_single(samples, ts.saturating_sub(offset), lookback)?;
                        Some(Sample {
                            labels: s.labels.clone(),
                            timestamp_ms: t,
                            value: v,
                        })
                    })
                    .collect();
                functions::call_instant(
                    Func::Timestamp,
                    &[vector],
                    &c.args,
                    ts,
                    &mut CallState::default(),
                )
            });
        }
        let matrix_arg = c
            .args
            .iter()
            .position(|a| matches!(a.unwrap_invariant(), Node::Matrix(..) | Node::Subquery(_)));
        match matrix_arg {
            Some(i) if functions::is_range_func(c.func) => self.call_range(c, i, st),
            _ => {
                let mut state = CallState::default();
                let refs: Vec<&Node> = c.args.iter().collect();
                let (func, nodes) = (c.func, c.args.as_slice());
                self.range_eval(st, &refs, |v, ts| {
                    functions::call_instant(func, v, nodes, ts, &mut state)
                })
            }
        }
    }

    /// A function over a range vector: per series, per step, over the window
    /// `[ts - offset - range, ts - offset]`.
    fn call_range(&mut self, c: &Call, idx: usize, st: Steps) -> Result<Vec<Series>, QueryError> {
        // The other arguments are scalars: one value per step.
        let mut others: Vec<Vec<f64>> = vec![Vec::new(); c.args.len()];
        for (i, a) in c.args.iter().enumerate() {
            if i == idx || a.value_type() == ValueType::String {
                continue;
            }
            let mat = self.eval_matrix(a, st)?;
            if let (Some(slot), Some(s)) = (others.get_mut(i), mat.first()) {
                *slot = s.points.iter().map(|p| p.value).collect();
            }
        }
        let arg = c.args.get(idx).map(Node::unwrap_invariant);
        let mut subquery_samples = 0usize;
        let (sources, offset, range): (Vec<(Labels, Source<'_>)>, i64, i64) = match arg {
            Some(Node::Matrix(sel, range)) => (
                self.series_of(sel)
                    .iter()
                    .map(|s| (s.labels.clone(), Source::Stored(s)))
                    .collect(),
                sel.eff_offset_ms.get(),
                *range,
            ),
            Some(Node::Subquery(sq)) => {
                let mat = self.subquery(sq, st)?;
                subquery_samples = mat.iter().map(|s| s.points.len()).sum();
                let offset = match sq.at_ms {
                    Some(at) => sq.offset_ms.saturating_add(st.start.saturating_sub(at)),
                    None => sq.eff_offset_ms.get(),
                };
                (
                    mat.into_iter()
                        .map(|s| (s.labels, Source::Evaluated(s.points)))
                        .collect(),
                    offset,
                    sq.range_ms,
                )
            }
            _ => {
                return Err(QueryError::Execution(
                    "BUG: no range-vector argument".into(),
                ));
            }
        };
        let keep_name = c.func == Func::LastOverTime;
        let mut out: Vec<Series> = Vec::new();
        let mut scalars = vec![f64::NAN; c.args.len()];
        let mut window = Vec::new();
        let mut samples = Vec::new();
        for (labels, source) in &sources {
            self.check_deadline()?;
            if let Source::Stored(s) = source {
                // One series decoded at a time: a range function over many samples
                // holds one series' worth, not the whole selection's.
                decode(s, &mut samples)?;
            }
            let mut points = Vec::new();
            for (step, ts) in st.times().enumerate() {
                self.check_deadline_every(step)?;
                for (slot, vals) in scalars.iter_mut().zip(&others) {
                    *slot = vals.get(step).copied().unwrap_or(f64::NAN);
                }
                let end_ms = ts.saturating_sub(offset);
                let start_ms = end_ms.saturating_sub(range);
                match source {
                    Source::Stored(_) => {
                        self.window_into(&samples, start_ms, end_ms, &mut window)?
                    }
                    Source::Evaluated(p) => self.window_into(p, start_ms, end_ms, &mut window)?,
                }
                if window.is_empty() {
                    continue;
                }
                let w = Window {
                    ts,
                    start_ms,
                    end_ms,
                    range_ms: range,
                };
                let result = functions::call_range(c.func, &window, &scalars, w);
                self.current_samples = self.current_samples.saturating_sub(window.len());
                if let Some(value) = result? {
                    points.push(Point {
                        timestamp_ms: ts,
                        value,
                    });
                }
            }
            if points.is_empty() {
                continue;
            }
            if self.current_samples + points.len() > self.max_samples {
                return Err(QueryError::TooManySamples);
            }
            self.current_samples += points.len();
            out.push(Series {
                labels: if keep_name {
                    labels.clone()
                } else {
                    drop_metric_name(labels)
                },
                points,
            });
        }
        self.current_samples = self.current_samples.saturating_sub(subquery_samples);
        if c.func == Func::AbsentOverTime {
            return Ok(absent_over_time(&out, st, arg));
        }
        if has_duplicate_labels(out.iter().map(|s| &s.labels)) {
            return Err(QueryError::Execution(DUPLICATE_LABELSET.into()));
        }
        Ok(out)
    }
}

/// Where a range function's series come from.
enum Source<'a> {
    Stored(&'a SelectedSeries),
    Evaluated(Vec<Point>),
}

/// Decodes a selected series into `out`; a chunk that does not decode fails the
/// query as a storage error, as it failed the read before chunks were decoded here.
fn decode(s: &SelectedSeries, out: &mut Vec<crate::model::Sample>) -> Result<(), QueryError> {
    s.decode_into(out)
        .map_err(|e| QueryError::Storage(e.to_string()))
}

/// `absent_over_time`: one series, with labels from the selector's equality
/// matchers, valued 1 at the steps where no input series had a sample.
fn absent_over_time(mat: &[Series], st: Steps, arg: Option<&Node>) -> Vec<Series> {
    let steps = st.count();
    if mat.iter().any(|s| s.points.len() == steps) {
        return Vec::new();
    }
    let mut found: HashSet<i64> = HashSet::new();
    for (i, s) in mat.iter().enumerate() {
        found.extend(s.points.iter().map(|p| p.timestamp_ms));
        if i > 0 && found.len() == steps {
            return Vec::new();
        }
    }
    let points: Vec<Point> = st
        .times()
        .filter(|t| !found.contains(t))
        .map(|t| Point {
            timestamp_ms: t,
            value: 1.0,
        })
        .collect();
    vec![Series {
        labels: arg.map(plan::absent_labels).unwrap_or_default(),
        points,
    }]
}

fn scalar(value: f64) -> Sample {
    Sample {
        labels: Labels::default(),
        timestamp_ms: 0,
        value,
    }
}

/// The value of a scalar argument's vector at a step.
fn first_value(v: Option<&Vec<Sample>>) -> f64 {
    v.and_then(|v| v.first())
        .map(|s| s.value)
        .unwrap_or(f64::NAN)
}
