//! The one way into `promql-parser`: [`parse`] first checks a query's tokens for what
//! would make that crate panic, recurse past a thread's stack or take quadratic time,
//! and only then parses it. Every caller that parses PromQL text from a request (the
//! evaluator, `match[]`, `format_query`) goes through here; `tests/tidy.rs` checks it.
//!
//! What promql-parser 0.11 does with hostile text, found by fuzzing:
//! - a plain number as a duration (`x[1e20]`, `x[Inf]`, `x offset NaN`) reaches
//!   `Duration::from_secs_f64`, which panics on a negative, non-finite or too large
//!   value — and a panic aborts the server;
//! - every binary operator, function call and aggregation re-derives the value type of
//!   its whole operand subtree, so a chain of n operators costs O(n²) to parse, and the
//!   parser, the evaluator and `Drop` all recurse once per level of nesting.
//!
//! So a query may nest brackets at most [`PROMQL_NESTING_MAX`] deep and hold at most
//! [`PROMQL_OPERATORS_MAX`] operators; both are far beyond what people write.

use std::time::Duration;

use lrpar::{Lexeme, Lexer, NonStreamingLexer};
use promql_parser::parser::Expr;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_COLON, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LEFT_BRACE, T_LEFT_BRACKET,
    T_LEFT_PAREN, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD, T_MUL, T_NEQ, T_NUMBER, T_OFFSET, T_POW,
    T_RIGHT_BRACE, T_RIGHT_BRACKET, T_RIGHT_PAREN, T_SUB,
};

use crate::limits::{PROMQL_NESTING_MAX, PROMQL_OPERATORS_MAX};

/// Checks `query`'s tokens, then parses it with promql-parser. Errors read as the
/// parser's own do.
pub fn parse(query: &str) -> Result<Expr, String> {
    check_tokens(query)?;
    promql_parser::parser::parse(query)
}

/// Walks the tokens once. A query that does not even lex is left to the parser, which
/// says why.
fn check_tokens(query: &str) -> Result<(), String> {
    let Ok(lexer) = promql_parser::parser::lexer(query) else {
        return Ok(());
    };
    let mut depth = 0usize;
    let mut operators = 0usize;
    // The tokens before the current one, to tell a number used as a duration.
    let (mut prev, mut prev2) = (None, None);
    for lexeme in lexer.iter() {
        let Ok(lexeme) = lexeme else {
            return Ok(());
        };
        let tok = lexeme.tok_id();
        match tok {
            T_LEFT_PAREN | T_LEFT_BRACKET | T_LEFT_BRACE => {
                depth += 1;
                if depth > PROMQL_NESTING_MAX {
                    return Err(format!(
                        "parse error: query nests brackets more than {PROMQL_NESTING_MAX} deep"
                    ));
                }
            }
            T_RIGHT_PAREN | T_RIGHT_BRACKET | T_RIGHT_BRACE => depth = depth.saturating_sub(1),
            T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2 | T_EQLC | T_NEQ | T_LSS
            | T_GTR | T_LTE | T_GTE | T_LAND | T_LOR | T_LUNLESS => {
                operators += 1;
                if operators > PROMQL_OPERATORS_MAX {
                    return Err(format!(
                        "parse error: query has more than {PROMQL_OPERATORS_MAX} operators"
                    ));
                }
            }
            T_NUMBER => {
                let is_duration = matches!(
                    (prev, prev2),
                    (Some(T_LEFT_BRACKET | T_COLON | T_OFFSET), _)
                        | (Some(T_ADD | T_SUB), Some(T_OFFSET))
                );
                if is_duration {
                    let text = lexer.span_str(lexeme.span());
                    check_number_duration(text)?;
                }
            }
            _ => {}
        }
        prev2 = prev;
        prev = Some(tok);
    }
    Ok(())
}

/// A number where a duration goes is seconds; promql-parser turns it into a
/// `Duration` with a conversion that panics unless it is finite, not negative and
/// within `Duration`'s range.
fn check_number_duration(text: &str) -> Result<(), String> {
    match promql_parser::util::parse_str_radix(text) {
        Ok(secs) if Duration::try_from_secs_f64(secs).is_err() => {
            Err(format!("parse error: duration {text} is out of range"))
        }
        // A number the parser cannot read is its own error to report.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_durations_out_of_range_are_refused_not_panicked_on() {
        // Each of these made promql-parser 0.11.1 panic (found by the `promql` fuzz
        // target through `match[]`, checked one by one under `catch_unwind`).
        for q in [
            "up[1e20]",
            "up[18446744073709551616]",
            "up[5m:1e308]",
            "max_over_time(up[1e100:])",
            "match[1e308]",
            "up offset 1e20",
            "up offset 1e308",
            "up offset Inf",
            "up offset -Inf",
            "up offset +NaN",
            "up offset -1e20",
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.contains("out of range"), "{q}: {e}");
        }
        // Refused by the parser itself.
        for q in ["up[Inf]", "up[NaN]", "up[-1]"] {
            assert!(parse(q).is_err(), "{q}");
        }
        assert!(parse("up[300]").is_ok());
        assert!(parse("up[5m:30]").is_ok());
        assert!(parse("up offset 60").is_ok());
        // Numbers elsewhere are not durations.
        assert!(parse("up > 1e308").is_ok());
        assert!(parse("vector(Inf) + -Inf").is_ok());
        assert!(parse("{a=\"[1e308]\"}").is_ok());
    }

    #[test]
    fn deep_nesting_and_long_operator_chains_are_refused() {
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(PROMQL_NESTING_MAX)).is_ok());
        let e = parse(&nested(PROMQL_NESTING_MAX + 1)).unwrap_err();
        assert!(e.contains("nests brackets"), "{e}");
        // Deep enough to overflow a 2 MiB stack or take minutes without the limit.
        assert!(parse(&nested(100_000)).is_err());
        let chain = |n: usize| format!("1{}", "+1".repeat(n));
        assert!(parse(&chain(PROMQL_OPERATORS_MAX)).is_ok());
        let e = parse(&chain(PROMQL_OPERATORS_MAX + 1)).unwrap_err();
        assert!(e.contains("operators"), "{e}");
        assert!(parse(&"-".repeat(100_000)).is_err());
        // Brackets inside strings and comments are not nesting.
        let quoted = format!("{{a=\"{}\"}} # {}", "(".repeat(1000), "[".repeat(1000));
        assert!(parse(&quoted).is_ok());
    }

    /// The deepest queries the limits let through still evaluate on a thread with the
    /// 2 MiB stack a shard thread has.
    #[test]
    fn the_deepest_accepted_queries_fit_a_shard_threads_stack() {
        let levels = |open: &str, close: &str, per_level: usize| {
            let n = PROMQL_NESTING_MAX / per_level;
            let inner = format!("up{}", " + up".repeat(PROMQL_OPERATORS_MAX));
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        let queries = [
            levels("max_over_time((", ")[1m:10s])", 2),
            levels("abs(", ")", 1),
            levels("sum by (job) (", ")", 1),
            levels("(", ")", 1),
            format!("{}up", "-".repeat(PROMQL_OPERATORS_MAX)),
        ];
        for q in queries {
            assert!(parse(&q).is_ok(), "{q}");
            let done = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let store = super::super::MemStore::new(vec![crate::head::SeriesData {
                        labels: crate::model::Labels::new(vec![
                            crate::model::Label::new("__name__", "up"),
                            crate::model::Label::new("job", "a"),
                        ])
                        .unwrap(),
                        samples: (0..10)
                            .map(|i| crate::model::Sample::new(i * 15_000, 1.0))
                            .collect(),
                    }]);
                    let opts = super::super::QueryOptions::default();
                    let mut f =
                        std::pin::pin!(super::super::instant_query(&store, &q, 150_000, &opts));
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    loop {
                        if let std::task::Poll::Ready(r) = f.as_mut().poll(&mut cx) {
                            return r.is_ok();
                        }
                    }
                })
                .unwrap()
                .join()
                .unwrap();
            assert!(done);
        }
    }
}
