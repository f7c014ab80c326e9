//! Black-box: the `/debug/pprof/*` routes of a running server under light load. The
//! CPU profile is gzip-compressed pprof protobuf with samples from our own code; the
//! heap profile likewise, with live bytes (and 404 when jemalloc's sampling is off); the
//! goroutine dump lists every shard and counts what `tsdb_goroutines` counts; the
//! trace is Chrome trace-event JSON with write groups from every shard; bad
//! `seconds` and a second concurrent profile get Prometheus' JSON errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message;

use common::{RESPONSE_BYTES_MAX, Server, agent, remote_write_body};

const T0: i64 = 1_700_000_000_000;

/// The subset of pprof's `profile.proto` the checks read, written out here so the
/// test does not reach into tsdb's own types.
#[derive(Clone, PartialEq, prost::Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "10")]
    duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
}

/// The names of a profile's sample types, in order.
fn sample_types(p: &Profile) -> Vec<&str> {
    p.sample_type
        .iter()
        .map(|t| p.string_table[t.r#type as usize].as_str())
        .collect()
}

/// GETs `path` and returns the status, content type and raw body.
fn get_bytes(server: &Server, path: &str) -> (u16, String, Vec<u8>) {
    get_url_bytes(&server.url(path))
}

/// GETs `url` and returns the status, content type and raw body.
fn get_url_bytes(url: &str) -> (u16, String, Vec<u8>) {
    let mut r = agent().get(url).call().expect("GET");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r
        .body_mut()
        .with_config()
        .limit(RESPONSE_BYTES_MAX)
        .read_to_vec()
        .unwrap();
    (status, ct, body)
}

/// Decodes a gzip-compressed pprof profile and checks what every profile must have:
/// the empty string first, in-range string indexes, locations that resolve.
fn decode_profile(gz: &[u8]) -> Profile {
    assert_eq!(gz.get(..2), Some(&[0x1f, 0x8b][..]), "not gzip");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();
    let p = Profile::decode(&raw[..]).expect("profile.proto");
    assert_eq!(p.string_table.first().map(String::as_str), Some(""));
    let strings = p.string_table.len() as i64;
    assert!(!p.sample_type.is_empty());
    for t in &p.sample_type {
        assert!((0..strings).contains(&t.r#type) && (0..strings).contains(&t.unit));
    }
    for f in &p.function {
        assert!((0..strings).contains(&f.name), "function {f:?}");
    }
    let locations: std::collections::BTreeSet<u64> = p.location.iter().map(|l| l.id).collect();
    for s in &p.sample {
        assert_eq!(s.value.len(), p.sample_type.len());
        for id in &s.location_id {
            assert!(locations.contains(id), "sample names location {id}");
        }
    }
    p
}

/// Function names a profile's samples reach.
fn sampled_functions(p: &Profile) -> Vec<String> {
    let mut names = Vec::new();
    for s in &p.sample {
        for id in &s.location_id {
            let loc = p.location.iter().find(|l| l.id == *id).unwrap();
            for line in &loc.line {
                let f = p
                    .function
                    .iter()
                    .find(|f| f.id == line.function_id)
                    .unwrap();
                names.push(p.string_table[f.name as usize].clone());
            }
        }
    }
    names
}

/// Writes batches of series spread over every shard until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    fn start(server: &Server) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url("/api/v1/write");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let agent = agent();
            let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
            let mut round = 0i64;
            let mut ok = 0;
            while !flag.load(Ordering::Relaxed) {
                let series: Vec<_> = names
                    .iter()
                    .map(|n| {
                        (
                            vec![("__name__", "pprof_load"), ("instance", n.as_str())],
                            (0..20)
                                .map(|k| (T0 + round * 20_000 + k * 1000, k as f64))
                                .collect(),
                        )
                    })
                    .collect();
                let r = agent
                    .post(&url)
                    .header("Content-Type", "application/x-protobuf")
                    .header("Content-Encoding", "snappy")
                    .send(&remote_write_body(&series)[..])
                    .unwrap();
                assert_eq!(r.status().as_u16(), 204);
                ok += 1;
                round += 1;
            }
            ok
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns how many writes were acknowledged.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// A Prometheus JSON error with `status`.
fn assert_error(server: &Server, path: &str, status: u16) -> serde_json::Value {
    let (got, body) = server.get(path);
    assert_eq!(got, status, "{path}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    assert_eq!(v["status"], "error", "{body}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    v
}

#[test]
fn cpu_profile_is_pprof_with_our_functions_and_runs_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=2"]);
    for bad in ["seconds=0", "seconds=301", "seconds=abc", "seconds=-1"] {
        assert_error(&server, &format!("/debug/pprof/profile?{bad}"), 400);
    }
    let writer = Writer::start(&server);
    let url = server.url("/debug/pprof/profile?seconds=2");
    let first = std::thread::spawn(move || get_url_bytes(&url));
    std::thread::sleep(Duration::from_millis(500));
    let busy = assert_error(&server, "/debug/pprof/profile?seconds=1", 409);
    assert!(
        busy["error"].as_str().unwrap().contains("already running"),
        "{busy}"
    );
    let (status, ct, body) = first.join().unwrap();
    let writes = writer.stop();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/octet-stream");
    assert!(writes > 0);
    let p = decode_profile(&body);
    assert_eq!(sample_types(&p), ["samples", "cpu"]);
    assert!(p.period > 0 && p.period_type.is_some());
    assert_eq!(p.duration_nanos, 2_000_000_000);
    assert!(!p.sample.is_empty(), "no samples under load");
    assert!(p.sample.iter().all(|s| s.value[0] > 0));
    let names = sampled_functions(&p);
    assert!(
        names.iter().any(|n| n.contains("tsdb")),
        "no function of ours among {} sampled frames: {:?}",
        names.len(),
        names.iter().take(50).collect::<Vec<_>>()
    );
    // The busy flag is cleared once a profile ends.
    let (status, _, body) = get_bytes(&server, "/debug/pprof/profile?seconds=1");
    assert_eq!(status, 200);
    decode_profile(&body);
    server.assert_no_unexpected_warnings(&[]);
}

#[test]
fn index_goroutine_dump_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=2"]);

    let (status, index) = server.get("/debug/pprof/");
    assert_eq!(status, 200);
    for route in ["profile", "goroutine", "trace"] {
        assert!(
            index.contains(route),
            "{route} missing from the index:\n{index}"
        );
    }

    // The dump: every shard, its tasks, its queue; the total is tsdb_goroutines'.
    let (status, dump) = server.get("/debug/pprof/goroutine?debug=1");
    assert_eq!(status, 200, "{dump}");
    let (_, dump0) = server.get("/debug/pprof/goroutine");
    assert!(
        dump0.contains("shard 0:"),
        "debug=0 answers the same text:\n{dump0}"
    );
    let total: u64 = dump
        .strip_prefix("tsdb: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total on the first line:\n{dump}"));
    let mut per_shard = 0;
    for shard in 0..2 {
        let start = dump
            .find(&format!("shard {shard}: thread tsdb-shard-{shard}, cpu "))
            .unwrap_or_else(|| panic!("shard {shard} missing:\n{dump}"));
        let section = &dump[start..];
        let tasks: u64 = section
            .lines()
            .find_map(|l| l.trim().strip_prefix("tasks: "))
            .and_then(|n| n.parse().ok())
            .unwrap();
        per_shard += tasks;
        for want in [
            "shard event loop",
            "accept loop",
            "mesh inbox: ",
            "head: ",
            "wal: segment ",
            "state: writable",
        ] {
            assert!(
                section.contains(want),
                "shard {shard}: {want:?} missing:\n{dump}"
            );
        }
    }
    assert_eq!(
        per_shard, total,
        "the shards' tasks add up to the total:\n{dump}"
    );
    let scraped = server.metrics().value("tsdb_goroutines", &[]);
    // The same count; the scrape comes on a connection of its own, and the dump's
    // may still be closing: two of difference at most.
    assert!(
        (scraped - total as f64).abs() <= 2.0,
        "tsdb_goroutines {scraped}, dump {total}:\n{dump}"
    );

    // The trace: write groups from both shards during the window.
    for bad in ["seconds=0", "seconds=61", "seconds=x"] {
        assert_error(&server, &format!("/debug/pprof/trace?{bad}"), 400);
    }
    let url = server.url("/debug/pprof/trace?seconds=2");
    let tracer = std::thread::spawn(move || {
        let mut r = agent().get(&url).call().unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_error(&server, "/debug/pprof/trace?seconds=1", 409);
    let writer = Writer::start(&server);
    std::thread::sleep(Duration::from_millis(800));
    let (status, _) = server.get("/api/v1/query?query=count(pprof_load)&time=1700000100");
    assert_eq!(status, 200);
    let (status, body) = tracer.join().unwrap();
    writer.stop();
    assert_eq!(status, 200, "{body}");
    let trace: serde_json::Value = serde_json::from_str(&body).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    for e in &complete {
        assert!(
            e["ts"].is_u64() && e["dur"].is_u64() && e["pid"].is_u64(),
            "{e}"
        );
        assert!(e["name"].is_string(), "{e}");
    }
    for shard in 0..2u64 {
        let groups: Vec<_> = complete
            .iter()
            .filter(|e| e["tid"] == shard && e["name"] == "write group")
            .collect();
        assert!(
            !groups.is_empty(),
            "no write group on shard {shard}: {body:.2000}"
        );
        assert!(
            groups
                .iter()
                .all(|g| g["args"]["samples"].as_u64() > Some(0))
        );
        assert!(
            groups
                .iter()
                .all(|g| g["args"]["wal_bytes"].as_u64() > Some(0))
        );
        assert!(
            complete
                .iter()
                .any(|e| e["tid"] == shard && e["name"] == "mesh: select"),
            "the query's select on shard {shard} is missing"
        );
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "M" && e["tid"] == shard && e["name"] == "thread_name"),
            "shard {shard} has no thread name"
        );
    }
    let meta = &trace["metadata"]["shards"];
    assert_eq!(meta.as_array().unwrap().len(), 2, "{meta}");
    assert!(
        meta.as_array()
            .unwrap()
            .iter()
            .all(|s| s["truncated"] == false),
        "{meta}"
    );
    server.assert_no_unexpected_warnings(&[]);
}

#[test]
fn heap_profile_is_pprof_with_live_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--shards=2"]);
    let writer = Writer::start(&server);
    std::thread::sleep(Duration::from_secs(2));
    let writes = writer.stop();
    assert!(writes > 0);
    // 20,000 more series, so the heads' series tables and label sets hold tens of
    // megabytes: with one sample per 512 KiB the estimate of a live set of a
    // megabyte or two is too coarse to test against.
    let names: Vec<String> = (0..20_000).map(|i| format!("host-{i:05}")).collect();
    for part in names.chunks(5_000) {
        let series: Vec<_> = part
            .iter()
            .map(|n| {
                (
                    vec![("__name__", "pprof_many"), ("instance", n.as_str())],
                    vec![(T0, 1.0)],
                )
            })
            .collect();
        let r = agent()
            .post(&server.url("/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .send(&remote_write_body(&series)[..])
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    let (status, index) = server.get("/debug/pprof/");
    assert_eq!(status, 200);
    assert!(index.contains("heap"), "{index}");
    let (status, ct, body) = get_bytes(&server, "/debug/pprof/heap");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/octet-stream");
    let p = decode_profile(&body);
    assert_eq!(sample_types(&p), ["inuse_objects", "inuse_space"]);
    assert_eq!(p.period, 1 << 19, "one sample per 512 KiB");
    assert!(!p.sample.is_empty() && !p.location.is_empty());
    let inuse_bytes: i64 = p.sample.iter().map(|s| s.value[1]).sum();
    // The heads hold 20,200 series and the samples just written, and the server's
    // own buffers: well over four megabytes live.
    assert!(inuse_bytes > 4 << 20, "in-use bytes {inuse_bytes}");
    let names = sampled_functions(&p);
    assert!(
        names.iter().any(|n| n.contains("tsdb")),
        "no function of ours among the allocation stacks: {:?}",
        names.iter().take(50).collect::<Vec<_>>()
    );
    server.assert_no_unexpected_warnings(&[]);
}

/// With jemalloc's sampling turned off by its environment variable, the route says
/// so (404, as Go answers a profile it does not have) and the index leaves it out.
#[test]
fn heap_profile_off_answers_404() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::command(dir.path(), &[]);
    cmd.env("_RJEM_MALLOC_CONF", "prof:false");
    let server = Server::start_cmd(cmd, dir.path());
    let v = assert_error(&server, "/debug/pprof/heap", 404);
    assert!(
        v["error"].as_str().unwrap().contains("heap profiling"),
        "{v}"
    );
    let (_, index) = server.get("/debug/pprof/");
    assert!(!index.contains("heap"), "{index}");
    server.assert_no_unexpected_warnings(&[]);
}
