//! A protobuf `WriteRequest` read in place: labels borrowed from the decoded body
//! instead of a `String` each, samples into one flat list.
//!
//! It accepts and refuses what prost's derived decoder of
//! [`super::remote_write::WriteRequest`] does (a test compares the two on mutated
//! bodies), with the same messages: the wire-level steps are prost's own
//! (`decode_key`, `decode_varint`, `skip_field`, `check_wire_type`), and an error
//! names the fields it was found in as prost does (`WriteRequest.timeseries:
//! TimeSeries.labels: Label.name: invalid string value: …`). One difference, in the
//! message only: a field running past the end of its enclosing message is reported
//! as `buffer underflow` where prost says `delimited length exceeded`.
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::ops::Range;

use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, decode_varint, skip_field,
};
use tsdb_engine::model;

use super::remote_write::{Label, MetricMetadata, Sample, TimeSeries};

/// Why a body is not a `WriteRequest`, worded as prost words it.
#[derive(Debug)]
pub(crate) struct ProtoError {
    /// `(message, field)` pairs, innermost first.
    stack: Vec<(&'static str, &'static str)>,
    description: String,
}

impl ProtoError {
    fn at(mut self, message: &'static str, field: &'static str) -> ProtoError {
        self.stack.push((message, field));
        self
    }
}

impl From<DecodeError> for ProtoError {
    fn from(e: DecodeError) -> ProtoError {
        // prost's errors from its wire-level functions carry no stack yet, so their
        // text is the prefix and the description.
        let text = e.to_string();
        let description = match text.strip_prefix(PREFIX) {
            Some(d) => d.to_owned(),
            None => text,
        };
        ProtoError {
            stack: Vec::new(),
            description,
        }
    }
}

const PREFIX: &str = "failed to decode Protobuf message: ";

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for &(message, field) in &self.stack {
            write!(f, "{message}.{field}: ")?;
        }
        f.write_str(&self.description)
    }
}

type Result<T> = std::result::Result<T, ProtoError>;

/// Why [`walk`] stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    Malformed(ProtoError),
    /// The messages read so far cost more than the budget as prost would decode them
    /// (see `proto_size`): the body is refused by the decoded size limit.
    OverBudget,
}

/// The struct bytes prost would allocate for the messages read so far, counted as
/// `proto_size::struct_bytes` counts them (an element as its field's header is read),
/// so that both reach the budget at the same message of a well-formed body.
struct Cost {
    bytes: usize,
    budget: usize,
}

impl Cost {
    fn add(&mut self, bytes: usize) -> std::result::Result<(), WalkError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.budget {
            return Err(WalkError::OverBudget);
        }
        Ok(())
    }
}

impl From<ProtoError> for WalkError {
    fn from(e: ProtoError) -> WalkError {
        WalkError::Malformed(e)
    }
}

impl From<DecodeError> for WalkError {
    fn from(e: DecodeError) -> WalkError {
        WalkError::Malformed(e.into())
    }
}

/// One `TimeSeries`: its labels and samples, as ranges of the walk's flat lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireSeries {
    pub(crate) labels: Range<usize>,
    pub(crate) samples: Range<usize>,
}

/// Every `TimeSeries` of a request, labels borrowed from its bytes.
#[derive(Debug, Default)]
pub(crate) struct WireRequest<'a> {
    pub(crate) series: Vec<WireSeries>,
    /// `(name, value)` of every label, series after series, in wire order.
    pub(crate) labels: Vec<(&'a str, &'a str)>,
    pub(crate) samples: Vec<model::Sample>,
}

/// Reads `buf` as a `WriteRequest`. Metadata is checked as prost checks it, and
/// dropped; unknown fields (native histograms among them) are skipped. Stops with
/// [`WalkError::OverBudget`] once the messages read would cost prost more than
/// `budget` bytes of structs; what it holds itself costs less than that.
pub(crate) fn walk(
    mut buf: &[u8],
    budget: usize,
) -> std::result::Result<WireRequest<'_>, WalkError> {
    let mut out = WireRequest::default();
    let mut cost = Cost { bytes: 0, budget };
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            1 => {
                let body =
                    message(wire_type, &mut buf).map_err(|e| e.at("WriteRequest", "timeseries"))?;
                cost.add(size_of::<TimeSeries>())?;
                time_series(body, &mut out, &mut cost).map_err(|e| match e {
                    WalkError::Malformed(e) => {
                        WalkError::Malformed(e.at("WriteRequest", "timeseries"))
                    }
                    over => over,
                })?;
            }
            3 => {
                let body =
                    message(wire_type, &mut buf).map_err(|e| e.at("WriteRequest", "metadata"))?;
                cost.add(size_of::<MetricMetadata>())?;
                metadata(body).map_err(|e| e.at("WriteRequest", "metadata"))?;
            }
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(out)
}

/// The body of a length-delimited field, `buf` moved past it.
fn length_delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = decode_varint(buf)?;
    let split = usize::try_from(len)
        .ok()
        .and_then(|len| buf.split_at_checked(len));
    let Some((body, rest)) = split else {
        return Err(ProtoError {
            stack: Vec::new(),
            description: "buffer underflow".into(),
        });
    };
    *buf = rest;
    Ok(body)
}

/// An embedded message's bytes, after checking its wire type.
fn message<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    check_wire_type(WireType::LengthDelimited, wire_type)?;
    length_delimited(buf)
}

/// A string field's value: UTF-8, borrowed.
fn string<'a>(wire_type: WireType, buf: &mut &'a [u8]) -> Result<&'a str> {
    check_wire_type(WireType::LengthDelimited, wire_type)?;
    let bytes = length_delimited(buf)?;
    std::str::from_utf8(bytes).map_err(|_| ProtoError {
        stack: Vec::new(),
        description: "invalid string value: data is not UTF-8 encoded".into(),
    })
}

fn time_series<'a>(
    mut buf: &'a [u8],
    out: &mut WireRequest<'a>,
    cost: &mut Cost,
) -> std::result::Result<(), WalkError> {
    let (labels_start, samples_start) = (out.labels.len(), out.samples.len());
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            1 => {
                let body =
                    message(wire_type, &mut buf).map_err(|e| e.at("TimeSeries", "labels"))?;
                cost.add(size_of::<Label>())?;
                out.labels
                    .push(label(body).map_err(|e| e.at("TimeSeries", "labels"))?);
            }
            2 => {
                let body =
                    message(wire_type, &mut buf).map_err(|e| e.at("TimeSeries", "samples"))?;
                cost.add(size_of::<Sample>())?;
                out.samples
                    .push(sample(body).map_err(|e| e.at("TimeSeries", "samples"))?);
            }
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
        }
    }
    out.series.push(WireSeries {
        labels: labels_start..out.labels.len(),
        samples: samples_start..out.samples.len(),
    });
    Ok(())
}

fn label(mut buf: &[u8]) -> Result<(&str, &str)> {
    let (mut name, mut value) = ("", "");
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            1 => name = string(wire_type, &mut buf).map_err(|e| e.at("Label", "name"))?,
            2 => value = string(wire_type, &mut buf).map_err(|e| e.at("Label", "value"))?,
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok((name, value))
}

fn sample(mut buf: &[u8]) -> Result<model::Sample> {
    let mut s = model::Sample::new(0, 0.0);
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            1 => s.value = double(wire_type, &mut buf).map_err(|e| e.at("Sample", "value"))?,
            2 => {
                s.timestamp_ms =
                    int64(wire_type, &mut buf).map_err(|e| e.at("Sample", "timestamp"))?;
            }
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(s)
}

fn double(wire_type: WireType, buf: &mut &[u8]) -> Result<f64> {
    check_wire_type(WireType::SixtyFourBit, wire_type)?;
    let Some((bytes, rest)) = buf.split_first_chunk::<8>() else {
        return Err(ProtoError {
            stack: Vec::new(),
            description: "buffer underflow".into(),
        });
    };
    *buf = rest;
    Ok(f64::from_le_bytes(*bytes))
}

fn int64(wire_type: WireType, buf: &mut &[u8]) -> Result<i64> {
    check_wire_type(WireType::Varint, wire_type)?;
    Ok(decode_varint(buf)? as i64)
}

fn int32(wire_type: WireType, buf: &mut &[u8]) -> Result<()> {
    check_wire_type(WireType::Varint, wire_type)?;
    decode_varint(buf)?;
    Ok(())
}

/// `MetricMetadata`: checked, not kept.
fn metadata(mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match tag {
            1 => int32(wire_type, &mut buf).map_err(|e| e.at("MetricMetadata", "type"))?,
            2 => {
                string(wire_type, &mut buf)
                    .map_err(|e| e.at("MetricMetadata", "metric_family_name"))?;
            }
            4 => {
                string(wire_type, &mut buf).map_err(|e| e.at("MetricMetadata", "help"))?;
            }
            5 => {
                string(wire_type, &mut buf).map_err(|e| e.at("MetricMetadata", "unit"))?;
            }
            _ => skip_field(wire_type, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(())
}
