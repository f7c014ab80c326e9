//! `label_replace` and `label_join`, with Prometheus' validation order and messages.

use regex::Regex;

use crate::promql::QueryError;
use crate::promql::plan::Node;
use crate::promql::value::{Sample, is_valid_label_name, with_label};

/// State a function keeps across the steps of one call site (Prometheus keeps the
/// compiled `label_replace` regex in its node helper the same way).
#[derive(Debug, Default)]
pub(crate) struct CallState {
    regex: Option<Regex>,
}

fn string_arg(nodes: &[Node], i: usize) -> Result<&str, QueryError> {
    match nodes.get(i).map(Node::unwrap_invariant) {
        Some(Node::Str(s)) => Ok(s),
        _ => Err(QueryError::Execution(format!(
            "BUG: argument {i} is not a string literal"
        ))),
    }
}

pub(super) fn label_replace(
    vector: &[Sample],
    nodes: &[Node],
    state: &mut CallState,
) -> Result<Vec<Sample>, QueryError> {
    let dst = string_arg(nodes, 1)?;
    let repl = string_arg(nodes, 2)?;
    let src = string_arg(nodes, 3)?;
    let regex_str = string_arg(nodes, 4)?;
    if state.regex.is_none() {
        let re = Regex::new(&format!("^(?:{regex_str})$")).map_err(|_| {
            QueryError::Execution(format!(
                "invalid regular expression in label_replace(): {regex_str}"
            ))
        })?;
        if !is_valid_label_name(dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        state.regex = Some(re);
    }
    let Some(re) = state.regex.as_ref() else {
        return Ok(Vec::new());
    };
    Ok(vector
        .iter()
        .map(|s| {
            let src_val = s.labels.get(src).unwrap_or("");
            let labels = match re.captures(src_val) {
                None => s.labels.clone(),
                Some(caps) => {
                    let mut res = String::new();
                    // Go's `Regexp.Expand` and Rust's `expand` read `$1`, `${1}`, `$name`
                    // and `$$` alike (names greedy, unknown groups empty).
                    caps.expand(repl, &mut res);
                    with_label(&s.labels, dst, &res)
                }
            };
            Sample {
                labels,
                timestamp_ms: s.timestamp_ms,
                value: s.value,
            }
        })
        .collect())
}

pub(super) fn label_join(vector: &[Sample], nodes: &[Node]) -> Result<Vec<Sample>, QueryError> {
    let dst = string_arg(nodes, 1)?;
    let sep = string_arg(nodes, 2)?;
    let mut srcs = Vec::new();
    for i in 3..nodes.len() {
        let src = string_arg(nodes, i)?;
        if !is_valid_label_name(src) {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        srcs.push(src);
    }
    if !is_valid_label_name(dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(vector
        .iter()
        .map(|s| {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get(n).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(sep);
            Sample {
                labels: with_label(&s.labels, dst, &joined),
                timestamp_ms: s.timestamp_ms,
                value: s.value,
            }
        })
        .collect())
}
