//! Black-box: overload and hostile clients. Thousands of idle connections, slow
//! clients, oversized and malformed-by-size requests, a series-cardinality bound,
//! decompression bombs and many concurrent large bodies; each limit answers with its
//! status and its name, counts in `tsdb_limit_hits_total`, and the server keeps
//! serving well-behaved clients with bounded memory.
//!
//! Sizes are CI-sized; `TSDB_TEST_IDLE_CONNECTIONS`, `TSDB_TEST_BOMB_GIB` and
//! `TSDB_TEST_OVERLOAD_CLIENTS` make the runs bigger.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, agent, urlencode};
use serde_json::json;

const T0: i64 = 1_700_000_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Raises this process's open files limit to its hard limit, for the many sockets.
fn raise_own_open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// The server's peak resident memory (`VmHWM`), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// The status code of an HTTP/1.1 response head in `text`.
fn status_of(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn post_gzip(s: &Server, path: &str, body: &[u8]) -> (u16, String) {
    let mut r = agent()
        .post(&s.url(path))
        .header("Content-Type", "text/plain")
        .header("Content-Encoding", "gzip")
        .send(body)
        .unwrap();
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Line protocol for series `m,host=<host>` with `n` samples from `first` (seconds).
fn influx_lines(host: &str, first: i64, n: i64) -> String {
    let mut out = String::with_capacity(n as usize * 48);
    for i in 0..n {
        out.push_str(&format!(
            "m,host={host} value={} {}\n",
            i % 1000,
            (T0 / 1000 + first + i) * 1_000_000_000
        ));
    }
    out
}

/// The limits one request can hit, each hit once by the test below.
const REQUEST_LIMITS: [&str; 7] = [
    "body_size",
    "decoded_body_size",
    "series_per_request",
    "labels_per_series",
    "label_name_length",
    "label_value_length",
    "query_samples",
];

#[test]
fn every_request_limit_answers_with_its_name_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--max-body-size=64KB",
            "--max-series-per-request=5",
            "--max-labels-per-series=4",
            "--max-label-name-length=16",
            "--max-label-value-length=32",
            "--query-max-samples=10",
        ],
    );
    let before = s.metrics();
    for l in REQUEST_LIMITS {
        assert_eq!(before.limit_hits(l), 0.0, "{l}");
    }
    let refuse = |status: u16, path: &str, body: &[u8], words: &str| {
        let (got, resp) = s.post(path, "text/plain", body);
        assert_eq!(got, status, "{path}: {resp}");
        assert!(resp.contains(words), "{path}: {resp} lacks {words:?}");
    };
    refuse(
        413,
        "/write",
        &vec![b'x'; 100 << 10],
        "limits.max_body_size",
    );
    let six: String = (0..6).map(|i| format!("m,host=h{i} v=1 1\n")).collect();
    refuse(
        400,
        "/write",
        six.as_bytes(),
        "limits.max_series_per_request",
    );
    refuse(
        400,
        "/api/v1/import/prometheus",
        b"m{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 1\n",
        "limits.max_labels_per_series",
    );
    refuse(
        400,
        "/write",
        b"m,a_very_long_label_name_indeed=1 v=1 1\n",
        "limits.max_label_name_length",
    );
    refuse(
        400,
        "/write",
        format!("m,host={} v=1 1\n", "v".repeat(40)).as_bytes(),
        "limits.max_label_value_length",
    );
    // 1 MiB of text gzips to a few KiB and decodes past 8 × 64 KiB.
    let (status, resp) = post_gzip(&s, "/write", &gzip(&vec![b'\n'; 1 << 20]));
    assert_eq!(status, 413, "{resp}");
    assert!(resp.contains("decompresses to more than"), "{resp}");
    // A query touching more samples than allowed.
    let (status, resp) = s.post("/write", "text/plain", influx_lines("q", 0, 20).as_bytes());
    assert_eq!(status, 204, "{resp}");
    let q = format!(
        "/api/v1/query?query={}&time={}",
        urlencode("count_over_time(m[1h])"),
        T0 / 1000 + 30
    );
    let (status, resp) = s.get(&q);
    assert_eq!(status, 422, "{resp}");

    let after = s.metrics();
    for l in REQUEST_LIMITS {
        assert_eq!(after.limit_hits(l), 1.0, "{l}:\n{}", after.text);
    }
    assert_eq!(
        after.value("tsdb_insert_errors_total", &[("reason", "limit")]),
        6.0
    );
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn metrics_honour_their_path_and_switch() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--metrics-path=/internal/m"]);
    let (status, body) = s.get("/internal/m");
    assert_eq!(status, 200, "{body}");
    let scrape = common::metrics::Scrape::parse(&body);
    assert_eq!(scrape.limit_hits("body_size"), 0.0);
    assert_eq!(s.get("/metrics").0, 404);
    drop(s);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--metrics-enabled=false"]);
    assert_eq!(s.get("/metrics").0, 404);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn gzip_ingest_round_trips_on_every_text_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let (status, resp) = post_gzip(&s, "/write", &gzip(influx_lines("gz", 0, 3).as_bytes()));
    assert_eq!(status, 204, "{resp}");
    let (status, resp) = post_gzip(
        &s,
        "/api/v1/import/prometheus",
        &gzip(format!("expo_metric{{a=\"1\"}} 5 {T0}\n").as_bytes()),
    );
    assert_eq!(status, 204, "{resp}");
    let (status, resp) = post_gzip(
        &s,
        "/api/v1/import",
        &gzip(
            format!(
                "{{\"metric\":{{\"__name__\":\"json_metric\"}},\"values\":[7],\"timestamps\":[{T0}]}}\n"
            )
            .as_bytes(),
        ),
    );
    assert_eq!(status, 204, "{resp}");
    assert_eq!(common::points(&s.export("m")[0]).len(), 3);
    assert_eq!(common::points(&s.export("expo_metric")[0]), [(T0, 5.0)]);
    assert_eq!(common::points(&s.export("json_metric")[0]), [(T0, 7.0)]);
    let (status, resp) = post_gzip(&s, "/write", b"not gzip at all");
    assert_eq!(status, 400, "{resp}");
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn series_cardinality_limit_keeps_existing_series_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-series=10", "--shards=2"]);
    let body = |hosts: std::ops::Range<usize>, t: i64| -> String {
        hosts
            .map(|h| {
                format!(
                    "card,host=h{h} value={t} {}\n",
                    (T0 / 1000 + t) * 1_000_000_000
                )
            })
            .collect()
    };
    let (status, resp) = s.post("/write", "text/plain", body(0..8, 0).as_bytes());
    assert_eq!(status, 204, "{resp}");
    // 8 existing series and 5 new ones: room for 2 of them.
    let (status, resp) = s.post("/write", "text/plain", body(0..13, 1).as_bytes());
    assert_eq!(status, 429, "{resp}");
    assert!(resp.contains("3 new series dropped"), "{resp}");
    assert!(resp.contains("limits.max_series"), "{resp}");
    // A retry is idempotent: the same 3 are still refused, the rest rewritten.
    let (status, resp) = s.post("/write", "text/plain", body(0..13, 1).as_bytes());
    assert_eq!(status, 429, "{resp}");
    assert!(resp.contains("3 new series dropped"), "{resp}");
    let lines = s.export("card");
    assert_eq!(lines.len(), 10);
    for h in 0..8 {
        let line = lines
            .iter()
            .find(|l| l["metric"]["host"] == format!("h{h}"))
            .unwrap();
        assert_eq!(common::points(line), [(T0, 0.0), (T0 + 1000, 1.0)]);
    }
    let m = s.metrics();
    assert_eq!(m.limit_hits("series_cardinality"), 2.0);
    assert_eq!(m.sum("tsdb_head_series"), 10.0);
    // /api/v1/status/tsdb reports the head as Prometheus 2.42 does.
    let st = s.api("/api/v1/status/tsdb");
    assert_eq!(
        st["headStats"],
        json!({"numSeries": 10, "numLabelPairs": 11, "chunkCount": 10,
               "minTime": T0, "maxTime": T0 + 1000})
    );
    assert_eq!(
        st["seriesCountByMetricName"],
        json!([{"name": "card", "value": 10}])
    );
    assert_eq!(
        st["labelValueCountByLabelName"],
        json!([{"name": "host", "value": 10}, {"name": "__name__", "value": 1}])
    );
    // "card" on 10 series; "hN" (2 or 3 bytes) on one series each.
    let host_bytes: u64 = lines
        .iter()
        .map(|l| l["metric"]["host"].as_str().unwrap().len() as u64)
        .sum();
    assert_eq!(
        st["memoryInBytesByLabelName"],
        json!([{"name": "__name__", "value": 40}, {"name": "host", "value": host_bytes}])
    );
    let pairs = st["seriesCountByLabelValuePair"].as_array().unwrap();
    assert_eq!(pairs.len(), 10);
    assert_eq!(pairs[0], json!({"name": "__name__=card", "value": 10}));
    assert_eq!(st["shards"].as_array().unwrap().len(), 2);
    assert_eq!(st["shards"][0]["readOnly"], false);
    // The bound is on the head: a flush empties it and new series fit again.
    s.flush();
    let (status, resp) = s.post("/write", "text/plain", body(13..16, 2).as_bytes());
    assert_eq!(status, 204, "{resp}");
    assert_eq!(s.export("card").len(), 13);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn slow_clients_are_cut_after_the_header_and_body_read_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--read-timeout=1s"]);
    let addr = s.addr.clone();
    // Headers dribbled a byte every 200 ms: the connection is closed after ~1 s.
    let headers = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            let started = Instant::now();
            for b in b"POST /write HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if c.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(10) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            started.elapsed()
        }
    });
    // A body dribbled after whole headers: answered 408 after ~1 s.
    let body = std::thread::spawn({
        let addr = addr.clone();
        move || {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
                .unwrap();
            let started = Instant::now();
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut answer = Vec::new();
            while started.elapsed() < Duration::from_secs(10) {
                let _ = c.write_all(b"m");
                let mut buf = [0u8; 1024];
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        }
    });
    // Meanwhile a well-behaved client is served.
    let (status, resp) = s.post("/write", "text/plain", influx_lines("ok", 0, 5).as_bytes());
    assert_eq!(status, 204, "{resp}");
    let header_elapsed = headers.join().unwrap();
    assert!(
        header_elapsed >= Duration::from_millis(900) && header_elapsed < Duration::from_secs(5),
        "{header_elapsed:?}"
    );
    let (body_elapsed, answer) = body.join().unwrap();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains("server.read_timeout"), "{answer}");
    assert!(
        body_elapsed >= Duration::from_millis(900) && body_elapsed < Duration::from_secs(5),
        "{body_elapsed:?}"
    );
    let m = s.metrics();
    assert!(m.limit_hits("header_read_timeout") >= 1.0, "{}", m.text);
    assert_eq!(m.limit_hits("body_read_timeout"), 1.0);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn thousands_of_idle_connections_do_not_stop_writes_and_queries() {
    let wanted = env_usize("TSDB_TEST_IDLE_CONNECTIONS", 2000);
    let hard = raise_own_open_files_limit();
    assert!(
        hard as usize > wanted + 100,
        "this test needs an open files hard limit above {wanted}; it is {hard}"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--read-timeout=2m", "--shards=2"]);
    let idle: Vec<TcpStream> = (0..wanted)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    // The server has accepted them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = s.metrics().value("tsdb_http_connections", &[]);
        if open > wanted as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "only {open} connections open");
        std::thread::sleep(Duration::from_millis(100));
    }
    for round in 0..10 {
        let (status, resp) = s.post(
            "/write",
            "text/plain",
            influx_lines("busy", round * 10, 10).as_bytes(),
        );
        assert_eq!(status, 204, "{resp}");
        let q = format!(
            "/api/v1/query?query={}&time={}",
            urlencode("count_over_time(m[1h])"),
            T0 / 1000 + 200
        );
        let v = s.api(&q);
        assert_eq!(v["result"][0]["value"][1], (round * 10 + 10).to_string());
    }
    // Every idle connection is still served.
    for mut c in idle {
        c.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(status_of(&answer), 200, "{answer}");
    }
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn connections_beyond_the_limit_get_503_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-connections=20", "--read-timeout=2m"]);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Over the limit: a request sent right away still gets the 503, not a reset.
    for _ in 0..3 {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nm value=1 1")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(status_of(&answer), 503, "{answer}");
        assert!(answer.contains("server.max_connections"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1"),
            "{answer}"
        );
    }
    // Probes are still answered: a liveness check must not fail for client load.
    for (path, want) in [
        ("/-/healthy", "tsdb is Healthy."),
        ("/-/ready", "tsdb is Ready."),
    ] {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(status_of(&answer), 200, "{answer}");
        assert!(answer.contains(want), "{answer}");
    }
    drop(held);
    // Once they are closed, the server serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        match agent().get(&s.url("/-/healthy")).call() {
            Ok(r) if r.status() == 200 => break s.metrics(),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the server never took connections again"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(m.limit_hits("connections") >= 3.0, "{}", m.text);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn requests_beyond_the_per_core_bound_get_503() {
    // The bound (limits::INFLIGHT_REQUESTS_PER_CORE_MAX) is a constant; one core
    // holds that many requests waiting for their bodies, and one more is refused.
    const BOUND: usize = 4096;
    raise_own_open_files_limit();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=1", "--read-timeout=2m"]);
    let held: Vec<TcpStream> = (0..BOUND)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metrics().value("tsdb_http_inflight_requests", &[]) < BOUND as f64 {
        assert!(Instant::now() < deadline, "the requests never all arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, resp) = s.post("/write", "text/plain", influx_lines("x", 0, 1).as_bytes());
    assert_eq!(status, 503, "{resp}");
    assert!(resp.contains("too many requests in flight"), "{resp}");
    // Probes and scrapes are not counted against the bound.
    assert_eq!(s.get("/-/healthy").0, 200);
    assert_eq!(s.metrics().limit_hits("inflight_requests"), 1.0);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, resp) = s.post("/write", "text/plain", influx_lines("x", 0, 1).as_bytes());
        if status == 204 {
            break;
        }
        assert_eq!(status, 503, "{resp}");
        assert!(Instant::now() < deadline, "requests never drained");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn decompression_bombs_get_413_with_bounded_memory() {
    let gib = env_usize("TSDB_TEST_BOMB_GIB", 2);
    let dir = tempfile::tempdir().unwrap();
    // Decoded limit: 8 × 4 MiB = 32 MiB.
    let s = Server::start(dir.path(), &["--max-body-size=4MB", "--shards=1"]);
    // Zeros streamed through one gzip encoder: ~1 KiB of gzip per MiB of zeros.
    let started = Instant::now();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..gib << 10 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    eprintln!(
        "gzip bomb: {} GiB of zeros in {} bytes, built in {:?}",
        gib,
        bomb.len(),
        started.elapsed()
    );
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    let rss_before = peak_rss_bytes(s.pid());
    for path in ["/write", "/api/v1/import", "/api/v1/import/prometheus"] {
        let (status, resp) = post_gzip(&s, path, &bomb);
        assert_eq!(status, 413, "{path}: {resp}");
    }
    // A snappy header claiming 3.75 GiB, on both snappy routes.
    let (status, resp) = s.post(
        "/api/v1/write",
        "application/x-protobuf",
        b"\x80\x80\x80\x80\x0f\x00",
    );
    assert_eq!(status, 413, "{resp}");
    let (status, resp) = s.post(
        "/api/v1/read",
        "application/x-protobuf",
        b"\x80\x80\x80\x80\x0f\x00",
    );
    assert_eq!(status, 413, "{resp}");
    let rss_after = peak_rss_bytes(s.pid());
    eprintln!("server peak RSS: {rss_before} bytes before the bombs, {rss_after} after");
    // The decoder counts the decoded bytes through a 64 KiB scratch buffer and stops
    // one byte past 32 MiB without keeping them: beside the 4 MiB body (and hyper's
    // buffers), 16 MiB over the idle peak bounds it, against the gigabytes the bomb
    // expands to and the 32 MiB a decoder that kept its output would hold.
    assert!(
        rss_after < rss_before + (16 << 20),
        "peak RSS grew from {rss_before} to {rss_after}"
    );
    assert_eq!(s.metrics().limit_hits("decoded_body_size"), 5.0);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn memory_stays_bounded_under_many_concurrent_large_bodies() {
    let clients = env_usize("TSDB_TEST_OVERLOAD_CLIENTS", 48);
    const BODIES: i64 = 3;
    const ATTEMPTS: u64 = 8;
    // About 2 MiB of line protocol per body.
    const SAMPLES: i64 = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--shards=2",
            "--max-body-size=8MB",
            "--max-inflight-body-size=4MB",
            "--read-timeout=2m",
        ],
    );
    let rss_idle = peak_rss_bytes(s.pid());
    let bodies: Vec<Vec<String>> = (0..clients)
        .map(|c| {
            (0..BODIES)
                .map(|b| influx_lines(&format!("c{c}"), b * SAMPLES, SAMPLES))
                .collect()
        })
        .collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|bodies| {
            let url = s.url("/write");
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let agent = agent();
                barrier.wait();
                let mut acked = Vec::new();
                let mut shed = 0;
                // Each body is retried a few times after a 503, as a client honouring
                // Retry-After (sooner, to keep the test short) would.
                for (b, body) in bodies.iter().enumerate() {
                    for attempt in 0..ATTEMPTS {
                        let mut r = agent
                            .post(&url)
                            .header("Content-Type", "text/plain")
                            .send(body.as_bytes())
                            .expect("an answer, never a reset");
                        let status = r.status().as_u16();
                        let text = r.body_mut().read_to_string().unwrap_or_default();
                        match status {
                            204 => {
                                acked.push(b as i64);
                                break;
                            }
                            503 => {
                                assert!(r.headers().get("retry-after").is_some(), "{text}");
                                assert!(text.contains("max_inflight_body_size"), "{text}");
                                shed += 1;
                                std::thread::sleep(Duration::from_millis(50 * (attempt + 1)));
                            }
                            other => panic!("status {other}: {text}"),
                        }
                    }
                }
                (acked, shed)
            })
        })
        .collect();
    let results: Vec<(Vec<i64>, usize)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let rss_peak = peak_rss_bytes(s.pid());
    let acked: usize = results.iter().map(|(a, _)| a.len()).sum();
    let shed: usize = results.iter().map(|(_, s)| s).sum();
    eprintln!(
        "{clients} clients × {BODIES} bodies: {acked} acknowledged, {shed} shed; \
         peak RSS {rss_idle} idle, {rss_peak} under load"
    );
    assert!(acked > 0, "nothing was acknowledged");
    assert!(shed > 0, "the budget never shed a request");
    // Everything acknowledged is served, whole.
    for (c, (acked, _)) in results.iter().enumerate() {
        let lines = s.export(&format!("m{{host=\"c{c}\"}}"));
        let served = lines.first().map_or(0, |l| common::points(l).len());
        assert_eq!(served, acked.len() * SAMPLES as usize, "client {c}");
        if let Some(l) = lines.first() {
            let points = common::points(l);
            for b in acked {
                let t = T0 + b * SAMPLES * 1000;
                assert!(points.iter().any(|&(ts, _)| ts == t), "client {c} body {b}");
            }
        }
    }
    // The bound: two cores' budgets (8 MiB) plus, per core, one request admitted alone
    // (8 MiB) and its parsed batch (~40 k samples of 24 bytes with their labels, under
    // 4 MiB); hyper's per-connection read buffers (up to ~400 KiB each); and the head
    // holding what was acknowledged (~2 bytes per sample, well under 1 MiB per body).
    let head = (acked as u64) << 20;
    let bound = rss_idle + (8 << 20) + 2 * (12 << 20) + clients as u64 * (400 << 10) + head;
    assert!(
        rss_peak < bound,
        "peak RSS {rss_peak} above the bound {bound}"
    );
    let m = s.metrics();
    assert_eq!(m.limit_hits("inflight_bytes"), shed as f64);
    assert_eq!(m.value("tsdb_http_inflight_body_bytes", &[]), 0.0);
    s.assert_no_unexpected_warnings(&[]);
}
