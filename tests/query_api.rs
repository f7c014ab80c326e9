//! Black-box: the query, status and remote read APIs answer as Prometheus 2.42 does,
//! byte for byte where clients could tell: data written by remote_write is read back
//! through `/api/v1/query`, `/api/v1/query_range` and `/api/v1/read` (both response
//! types, decoded here with our own protobuf types as a client would).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use common::{Label, Server, TimeSeries, remote_write_body, urlencode};
use prost::Message;

const T0: i64 = 1_700_000_000_000;
/// Prometheus' staleness marker, a NaN with a payload that must survive bit for bit.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Two `up` series, a gauge with values Prometheus formats with an exponent, and a
/// long series (with a stale marker at its end) for remote read.
fn start_with_data(args: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), args);
    let every_15s = |v: f64| -> Vec<(i64, f64)> { (0..5).map(|i| (T0 + i * 15_000, v)).collect() };
    let mut long: Vec<(i64, f64)> = (0..250).map(|i| (T0 + i * 1_000, i as f64 * 0.5)).collect();
    long.push((T0 + 250_000, f64::from_bits(STALE_NAN_BITS)));
    let body = remote_write_body(&[
        (
            vec![("__name__", "up"), ("job", "a"), ("instance", "x")],
            every_15s(1.0),
        ),
        (
            vec![("__name__", "up"), ("job", "b"), ("instance", "y")],
            every_15s(0.0),
        ),
        (vec![("__name__", "tiny")], every_15s(1e-7)),
        (vec![("__name__", "huge")], every_15s(1e21)),
        (vec![("__name__", "long"), ("job", "r")], long),
    ]);
    let (status, resp) = s.post("/api/v1/write", "application/x-protobuf", &body);
    assert_eq!(status, 204, "{resp}");
    (dir, s)
}

fn query(s: &Server, q: &str, time_ms: i64) -> (u16, String) {
    s.get(&format!(
        "/api/v1/query?query={}&time={}",
        urlencode(q),
        time_ms as f64 / 1000.0
    ))
}

fn assert_ok_body(got: (u16, String), want: &str) {
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1, want);
}

#[test]
fn instant_and_range_queries_render_like_prometheus() {
    let (_dir, s) = start_with_data(&[]);
    let t = T0 + 60_000;
    assert_ok_body(
        query(&s, "up", t),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"x","job":"a"},"value":[1700000060,"1"]},{"metric":{"__name__":"up","instance":"y","job":"b"},"value":[1700000060,"0"]}]}}"#,
    );
    assert_ok_body(
        query(&s, r#"up{job="a"}"#, t),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"x","job":"a"},"value":[1700000060,"1"]}]}}"#,
    );
    assert_ok_body(
        query(&s, "sum(up)", t),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000060,"1"]}]}}"#,
    );
    assert_ok_body(
        query(&s, "nothing_here", t),
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    );
    // Vector timestamps keep three fraction digits; scalar ones are Go floats.
    assert_ok_body(
        query(&s, "up{job=\"b\"}", t + 120),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"y","job":"b"},"value":[1700000060.120,"0"]}]}}"#,
    );
    assert_ok_body(
        query(&s, "1+1", t + 120),
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000060.12,"2"]}}"#,
    );
    // Sample values use Go's 'e' format outside [1e-6, 1e21); scalars never do.
    assert_ok_body(
        query(&s, "tiny", t),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"tiny"},"value":[1700000060,"1e-07"]}]}}"#,
    );
    assert_ok_body(
        query(&s, "huge", t),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"huge"},"value":[1700000060,"1e+21"]}]}}"#,
    );
    assert_ok_body(
        query(&s, "scalar(huge)", t),
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000060,"1000000000000000000000"]}}"#,
    );
    // The same query as a form POST.
    let form = format!("query={}&time={}", urlencode(r#"up{job="a"}"#), t / 1000);
    let (status, body) = s.post(
        "/api/v1/query",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""job":"a"},"value":[1700000060,"1"]"#),
        "{body}"
    );

    let range = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"x","job":"a"},"values":[[1700000000,"1"],[1700000015,"1"],[1700000030,"1"],[1700000045,"1"],[1700000060,"1"]]}]}}"#;
    for step in ["15s", "15", "15.0"] {
        assert_ok_body(
            s.get(&format!(
                "/api/v1/query_range?query={}&start={}&end={}&step={step}",
                urlencode(r#"up{job="a"}"#),
                T0 / 1000,
                t / 1000
            )),
            range,
        );
    }
    let form = format!(
        "query={}&start=2023-11-14T22:13:20Z&end={}&step=30s",
        urlencode("sum(up)"),
        t / 1000
    );
    let (status, body) = s.post(
        "/api/v1/query_range",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"],[1700000030,"1"],[1700000060,"1"]]}]}}"#
    );
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn query_errors_have_prometheus_shapes_and_statuses() {
    let (_dir, s) = start_with_data(&[]);
    let error = |kind: &str, msg: &str| {
        format!(
            r#"{{"status":"error","errorType":"{kind}","error":{}}}"#,
            serde_json::to_string(msg).unwrap()
        )
    };
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "/api/v1/query",
            400,
            "bad_data",
            r#"invalid parameter "query": 1:1: parse error: no expression found in input"#,
        ),
        (
            "/api/v1/query?query=up&time=yesterday",
            400,
            "bad_data",
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "yesterday" to a valid timestamp"#,
        ),
        (
            "/api/v1/query?query=up&timeout=soon",
            400,
            "bad_data",
            r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
        ),
        (
            "/api/v1/query_range?query=up&start=2&end=1&step=1",
            400,
            "bad_data",
            r#"invalid parameter "end": end timestamp must not be before start time"#,
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=2&step=0",
            400,
            "bad_data",
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=11001&step=1",
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range?query=up&end=1&step=1",
            400,
            "bad_data",
            r#"invalid parameter "start": cannot parse "" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range?start=1&end=2&step=1",
            400,
            "bad_data",
            "1:1: parse error: no expression found in input",
        ),
        (
            "/api/v1/labels?limit=-1",
            400,
            "bad_data",
            r#"invalid parameter "limit": limit must be non-negative"#,
        ),
        (
            "/api/v1/metadata?limit=x",
            400,
            "bad_data",
            "limit must be a number",
        ),
        (
            "/api/v1/query_exemplars?query=up&start=2&end=1",
            400,
            "bad_data",
            "end timestamp must not be before start timestamp",
        ),
    ];
    for &(path, status, kind, msg) in cases {
        let (got_status, body) = s.get(path);
        assert_eq!(got_status, status, "{path}: {body}");
        assert_eq!(body, error(kind, msg), "{path}");
    }
    // Parse errors: promql-parser's words, Prometheus' shape and class.
    let (status, body) = query(&s, "up{", T0);
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(r#"invalid parameter "query": "#),
        "{body}"
    );
    // Evaluation errors are `execution`, 422: matching two series to two without
    // `on`/`ignoring` labels that tell them apart.
    let (status, body) = query(&s, "up + on() up", T0 + 60_000);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#""errorType":"execution""#), "{body}");
    // Label values take GET only, as in Prometheus.
    let (status, _) = s.post("/api/v1/label/job/values", "text/plain", b"");
    assert_eq!(status, 405);
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn metadata_exemplars_format_and_limits() {
    let (_dir, s) = start_with_data(&[]);
    assert_ok_body(
        s.get("/api/v1/metadata"),
        r#"{"status":"success","data":{}}"#,
    );
    assert_ok_body(
        s.get("/api/v1/query_exemplars?query=up"),
        r#"{"status":"success","data":[]}"#,
    );
    // No selector, no exemplars to look for: Prometheus answers 204.
    let (status, body) = s.get(&format!(
        "/api/v1/query_exemplars?query={}",
        urlencode("1+1")
    ));
    assert_eq!((status, body.as_str()), (204, ""));
    assert_ok_body(
        s.get(&format!(
            "/api/v1/format_query?query={}",
            urlencode("sum(up)by(job)")
        )),
        r#"{"status":"success","data":"sum by (job) (up)"}"#,
    );
    assert_ok_body(
        s.get("/api/v1/labels?limit=2"),
        r#"{"status":"success","data":["__name__","instance"],"warnings":["results truncated due to limit"]}"#,
    );
    assert_ok_body(
        s.get("/api/v1/labels?limit=3"),
        r#"{"status":"success","data":["__name__","instance","job"]}"#,
    );
    assert_ok_body(
        s.get("/api/v1/label/job/values?limit=1"),
        r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#,
    );
    assert_ok_body(
        s.get("/api/v1/series?match[]=up&limit=1"),
        r#"{"status":"success","data":[{"__name__":"up","instance":"x","job":"a"}],"warnings":["results truncated due to limit"]}"#,
    );
    s.assert_no_unexpected_warnings(&[]);
}

#[test]
fn status_endpoints_have_prometheus_fields() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--shards=2", "--retention=15d"]);

    let (status, body) = s.get("/api/v1/status/buildinfo");
    assert_eq!(status, 200, "{body}");
    let prefix = format!(
        r#"{{"status":"success","data":{{"version":"{}","revision":"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.starts_with(&prefix), "{body}");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let build = s.api("/api/v1/status/buildinfo");
    assert_eq!(
        keys(&build),
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ]
    );

    let (_, body) = s.get("/api/v1/status/runtimeinfo");
    assert!(
        body.starts_with(r#"{"status":"success","data":{"startTime":""#),
        "{body}"
    );
    let rt = s.api("/api/v1/status/runtimeinfo");
    assert_eq!(
        keys(&rt),
        [
            "CWD",
            "GODEBUG",
            "GOGC",
            "GOMAXPROCS",
            "corruptionCount",
            "goroutineCount",
            "lastConfigTime",
            "reloadConfigSuccess",
            "startTime",
            "storageRetention"
        ]
    );
    assert_eq!(rt["GOMAXPROCS"], 2);
    assert_eq!(rt["reloadConfigSuccess"], true);
    assert_eq!(rt["corruptionCount"], 0);
    assert_eq!(rt["storageRetention"], "15d");
    assert!(rt["startTime"].as_str().unwrap().ends_with('Z'));
    assert!(!rt["CWD"].as_str().unwrap().is_empty());

    let flags = s.api("/api/v1/status/flags");
    assert_eq!(flags["shards"], "2");
    assert_eq!(flags["retention"], "15d");
    assert_eq!(flags["data-dir"], dir.path().display().to_string());
    assert!(flags.as_object().unwrap().values().all(|v| v.is_string()));

    let config = s.api("/api/v1/status/config");
    let yaml = config["yaml"].as_str().unwrap();
    assert!(yaml.contains("storage:\n"), "{yaml}");
    assert!(yaml.contains("\n  retention: 15d\n"), "{yaml}");
    assert!(yaml.contains("\n  shards: 2\n"), "{yaml}");
    s.assert_no_unexpected_warnings(&[]);
}

// Remote read as a client sees it: our own copies of Prometheus' prompb messages.

#[derive(Clone, PartialEq, prost::Message)]
struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    queries: Vec<Query>,
    #[prost(int32, repeated, tag = "2")]
    accepted_response_types: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Query {
    #[prost(int64, tag = "1")]
    start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    matchers: Vec<LabelMatcher>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelMatcher {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    results: Vec<QueryResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    chunked_series: Vec<ChunkedSeries>,
    #[prost(int64, tag = "2")]
    query_index: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    chunks: Vec<Chunk>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Chunk {
    #[prost(int64, tag = "1")]
    min_time_ms: i64,
    #[prost(int64, tag = "2")]
    max_time_ms: i64,
    #[prost(int32, tag = "3")]
    r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    data: Vec<u8>,
}

/// CRC-32C (Castagnoli), bit by bit: slow and obviously right.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// POSTs a remote read request; returns status, content type, content encoding, body.
fn remote_read(s: &Server, req: &ReadRequest) -> (u16, String, String, Vec<u8>) {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut r = common::agent()
        .post(&s.url("/api/v1/read"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .send(&body[..])
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (ctype, encoding) = (header("content-type"), header("content-encoding"));
    let status = r.status().as_u16();
    (status, ctype, encoding, r.body_mut().read_to_vec().unwrap())
}

fn read_request(types: Vec<i32>) -> ReadRequest {
    let m = |t: i32, name: &str, value: &str| LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    };
    ReadRequest {
        queries: vec![
            Query {
                start_timestamp_ms: T0,
                end_timestamp_ms: T0 + 300_000,
                matchers: vec![m(0, "__name__", "long")],
            },
            Query {
                start_timestamp_ms: T0 + 15_000,
                end_timestamp_ms: T0 + 45_000,
                // NEQ, RE and NRE: `up{job!="b", instance=~"x|z", job!~"c.*"}`.
                matchers: vec![
                    m(0, "__name__", "up"),
                    m(1, "job", "b"),
                    m(2, "instance", "x|z"),
                    m(3, "job", "c.*"),
                ],
            },
        ],
        accepted_response_types: types,
    }
}

/// What the two queries of [`read_request`] must return: (labels, samples) per query.
type Expected = Vec<Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>>;

fn expected() -> Expected {
    let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let mut long: Vec<(i64, u64)> = (0..250)
        .map(|i| (T0 + i * 1_000, (i as f64 * 0.5).to_bits()))
        .collect();
    long.push((T0 + 250_000, STALE_NAN_BITS));
    vec![
        vec![(labels(&[("__name__", "long"), ("job", "r")]), long)],
        vec![(
            labels(&[("__name__", "up"), ("instance", "x"), ("job", "a")]),
            (1..=3).map(|i| (T0 + i * 15_000, 1f64.to_bits())).collect(),
        )],
    ]
}

fn label_pairs(labels: &[Label]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

#[test]
fn remote_read_returns_raw_samples_in_both_response_types() {
    let (_dir, s) = start_with_data(&[]);

    // SAMPLES: the default for an empty list.
    let (status, ctype, encoding, body) = remote_read(&s, &read_request(vec![]));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/x-protobuf");
    assert_eq!(encoding, "snappy");
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let resp = ReadResponse::decode(raw.as_slice()).unwrap();
    let got: Expected = resp
        .results
        .iter()
        .map(|r| {
            r.timeseries
                .iter()
                .map(|ts| {
                    let samples = ts
                        .samples
                        .iter()
                        .map(|x| (x.timestamp, x.value.to_bits()))
                        .collect();
                    (label_pairs(&ts.labels), samples)
                })
                .collect()
        })
        .collect();
    assert_eq!(got, expected());

    // STREAMED_XOR_CHUNKS when listed first.
    let (status, ctype, encoding, body) = remote_read(&s, &read_request(vec![1, 0]));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        ctype,
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    assert_eq!(encoding, "");
    let mut got: Expected = vec![Vec::new(), Vec::new()];
    let mut rest = body.as_slice();
    while !rest.is_empty() {
        let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
        let crc = u32::from_be_bytes(rest[..4].try_into().unwrap());
        let message = &rest[4..4 + len];
        assert_eq!(crc, crc32c(message), "frame checksum");
        rest = &rest[4 + len..];
        let frame = ChunkedReadResponse::decode(message).unwrap();
        for cs in frame.chunked_series {
            let mut samples = Vec::new();
            for c in &cs.chunks {
                assert_eq!(c.r#type, 1, "XOR");
                assert!(c.min_time_ms <= c.max_time_ms);
                // A Prometheus XOR chunk opens with its sample count, big-endian.
                let decoded = tsdb_engine::chunk::decode(&c.data).unwrap();
                assert!(decoded.len() <= 120);
                assert_eq!(
                    usize::from(u16::from_be_bytes([c.data[0], c.data[1]])),
                    decoded.len()
                );
                assert_eq!(decoded.first().unwrap().timestamp_ms, c.min_time_ms);
                assert_eq!(decoded.last().unwrap().timestamp_ms, c.max_time_ms);
                samples.extend(decoded.iter().map(|x| (x.timestamp_ms, x.value.to_bits())));
            }
            got[frame.query_index as usize].push((label_pairs(&cs.labels), samples));
        }
    }
    assert_eq!(got, expected());

    // An unsupported list and a body that is not snappy: 400, as plain text.
    let (status, ctype, _, body) = remote_read(&s, &read_request(vec![7]));
    assert_eq!(status, 400);
    assert_eq!(ctype, "text/plain; charset=utf-8");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "server does not support any of the requested response types: [7]; supported: map[SAMPLES:{} STREAMED_XOR_CHUNKS:{}]\n"
    );
    let (status, body) = s.post(
        "/api/v1/read",
        "application/x-protobuf",
        b"\xff\xffnot snappy",
    );
    assert_eq!(status, 400, "{body}");
    s.assert_no_unexpected_warnings(&[]);
}
