//! Black-box: real Prometheus clients talk to tsdb. `promtool query …` (instant, range,
//! series, labels) must succeed against tsdb and print what it prints against a
//! Prometheus holding the same data; and a second Prometheus with tsdb as its
//! `remote_read` endpoint must answer queries about data only tsdb has exactly as tsdb
//! does. A recording proxy between them shows which response types Prometheus asks
//! for, and can rewrite the request to test each one.
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
#[path = "promql_diff/read_proxy.rs"]
mod read_proxy;

use std::process::Command;

use common::{Server, urlencode};
use compare::{Answer, How, first_difference, shorten};
use data::{Dataset, STEP_MS};
use prometheus::{PROMTOOL_BIN, Prometheus, require_binary};
use read_proxy::{ReadProxy, Rewrite};

const SEED: u64 = 0xc11e_2042;

/// Runs promtool with `args`; returns (exit code, stdout, stderr).
fn promtool(args: &[String]) -> (Option<i32>, String, String) {
    let out = Command::new(PROMTOOL_BIN)
        .args(args)
        .output()
        .expect("run promtool");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Output lines sorted: an unsorted instant vector may come in any order.
fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// The value the data set holds for `name{instance=…}` at step `k`.
fn value_at(d: &Dataset, name: &str, instance: &str, t_ms: i64) -> f64 {
    let s = d
        .series
        .iter()
        .find(|s| {
            s.labels.contains(&("__name__".into(), name.into()))
                && s.labels.contains(&("instance".into(), instance.into()))
        })
        .unwrap();
    s.samples.iter().find(|(t, _)| *t == t_ms).unwrap().1
}

#[test]
fn promtool_queries_tsdb_as_it_queries_prometheus() {
    require_binary(PROMTOOL_BIN);
    let prom = Prometheus::start("");
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Server::start(dir.path(), &["--shards=2"]);
    let d = data::generate(SEED, data::start_ms());
    d.write_to_both(&tsdb, &prom);
    let (s, e) = (d.start_ms, d.end_ms());
    let t = s + 40 * STEP_MS;
    let tsdb_url = format!("http://{}", tsdb.addr);
    let prom_url = format!("http://{}", prom.addr);

    // (arguments before the URL, arguments after it, text tsdb's output must contain,
    // whether line order is significant)
    let q = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let want_queue = format!(
        "queue_length{{instance=\"host-a:9100\", job=\"api\"}} => {} @[{}]",
        value_at(&d, "queue_length", "host-a:9100", t),
        secs(t)
    );
    let cases: Vec<(Vec<String>, Vec<String>, String, bool)> = vec![
        (
            q(&["query", "instant", &format!("--time={}", secs(t))]),
            q(&["queue_length"]),
            want_queue,
            false,
        ),
        (
            q(&["query", "instant", &format!("--time={}", secs(t))]),
            q(&["sum by (job) (rate(http_requests_total[5m]))"]),
            "{job=\"web\"} => ".into(),
            false,
        ),
        (
            q(&[
                "query",
                "instant",
                "-o",
                "json",
                &format!("--time={}", secs(t)),
            ]),
            q(&["sort_desc(queue_length)"]),
            "[{\"metric\":{\"__name__\":\"queue_length\",".into(),
            true,
        ),
        (
            q(&["query", "instant", &format!("--time={}", secs(t))]),
            q(&["scalar(sum(up))"]),
            format!("@[{}]", secs(t)),
            true,
        ),
        (
            q(&[
                "query",
                "range",
                &format!("--start={}", secs(s)),
                &format!("--end={}", secs(s + 600_000)),
                "--step=1m",
            ]),
            q(&[r#"queue_length{job="api"}"#]),
            format!(
                "{} @[{}]",
                value_at(&d, "queue_length", "host-b:9100", s + 300_000),
                secs(s + 300_000)
            ),
            true,
        ),
        (
            q(&[
                "query",
                "range",
                "-o",
                "json",
                &format!("--start={}", secs(s)),
                &format!("--end={}", secs(e)),
                "--step=5m",
            ]),
            q(&[
                "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
            ]),
            "[{\"metric\":{},\"values\":[[".into(),
            true,
        ),
        (
            q(&[
                "query",
                "series",
                "--match=up",
                r#"--match={job="gaps"}"#,
                &format!("--start={}", secs(s)),
                &format!("--end={}", secs(e)),
            ]),
            vec![],
            "{__name__=\"gappy\", instance=\"g2\", job=\"gaps\"}".into(),
            false,
        ),
        (
            q(&["query", "series", "--match=queue_length"]),
            vec![],
            "{__name__=\"queue_length\", instance=\"host-e:9091\", job=\"batch\"}".into(),
            false,
        ),
        (
            q(&[
                "query",
                "labels",
                &format!("--start={}", secs(s)),
                &format!("--end={}", secs(e)),
            ]),
            q(&["job"]),
            "api\nbatch\ngaps\nnode\nweb\n".into(),
            true,
        ),
        (
            q(&["query", "labels", "--match=build_info"]),
            q(&["version"]),
            "2.0.0-rc.1".into(),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (before, after, want, ordered) in &cases {
        let args_for = |url: &str| {
            let mut a = before.clone();
            a.push(url.to_string());
            a.extend(after.iter().cloned());
            a
        };
        let (tc, tout, terr) = promtool(&args_for(&tsdb_url));
        let (pc, pout, perr) = promtool(&args_for(&prom_url));
        let same = if *ordered {
            tout == pout
        } else {
            sorted_lines(&tout) == sorted_lines(&pout)
        };
        if tc != Some(0) || pc != Some(0) || !tout.contains(want.as_str()) || !same {
            failures.push(format!(
                "promtool {:?}\n  tsdb: exit {tc:?} {}{}\n  prometheus: exit {pc:?} {}{}\n  wanted in tsdb's output: {want}",
                args_for("<url>"),
                shorten(&tout, 800),
                terr,
                shorten(&pout, 800),
                perr
            ));
        }
    }
    for f in &failures {
        eprintln!("{f}\n");
    }
    assert!(
        failures.is_empty(),
        "{} promtool commands differ",
        failures.len()
    );
    tsdb.assert_no_unexpected_warnings(&[]);
}

/// Queries for the remote-read comparison: raw samples (incl. stale markers, NaN,
/// ±Inf and gaps), functions over ranges, aggregations and a histogram.
const READ_QUERIES: [&str; 10] = [
    "queue_length",
    "odd_values",
    "stale_marked",
    "gappy",
    "short_lived",
    "rate(http_requests_total[5m])",
    r#"sum by (job) (increase(http_requests_total{code="200"}[10m]))"#,
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "max_over_time(node_temperature_celsius[10m])",
    "count_over_time(stale_marked[15m])",
];

/// Asks `reader` (a Prometheus reading from tsdb) and tsdb the same queries; returns
/// every difference.
fn compare_reader(tsdb: &Server, reader: &Prometheus, d: &Dataset) -> Vec<String> {
    let (s, e) = (d.start_ms, d.end_ms());
    let mut paths = Vec::new();
    for q in READ_QUERIES {
        for t in [s + 10 * 60_000, s + 42 * 60_000 + 500, e] {
            paths.push(format!(
                "/api/v1/query?query={}&time={}",
                urlencode(q),
                secs(t)
            ));
        }
        paths.push(format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=60",
            urlencode(q),
            secs(s - 300_000),
            secs(e + 600_000)
        ));
    }
    paths.push(format!(
        "/api/v1/series?match[]={}&start={}&end={}",
        urlencode(r#"{job="batch"}"#),
        secs(s),
        secs(e)
    ));
    let mut out = Vec::new();
    let mut with_data = 0;
    let total = paths.len();
    for path in paths {
        let (ts, tb) = tsdb.get(&path);
        let (ps, pb) = reader.get(&path);
        let v: serde_json::Value = serde_json::from_str(&pb).unwrap_or_default();
        let data = if v["data"].is_array() {
            &v["data"]
        } else {
            &v["data"]["result"]
        };
        if data.as_array().is_some_and(|a| !a.is_empty()) {
            with_data += 1;
        }
        let diff = if path.starts_with("/api/v1/series") {
            let norm = |b: &str| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap_or_default();
                let mut items: Vec<String> = v["data"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x.to_string()).collect())
                    .unwrap_or_default();
                items.sort();
                items
            };
            (ts != ps || norm(&tb) != norm(&pb) || norm(&tb).is_empty())
                .then(|| "series differ".to_string())
        } else {
            let t = Answer {
                status: ts,
                body: tb.clone(),
            };
            let p = Answer {
                status: ps,
                body: pb.clone(),
            };
            first_difference(&t, &p, How::default())
        };
        if let Some(diff) = diff {
            out.push(format!(
                "{path}\n  first diff: {diff}\n  tsdb:   {}\n  reader: {}",
                shorten(&tb, 500),
                shorten(&pb, 500)
            ));
        }
    }
    // Equal empty answers would prove nothing about remote read.
    assert!(
        with_data * 10 >= total * 8,
        "only {with_data} of {total} remote-read answers carry data"
    );
    out
}

fn remote_read_case(rewrite: Rewrite) -> (Vec<Vec<i32>>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let tsdb = Server::start(dir.path(), &["--shards=2"]);
    let d = data::generate(SEED, data::start_ms());
    let to_tsdb = |body: &[u8]| {
        let (status, resp) = tsdb.post("/api/v1/write", "application/x-protobuf", body);
        assert_eq!(status, 204, "{resp}");
    };
    d.write(&[&to_tsdb]);
    let proxy = ReadProxy::start(&tsdb.addr, rewrite);
    let reader = Prometheus::start(&format!(
        "remote_read:\n  - url: http://{}/api/v1/read\n    read_recent: true\n",
        proxy.addr
    ));
    let diffs = compare_reader(&tsdb, &reader, &d);
    let asked = proxy.requests();
    assert!(
        !asked.is_empty(),
        "Prometheus never called remote read; its log:\n{}",
        reader.output()
    );
    tsdb.assert_no_unexpected_warnings(&[]);
    (asked, diffs)
}

#[test]
fn prometheus_reads_tsdb_remotely_as_tsdb_answers() {
    // As Prometheus sends it, then with the response types rewritten to SAMPLES alone.
    let mut failures = Vec::new();
    for rewrite in [Rewrite::None, Rewrite::SamplesOnly] {
        let (asked, diffs) = remote_read_case(rewrite);
        eprintln!(
            "remote read ({rewrite:?}): {} requests; accepted_response_types as received: {:?}",
            asked.len(),
            asked.first().unwrap()
        );
        for d in diffs {
            failures.push(format!("{rewrite:?}: {d}"));
        }
    }
    for f in &failures {
        eprintln!("MISMATCH {f}\n");
    }
    assert!(
        failures.is_empty(),
        "{} remote-read answers differ from tsdb's own",
        failures.len()
    );
}
