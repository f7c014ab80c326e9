//! Prometheus remote_write 1.0: snappy-compressed protobuf `WriteRequest`.
//!
//! The message types are written out with prost's derive (no protoc at build time);
//! field numbers follow Prometheus' `prompb/types.proto` and `remote.proto`.
//! [`encode`] builds a body with them (for the bench tool and tests); [`decode`] turns
//! one into a validated [`IngestBatch`] without them, reading the protobuf in place
//! (`write_request.rs`) so that labels stay borrowed from the body.
#![deny(clippy::indexing_slicing)]

use std::sync::Arc;

use prost::Message;
use tsdb_engine::ingest::{IngestBatch, IngestBatchBuilder};

use super::proto_size::{self, Field};
use super::write_request::{self, WalkError};
use super::{IngestLimits, WireError, check_label_limits, check_series_total};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries` (native histograms, tag 4, are not decoded: they are skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// The repeated messages of a `WriteRequest` and what each costs decoded.
const WRITE_REQUEST_FIELDS: &[Field] = &[
    Field {
        tag: 1,
        elem_bytes: size_of::<TimeSeries>(),
        inner: &[
            Field {
                tag: 1,
                elem_bytes: size_of::<Label>(),
                inner: &[],
            },
            Field {
                tag: 2,
                elem_bytes: size_of::<Sample>(),
                inner: &[],
            },
        ],
    },
    Field {
        tag: 3,
        elem_bytes: size_of::<MetricMetadata>(),
        inner: &[],
    },
];
/// The decoded size a snappy body states in its header, if it has a valid one.
pub fn decoded_len(body: &[u8]) -> Option<usize> {
    snap::raw::decompress_len(body).ok()
}

/// Decodes a remote_write body: snappy *block* format (not the framed stream format),
/// as Prometheus sends it, around a protobuf `WriteRequest`.
///
/// Series without samples (metadata-only or histogram-only series) are skipped. The
/// batch's labels borrow from the decompressed body: no label is copied.
pub fn decode(body: &[u8], limits: &IngestLimits) -> Result<IngestBatch, WireError> {
    // The snappy header states the decoded length; checking it before decompressing
    // means a 1 KiB body cannot make us allocate gigabytes.
    let decoded_len = snap::raw::decompress_len(body)
        .map_err(|e| WireError::BadData(format!("snappy decode: {e}")))?;
    if decoded_len > limits.decoded_body_bytes_max {
        return Err(WireError::Limit {
            limit: "decoded_body_size",
            message: format!(
                "remote_write body decompresses to {decoded_len} bytes, more than the limit of {} (limits.max_decoded_body_size)",
                limits.decoded_body_bytes_max
            ),
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| WireError::BadData(format!("snappy decode: {e}")))?;
    // Messages cost more decoded than on the wire (an empty `TimeSeries` is 2 bytes
    // and a 48-byte struct), so their structs count against the same limit. The walk
    // counts them as it reads; a malformed body is counted again by `proto_size`'s
    // structural walk, which goes past the errors the walk stops at, so that a body
    // is refused by the limit exactly when it was before the walk counted.
    let budget = limits.decoded_body_bytes_max;
    let over_budget = || WireError::Limit {
        limit: "decoded_body_size",
        message: format!(
            "remote_write body decodes to more than {budget} bytes of messages, the limit (limits.max_decoded_body_size)"
        ),
    };
    // A body too big to be walked within the budget whatever it holds is counted
    // first, without allocating: a protobuf bomb (millions of empty messages) is
    // refused before the walk's lists grow. Every other body, as clients send them,
    // is only counted by the walk itself.
    let struct_bytes_bound =
        (raw.len() / 2 + 1).saturating_mul(proto_size::elem_bytes_max(WRITE_REQUEST_FIELDS));
    if struct_bytes_bound > budget
        && proto_size::struct_bytes(&raw, WRITE_REQUEST_FIELDS, budget) > budget
    {
        return Err(over_budget());
    }
    let raw = Arc::new(raw);
    let wire = match write_request::walk(&raw, budget) {
        Ok(wire) => wire,
        Err(WalkError::OverBudget) => return Err(over_budget()),
        Err(WalkError::Malformed(e)) => {
            if proto_size::struct_bytes(&raw, WRITE_REQUEST_FIELDS, budget) > budget {
                return Err(over_budget());
            }
            return Err(WireError::BadData(format!("protobuf decode: {e}")));
        }
    };
    let mut batch = IngestBatchBuilder::new(Arc::clone(&raw));
    batch.reserve(wire.series.len().min(limits.series_per_request_max));
    let mut labels = Vec::new();
    for ts in &wire.series {
        let samples = wire.samples.get(ts.samples.clone()).unwrap_or_default();
        if samples.is_empty() {
            continue;
        }
        let wire_labels = wire.labels.get(ts.labels.clone()).unwrap_or_default();
        check_label_limits(wire_labels.len(), wire_labels.iter().copied(), limits)?;
        labels.clear();
        labels.extend_from_slice(wire_labels);
        batch
            .push_series(&mut labels, samples.iter().copied())
            .map_err(|e| WireError::BadData(e.to_string()))?;
        // Checked per series so that an over-limit request stops early.
        check_series_total(batch.len(), limits)?;
    }
    Ok(batch.finish())
}

/// Encodes a request as Prometheus sends it: protobuf, then snappy block format.
///
/// # Panics
///
/// If the encoded request exceeds snappy's block size limit (about 4 GiB): no caller
/// builds such a request, so it would be a bug.
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    match snap::raw::Encoder::new().compress_vec(&raw) {
        Ok(compressed) => compressed,
        Err(e) => panic!(
            "BUG: remote_write request of {} bytes cannot be snappy-compressed: {e}",
            raw.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use tsdb_engine::model::{self, SeriesSamples};

    use super::*;
    use crate::wire::{build_labels, check_series_count, fuzz};

    /// The decoder, its batch as owned series.
    fn decode(body: &[u8], limits: &IngestLimits) -> Result<Vec<SeriesSamples>, WireError> {
        super::decode(body, limits).map(|b| b.to_series())
    }

    /// The decoder as it was before it read the protobuf in place: prost's derived
    /// decoder, then owned labels. The reference the in-place reader is compared with.
    fn decode_with_prost(
        body: &[u8],
        limits: &IngestLimits,
    ) -> Result<Vec<SeriesSamples>, WireError> {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| WireError::BadData(format!("snappy decode: {e}")))?;
        let budget = limits.decoded_body_bytes_max;
        if proto_size::struct_bytes(&raw, WRITE_REQUEST_FIELDS, budget) > budget {
            return Err(WireError::Limit {
                limit: "decoded_body_size",
                message: format!(
                    "remote_write body decodes to more than {budget} bytes of messages, the limit (limits.max_decoded_body_size)"
                ),
            });
        }
        let request = WriteRequest::decode(raw.as_slice())
            .map_err(|e| WireError::BadData(format!("protobuf decode: {e}")))?;
        let mut batch = Vec::new();
        for ts in request.timeseries {
            if ts.samples.is_empty() {
                continue;
            }
            let labels = ts
                .labels
                .into_iter()
                .map(|l| model::Label::new(l.name, l.value))
                .collect();
            let labels = build_labels(labels, limits)?;
            let samples = ts
                .samples
                .iter()
                .map(|s| model::Sample::new(s.timestamp, s.value))
                .collect();
            batch.push(SeriesSamples { labels, samples });
            check_series_count(&batch, limits)?;
        }
        Ok(batch)
    }

    /// Samples compared bit for bit (NaN payloads included).
    fn bits(batch: &[SeriesSamples]) -> Vec<(String, Vec<(i64, u64)>)> {
        batch
            .iter()
            .map(|s| {
                let samples = s.samples.iter();
                let samples = samples.map(|x| (x.timestamp_ms, x.value.to_bits()));
                (s.labels.to_string(), samples.collect())
            })
            .collect()
    }

    #[test]
    fn reads_what_prost_reads_and_refuses_what_it_refuses() {
        let valid = request(vec![
            series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0), (2, 2.0)]),
            series(&[("__name__", "x"), ("e", "")], &[(3, f64::NAN)]),
            series(&[("__name__", "empty")], &[]),
        ]);
        let mut with_metadata = valid.clone();
        with_metadata.metadata.push(MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: "u".into(),
        });
        let raws = [valid.encode_to_vec(), with_metadata.encode_to_vec()];
        let seeds: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
        // A budget of messages the seeds fit and mutants (spans duplicated) outgrow.
        let tight = IngestLimits {
            decoded_body_bytes_max: 480,
            ..IngestLimits::default()
        };
        let mut rng = fuzz::Rng::new(0x5eed_0002);
        let (mut accepted, mut refused, mut over_budget) = (0, 0, 0);
        for i in 0..20_000 {
            let input = fuzz::mutate(&mut rng, &seeds);
            let body = snap::raw::Encoder::new().compress_vec(&input).unwrap();
            let limits = if i % 2 == 0 {
                IngestLimits::default()
            } else {
                tight.clone()
            };
            let limits = &limits;
            match (decode(&body, limits), decode_with_prost(&body, limits)) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(bits(&got), bits(&want), "{input:x?}");
                    accepted += 1;
                }
                (Err(got), Err(want)) => {
                    if let WireError::Limit { .. } = want {
                        assert_eq!(got, want, "{input:x?}");
                        over_budget += 1;
                    }
                    assert_eq!(
                        std::mem::discriminant(&got),
                        std::mem::discriminant(&want),
                        "{input:x?}: {got} / {want}"
                    );
                    refused += 1;
                }
                (got, want) => panic!("{input:x?}: in place {got:?}, prost {want:?}"),
            }
        }
        assert!(
            accepted > 500 && refused > 1000 && over_budget > 100,
            "{accepted} accepted, {refused} refused, {over_budget} over the budget"
        );
    }

    #[test]
    fn words_errors_as_prost_does() {
        // A label name that is not UTF-8, and a sample value of the wrong wire type.
        let bad_utf8 = b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe";
        let bad_wire_type = b"\x0a\x04\x12\x02\x08\x01";
        for raw in [&bad_utf8[..], &bad_wire_type[..]] {
            let body = snap::raw::Encoder::new().compress_vec(raw).unwrap();
            let got = decode(&body, &IngestLimits::default()).unwrap_err();
            let want = decode_with_prost(&body, &IngestLimits::default()).unwrap_err();
            assert_eq!(got, want);
        }
    }

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }

    fn request(timeseries: Vec<TimeSeries>) -> WriteRequest {
        WriteRequest {
            timeseries,
            metadata: vec![],
        }
    }

    #[test]
    fn decodes_what_encode_wrote() {
        let req = request(vec![
            series(
                &[("job", "api"), ("__name__", "up")],
                &[(1000, 1.0), (2000, 0.0)],
            ),
            series(&[("__name__", "temp"), ("room", "k")], &[(-5, -2.5)]),
        ]);
        let got = decode(&encode(&req), &IngestLimits::default()).unwrap();
        assert_eq!(got.len(), 2);
        // Labels come back sorted by name.
        assert_eq!(got[0].labels.to_string(), "up{job=\"api\"}");
        assert_eq!(
            got[0].samples,
            [model::Sample::new(1000, 1.0), model::Sample::new(2000, 0.0)]
        );
        assert_eq!(got[1].labels.to_string(), "temp{room=\"k\"}");
        assert_eq!(got[1].samples, [model::Sample::new(-5, -2.5)]);
    }

    #[test]
    fn keeps_special_values_bit_exact() {
        let stale = f64::from_bits(model::STALE_NAN_BITS);
        let req = request(vec![series(
            &[("__name__", "x")],
            &[
                (1, stale),
                (2, f64::INFINITY),
                (3, f64::MIN_POSITIVE),
                (4, -0.0),
            ],
        )]);
        let got = decode(&encode(&req), &IngestLimits::default()).unwrap();
        let bits: Vec<u64> = got[0].samples.iter().map(|s| s.value.to_bits()).collect();
        assert_eq!(
            bits,
            [
                model::STALE_NAN_BITS,
                f64::INFINITY.to_bits(),
                f64::MIN_POSITIVE.to_bits(),
                // proto3 does not encode a field equal to its default, and -0.0 == 0.0,
                // so prost (like Prometheus' Go encoder) sends negative zero as zero.
                0
            ]
        );
        assert!(model::is_stale_nan(got[0].samples[0].value));
    }

    #[test]
    fn skips_series_without_samples() {
        let req = request(vec![
            series(&[("__name__", "empty")], &[]),
            series(&[("__name__", "full")], &[(1, 1.0)]),
        ]);
        let got = decode(&encode(&req), &IngestLimits::default()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.metric_name(), Some("full"));
        assert!(
            decode(&encode(&request(vec![])), &IngestLimits::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn empty_label_values_are_dropped() {
        let req = request(vec![series(
            &[("__name__", "up"), ("env", "")],
            &[(1, 1.0)],
        )]);
        let got = decode(&encode(&req), &IngestLimits::default()).unwrap();
        assert_eq!(got[0].labels.len(), 1);
    }

    #[test]
    fn refuses_bad_snappy_and_bad_protobuf() {
        let err = decode(b"\xff\xff\xff\xff\xff\xff", &IngestLimits::default()).unwrap_err();
        assert!(matches!(&err, WireError::BadData(m) if m.starts_with("snappy decode: ")));

        // Valid snappy around bytes that are not a WriteRequest (a truncated varint).
        let body = snap::raw::Encoder::new().compress_vec(b"\x0a\xff").unwrap();
        let err = decode(&body, &IngestLimits::default()).unwrap_err();
        assert!(
            matches!(&err, WireError::BadData(m) if m.starts_with("protobuf decode: ")),
            "{err:?}"
        );

        let err = decode(b"", &IngestLimits::default()).unwrap_err();
        assert!(matches!(err, WireError::BadData(_)));
    }

    #[test]
    fn refuses_invalid_labels() {
        for labels in [
            &[("__name__", "a-b")][..],
            &[("__name__", "up"), ("1bad", "x")],
            &[("__name__", "up"), ("job", "a"), ("job", "b")],
            &[("job", "")],
        ] {
            let req = request(vec![series(labels, &[(1, 1.0)])]);
            let err = decode(&encode(&req), &IngestLimits::default()).unwrap_err();
            assert!(matches!(err, WireError::BadData(_)), "{labels:?}: {err:?}");
        }
    }

    #[test]
    fn checks_the_decoded_size_before_decompressing() {
        let req = request(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
        let body = encode(&req);
        let decoded_len = req.encode_to_vec().len();
        let limits = IngestLimits {
            decoded_body_bytes_max: decoded_len - 1,
            ..IngestLimits::default()
        };
        let err = decode(&body, &limits).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "decoded_body_size",
                ..
            }
        ));
        // Past the decompressed length, the decoded messages count: here a
        // `TimeSeries`, a `Label` and a `Sample`.
        let message_bytes = size_of::<TimeSeries>() + size_of::<Label>() + size_of::<Sample>();
        let limits = IngestLimits {
            decoded_body_bytes_max: message_bytes.max(decoded_len),
            ..IngestLimits::default()
        };
        assert!(decode(&body, &limits).is_ok());
        let limits = IngestLimits {
            decoded_body_bytes_max: message_bytes - 1,
            ..IngestLimits::default()
        };
        assert!(matches!(
            decode(&body, &limits),
            Err(WireError::Limit {
                limit: "decoded_body_size",
                ..
            })
        ));

        // A 6-byte body claiming a 3.75 GiB payload is refused by its header alone.
        let err = decode(b"\x80\x80\x80\x80\x0f\x00", &IngestLimits::default()).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "decoded_body_size",
                ..
            }
        ));
    }

    #[test]
    fn checks_series_and_label_limits() {
        let req = request(
            (0..3)
                .map(|i| series(&[("__name__", "up"), ("i", &i.to_string())], &[(1, 1.0)]))
                .collect(),
        );
        let limits = IngestLimits {
            series_per_request_max: 2,
            ..IngestLimits::default()
        };
        let err = decode(&encode(&req), &limits).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "series_per_request",
                ..
            }
        ));

        let limits = IngestLimits {
            labels_per_series_max: 1,
            ..IngestLimits::default()
        };
        let err = decode(&encode(&req), &limits).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "labels_per_series",
                ..
            }
        ));

        let limits = IngestLimits {
            label_value_bytes_max: 1,
            ..IngestLimits::default()
        };
        let err = decode(&encode(&req), &limits).unwrap_err();
        assert!(matches!(
            err,
            WireError::Limit {
                limit: "label_value_length",
                ..
            }
        ));
    }

    /// Found by the `remote_write` fuzz target's allocation bound: 16 MiB of empty
    /// `TimeSeries` (two bytes each on the wire, a 48-byte struct decoded) made prost
    /// hold 450 MB, and empty labels 1 GB, for a 790 kB body.
    #[test]
    fn regression_empty_messages_count_against_the_decoded_size() {
        let limits = IngestLimits {
            decoded_body_bytes_max: 4 << 20,
            ..IngestLimits::default()
        };
        for message in [&[0x0a, 0x00][..], &[0x0a, 0x02, 0x0a, 0x00]] {
            let raw: Vec<u8> = message.iter().copied().cycle().take(2 << 20).collect();
            let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
            let err = decode(&body, &limits).unwrap_err();
            assert!(
                matches!(&err, WireError::Limit { limit: "decoded_body_size", message } if message.contains("messages")),
                "{err:?}"
            );
        }
        // A request of the same decoded size carrying samples is decoded.
        let req = request(
            (0..20_000)
                .map(|i| series(&[("__name__", "up"), ("i", &i.to_string())], &[(i, 1.0)]))
                .collect(),
        );
        assert_eq!(decode(&encode(&req), &limits).unwrap().len(), 20_000);
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let valid = request(vec![
            series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0), (2, 2.0)]),
            series(&[("__name__", "x")], &[(3, f64::NAN)]),
        ]);
        let raw = valid.encode_to_vec();
        let compressed = encode(&valid);
        let seeds: [&[u8]; 2] = [&raw, &compressed];
        let limits = IngestLimits {
            decoded_body_bytes_max: 1 << 16,
            ..IngestLimits::default()
        };
        let mut rng = fuzz::Rng::new(0x5eed_0001);
        let mut accepted = 0;
        for i in 0..20_000 {
            let input = fuzz::mutate(&mut rng, &seeds);
            // Half the inputs are mutated protobuf compressed again, so that the
            // protobuf decoder sees malformed input too, not just snappy.
            let body = if i % 2 == 0 {
                snap::raw::Encoder::new().compress_vec(&input).unwrap()
            } else {
                input
            };
            if decode(&body, &limits).is_ok() {
                accepted += 1;
            }
        }
        // The loop must exercise the success path too, not only early errors.
        assert!(accepted > 100, "only {accepted} inputs accepted");
    }
}
