//! Black-box: every metric the operations guide names ("Key Metrics to Monitor") is on
//! `/metrics` with its type, and moves as the requests it counts: samples written,
//! write and query latency histograms, query errors, head series, blocks after a
//! flush, memory, and the process figures. `promtool check metrics` accepts the
//! scrape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::metrics::Scrape;
use common::{Server, remote_write_body, urlencode};

const T0: i64 = 1_700_000_000_000;

/// Each guide metric and the type it must have.
const GUIDE: [(&str, &str); 11] = [
    ("tsdb_samples_ingested_total", "counter"),
    ("tsdb_insert_duration_seconds", "histogram"),
    ("tsdb_insert_errors_total", "counter"),
    ("tsdb_head_series", "gauge"),
    ("tsdb_blocks_total", "gauge"),
    ("tsdb_wal_size_bytes", "gauge"),
    ("tsdb_queries_total", "counter"),
    ("tsdb_query_duration_seconds", "histogram"),
    ("tsdb_query_errors_total", "counter"),
    ("tsdb_goroutines", "gauge"),
    ("tsdb_memory_alloc_bytes", "gauge"),
];

/// The process metrics of Prometheus' client libraries, and their types.
const PROCESS: [(&str, &str); 5] = [
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
];

/// The lint findings of `promtool check metrics` tolerated on the scrape: the guide
/// names a gauge `tsdb_blocks_total` (a count of blocks in place, which falls when
/// blocks are compacted or expire), and Prometheus' linter wants `_total` for counters
/// only. Anything else fails the test.
const ACCEPTED_LINT: [&str; 1] =
    ["tsdb_blocks_total non-counter metrics should not have \"_total\" suffix"];

fn type_of(scrape: &Scrape, name: &str) -> String {
    let prefix = format!("# TYPE {name} ");
    scrape
        .text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no TYPE line for {name} in\n{}", scrape.text))
        .to_string()
}

fn get_text(s: &Server, path: &str) -> String {
    let (status, body) = s.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Runs `promtool check metrics` on `text`; panics on a parse error (exit 1) or on a
/// lint finding not in [`ACCEPTED_LINT`].
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is needed by this test (.ci/test installs it: apt-get install prometheus)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    match out.status.code() {
        Some(0) => assert!(findings.is_empty(), "{findings:?}"),
        // 3: lint findings only; each must be one we accept.
        Some(3) => {
            for f in &findings {
                assert!(
                    ACCEPTED_LINT.iter().any(|a| f.contains(a)),
                    "promtool check metrics: {f}\n{text}"
                );
            }
        }
        code => panic!("promtool check metrics failed ({code:?}): {stderr}{stdout}\n{text}"),
    }
}

#[test]
fn every_guide_metric_is_exposed_and_counts_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=2"]);
    let before = s.metrics();
    for (name, kind) in GUIDE.iter().chain(PROCESS.iter()) {
        assert_eq!(&type_of(&before, name), kind, "{name}");
    }

    // Writes: 3 requests, 4 series, 2 + 3 + 1 + 1 = 7 samples; one bad request.
    let writes: Vec<Vec<u8>> = vec![
        remote_write_body(&[
            (
                vec![("__name__", "m"), ("i", "0")],
                vec![(T0, 1.0), (T0 + 1000, 2.0)],
            ),
            (
                vec![("__name__", "m"), ("i", "1")],
                vec![(T0, 1.0), (T0 + 1000, 2.0), (T0 + 2000, 3.0)],
            ),
        ]),
        remote_write_body(&[(vec![("__name__", "m"), ("i", "2")], vec![(T0, 5.0)])]),
        remote_write_body(&[(vec![("__name__", "other")], vec![(T0, 9.0)])]),
    ];
    for body in &writes {
        let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", body);
        assert_eq!(status, 204, "{resp}");
    }
    let (status, _) = s.post("/api/v1/write", "application/x-protobuf", b"not snappy");
    assert_eq!(status, 400);

    // Queries: 2 instant and 1 range that succeed, 1 instant that does not parse.
    let at = (T0 + 2000) / 1000;
    get_text(&s, &format!("/api/v1/query?query=m&time={at}"));
    get_text(
        &s,
        &format!("/api/v1/query?query={}&time={at}", urlencode("sum(m)")),
    );
    get_text(
        &s,
        &format!(
            "/api/v1/query_range?query=m&start={}&end={at}&step=1",
            T0 / 1000
        ),
    );
    let (status, _) = s.get(&format!(
        "/api/v1/query?query={}&time={at}",
        urlencode("sum(")
    ));
    assert_eq!(status, 400);

    let m = s.metrics();
    let moved = |name: &str| m.sum(name) - before.sum(name);
    assert_eq!(moved("tsdb_samples_ingested_total"), 7.0);
    assert_eq!(moved("tsdb_insert_duration_seconds_count"), 4.0);
    assert_eq!(
        m.value("tsdb_insert_duration_seconds_bucket", &[("le", "+Inf")]),
        m.value("tsdb_insert_duration_seconds_count", &[])
    );
    assert!(m.value("tsdb_insert_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(moved("tsdb_insert_errors_total"), 1.0);
    assert_eq!(
        m.value("tsdb_insert_errors_total", &[("reason", "bad_data")]),
        1.0
    );
    assert_eq!(m.value("tsdb_queries_total", &[("route", "query")]), 3.0);
    assert_eq!(
        m.value("tsdb_queries_total", &[("route", "query_range")]),
        1.0
    );
    assert_eq!(
        m.value("tsdb_query_errors_total", &[("route", "query")]),
        1.0
    );
    assert_eq!(
        m.value("tsdb_query_errors_total", &[("route", "query_range")]),
        0.0
    );
    assert_eq!(m.value("tsdb_query_duration_seconds_count", &[]), 4.0);
    // Buckets are cumulative and end at the count.
    let buckets: Vec<f64> = m
        .samples
        .iter()
        .filter(|x| x.name == "tsdb_query_duration_seconds_bucket")
        .map(|x| x.value)
        .collect();
    assert_eq!(buckets.len(), 12);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets.last().copied(), Some(4.0));
    assert_eq!(m.value("tsdb_head_series", &[]), 4.0);
    assert_eq!(m.sum("tsdb_shard_head_series"), 4.0);
    assert!(m.value("tsdb_wal_size_bytes", &[]) > 0.0);
    assert_eq!(m.value("tsdb_blocks_total", &[]), 0.0);
    // 2 accept loops, 2 shard loops, 2 probe tickers, 2 sync or compaction tickers at
    // least, and the scrape's own connection.
    assert!(m.value("tsdb_goroutines", &[]) >= 9.0, "{}", m.text);
    assert!(m.value("tsdb_memory_alloc_bytes", &[]) > 0.0);
    assert!(m.value("process_resident_memory_bytes", &[]) > 0.0);
    assert!(m.value("process_cpu_seconds_total", &[]) > 0.0);
    assert!(m.value("process_open_fds", &[]) > 0.0);
    assert!(m.value("process_max_fds", &[]) >= m.value("process_open_fds", &[]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = m.value("process_start_time_seconds", &[]);
    assert!(
        started <= now && started > now - 600.0,
        "{started} vs {now}"
    );

    s.flush();
    let after = s.metrics();
    assert!(
        after.value("tsdb_blocks_total", &[]) >= 1.0,
        "{}",
        after.text
    );
    assert!(after.value("tsdb_head_flushes_total", &[]) >= 1.0);
    assert_eq!(type_of(&after, "tsdb_head_flushes_total"), "counter");
    assert_eq!(type_of(&after, "tsdb_compactions_total"), "counter");
    assert_eq!(type_of(&after, "tsdb_wal_replay_duration_seconds"), "gauge");
    // The default --wal-sync=interval syncs on a ticker and at the flush's cut; at
    // least the flush's cut synced the 3 writes' segment.
    assert_eq!(
        type_of(&after, "tsdb_wal_fsync_duration_seconds"),
        "histogram"
    );
    assert!(
        after.sum("tsdb_wal_fsync_duration_seconds_count") >= 1.0,
        "{}",
        after.text
    );
    for shard in ["0", "1"] {
        assert_eq!(
            after.value(
                "tsdb_wal_fsync_duration_seconds_bucket",
                &[("shard", shard), ("le", "+Inf")]
            ),
            after.value("tsdb_wal_fsync_duration_seconds_count", &[("shard", shard)])
        );
    }
    for shard in ["0", "1"] {
        let secs = after.value("tsdb_wal_replay_duration_seconds", &[("shard", shard)]);
        assert!((0.0..60.0).contains(&secs), "{secs}");
    }

    promtool_check(&get_text(&s, "/metrics"));

    // OpenMetrics to a scraper that asks for it.
    let mut r = common::agent()
        .get(&s.url("/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .call()
        .unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    let om = r.body_mut().read_to_string().unwrap();
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE tsdb_samples_ingested counter\n"),
        "{om}"
    );
    assert!(om.contains("\ntsdb_samples_ingested_total 7\n"), "{om}");
    assert!(om.contains("# TYPE process_cpu_seconds counter\n"), "{om}");
    assert!(om.contains("# TYPE tsdb_head_series gauge\n"), "{om}");
    assert!(!om.contains("# TYPE tsdb_queries_total"), "{om}");
    s.assert_no_unexpected_warnings(&[]);
    s.terminate();
}
