//! The fuzz entry points of the network side: one function over `&[u8]` per decoder of
//! untrusted request bytes (remote_write, remote read, line protocol, JSON lines, text
//! exposition, query parameters, PromQL).
//!
//! Each must return for any input without panicking, hanging or allocating more than
//! the input can justify, and whatever a decoder accepts must be valid by the rules the
//! engine relies on (labels sorted, unique, named validly, no empty value). Where the
//! format has an encoder, what decodes is encoded again and must read back the same.
//! A failed check panics with what differed. Two callers drive them: the seeded loop of
//! `net/tests/fuzz.rs` under `cargo test`, and the cargo-fuzz targets of `fuzz/`.
#![deny(clippy::indexing_slicing)]

use std::future::Future;
use std::time::Duration;

use prost::Message;
use tsdb_engine::head::SeriesData;
use tsdb_engine::model::{Label, Labels, Sample, SeriesSamples};
use tsdb_engine::promql::{self, MemStore, QueryOptions};

use crate::params::{self, MAX_TIME_MS, MIN_TIME_MS, Params};
use crate::wire::line_protocol::Precision;
use crate::wire::{IngestLimits, exposition, json_lines, line_protocol, remote_read, remote_write};

/// The `now` the text formats give samples without a timestamp.
const NOW_MS: i64 = 1_700_000_000_000;

/// The server's limits, with a decoded size small enough that every input's memory is
/// bounded by the fuzz loop's allocation bound.
fn limits() -> IngestLimits {
    IngestLimits {
        decoded_body_bytes_max: 1 << 20,
        ..IngestLimits::default()
    }
}

/// What every decoder promises of a batch: valid label sets, each series with samples,
/// no more series than the limit.
fn check_batch(batch: &[SeriesSamples], limits: &IngestLimits) {
    assert!(batch.len() <= limits.series_per_request_max);
    for s in batch {
        assert!(!s.samples.is_empty(), "series {} without samples", s.labels);
        assert!(s.labels.len() <= limits.labels_per_series_max);
        match Labels::new(s.labels.as_slice().to_vec()) {
            Ok(again) => assert_eq!(again, s.labels, "labels not in their normal form"),
            Err(e) => panic!("decoded labels {} are invalid: {e}", s.labels),
        }
    }
}

/// Values compare bit for bit, except that every NaN equals every NaN where the format
/// has a single spelling for NaN, and negative zero equals zero where protobuf drops it.
#[derive(Clone, Copy)]
enum Values {
    AnyNan,
    ZeroSign,
}

fn assert_same_batch(got: &[SeriesSamples], want: &[SeriesSamples], values: Values, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: series count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.labels, w.labels, "{what}: labels");
        assert_eq!(
            g.samples.len(),
            w.samples.len(),
            "{what}: samples of {}",
            w.labels
        );
        for (a, b) in g.samples.iter().zip(&w.samples) {
            let same = a.value.to_bits() == b.value.to_bits()
                || match values {
                    Values::AnyNan => a.value.is_nan() && b.value.is_nan(),
                    Values::ZeroSign => a.value == 0.0 && b.value == 0.0,
                };
            assert!(
                a.timestamp_ms == b.timestamp_ms && same,
                "{what}: {} has {a:?}, want {b:?}",
                w.labels
            );
        }
    }
}

/// remote_write: `data` as a snappy body, and snappy-compressed so that the protobuf
/// decoder sees it as is. What decodes is encoded again and must decode the same.
pub fn remote_write(data: &[u8]) {
    let limits = limits();
    remote_write_case(data, &limits);
    if let Ok(body) = snap::raw::Encoder::new().compress_vec(data) {
        remote_write_case(&body, &limits);
    }
}

fn remote_write_case(body: &[u8], limits: &IngestLimits) {
    let Ok(batch) = remote_write::decode(body, limits) else {
        return;
    };
    let batch = batch.to_series();
    check_batch(&batch, limits);
    let request = remote_write::WriteRequest {
        timeseries: batch
            .iter()
            .map(|s| remote_write::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| remote_write::Label {
                        name: l.name.to_string(),
                        value: l.value.to_string(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|x| remote_write::Sample {
                        value: x.value,
                        timestamp: x.timestamp_ms,
                    })
                    .collect(),
            })
            .collect(),
        metadata: vec![],
    };
    let generous = IngestLimits {
        decoded_body_bytes_max: usize::MAX,
        ..limits.clone()
    };
    match remote_write::decode(&remote_write::encode(&request), &generous).map(|b| b.to_series()) {
        // proto3 leaves out a double equal to its default, so -0.0 comes back as 0.0.
        Ok(again) => assert_same_batch(&again, &batch, Values::ZeroSign, "remote_write"),
        Err(e) => panic!("a re-encoded remote_write request is refused: {e}"),
    }
}

/// Remote read requests: `data` as a snappy body and compressed. Whatever decodes must
/// negotiate and build its matchers without panicking, and encode to the same request.
pub fn remote_read(data: &[u8]) {
    remote_read_case(data);
    if let Ok(body) = snap::raw::Encoder::new().compress_vec(data) {
        remote_read_case(&body);
    }
}

fn remote_read_case(body: &[u8]) {
    let Ok(request) = remote_read::decode_request(body, 1 << 20) else {
        return;
    };
    let _ = remote_read::negotiate(&request.accepted_response_types);
    for q in &request.queries {
        let _ = remote_read::matchers(q);
    }
    let again = match snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()) {
        Ok(b) => b,
        Err(e) => panic!("snappy refuses a decoded request: {e}"),
    };
    match remote_read::decode_request(&again, usize::MAX) {
        Ok(back) => assert_eq!(back, request, "remote read request after re-encoding"),
        Err(e) => panic!("a re-encoded remote read request is refused: {e}"),
    }
}

/// The frames of a streamed remote read answer, as a client (the bench tool) splits
/// them. What splits is framed again and must split the same.
pub fn remote_read_frames(data: &[u8]) {
    let Ok(frames) = remote_read::decode_frames(data) else {
        return;
    };
    let mut again = Vec::new();
    for f in &frames {
        remote_read::push_frame(&mut again, &f.encode_to_vec());
    }
    match remote_read::decode_frames(&again) {
        Ok(back) => assert_eq!(back, frames, "frames after re-framing"),
        Err(e) => panic!("re-framed messages do not split: {e}"),
    }
}

/// InfluxDB line protocol with every precision. The precision only scales timestamps,
/// so `ns`, `us` and `ms` (which cannot overflow) must agree on whether the body
/// parses and on its series and values; `s`, `m` and `h` may refuse a timestamp
/// that overflows, but what they accept has the same series too.
pub fn line_protocol(data: &[u8]) {
    let limits = limits();
    let ms = line_protocol::parse(data, Precision::Ms, NOW_MS, &limits);
    if let Ok(batch) = &ms {
        check_batch(batch, &limits);
    }
    for precision in [
        Precision::Ns,
        Precision::Us,
        Precision::S,
        Precision::M,
        Precision::H,
    ] {
        let got = line_protocol::parse(data, precision, NOW_MS, &limits);
        let exact = matches!(precision, Precision::Ns | Precision::Us);
        match (&got, &ms) {
            (Ok(got), Ok(want)) => assert_same_shape(got, want, precision),
            (Err(_), Err(_)) => {}
            (Err(e), Ok(_)) if !exact => assert!(
                e.to_string().contains("out of range for precision"),
                "{precision:?} refuses what ms accepts: {e}"
            ),
            (got, want) => panic!("{precision:?} gives {got:?}, ms gives {want:?}"),
        }
    }
}

fn assert_same_shape(got: &[SeriesSamples], want: &[SeriesSamples], precision: Precision) {
    assert_eq!(got.len(), want.len(), "{precision:?}: series count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.labels, w.labels, "{precision:?}: labels");
        let values = |s: &SeriesSamples| {
            s.samples
                .iter()
                .map(|x| x.value.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(g),
            values(w),
            "{precision:?}: values of {}",
            w.labels
        );
    }
}

/// JSON lines import: what parses is written as the export writes it and must parse to
/// the same series (NaN has one spelling, so NaN payloads are not kept).
pub fn json_lines(data: &[u8]) {
    let limits = limits();
    let Ok(batch) = json_lines::parse(data, &limits) else {
        return;
    };
    check_batch(&batch, &limits);
    let mut out = Vec::new();
    for s in &batch {
        json_lines::write_series(&mut out, &s.labels, &s.samples);
    }
    let generous = IngestLimits {
        decoded_body_bytes_max: usize::MAX,
        ..limits
    };
    match json_lines::parse(&out, &generous) {
        Ok(again) => assert_same_batch(&again, &batch, Values::AnyNan, "json lines"),
        Err(e) => panic!(
            "exported JSON lines do not import: {e}\n{}",
            String::from_utf8_lossy(&out)
        ),
    }
}

/// Text exposition: what parses is written out as exposition text with explicit
/// timestamps and must parse to the same series.
pub fn exposition(data: &[u8]) {
    let limits = limits();
    let Ok(batch) = exposition::parse(data, NOW_MS, &limits) else {
        return;
    };
    check_batch(&batch, &limits);
    let text = exposition_text(&batch);
    let generous = IngestLimits {
        decoded_body_bytes_max: usize::MAX,
        ..limits
    };
    match exposition::parse(text.as_bytes(), NOW_MS, &generous) {
        Ok(again) => assert_same_batch(&again, &batch, Values::AnyNan, "exposition"),
        Err(e) => panic!("written exposition text does not parse: {e}\n{text}"),
    }
}

/// `name{label="value",…} value timestamp` lines; values in Rust's shortest round-trip
/// form, which Go's float syntax reads (`inf`, `NaN`, `1e300`).
fn exposition_text(batch: &[SeriesSamples]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for s in batch {
        let name = s.labels.metric_name().unwrap_or_default();
        let mut series = format!("{name}{{");
        for l in s
            .labels
            .iter()
            .filter(|l| l.name != tsdb_engine::model::METRIC_NAME)
        {
            let value = l
                .value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(series, "{}=\"{value}\",", l.name);
        }
        series.push('}');
        for x in &s.samples {
            let _ = writeln!(out, "{series} {:?} {}", x.value, x.timestamp_ms);
        }
    }
    out
}

/// Query parameters: `data` up to its first newline is the query string, the rest a
/// form body. Every parameter the query routes read is parsed from it, and the whole
/// input is also given to each value parser. Results must be in range and agree with
/// each other where two parsers read the same syntax.
pub fn params(data: &[u8]) {
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let p = Params::parse(Some(&query), Some(body));
    for key in ["time", "start", "end"] {
        if let Ok(t) = params::time_param(&p, key, 0) {
            assert!(
                (MIN_TIME_MS..=MAX_TIME_MS).contains(&t),
                "{key} {t} out of range"
            );
        }
        let _ = params::required_time_param(&p, key);
    }
    for key in ["step", "timeout", "query", "match[]", "limit"] {
        if let Some(v) = p.get(key) {
            check_value(v);
        }
    }
    let _ = params::limit_param(&p);
    if let Ok(sets) = params::matcher_sets(&p) {
        assert!(sets.iter().all(|s| !s.iter().all(|m| m.matches_empty())));
    }
    check_value(&String::from_utf8_lossy(data));
}

fn check_value(s: &str) {
    if let Ok(t) = params::parse_time(s) {
        assert!(
            (MIN_TIME_MS..=MAX_TIME_MS).contains(&t),
            "time {t} of {s:?} out of range"
        );
        if t.unsigned_abs() < 1 << 50 {
            let sign = if t < 0 { "-" } else { "" };
            let abs = t.unsigned_abs();
            let secs = format!("{sign}{}.{:03}", abs / 1000, abs % 1000);
            assert_eq!(params::parse_time(&secs), Ok(t), "{s:?} as seconds {secs}");
        }
    }
    let ns = params::parse_duration_ns(s);
    if let Some(ms) = params::parse_prometheus_duration_ms(s) {
        assert!(ms >= 0, "duration {s:?} is {ms} ms");
        assert_eq!(
            params::parse_prometheus_duration_ms(&format!("{ms}ms")),
            Some(ms)
        );
        if s.parse::<f64>().is_err() {
            assert_eq!(ns.ok(), ms.checked_mul(1_000_000), "{s:?} in ns and ms");
        }
    }
    if let Ok(sets) = params::parse_selector(s) {
        assert!(!sets.is_empty() && sets.iter().all(|s| !s.iter().all(|m| m.matches_empty())));
    }
}

/// PromQL text: parsed, pretty-printed as `/api/v1/format_query` does (the printed
/// form must parse again), and run as an instant and a range query over a small
/// in-memory store, with a sample limit and a timeout that bound every query.
pub fn promql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = promql::parse(text) {
        let pretty = expr.prettify();
        // promql-parser 0.11 prints a zero offset (`x offset 0`) as `0s`, a duration it
        // refuses to read back; nothing else may fail.
        if let Err(e) = promql::parse(&pretty)
            && !e.contains("duration must be greater than 0")
        {
            panic!("{text:?} pretty-prints as {pretty:?}, which does not parse: {e}");
        }
    }
    let store = store();
    let opts = QueryOptions {
        max_samples: 20_000,
        timeout: Duration::from_millis(200),
        ..QueryOptions::default()
    };
    let _ = block_on(promql::instant_query(&store, text, 300_000, &opts));
    let _ = block_on(promql::range_query(&store, text, 0, 600_000, 60_000, &opts));
}

/// A few series of the usual kinds: a gauge, counters with a reset, histogram buckets
/// and a stale marker, over ten minutes.
fn store() -> MemStore {
    let series = |pairs: &[(&str, &str)], value: &dyn Fn(i64) -> f64| SeriesData {
        labels: Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
            .unwrap_or_default(),
        samples: (0..=20)
            .map(|i| Sample::new(i * 30_000, value(i)))
            .collect(),
    };
    let stale = f64::from_bits(tsdb_engine::model::STALE_NAN_BITS);
    MemStore::new(vec![
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "a")],
            &|_| 1.0,
        ),
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "b")],
            &|i| {
                if i == 10 { stale } else { 0.0 }
            },
        ),
        series(
            &[("__name__", "http_requests_total"), ("code", "200")],
            &|i| (i * 10) as f64,
        ),
        series(
            &[("__name__", "http_requests_total"), ("code", "500")],
            &|i| (i % 7) as f64,
        ),
        series(&[("__name__", "latency_bucket"), ("le", "0.1")], &|i| {
            i as f64
        }),
        series(&[("__name__", "latency_bucket"), ("le", "1")], &|i| {
            (2 * i) as f64
        }),
        series(&[("__name__", "latency_bucket"), ("le", "+Inf")], &|i| {
            (3 * i) as f64
        }),
    ])
}

/// Drives a future that never waits: [`MemStore`] answers at once, so one poll in a
/// loop finishes it without a runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
