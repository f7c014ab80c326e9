//! Wire formats: decoders for every ingest format and encoders for read-back.
//!
//! Every decoder takes untrusted bytes and returns either a whole batch of validated
//! [`SeriesSamples`] or a [`WireError`]; nothing is half-accepted. Limits are checked
//! here, at the network boundary, and nowhere else.

pub mod exposition;
pub mod json_lines;
pub mod line_protocol;
pub mod remote_write;

use std::fmt;

use tsdb_engine::model::{Label, Labels, SeriesSamples};

/// Per-request bounds on ingest, from configuration.
#[derive(Clone, Debug)]
pub struct IngestLimits {
    /// Series one request may carry.
    pub series_per_request_max: usize,
    /// Labels one series may have (including `__name__`).
    pub labels_per_series_max: usize,
    /// Bytes of one label name.
    pub label_name_bytes_max: usize,
    /// Bytes of one label value.
    pub label_value_bytes_max: usize,
    /// Bytes a compressed body may decompress to.
    pub decoded_body_bytes_max: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            series_per_request_max: 1_000_000,
            labels_per_series_max: 64,
            label_name_bytes_max: 256,
            label_value_bytes_max: 16 * 1024,
            decoded_body_bytes_max: 256 << 20,
        }
    }
}

/// Why a payload was refused. Nothing of it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The payload does not parse; the message says where and why.
    BadData(String),
    /// A configured limit was hit; `limit` is its name as counted in
    /// `tsdb_limit_hits_total{limit=…}`.
    Limit { limit: &'static str, message: String },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadData(m) => f.write_str(m),
            WireError::Limit { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for WireError {}

/// Checks a raw label list against the limits and builds a validated [`Labels`].
/// Every decoder calls this for every series, so the rules are the same for all formats.
pub fn build_labels(labels: Vec<Label>, limits: &IngestLimits) -> Result<Labels, WireError> {
    if labels.len() > limits.labels_per_series_max {
        return Err(WireError::Limit {
            limit: "labels_per_series",
            message: format!(
                "series has {} labels, more than the limit of {} (limits.max_labels_per_series)",
                labels.len(),
                limits.labels_per_series_max
            ),
        });
    }
    for l in &labels {
        if l.name.len() > limits.label_name_bytes_max {
            return Err(WireError::Limit {
                limit: "label_name_length",
                message: format!(
                    "label name {:?}… is {} bytes, more than the limit of {} (limits.max_label_name_length)",
                    l.name.chars().take(32).collect::<String>(),
                    l.name.len(),
                    limits.label_name_bytes_max
                ),
            });
        }
        if l.value.len() > limits.label_value_bytes_max {
            return Err(WireError::Limit {
                limit: "label_value_length",
                message: format!(
                    "value of label {:?} is {} bytes, more than the limit of {} (limits.max_label_value_length)",
                    l.name,
                    l.value.len(),
                    limits.label_value_bytes_max
                ),
            });
        }
    }
    Labels::new(labels).map_err(|e| WireError::BadData(e.to_string()))
}

/// Checks the number of series in a decoded request.
pub fn check_series_count(
    batch: &[SeriesSamples],
    limits: &IngestLimits,
) -> Result<(), WireError> {
    if batch.len() > limits.series_per_request_max {
        return Err(WireError::Limit {
            limit: "series_per_request",
            message: format!(
                "request has {} series, more than the limit of {} (limits.max_series_per_request)",
                batch.len(),
                limits.series_per_request_max
            ),
        });
    }
    Ok(())
}
