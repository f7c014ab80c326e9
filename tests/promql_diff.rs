//! Differential run: tsdb and Debian's Prometheus 2.42 get the same remote-write data
//! (see `promql_diff/data.rs`) and the same few thousand PromQL queries
//! (`promql_diff/queries.rs`) through `/api/v1/query` and `/api/v1/query_range`; every
//! answer must agree (`promql_diff/compare.rs`). All mismatches are printed, then the
//! test fails with their count.
//!
//! Each expression runs at two instant eval times and over one range, rotating over
//! the lists below. `TSDB_DIFF_QUERIES=N` sets how many seeded random expressions join
//! the fixed ones (default 2,000), `TSDB_DIFF_SEED` their seed; `TSDB_DIFF_VERBOSE=1`
//! also prints answers that agree but are not byte-identical; `TSDB_DIFF_HOLD=S` keeps
//! both servers up for S seconds after the run (addresses printed) to reproduce by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;
#[path = "promql_diff/compare.rs"]
mod compare;
#[path = "promql_diff/data.rs"]
mod data;
#[path = "promql_diff/prometheus.rs"]
mod prometheus;
#[path = "promql_diff/queries.rs"]
mod queries;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{Server, urlencode};
use compare::{Answer, How, bit_exact, first_difference, shorten};
use data::{Dataset, STEP_MS};
use prometheus::Prometheus;

const SEED: u64 = 0x5eed_2042;
/// Random expressions added to the fixed ones by default.
const DEFAULT_RANDOM_QUERIES: usize = 2000;

/// Known Prometheus 2.42 bugs tsdb deliberately does not copy: (query, reason). Empty:
/// every difference so far was ours to fix.
const ALLOWED: &[(&str, &str)] = &[];

/// Where a query is evaluated.
#[derive(Clone, Copy, Debug)]
enum At {
    Instant {
        time_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

impl At {
    fn path(&self, q: &str) -> String {
        let secs = |ms: i64| format!("{}", ms as f64 / 1000.0);
        match *self {
            At::Instant { time_ms } => {
                format!(
                    "/api/v1/query?query={}&time={}",
                    urlencode(q),
                    secs(time_ms)
                )
            }
            At::Range {
                start_ms,
                end_ms,
                step_ms,
            } => format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={}",
                urlencode(q),
                secs(start_ms),
                secs(end_ms),
                secs(step_ms)
            ),
        }
    }
}

/// Instant eval times: before the data, at its edges, in the gaps, around the early
/// end and stale markers, and after it (within and beyond the 5 m lookback).
fn instant_times(d: &Dataset) -> Vec<At> {
    let (s, e) = (d.start_ms, d.end_ms());
    let min = 60_000;
    [
        s - min,
        s,
        s + 7 * min + 30_000,
        s + 15 * min + 123,
        s + 34 * min,
        s + 42 * min,
        s + 53 * min,
        s + 60 * min + 500,
        s + 80 * min + 7_500,
        e,
        e + 3 * min,
        e + 6 * min,
    ]
    .into_iter()
    .map(|time_ms| At::Instant { time_ms })
    .collect()
}

fn ranges(d: &Dataset) -> Vec<At> {
    let (s, e) = (d.start_ms, d.end_ms());
    let min = 60_000;
    [
        (s - 5 * min, e + 10 * min, 5 * min),
        (s + 30 * min, s + 50 * min, STEP_MS),
        (s + 60 * min, s + 90 * min, 37_000),
        (s, e, min),
        (e - 20 * min, e + 8 * min, min),
        (s - 10 * min, s + 10 * min, 30_000),
    ]
    .into_iter()
    .map(|(start_ms, end_ms, step_ms)| At::Range {
        start_ms,
        end_ms,
        step_ms,
    })
    .collect()
}

fn env_number(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

struct Mismatch {
    query: String,
    path: String,
    diff: String,
    tsdb: String,
    prom: String,
}

/// How Prometheus answered: `error`, `empty` (no series), or `data`.
fn outcome(body: &str) -> &'static str {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if v["status"] != "success" {
        return "error";
    }
    match &v["data"]["result"] {
        serde_json::Value::Array(a) if a.is_empty() => "empty",
        _ => "data",
    }
}

fn ask(get: impl Fn(&str) -> (u16, String), path: &str) -> Answer {
    let (status, body) = get(path);
    Answer { status, body }
}

/// Metadata routes on the same data: their `data` must be equal as sorted lists.
fn compare_metadata(tsdb: &Server, prom: &Prometheus, d: &Dataset, out: &mut Vec<Mismatch>) {
    let s = d.start_ms as f64 / 1000.0;
    let e = d.end_ms() as f64 / 1000.0;
    let paths = [
        format!("/api/v1/labels?start={s}&end={e}"),
        format!("/api/v1/label/job/values?start={s}&end={e}"),
        format!("/api/v1/label/__name__/values?start={s}&end={e}"),
        format!(
            "/api/v1/label/instance/values?match[]={}&start={s}&end={e}",
            urlencode("up")
        ),
        format!(
            "/api/v1/series?match[]={}&match[]={}&start={s}&end={e}",
            urlencode(r#"{__name__=~"up|queue_length"}"#),
            urlencode(r#"request_duration_seconds_bucket{le="+Inf"}"#)
        ),
        format!(
            "/api/v1/series?match[]={}&start={s}&end={e}",
            urlencode(r#"{job=~"gaps|batch"}"#)
        ),
    ];
    for path in paths {
        let (ts, tb) = tsdb.get(&path);
        let (ps, pb) = prom.get(&path);
        let sorted = |b: &str| {
            let v: serde_json::Value = serde_json::from_str(b).unwrap_or_default();
            let mut items: Vec<String> = v["data"]
                .as_array()
                .map(|a| a.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            items.sort();
            items
        };
        if ts != ps || sorted(&tb) != sorted(&pb) || sorted(&pb).is_empty() {
            out.push(Mismatch {
                query: "(metadata)".into(),
                path: path.clone(),
                diff: format!("status {ts} vs {ps}, or data differs (or is empty)"),
                tsdb: tb,
                prom: pb,
            });
        }
    }
}

#[test]
fn promql_answers_match_prometheus() {
    let began = Instant::now();
    prometheus::require_binary(prometheus::PROMETHEUS_BIN);
    let prom = Prometheus::start("");
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Server::start(dir.path(), &["--shards=2"]);

    let d = data::generate(SEED, data::start_ms());
    d.write_to_both(&tsdb, &prom);
    let written = Instant::now();

    let at_secs = (d.start_ms + 3_600_000) / 1000;
    let random_count: usize = env_number("TSDB_DIFF_QUERIES").unwrap_or(DEFAULT_RANDOM_QUERIES);
    let random_seed = env_number("TSDB_DIFF_SEED").unwrap_or(SEED as usize) as u64;
    let mut exprs = queries::all(at_secs);
    let fixed = exprs.len();
    exprs.extend(queries::random(random_seed, random_count));
    let times = instant_times(&d);
    let ranges = ranges(&d);

    // TSDB_DIFF_VERBOSE=1 also prints answers that agree but differ in bytes.
    let verbose = std::env::var_os("TSDB_DIFF_VERBOSE").is_some();
    let mut mismatches = Vec::new();
    compare_metadata(&tsdb, &prom, &d, &mut mismatches);
    let mut evaluations = 0usize;
    let mut identical_bytes = 0usize;
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut within_tolerance: Vec<String> = Vec::new();
    for (i, q) in exprs.iter().enumerate() {
        // Two instant and one range evaluation per expression, rotating so each eval
        // time and range sees a spread of queries.
        let places = [
            times[i % times.len()],
            times[(i * 5 + 7) % times.len()],
            ranges[(i * 7 + 3) % ranges.len()],
        ];
        for at in places {
            let path = at.path(q);
            let t = ask(|p| tsdb.get(p), &path);
            let p = ask(|p| prom.get(p), &path);
            evaluations += 1;
            *outcomes.entry(outcome(&p.body)).or_default() += 1;
            if t.body == p.body && t.status == p.status {
                identical_bytes += 1;
                continue;
            }
            let diff = first_difference(&t, &p, How::for_query(q));
            let inexact = diff.is_none() && !bit_exact(&t, &p);
            if inexact {
                within_tolerance.push(q.clone());
            }
            if diff.is_none() && verbose {
                eprintln!(
                    "EQUAL, NOT BYTE-IDENTICAL{} {q} at {at:?}\n  tsdb:       {}\n  prometheus: {}",
                    if inexact {
                        " (values not bit-exact)"
                    } else {
                        ""
                    },
                    shorten(&t.body, 400),
                    shorten(&p.body, 400)
                );
            }
            if let Some(diff) = diff {
                if ALLOWED.iter().any(|(a, _)| a == q) {
                    continue;
                }
                mismatches.push(Mismatch {
                    query: q.clone(),
                    path: format!("{at:?}"),
                    diff,
                    tsdb: t.body,
                    prom: p.body,
                });
            }
        }
    }

    for m in &mismatches {
        eprintln!(
            "MISMATCH {}\n  at:         {}\n  first diff: {}\n  tsdb:       {}\n  prometheus: {}\n",
            m.query,
            m.path,
            shorten(&m.diff, 600),
            shorten(&m.tsdb, 600),
            shorten(&m.prom, 600)
        );
    }
    eprintln!(
        "promql_diff: {} series, {} samples written in {:.1?}; {} expressions ({fixed} fixed, \
         {random_count} random with TSDB_DIFF_SEED={random_seed}), \
         {evaluations} evaluations ({identical_bytes} byte-identical; Prometheus: \
         {outcomes:?}; {} agree only within {:e}) in {:.1?}; {} mismatches",
        d.series.len(),
        d.sample_count(),
        written - began,
        exprs.len(),
        within_tolerance.len(),
        compare::REL_TOLERANCE,
        written.elapsed(),
        mismatches.len()
    );
    if let Some(secs) = env_number("TSDB_DIFF_HOLD") {
        eprintln!(
            "holding for {secs} s: tsdb http://{} prometheus http://{} data {}..{} ms",
            tsdb.addr,
            prom.addr,
            d.start_ms,
            d.end_ms()
        );
        std::thread::sleep(std::time::Duration::from_secs(secs as u64));
    }
    // A comparison of empty answers proves nothing: most must carry data.
    let with_data = outcomes.get("data").copied().unwrap_or(0);
    assert!(
        with_data * 10 >= evaluations * 7,
        "only {with_data} of {evaluations} answers carry data; is the data set loaded?"
    );
    assert!(
        mismatches.is_empty(),
        "{} answers differ from Prometheus 2.42 (each printed above)",
        mismatches.len()
    );
    tsdb.assert_no_unexpected_warnings(&[]);
}

/// The comparison itself: a differential test whose comparator accepts everything
/// would pass vacuously, so each kind of difference is shown to it once.
#[test]
fn comparator_sees_each_kind_of_difference() {
    let ok = |body: &str| Answer {
        status: 200,
        body: body.to_string(),
    };
    let vector = |items: &[(&str, &str, &str)]| {
        let result: Vec<String> = items
            .iter()
            .map(|(l, t, v)| format!(r#"{{"metric":{{"a":"{l}"}},"value":[{t},"{v}"]}}"#))
            .collect();
        ok(&format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        ))
    };
    let base = vector(&[("x", "1", "1.5"), ("y", "1", "NaN"), ("z", "1", "+Inf")]);
    let base_zero = || vector(&[("x", "1", "0"), ("y", "1", "NaN"), ("z", "1", "+Inf")]);
    let same = How::default();
    assert_eq!(first_difference(&base, &base, same), None);
    let reordered = vector(&[("z", "1", "+Inf"), ("x", "1", "1.5"), ("y", "1", "NaN")]);
    assert_eq!(first_difference(&reordered, &base, same), None);
    let sorted = How::for_query("sort(x)");
    assert!(first_difference(&reordered, &base, sorted).is_some());
    assert!(!How::for_query("sort(x) + 1").ordered);
    let close = vector(&[
        ("x", "1", "1.5000000000001"),
        ("y", "1", "NaN"),
        ("z", "1", "+Inf"),
    ]);
    assert_eq!(first_difference(&close, &base, same), None);
    for other in [
        vector(&[("x", "1", "1.5001"), ("y", "1", "NaN"), ("z", "1", "+Inf")]),
        vector(&[("x", "1", "1.5"), ("y", "1", "0"), ("z", "1", "+Inf")]),
        vector(&[("x", "1", "1.5"), ("y", "1", "NaN"), ("z", "1", "-Inf")]),
        vector(&[("x", "2", "1.5"), ("y", "1", "NaN"), ("z", "1", "+Inf")]),
        vector(&[("w", "1", "1.5"), ("y", "1", "NaN"), ("z", "1", "+Inf")]),
        vector(&[("x", "1", "1.5"), ("y", "1", "NaN")]),
        ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1.5"]}}"#),
        Answer {
            status: 422,
            body: r#"{"status":"error","errorType":"execution","error":"x"}"#.into(),
        },
    ] {
        assert!(
            first_difference(&other, &base, same).is_some(),
            "{}",
            other.body
        );
    }
    let residue = vector(&[
        ("x", "1", "-1.1102230246251565e-16"),
        ("y", "1", "NaN"),
        ("z", "1", "+Inf"),
    ]);
    assert_eq!(first_difference(&residue, &base_zero(), same), None);
    let tiny = vector(&[("x", "1", "1e-300"), ("y", "1", "NaN"), ("z", "1", "+Inf")]);
    assert!(first_difference(&tiny, &base_zero(), same).is_some());
    // A number in a label (count_values) compares like a value, but two spellings of
    // one float do not.
    let v = vector(&[("0.1", "1", "1")]);
    assert_eq!(
        first_difference(&vector(&[("0.10000000000000002", "1", "1")]), &v, same),
        None
    );
    let tie = vector(&[("1000000000000000.2", "1", "1")]);
    assert!(first_difference(&vector(&[("1000000000000000.3", "1", "1")]), &tie, same).is_some());
    // Rank selections may keep another series of the same value, not another value.
    let topk = How::for_query("topk(1, x)");
    let a = vector(&[("x", "1", "2")]);
    assert_eq!(
        first_difference(&vector(&[("y", "1", "2")]), &a, topk),
        None
    );
    assert!(first_difference(&vector(&[("y", "1", "3")]), &a, topk).is_some());
    let error = |status, kind| Answer {
        status,
        body: format!(r#"{{"status":"error","errorType":"{kind}","error":"e"}}"#),
    };
    assert_eq!(
        first_difference(&error(400, "bad_data"), &error(400, "bad_data"), same),
        None
    );
    assert!(first_difference(&error(422, "execution"), &error(400, "bad_data"), same).is_some());
}
