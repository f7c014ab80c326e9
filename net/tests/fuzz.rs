//! The network side's fuzz harnesses (`tsdb_net::fuzz`) under the seeded loop of
//! `engine/tests/fuzz_driver`: at least 100,000 inputs per target, mutated from the
//! valid inputs built here. `TSDB_FUZZ_ITERS` runs more, `TSDB_FUZZ_SEED` picks
//! another seed, `TSDB_FUZZ_ITER` replays one input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "corpus building fails loudly on a broken encoder"
)]

#[path = "../../engine/tests/fuzz_driver/mod.rs"]
mod fuzz_driver;

use fuzz_driver::{AllocBound, CountingAlloc, Target};
use prost::Message;
use tsdb_engine::head::SeriesData;
use tsdb_engine::model::{Label, Labels, STALE_NAN_BITS, Sample};
use tsdb_net::fuzz;
use tsdb_net::wire::remote_read::{self, LabelMatcher, Query, ReadHints, ReadRequest};
use tsdb_net::wire::remote_write::{self, MetricMetadata, TimeSeries, WriteRequest};
use tsdb_net::wire::{IngestLimits, exposition, json_lines, line_protocol};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The protobuf decoders, which the harness runs with a 1 MiB decoded limit: up to
/// 1 MiB decompressed, as much again in message structs (twice that with `Vec`
/// growth) and their strings, the validated batch (a `Labels` per series, no larger
/// than the structs) and a re-encoded copy decoded again: 8 MiB. Snappy-compressing
/// the input to feed protobuf directly adds about its length.
const PROTOBUF: AllocBound = AllocBound {
    base_bytes: 8 << 20,
    per_input_byte: 64,
};

/// The text formats hold what the 1 MiB decoded budget allows per parse (about twice
/// that in fact: `SeriesSamples`, map entries and `Vec` growth are not charged), two
/// parses at once (line protocol compares each precision with `ms`; the others parse
/// their own output again); a label of a few bytes grows to some 100 bytes held
/// before the budget notices, hence the factor.
const TEXT: AllocBound = AllocBound {
    base_bytes: 8 << 20,
    per_input_byte: 128,
};

/// Streamed remote read frames (the client side, no decoded limit): an empty message
/// of two bytes decodes to a struct of up to 48 bytes, 96 with `Vec` growth, and the
/// harness holds a re-framed copy decoded again.
const FRAMES: AllocBound = AllocBound {
    base_bytes: 64 << 10,
    per_input_byte: 256,
};

/// Query parameters and PromQL: a `key&` pair of two bytes becomes two `String`s and a
/// `Vec` in a map entry (some 100 bytes). A regex matcher compiles to a program within
/// the regex crate's 10 MiB limit but peaks at several times that while it expands
/// Unicode classes (38 MB for the 11 bytes of `(?i)\w{200}`), so a few bytes of
/// pattern can justify tens of MiB. The evaluator holds at most the harness's
/// `max_samples` of 20,000 points over a store of 147 samples.
const QUERY: AllocBound = AllocBound {
    base_bytes: 64 << 20,
    per_input_byte: 1024,
};

/// A series as `(label pairs, (timestamp, value) samples)`.
type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn write_request(series: &[SeriesSpec<'_>]) -> WriteRequest {
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| remote_write::Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| remote_write::Sample { value, timestamp })
                    .collect(),
            })
            .collect(),
        metadata: vec![],
    }
}

/// Requests as Prometheus sends them, compressed and (for the protobuf decoder behind
/// snappy) raw.
fn remote_write_corpus() -> Vec<Vec<u8>> {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut with_meta = write_request(&[(&[("__name__", "up")], &[(1, 1.0)])]);
    with_meta.metadata.push(MetricMetadata {
        r#type: 1,
        metric_family_name: "up".into(),
        help: "whether the target is up".into(),
        unit: String::new(),
    });
    let requests = [
        write_request(&[
            (
                &[
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", "0"),
                    ("mode", "idle"),
                    ("job", "node"),
                ],
                &[(1_700_000_000_000, 12345.67), (1_700_000_015_000, 12360.0)],
            ),
            (
                &[("__name__", "up"), ("job", "node")],
                &[(1_700_000_000_000, 1.0)],
            ),
        ]),
        write_request(&[(
            &[("__name__", "x"), ("v", "ü\"\\\n")],
            &[
                (i64::MIN, stale),
                (-1, f64::NAN),
                (0, f64::INFINITY),
                (i64::MAX, -0.0),
            ],
        )]),
        write_request(&[(&[("__name__", "empty")], &[])]),
        write_request(&[]),
        with_meta,
    ];
    let mut out: Vec<Vec<u8>> = requests.iter().map(remote_write::encode).collect();
    out.extend(requests.iter().map(Message::encode_to_vec));
    for body in &out {
        // Every compressed entry must be valid, or mutations start from nothing.
        let _ = remote_write::decode(body, &IngestLimits::default());
    }
    assert!(remote_write::decode(&out[0], &IngestLimits::default()).is_ok());
    out
}

fn remote_read_corpus() -> Vec<Vec<u8>> {
    let matcher = |t: remote_read::MatcherType, n: &str, v: &str| LabelMatcher {
        r#type: t as i32,
        name: n.into(),
        value: v.into(),
    };
    let requests = [
        ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 3_600_000,
                matchers: vec![
                    matcher(remote_read::MatcherType::Eq, "__name__", "up"),
                    matcher(remote_read::MatcherType::Re, "job", "api|node.*"),
                    matcher(remote_read::MatcherType::Neq, "instance", ""),
                    matcher(remote_read::MatcherType::Nre, "mode", "(idle|iowait)"),
                ],
                hints: Some(ReadHints {
                    step_ms: 15_000,
                    func: "rate".into(),
                    start_ms: 0,
                    end_ms: 3_600_000,
                    grouping: vec!["job".into()],
                    by: true,
                    range_ms: 300_000,
                }),
            }],
            accepted_response_types: vec![1, 0],
        },
        ReadRequest {
            queries: vec![
                Query {
                    start_timestamp_ms: i64::MIN,
                    end_timestamp_ms: i64::MAX,
                    matchers: vec![matcher(remote_read::MatcherType::Re, "a", "[")],
                    hints: None,
                },
                Query {
                    start_timestamp_ms: 5,
                    end_timestamp_ms: 4,
                    matchers: vec![],
                    hints: None,
                },
            ],
            accepted_response_types: vec![7],
        },
        ReadRequest::default(),
    ];
    let mut out: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| {
            snap::raw::Encoder::new()
                .compress_vec(&r.encode_to_vec())
                .unwrap()
        })
        .collect();
    out.extend(requests.iter().map(Message::encode_to_vec));
    assert!(remote_read::decode_request(&out[0], 1 << 20).is_ok());
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
}

/// Streamed answers: several series, one over two frames, and an empty message.
fn remote_read_frames_corpus() -> Vec<Vec<u8>> {
    let series = |name: &str, n: i64| SeriesData {
        labels: labels(&[("__name__", name), ("job", "a")]),
        samples: (0..n).map(|i| Sample::new(i * 15_000, i as f64)).collect(),
    };
    let mut a = Vec::new();
    remote_read::push_series_frames(&mut a, 0, &series("up", 3), remote_read::FRAME_BYTES_MAX);
    remote_read::push_series_frames(&mut a, 1, &series("x", 300), 64);
    let mut b = Vec::new();
    remote_read::push_frame(&mut b, &[]);
    assert_eq!(remote_read::decode_frames(&a).unwrap().len(), 4);
    vec![a, b]
}

fn line_protocol_corpus() -> Vec<Vec<u8>> {
    let text = [
        "cpu,host=server01,region=us-west value=0.64 1434055562000000000\n",
        "cpu,host=a usage_idle=99.5,usage_user=25i,up=true,down=F,name=\"x y\" 1434055562000000000\n\
         mem,host=a free=12u\n# comment\n\n   disk\\ io,dev\\=x=sd\\,a read=1e3,write=-2.5E-3 -1\n",
        "weather,location=us\\ midwest temperature=82 1465839830100400200\r\nweather temperature=83\n",
        "m value=1 9223372036854775807\nm value=2 -9223372036854775808\n",
        "1m,1tag=é field=0\n",
    ];
    let out: Vec<Vec<u8>> = text.iter().map(|t| t.as_bytes().to_vec()).collect();
    for body in &out {
        line_protocol::parse(
            body,
            line_protocol::Precision::Ns,
            0,
            &IngestLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(body)));
    }
    out
}

const LINE_PROTOCOL_DICT: &[&str] = &[
    ",",
    "=",
    " ",
    "\\",
    "\\ ",
    "\\,",
    "\\=",
    "\"",
    "\n",
    "\r\n",
    "\t",
    "#",
    "value",
    "i",
    "u",
    "t",
    "true",
    "FALSE",
    "1e308",
    "-0",
    ".5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615u",
    "NaN",
    "inf",
    "é",
];

fn json_lines_corpus() -> Vec<Vec<u8>> {
    let mut written = Vec::new();
    json_lines::write_series(
        &mut written,
        &labels(&[("__name__", "up"), ("job", "a\"b\\c\n\u{1}")]),
        &[
            Sample::new(1, 1.0),
            Sample::new(2, f64::NAN),
            Sample::new(3, f64::INFINITY),
            Sample::new(4, f64::NEG_INFINITY),
            Sample::new(-5, -0.0),
            Sample::new(i64::MAX, 1e-300),
        ],
    );
    json_lines::write_series(
        &mut written,
        &labels(&[("__name__", "x")]),
        &[Sample::new(0, 5e300)],
    );
    let out = vec![
        written,
        br#"{"metric":{"__name__":"m","a":"b"},"values":[1,2.5,"NaN","+Inf","-Inf"],"timestamps":[1,2,3,4,5]}"#.to_vec(),
        b"\n  \n{\"metric\":{\"__name__\":\"m\"},\"values\":[],\"timestamps\":[]}\r\n".to_vec(),
        br#"{"metric":{"__name__":"m\u00e9x"},"values":[18446744073709551615,-9223372036854775808],"timestamps":[0,9223372036854775807]}"#.to_vec(),
    ];
    for body in out.iter().take(2) {
        json_lines::parse(body, &IngestLimits::default()).unwrap();
    }
    out
}

const JSON_DICT: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\\"",
    "\\u0000",
    "\\ud83d\\ude00",
    "\\ud800",
    "\"metric\"",
    "\"values\"",
    "\"timestamps\"",
    "\"__name__\"",
    "\"NaN\"",
    "\"+Inf\"",
    "\"-inf\"",
    "null",
    "true",
    "1e999",
    "-0",
    "0.1",
    "1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "\n",
];

fn exposition_corpus() -> Vec<Vec<u8>> {
    let text = [
        "# HELP http_requests_total The total number of HTTP requests.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
         http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n",
        "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
         metric_without_timestamp_and_labels 12.47\n\
         something_weird{problem=\"division by zero\"} +Inf -3982045\n",
        "rpc_duration_seconds{quantile=\"0.5\",} 4773\nrpc_duration_seconds_sum 1.7560473e+07\n\
         x NaN\ny -Inf\nz 0x1.8p3\nw 0X_1F.8P-2 # {trace_id=\"a\"} 1\n# EOF\n",
        "  a:b_c{ l = \"v\" , } -0 -9223372036854775808\r\n\t\n",
    ];
    let out: Vec<Vec<u8>> = text.iter().map(|t| t.as_bytes().to_vec()).collect();
    for body in &out {
        exposition::parse(body, 0, &IngestLimits::default())
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(body)));
    }
    out
}

const EXPOSITION_DICT: &[&str] = &[
    "{",
    "}",
    "=",
    ",",
    "\"",
    "\\\\",
    "\\\"",
    "\\n",
    "\\x",
    " ",
    "\t",
    "\n",
    "# HELP ",
    "# TYPE ",
    "# EOF",
    " # ",
    "__name__",
    "le",
    "NaN",
    "+Inf",
    "-inf",
    "Infinity",
    "0x1p-1074",
    "0x1P1024",
    "0x_1.8p3",
    "1e-400",
    "1e400",
    "_",
    ":",
    "-9223372036854775809",
    "9223372036854775807",
];

fn params_corpus() -> Vec<Vec<u8>> {
    [
        "query=up&time=1700000000.123",
        "query=rate(http_requests_total%5B5m%5D)&start=2023-11-14T22:13:20Z&end=2023-11-14T23:13:20.5%2B01:00&step=15s&timeout=1m30s",
        "match[]=up%7Bjob%3D%22a%22%7D&match[]=%7B__name__%3D~%22x.*%22%2Cjob!~%22y%22%7D&limit=10\nstart=-1&end=1e10",
        "\nquery=sum+by+(job)+(up)&time=2023-01-01t00:00:00.000000001-12:30",
        "step=1y2w3d4h5m6s7ms&timeout=0.5&limit=-1&time=NaN&start=+Inf",
        "match[]={a=\"b\"} or {c=~\"d\"}&step=0&end=9999-12-31T23:59:60Z",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

const PARAMS_DICT: &[&str] = &[
    "&",
    "=",
    "+",
    "%",
    "%2",
    "%ZZ",
    "%00",
    "%7B",
    "%22",
    "\n",
    "query=",
    "time=",
    "start=",
    "end=",
    "step=",
    "timeout=",
    "limit=",
    "match[]=",
    "match%5B%5D=",
    "{",
    "}",
    "=~",
    "!~",
    "\"",
    ".*",
    " or ",
    "T",
    "Z",
    "+01:00",
    "-00:00",
    ".999",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "0x1p3",
    "9223372036854775807",
    "ms",
    "y",
    "w",
    "d",
    "h",
    "m",
    "s",
    "0",
    "2023-02-29T00:00:00Z",
];

/// Every query of the PromQL case files, and a few that stress the parser.
fn promql_corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/promql");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let query = if line.starts_with("eval range") {
                line.splitn(9, ' ').nth(8)
            } else if line.starts_with("eval") {
                line.splitn(5, ' ').nth(4)
            } else {
                None
            };
            out.extend(query.map(|q| q.as_bytes().to_vec()));
        }
    }
    assert!(
        out.len() > 300,
        "only {} queries in {}",
        out.len(),
        dir.display()
    );
    out.sort();
    out.extend(
        [
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m @ 300)) / ignoring(code) group_left up",
            "histogram_quantile(0.9, sum by (le) (rate(latency_bucket[1m])))",
            "max_over_time(deriv(up[2m:15s])[5m:1m])",
            "label_replace(up, \"dst\", \"$1-$2\", \"instance\", \"(.)(.*)\")",
            "-(((1))) ^ 2 ^ -0x1F % 3 and on() vector(time()) unless bool 1 > bool 0",
            "{__name__=~\"up|latency_bucket\", le!=\"\"}",
            "\"a\\u00e9\\x41\\101\" ",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec()),
    );
    out
}

const PROMQL_DICT: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "`",
    "=~",
    "!~",
    "!=",
    "==",
    "@",
    " offset ",
    " by ",
    " without ",
    " on ",
    " ignoring ",
    " group_left ",
    " group_right ",
    " bool ",
    " and ",
    " or ",
    " unless ",
    "^",
    "%",
    "/",
    "*",
    "+",
    "-",
    ":",
    "5m",
    "1ms",
    "100y",
    "-1d",
    "1e308",
    "0x7fffffffffffffff",
    "NaN",
    "Inf",
    "start()",
    "end()",
    "sum",
    "topk",
    "count_values",
    "quantile",
    "histogram_quantile",
    "rate",
    "absent",
    "label_join",
    "vector(",
    "scalar(",
    "time()",
    "up",
    "latency_bucket",
    "http_requests_total",
    "le",
    "job",
    "[5m:1ms]",
    "#",
];

#[test]
fn remote_write() {
    Target {
        name: "remote_write",
        run: fuzz::remote_write,
        corpus: remote_write_corpus(),
        dict: &[],
        alloc: PROTOBUF,
    }
    .fuzz();
}

#[test]
fn remote_read() {
    Target {
        name: "remote_read",
        run: fuzz::remote_read,
        corpus: remote_read_corpus(),
        dict: &[],
        alloc: PROTOBUF,
    }
    .fuzz();
}

#[test]
fn remote_read_frames() {
    Target {
        name: "remote_read_frames",
        run: fuzz::remote_read_frames,
        corpus: remote_read_frames_corpus(),
        dict: &[],
        alloc: FRAMES,
    }
    .fuzz();
}

#[test]
fn line_protocol() {
    Target {
        name: "line_protocol",
        run: fuzz::line_protocol,
        corpus: line_protocol_corpus(),
        dict: LINE_PROTOCOL_DICT,
        alloc: TEXT,
    }
    .fuzz();
}

#[test]
fn json_lines() {
    Target {
        name: "json_lines",
        run: fuzz::json_lines,
        corpus: json_lines_corpus(),
        dict: JSON_DICT,
        alloc: TEXT,
    }
    .fuzz();
}

#[test]
fn exposition() {
    Target {
        name: "exposition",
        run: fuzz::exposition,
        corpus: exposition_corpus(),
        dict: EXPOSITION_DICT,
        alloc: TEXT,
    }
    .fuzz();
}

#[test]
fn params() {
    Target {
        name: "params",
        run: fuzz::params,
        corpus: params_corpus(),
        dict: PARAMS_DICT,
        alloc: QUERY,
    }
    .fuzz();
}

#[test]
fn promql() {
    Target {
        name: "promql",
        run: fuzz::promql,
        corpus: promql_corpus(),
        dict: PROMQL_DICT,
        alloc: QUERY,
    }
    .fuzz();
}

/// Protobuf bombs (empty messages, two bytes each on the wire, tens of bytes each
/// decoded) are refused before prost allocates for them: the peak is the decompressed
/// body, where it was 450 MB (empty series) and 1 GB (empty labels) for these 16 MiB.
#[test]
fn protobuf_bombs_are_refused_before_they_are_decoded() {
    let limits = IngestLimits {
        decoded_body_bytes_max: 64 << 20,
        ..IngestLimits::default()
    };
    for message in [&[0x0a, 0x00][..], &[0x0a, 0x02, 0x0a, 0x00]] {
        let raw: Vec<u8> = message.iter().copied().cycle().take(16 << 20).collect();
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let mut refused = false;
        let peak = fuzz_driver::peak_bytes(|| {
            refused = remote_write::decode(&body, &limits).is_err();
        });
        assert!(refused);
        assert!(
            peak <= raw.len() + (1 << 20),
            "remote_write {message:02x?}: peak {peak}"
        );
        let mut refused = false;
        let peak = fuzz_driver::peak_bytes(|| {
            refused = remote_read::decode_request(&body, 64 << 20).is_err();
        });
        assert!(refused);
        assert!(
            peak <= raw.len() + (1 << 20),
            "remote read {message:02x?}: peak {peak}"
        );
    }
}
