//! Prometheus remote read: the snappy-compressed protobuf `ReadRequest`, and both
//! answers Prometheus gives: a snappy-compressed `ReadResponse` of raw samples
//! (`SAMPLES`), or a stream of framed `ChunkedReadResponse`s of XOR chunks
//! (`STREAMED_XOR_CHUNKS`).
//!
//! Message types are written out with prost's derive, as in [`super::remote_write`];
//! field numbers follow Prometheus' `prompb/remote.proto` and `types.proto`. A stream
//! frame is `uvarint(len) | crc32c(message) as u32 big-endian | message`, as
//! Prometheus' `storage/remote/chunked.go` writes it.
#![deny(clippy::indexing_slicing)]

use prost::Message;
use tsdb_engine::head::SeriesData;
use tsdb_engine::limits::CHUNK_SAMPLES_MAX;
use tsdb_engine::model::{Labels, Matcher};

use super::WireError;
use super::proto_size::{self, Field};
pub use super::remote_write::{Label, Sample, TimeSeries};

/// Bytes of chunk data and labels one stream frame aims at (a frame always holds at
/// least one chunk); Prometheus' `--storage.remote.read-max-bytes-in-frame` default.
pub const FRAME_BYTES_MAX: usize = 1 << 20;

/// `Content-Type` of a `SAMPLES` answer (with `Content-Encoding: snappy`).
pub const SAMPLES_CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Type` of a `STREAMED_XOR_CHUNKS` answer (no content encoding).
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    Samples = 0,
    StreamedXorChunks = 1,
}

/// `prometheus.Query`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    #[prost(enumeration = "MatcherType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.LabelMatcher.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MatcherType {
    Eq = 0,
    Neq = 1,
    Re = 2,
    Nre = 3,
}

/// `prometheus.ReadHints`: decoded so requests carrying them parse; tsdb does not
/// need them (every selection reads raw samples).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadHints {
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    #[prost(string, tag = "2")]
    pub func: String,
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    #[prost(bool, tag = "6")]
    pub by: bool,
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// `prometheus.ReadResponse`: one result per query, in the request's order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.ChunkedReadResponse`: one frame of a streamed answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    #[prost(enumeration = "ChunkEncoding", tag = "3")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `prometheus.Chunk.Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChunkEncoding {
    Unknown = 0,
    Xor = 1,
    Histogram = 2,
}

/// The repeated messages of a `ReadRequest` and what each costs decoded (a packed
/// `accepted_response_types` costs at most four bytes per byte and is not counted).
const READ_REQUEST_FIELDS: &[Field] = &[Field {
    tag: 1,
    elem_bytes: size_of::<Query>(),
    inner: &[
        Field {
            tag: 3,
            elem_bytes: size_of::<LabelMatcher>(),
            inner: &[],
        },
        Field {
            tag: 4,
            elem_bytes: 0,
            inner: &[Field {
                tag: 5,
                elem_bytes: size_of::<String>(),
                inner: &[],
            }],
        },
    ],
}];

/// Decodes a request body: snappy block format around a protobuf `ReadRequest`. The
/// decoded length is checked against `decoded_bytes_max` before decompressing, and
/// the structs the messages decode to before decoding them.
pub fn decode_request(body: &[u8], decoded_bytes_max: usize) -> Result<ReadRequest, WireError> {
    let decoded_len = snap::raw::decompress_len(body)
        .map_err(|e| WireError::BadData(format!("snappy decode: {e}")))?;
    if decoded_len > decoded_bytes_max {
        return Err(WireError::Limit {
            limit: "decoded_body_size",
            message: format!(
                "remote read body decompresses to {decoded_len} bytes, more than the limit of {decoded_bytes_max} (limits.max_decoded_body_size)"
            ),
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| WireError::BadData(format!("snappy decode: {e}")))?;
    // An empty `Query` is 2 bytes on the wire and a struct of over a hundred decoded.
    if proto_size::struct_bytes(&raw, READ_REQUEST_FIELDS, decoded_bytes_max) > decoded_bytes_max {
        return Err(WireError::Limit {
            limit: "decoded_body_size",
            message: format!(
                "remote read body decodes to more than {decoded_bytes_max} bytes of messages, the limit (limits.max_decoded_body_size)"
            ),
        });
    }
    ReadRequest::decode(raw.as_slice())
        .map_err(|e| WireError::BadData(format!("protobuf decode: {e}")))
}

/// Prometheus' `NegotiateResponseType`: the first type in the client's list that the
/// server supports; `SAMPLES` when the list is empty.
pub fn negotiate(accepted: &[i32]) -> Result<ResponseType, WireError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    if let Some(t) = accepted
        .iter()
        .find_map(|&t| ResponseType::try_from(t).ok())
    {
        return Ok(t);
    }
    // Go prints the list with each known value's name, unknown ones as numbers.
    let names: Vec<String> = accepted
        .iter()
        .map(|&t| match ResponseType::try_from(t) {
            Ok(ResponseType::Samples) => "SAMPLES".to_string(),
            Ok(ResponseType::StreamedXorChunks) => "STREAMED_XOR_CHUNKS".to_string(),
            Err(_) => t.to_string(),
        })
        .collect();
    Err(WireError::BadData(format!(
        "server does not support any of the requested response types: [{}]; supported: map[SAMPLES:{{}} STREAMED_XOR_CHUNKS:{{}}]",
        names.join(" ")
    )))
}

/// The matchers of a query, as Prometheus' `FromLabelMatchers` builds them.
pub fn matchers(query: &Query) -> Result<Vec<Matcher>, WireError> {
    query
        .matchers
        .iter()
        .map(|m| {
            let kind = match MatcherType::try_from(m.r#type) {
                Ok(MatcherType::Eq) => "=",
                Ok(MatcherType::Neq) => "!=",
                Ok(MatcherType::Re) => "=~",
                Ok(MatcherType::Nre) => "!~",
                Err(_) => return Err(WireError::BadData("invalid matcher type".into())),
            };
            Matcher::new(&m.name, kind, &m.value).map_err(|e| {
                WireError::BadData(format!("invalid regular expression {:?}: {e}", m.value))
            })
        })
        .collect()
}

fn labels_proto(labels: &Labels) -> Vec<Label> {
    labels
        .iter()
        .map(|l| Label {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect()
}

/// One query's series as a `QueryResult` of raw samples.
pub fn query_result(series: &[SeriesData]) -> QueryResult {
    QueryResult {
        timeseries: series
            .iter()
            .map(|s| TimeSeries {
                labels: labels_proto(&s.labels),
                samples: s
                    .samples
                    .iter()
                    .map(|x| Sample {
                        value: x.value,
                        timestamp: x.timestamp_ms,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Encodes a `SAMPLES` answer: protobuf, then snappy block format.
pub fn encode_response(resp: &ReadResponse) -> Result<Vec<u8>, WireError> {
    let raw = resp.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| WireError::BadData(format!("snappy encode of {} bytes: {e}", raw.len())))
}

/// Appends the frames of one series of query `query_index` to a streamed answer. Its
/// samples (sorted) are cut into XOR chunks of at most [`CHUNK_SAMPLES_MAX`]; chunks
/// are packed into frames until one holds `frame_bytes_max` bytes of labels and chunks,
/// as Prometheus' `StreamChunkedReadResponses` does, so a frame is never empty and a
/// big series spans several frames (each repeating the labels).
pub fn push_series_frames(
    out: &mut Vec<u8>,
    query_index: i64,
    series: &SeriesData,
    frame_bytes_max: usize,
) {
    let labels = labels_proto(&series.labels);
    let labels_len: usize = labels.iter().map(Message::encoded_len).sum();
    let data_len_max = frame_bytes_max.saturating_sub(labels_len);
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut frame_len = 0usize;
    let mut parts = series.samples.chunks(CHUNK_SAMPLES_MAX).peekable();
    while let Some(part) = parts.next() {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        let chunk = Chunk {
            min_time_ms: first.timestamp_ms,
            max_time_ms: last.timestamp_ms,
            r#type: ChunkEncoding::Xor as i32,
            data: tsdb_engine::chunk::encode(part),
        };
        frame_len += chunk.encoded_len();
        chunks.push(chunk);
        if frame_len < data_len_max && parts.peek().is_some() {
            continue;
        }
        let frame = ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: labels.clone(),
                chunks: std::mem::take(&mut chunks),
            }],
            query_index,
        };
        push_frame(out, &frame.encode_to_vec());
        frame_len = 0;
    }
}

/// Appends one frame: `uvarint(len) | crc32c as u32 big-endian | message`.
pub fn push_frame(out: &mut Vec<u8>, message: &[u8]) {
    prost::encoding::encode_varint(message.len() as u64, out);
    out.extend_from_slice(&crc32c::crc32c(message).to_be_bytes());
    out.extend_from_slice(message);
}

/// Splits a streamed answer into its messages, checking each checksum: what a client
/// does with the body (used by tests and the bench tool).
pub fn decode_frames(mut body: &[u8]) -> Result<Vec<ChunkedReadResponse>, WireError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = prost::encoding::decode_varint(&mut body)
            .map_err(|e| WireError::BadData(format!("frame length: {e}")))?;
        let len = usize::try_from(len)
            .map_err(|_| WireError::BadData(format!("frame length {len} too large")))?;
        let (crc, rest) = body
            .split_first_chunk::<4>()
            .ok_or_else(|| WireError::BadData("frame truncated in its checksum".into()))?;
        let message = rest
            .get(..len)
            .ok_or_else(|| WireError::BadData("frame truncated in its message".into()))?;
        let want = u32::from_be_bytes(*crc);
        let got = crc32c::crc32c(message);
        if want != got {
            return Err(WireError::BadData(format!(
                "frame checksum mismatch: expected {want:08x}, got {got:08x}"
            )));
        }
        out.push(
            ChunkedReadResponse::decode(message)
                .map_err(|e| WireError::BadData(format!("protobuf decode: {e}")))?,
        );
        body = rest.get(len..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz;
    use tsdb_engine::model::{Label as ModelLabel, Sample as ModelSample};

    fn series(name: &str, n: i64) -> SeriesData {
        SeriesData {
            labels: Labels::new(vec![ModelLabel::new("__name__", name)]).unwrap(),
            samples: (0..n)
                .map(|i| ModelSample::new(1_000 * i, i as f64))
                .collect(),
        }
    }

    fn request(types: Vec<i32>) -> ReadRequest {
        ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 1,
                end_timestamp_ms: 2,
                matchers: vec![
                    LabelMatcher {
                        r#type: MatcherType::Eq as i32,
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    LabelMatcher {
                        r#type: MatcherType::Nre as i32,
                        name: "job".into(),
                        value: "a|b".into(),
                    },
                ],
                hints: Some(ReadHints {
                    step_ms: 15_000,
                    func: "rate".into(),
                    ..ReadHints::default()
                }),
            }],
            accepted_response_types: types,
        }
    }

    fn compress(req: &ReadRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    /// Found by the `remote_read` fuzz target's allocation bound: empty queries and
    /// matchers (two bytes each on the wire) decode to structs dozens of times larger.
    #[test]
    fn regression_empty_messages_count_against_the_decoded_size() {
        for message in [&[0x0a, 0x00][..], &[0x0a, 0x02, 0x1a, 0x00]] {
            let raw: Vec<u8> = message.iter().copied().cycle().take(1 << 20).collect();
            let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
            let err = decode_request(&body, 2 << 20).unwrap_err();
            assert!(
                matches!(&err, WireError::Limit { limit: "decoded_body_size", message } if message.contains("messages")),
                "{err:?}"
            );
        }
        // A real request's structs are within its limit.
        let body = compress(&request(vec![1]));
        let struct_bytes = size_of::<Query>() + 2 * size_of::<LabelMatcher>();
        assert!(decode_request(&body, struct_bytes).is_ok());
        assert!(decode_request(&body, struct_bytes - 1).is_err());
    }

    #[test]
    fn requests_decode_and_matchers_convert() {
        let req = request(vec![1, 0]);
        let got = decode_request(&compress(&req), 1 << 20).unwrap();
        assert_eq!(got, req);
        let ms = matchers(&got.queries[0]).unwrap();
        assert_eq!(ms.len(), 2);
        assert!(ms[1].matches("c") && !ms[1].matches("a"));

        let mut bad = req.clone();
        bad.queries[0].matchers[0].r#type = 7;
        assert_eq!(
            matchers(&bad.queries[0]).unwrap_err(),
            WireError::BadData("invalid matcher type".into())
        );
        bad.queries[0].matchers[0].r#type = MatcherType::Re as i32;
        bad.queries[0].matchers[0].value = "(".into();
        assert!(matchers(&bad.queries[0]).is_err());
    }

    #[test]
    fn decoded_size_is_checked_first() {
        let body = compress(&request(vec![]));
        let err = decode_request(&body, 4).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "decoded_body_size",
                ..
            }
        ));
        assert!(matches!(
            decode_request(b"\xff\xff", 1 << 20),
            Err(WireError::BadData(_))
        ));
    }

    #[test]
    fn negotiation_takes_the_first_supported_type() {
        assert_eq!(negotiate(&[]), Ok(ResponseType::Samples));
        assert_eq!(negotiate(&[1, 0]), Ok(ResponseType::StreamedXorChunks));
        assert_eq!(negotiate(&[0, 1]), Ok(ResponseType::Samples));
        assert_eq!(negotiate(&[5, 1]), Ok(ResponseType::StreamedXorChunks));
        assert_eq!(
            negotiate(&[2, 3]),
            Err(WireError::BadData(
                "server does not support any of the requested response types: [2 3]; supported: map[SAMPLES:{} STREAMED_XOR_CHUNKS:{}]".into()
            ))
        );
    }

    #[test]
    fn samples_answers_round_trip() {
        let s = vec![series("a", 3), series("b", 1)];
        let resp = ReadResponse {
            results: vec![query_result(&s)],
        };
        let body = encode_response(&resp).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let got = ReadResponse::decode(raw.as_slice()).unwrap();
        assert_eq!(got, resp);
        assert_eq!(got.results[0].timeseries[0].samples[2].timestamp, 2_000);
    }

    #[test]
    fn frames_round_trip_and_split_big_series() {
        // 250 samples: three chunks (120, 120, 10).
        let s = series("big", 250);
        let mut body = Vec::new();
        push_series_frames(&mut body, 3, &s, FRAME_BYTES_MAX);
        let frames = decode_frames(&body).unwrap();
        assert_eq!(frames.len(), 1);
        let cs = &frames[0].chunked_series[0];
        assert_eq!(frames[0].query_index, 3);
        assert_eq!(cs.chunks.len(), 3);
        assert_eq!(
            (cs.chunks[1].min_time_ms, cs.chunks[1].max_time_ms),
            (120_000, 239_000)
        );
        let decoded: Vec<ModelSample> = cs
            .chunks
            .iter()
            .flat_map(|c| tsdb_engine::chunk::decode(&c.data).unwrap())
            .collect();
        assert_eq!(decoded, s.samples);

        // A tiny frame budget puts every chunk in a frame of its own.
        let mut body = Vec::new();
        push_series_frames(&mut body, 0, &s, 1);
        let frames = decode_frames(&body).unwrap();
        assert_eq!(frames.len(), 3);
        assert!(
            frames
                .iter()
                .all(|f| f.chunked_series[0].labels[0].value == "big")
        );

        // A flipped byte is caught by the checksum.
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(decode_frames(&body).is_err());
    }

    #[test]
    fn frame_layout_is_length_crc_message() {
        let mut out = Vec::new();
        push_frame(&mut out, b"abc");
        // crc32c("abc") = 0x364b3fb7.
        assert_eq!(out, b"\x03\x36\x4b\x3f\xb7abc");
    }

    #[test]
    fn mutated_requests_never_panic() {
        let valid = request(vec![1, 0]);
        let raw = valid.encode_to_vec();
        let compressed = compress(&valid);
        let seeds: [&[u8]; 2] = [&raw, &compressed];
        let mut rng = fuzz::Rng::new(0x5eed_0002);
        let mut accepted = 0;
        for i in 0..20_000 {
            let input = fuzz::mutate(&mut rng, &seeds);
            let body = if i % 2 == 0 {
                snap::raw::Encoder::new().compress_vec(&input).unwrap()
            } else {
                input
            };
            if let Ok(req) = decode_request(&body, 1 << 16) {
                accepted += 1;
                let _ = negotiate(&req.accepted_response_types);
                for q in &req.queries {
                    let _ = matchers(q);
                }
            }
        }
        assert!(accepted > 100, "only {accepted} inputs accepted");
    }
}
