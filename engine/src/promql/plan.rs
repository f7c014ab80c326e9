//! From promql-parser's AST to the evaluator's node tree: selectors get an index into
//! the table of fetched series, `@ start()`/`@ end()` are resolved, step-invariant
//! subtrees are marked (Prometheus' `PreprocessExpr`), and each selector's fetch window
//! is computed as Prometheus' `getTimeRangesForSelector` computes it, so every selector
//! is fetched once, before evaluation starts.

use std::cell::Cell;
use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::token;
use promql_parser::parser::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};

use super::QueryError;
use super::functions::Func;
use crate::model::{Label, Labels, METRIC_NAME, MatchOp, Matcher};

/// Subqueries without a step use this one, as Prometheus uses its default global
/// evaluation interval (1 m).
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// A value type, as PromQL types expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    /// The name Prometheus documents the type under (`parser.DocumentedType`).
    pub(crate) fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

/// A vector selector, shared by instant and range selectors.
#[derive(Debug)]
pub(crate) struct Selector {
    /// Index of the selector's series in the fetched table.
    pub id: usize,
    /// The offset as written.
    pub offset_ms: i64,
    /// The `@` time, resolved.
    pub at_ms: Option<i64>,
    /// The offset the evaluator uses: Prometheus folds `@` into it relative to the
    /// start of the evaluation that runs the selector (`setOffsetForAtModifier`).
    pub eff_offset_ms: Cell<i64>,
    /// The matchers, for fetching and for `absent()`'s labels.
    pub matchers: Vec<Matcher>,
}

#[derive(Debug)]
pub(crate) struct Subquery {
    pub expr: Node,
    pub range_ms: i64,
    pub step_ms: i64,
    pub offset_ms: i64,
    pub at_ms: Option<i64>,
    pub eff_offset_ms: Cell<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
}

#[derive(Debug)]
pub(crate) struct Aggregate {
    pub op: AggOp,
    pub expr: Node,
    pub param: Option<Node>,
    /// Sorted grouping labels.
    pub grouping: Vec<String>,
    pub without: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Arithmetic drops the metric name (`shouldDropMetricName`); note that `atan2`
    /// does not in Prometheus 2.42.
    pub(crate) fn drops_metric_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow | BinOp::Mod
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Clone, Debug)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` rather than `ignoring(...)`/nothing.
    pub on: bool,
    pub labels: Vec<String>,
    /// Extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    pub matching: Matching,
    pub return_bool: bool,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub func: Func,
    pub args: Vec<Node>,
}

/// An expression node.
#[derive(Debug)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    Vector(Selector),
    Matrix(Selector, i64),
    Subquery(Box<Subquery>),
    Aggregate(Box<Aggregate>),
    Neg(Box<Node>),
    Binary(Box<Binary>),
    Call(Box<Call>),
    /// Evaluated once at the start of its evaluation and repeated at every step.
    StepInvariant(Box<Node>),
}

impl Node {
    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Node::Number(_) => ValueType::Scalar,
            Node::Str(_) => ValueType::String,
            Node::Vector(_) | Node::Aggregate(_) => ValueType::Vector,
            Node::Matrix(..) | Node::Subquery(_) => ValueType::Matrix,
            Node::Neg(e) | Node::StepInvariant(e) => e.value_type(),
            Node::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Node::Call(c) => c.func.return_type(),
        }
    }

    /// The node without a step-invariant wrapper.
    pub(crate) fn unwrap_invariant(&self) -> &Node {
        match self {
            Node::StepInvariant(e) => e,
            other => other,
        }
    }
}

/// One selector to fetch: its matchers and the inclusive window of samples needed.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub matchers: Vec<Matcher>,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

/// A query ready to evaluate.
#[derive(Debug)]
pub(crate) struct Plan {
    pub root: Node,
    pub fetches: Vec<Fetch>,
}

/// Parses `query` and plans it for an evaluation from `start_ms` to `end_ms`.
pub(crate) fn plan(
    query: &str,
    start_ms: i64,
    end_ms: i64,
    lookback_ms: i64,
) -> Result<Plan, QueryError> {
    super::functions::register_parser_extras();
    let expr = super::parse(query).map_err(QueryError::BadData)?;
    let mut b = Builder {
        start_ms,
        end_ms,
        matchers: Vec::new(),
    };
    let mut root = b.convert(&expr)?;
    if preprocess(&mut root) {
        root = Node::StepInvariant(Box::new(root));
    }
    let mut fetches: Vec<Fetch> = b
        .matchers
        .into_iter()
        .map(|matchers| Fetch {
            matchers,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
        })
        .collect();
    let ctx = Ctx {
        start_ms,
        end_ms,
        lookback_ms,
    };
    fetch_ranges(&root, &ctx, &mut Vec::new(), &mut fetches);
    set_offset_for_at(start_ms, &root);
    Ok(Plan { root, fetches })
}

struct Builder {
    start_ms: i64,
    end_ms: i64,
    matchers: Vec<Vec<Matcher>>,
}

fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

impl Builder {
    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start_ms),
            Some(AtModifier::End) => Some(self.end_ms),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    fn selector(&mut self, vs: &VectorSelector) -> Result<Selector, QueryError> {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(QueryError::BadData(
                "parse error: unexpected \"or\" in label matching".into(),
            ));
        }
        let mut matchers = Vec::new();
        if let Some(name) = &vs.name {
            matchers.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in &vs.matchers.matchers {
            // The parser's regexes are already anchored the way Prometheus anchors
            // them (`^(?:…)$`), so they are reused rather than compiled again.
            let op = match &m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(r) => MatchOp::Regex(r.clone()),
                PMatchOp::NotRe(r) => MatchOp::NotRegex(r.clone()),
            };
            matchers.push(Matcher {
                name: m.name.clone(),
                op,
                value: m.value.clone(),
            });
        }
        let id = self.matchers.len();
        self.matchers.push(matchers.clone());
        let offset = offset_ms(&vs.offset);
        Ok(Selector {
            id,
            offset_ms: offset,
            at_ms: self.at_ms(&vs.at),
            eff_offset_ms: Cell::new(offset),
            matchers,
        })
    }

    fn convert(&mut self, expr: &Expr) -> Result<Node, QueryError> {
        Ok(match expr {
            Expr::NumberLiteral(n) => Node::Number(n.val),
            Expr::StringLiteral(s) => Node::Str(s.val.clone()),
            Expr::Paren(p) => self.convert(&p.expr)?,
            Expr::Unary(u) => Node::Neg(Box::new(self.convert(&u.expr)?)),
            Expr::VectorSelector(vs) => Node::Vector(self.selector(vs)?),
            Expr::MatrixSelector(ms) => {
                Node::Matrix(self.selector(&ms.vs)?, duration_ms(&ms.range))
            }
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let step = sq.step.as_ref().map(duration_ms).unwrap_or(0);
                Node::Subquery(Box::new(Subquery {
                    expr: self.convert(&sq.expr)?,
                    range_ms: duration_ms(&sq.range),
                    step_ms: if step == 0 {
                        DEFAULT_SUBQUERY_STEP_MS
                    } else {
                        step
                    },
                    offset_ms: offset,
                    at_ms: self.at_ms(&sq.at),
                    eff_offset_ms: Cell::new(offset),
                }))
            }
            Expr::Aggregate(a) => {
                let op = agg_op(a.op.id()).ok_or_else(|| {
                    QueryError::BadData(format!("unknown function with name \"{}\"", a.op))
                })?;
                let (mut grouping, without) = match &a.modifier {
                    None => (Vec::new(), false),
                    Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
                    Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
                };
                grouping.sort();
                let param = match &a.param {
                    Some(p) => Some(self.convert(p)?),
                    None => None,
                };
                Node::Aggregate(Box::new(Aggregate {
                    op,
                    expr: self.convert(&a.expr)?,
                    param,
                    grouping,
                    without,
                }))
            }
            Expr::Binary(b) => self.binary(b)?,
            Expr::Call(c) => {
                let func = Func::from_name(c.func.name).ok_or_else(|| {
                    QueryError::BadData(format!("unknown function with name \"{}\"", c.func.name))
                })?;
                let mut args = Vec::with_capacity(c.args.args.len());
                for a in &c.args.args {
                    args.push(self.convert(a)?);
                }
                Node::Call(Box::new(Call { func, args }))
            }
            Expr::Extension(_) => {
                return Err(QueryError::BadData("unsupported expression".into()));
            }
        })
    }

    fn binary(&mut self, b: &BinaryExpr) -> Result<Node, QueryError> {
        let op = bin_op(b.op.id()).ok_or_else(|| {
            QueryError::BadData(format!(
                "binary expression does not support operator '{}'",
                b.op
            ))
        })?;
        let mut matching = Matching {
            card: if op.is_set() {
                Card::ManyToMany
            } else {
                Card::OneToOne
            },
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
        };
        let mut return_bool = false;
        if let Some(m) = &b.modifier {
            if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                return Err(QueryError::BadData(
                    "parse error: unexpected identifier \"fill\"".into(),
                ));
            }
            return_bool = m.return_bool;
            match &m.matching {
                None => {}
                Some(LabelModifier::Include(l)) => {
                    matching.on = true;
                    matching.labels = l.labels.clone();
                }
                Some(LabelModifier::Exclude(l)) => matching.labels = l.labels.clone(),
            }
            match &m.card {
                VectorMatchCardinality::OneToOne => {}
                VectorMatchCardinality::ManyToMany => matching.card = Card::ManyToMany,
                VectorMatchCardinality::ManyToOne(l) => {
                    matching.card = Card::ManyToOne;
                    matching.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) => {
                    matching.card = Card::OneToMany;
                    matching.include = l.labels.clone();
                }
            }
        }
        Ok(Node::Binary(Box::new(Binary {
            op,
            lhs: self.convert(&b.lhs)?,
            rhs: self.convert(&b.rhs)?,
            matching,
            return_bool,
        })))
    }
}

fn agg_op(id: token::TokenId) -> Option<AggOp> {
    Some(match id {
        token::T_SUM => AggOp::Sum,
        token::T_AVG => AggOp::Avg,
        token::T_COUNT => AggOp::Count,
        token::T_MIN => AggOp::Min,
        token::T_MAX => AggOp::Max,
        token::T_GROUP => AggOp::Group,
        token::T_STDDEV => AggOp::Stddev,
        token::T_STDVAR => AggOp::Stdvar,
        token::T_TOPK => AggOp::Topk,
        token::T_BOTTOMK => AggOp::Bottomk,
        token::T_COUNT_VALUES => AggOp::CountValues,
        token::T_QUANTILE => AggOp::Quantile,
        _ => return None,
    })
}

fn bin_op(id: token::TokenId) -> Option<BinOp> {
    Some(match id {
        token::T_ADD => BinOp::Add,
        token::T_SUB => BinOp::Sub,
        token::T_MUL => BinOp::Mul,
        token::T_DIV => BinOp::Div,
        token::T_MOD => BinOp::Mod,
        token::T_POW => BinOp::Pow,
        token::T_ATAN2 => BinOp::Atan2,
        token::T_EQLC => BinOp::Eql,
        token::T_NEQ => BinOp::Neq,
        token::T_GTR => BinOp::Gtr,
        token::T_LSS => BinOp::Lss,
        token::T_GTE => BinOp::Gte,
        token::T_LTE => BinOp::Lte,
        token::T_LAND => BinOp::And,
        token::T_LOR => BinOp::Or,
        token::T_LUNLESS => BinOp::Unless,
        _ => return None,
    })
}

/// Marks step-invariant subtrees as Prometheus' `preprocessExprHelper` does; returns
/// whether `node` itself is step invariant (the caller wraps it).
fn preprocess(node: &mut Node) -> bool {
    fn wrap(n: &mut Node) {
        let inner = std::mem::replace(n, Node::Number(0.0));
        *n = Node::StepInvariant(Box::new(inner));
    }
    match node {
        Node::Vector(s) | Node::Matrix(s, _) => s.at_ms.is_some(),
        Node::Aggregate(a) => {
            // The parameter is not looked at, as in Prometheus.
            preprocess(&mut a.expr)
        }
        Node::Binary(b) => {
            let l = preprocess(&mut b.lhs);
            let r = preprocess(&mut b.rhs);
            if l && r {
                return true;
            }
            if l {
                wrap(&mut b.lhs);
            }
            if r {
                wrap(&mut b.rhs);
            }
            false
        }
        Node::Call(c) => {
            let mut invariant = !c.func.is_at_unsafe();
            let flags: Vec<bool> = c.args.iter_mut().map(preprocess).collect();
            invariant = invariant && flags.iter().all(|f| *f);
            if invariant {
                return true;
            }
            for (a, f) in c.args.iter_mut().zip(flags) {
                if f {
                    wrap(a);
                }
            }
            false
        }
        Node::Subquery(s) => {
            if preprocess(&mut s.expr) {
                wrap(&mut s.expr);
            }
            s.at_ms.is_some()
        }
        Node::Neg(e) => preprocess(e),
        Node::Number(_) | Node::Str(_) => true,
        Node::StepInvariant(_) => true,
    }
}

struct Ctx {
    start_ms: i64,
    end_ms: i64,
    lookback_ms: i64,
}

/// An enclosing subquery, as `subqueryTimes` sees it.
#[derive(Clone, Copy)]
struct SubqFrame {
    offset_ms: i64,
    range_ms: i64,
    at_ms: Option<i64>,
}

/// Sums the offsets and ranges of the enclosing subqueries, restarting at the last
/// one with an `@`, whose time is returned too (`subqueryTimes`).
fn subquery_times(path: &[SubqFrame]) -> (i64, i64, Option<i64>) {
    let (mut off, mut range, mut ts) = (0i64, 0i64, None);
    for f in path {
        off = off.saturating_add(f.offset_ms);
        range = range.saturating_add(f.range_ms);
        if let Some(at) = f.at_ms {
            off = f.offset_ms;
            range = f.range_ms;
            ts = Some(at);
        }
    }
    (off, range, ts)
}

fn fetch_ranges(node: &Node, ctx: &Ctx, path: &mut Vec<SubqFrame>, out: &mut [Fetch]) {
    let mut visit_selector = |s: &Selector, eval_range: i64, path: &[SubqFrame]| {
        let (subq_off, subq_range, subq_ts) = subquery_times(path);
        let (mut start, mut end) = (ctx.start_ms, ctx.end_ms);
        if let Some(ts) = subq_ts {
            start = ts;
            end = ts;
        }
        if let Some(at) = s.at_ms {
            start = at;
            end = at;
        } else {
            start = start.saturating_sub(subq_off).saturating_sub(subq_range);
            end = end.saturating_sub(subq_off);
        }
        if eval_range == 0 {
            start = start.saturating_sub(ctx.lookback_ms);
        } else {
            start = start.saturating_sub(eval_range);
        }
        start = start.saturating_sub(s.offset_ms);
        end = end.saturating_sub(s.offset_ms);
        if let Some(f) = out.get_mut(s.id) {
            f.min_time_ms = f.min_time_ms.min(start);
            f.max_time_ms = f.max_time_ms.max(end);
        }
    };
    match node {
        Node::Vector(s) => visit_selector(s, 0, path),
        Node::Matrix(s, r) => visit_selector(s, *r, path),
        Node::Number(_) | Node::Str(_) => {}
        Node::Subquery(s) => {
            path.push(SubqFrame {
                offset_ms: s.offset_ms,
                range_ms: s.range_ms,
                at_ms: s.at_ms,
            });
            fetch_ranges(&s.expr, ctx, path, out);
            path.pop();
        }
        Node::Aggregate(a) => {
            if let Some(p) = &a.param {
                fetch_ranges(p, ctx, path, out);
            }
            fetch_ranges(&a.expr, ctx, path, out);
        }
        Node::Neg(e) | Node::StepInvariant(e) => fetch_ranges(e, ctx, path, out),
        Node::Binary(b) => {
            fetch_ranges(&b.lhs, ctx, path, out);
            fetch_ranges(&b.rhs, ctx, path, out);
        }
        Node::Call(c) => {
            for a in &c.args {
                fetch_ranges(a, ctx, path, out);
            }
        }
    }
}

/// Folds `@` into the effective offsets of the selectors and subqueries under `node`
/// relative to `eval_ms`, the start of the evaluation that runs them (Prometheus'
/// `setOffsetForAtModifier`).
pub(crate) fn set_offset_for_at(eval_ms: i64, node: &Node) {
    fn offset_for(eval_ms: i64, at: Option<i64>, orig: i64, path: &[SubqFrame]) -> i64 {
        let Some(at) = at else { return orig };
        let (mut subq_off, _, subq_ts) = subquery_times(path);
        if let Some(ts) = subq_ts {
            subq_off = subq_off.saturating_add(eval_ms.saturating_sub(ts));
        }
        let diff = eval_ms.saturating_sub(at).saturating_sub(subq_off);
        orig.saturating_add(diff)
    }
    fn walk(eval_ms: i64, node: &Node, path: &mut Vec<SubqFrame>) {
        match node {
            Node::Vector(s) | Node::Matrix(s, _) => {
                s.eff_offset_ms
                    .set(offset_for(eval_ms, s.at_ms, s.offset_ms, path));
            }
            Node::Subquery(s) => {
                s.eff_offset_ms
                    .set(offset_for(eval_ms, s.at_ms, s.offset_ms, path));
                path.push(SubqFrame {
                    offset_ms: s.offset_ms,
                    range_ms: s.range_ms,
                    at_ms: s.at_ms,
                });
                walk(eval_ms, &s.expr, path);
                path.pop();
            }
            Node::Number(_) | Node::Str(_) => {}
            Node::Aggregate(a) => {
                if let Some(p) = &a.param {
                    walk(eval_ms, p, path);
                }
                walk(eval_ms, &a.expr, path);
            }
            Node::Neg(e) | Node::StepInvariant(e) => walk(eval_ms, e, path),
            Node::Binary(b) => {
                walk(eval_ms, &b.lhs, path);
                walk(eval_ms, &b.rhs, path);
            }
            Node::Call(c) => {
                for a in &c.args {
                    walk(eval_ms, a, path);
                }
            }
        }
    }
    walk(eval_ms, node, &mut Vec::new());
}

/// The labels `absent()`/`absent_over_time()` report for their argument: the
/// equality matchers' pairs, except names matched more than once or otherwise
/// (`createLabelsForAbsentFunction`).
pub(crate) fn absent_labels(node: &Node) -> Labels {
    let sel = match node.unwrap_invariant() {
        Node::Vector(s) | Node::Matrix(s, _) => s,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<Label> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in &sel.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            pairs.retain(|l| l.name != m.name);
            pairs.push(Label::new(m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            pairs.retain(|l| l.name != m.name);
        }
    }
    super::value::labels_from(pairs)
}
