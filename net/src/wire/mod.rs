//! Wire formats: decoders for every ingest format and encoders for read-back.
//!
//! Every decoder takes untrusted bytes and returns either a whole batch of validated
//! [`SeriesSamples`] or a [`WireError`]; nothing is half-accepted. Limits are checked
//! here, at the network boundary, and nowhere else.

pub mod exposition;
pub mod gzip;
pub mod json_lines;
pub mod line_protocol;
mod proto_size;
pub mod remote_read;
pub mod remote_write;
mod write_request;

use std::collections::HashMap;
use std::fmt;

use tsdb_engine::model::{Label, Labels, Sample, SeriesSamples};

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
    Limit {
        limit: &'static str,
        message: String,
    },
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
    check_label_limits(
        labels.len(),
        labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        limits,
    )?;
    Labels::new(labels).map_err(|e| WireError::BadData(e.to_string()))
}

/// The limits [`build_labels`] checks, over `count` labels as they came (remote_write
/// checks them on labels borrowed from the body).
pub(crate) fn check_label_limits<'a>(
    count: usize,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    limits: &IngestLimits,
) -> Result<(), WireError> {
    if count > limits.labels_per_series_max {
        return Err(WireError::Limit {
            limit: "labels_per_series",
            message: format!(
                "series has {count} labels, more than the limit of {} (limits.max_labels_per_series)",
                limits.labels_per_series_max
            ),
        });
    }
    for (name, value) in labels {
        if name.len() > limits.label_name_bytes_max {
            return Err(WireError::Limit {
                limit: "label_name_length",
                message: format!(
                    "label name {:?}… is {} bytes, more than the limit of {} (limits.max_label_name_length)",
                    name.chars().take(32).collect::<String>(),
                    name.len(),
                    limits.label_name_bytes_max
                ),
            });
        }
        if value.len() > limits.label_value_bytes_max {
            return Err(WireError::Limit {
                limit: "label_value_length",
                message: format!(
                    "value of label {name:?} is {} bytes, more than the limit of {} (limits.max_label_value_length)",
                    value.len(),
                    limits.label_value_bytes_max
                ),
            });
        }
    }
    Ok(())
}

/// Checks the number of series in a decoded request.
pub fn check_series_count(batch: &[SeriesSamples], limits: &IngestLimits) -> Result<(), WireError> {
    check_series_total(batch.len(), limits)
}

/// [`check_series_count`] of a request holding `series` series so far.
pub(crate) fn check_series_total(series: usize, limits: &IngestLimits) -> Result<(), WireError> {
    if series > limits.series_per_request_max {
        return Err(WireError::Limit {
            limit: "series_per_request",
            message: format!(
                "request has {series} series, more than the limit of {} (limits.max_series_per_request)",
                limits.series_per_request_max
            ),
        });
    }
    Ok(())
}

/// The lines of a text body, numbered from 1, without their `\n` or a trailing `\r`.
/// Shared by the text formats so that every error names lines the same way.
pub(crate) fn numbered_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|&b| b == b'\n').enumerate().map(|(i, line)| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (i + 1, line)
    })
}

/// Prefixes an error with the line it came from, keeping its class (a limit stays a
/// limit, so it is still counted as one).
pub(crate) fn at_line(line_no: usize, err: WireError) -> WireError {
    match err {
        WireError::BadData(m) => WireError::BadData(format!("line {line_no}: {m}")),
        WireError::Limit { limit, message } => WireError::Limit {
            limit,
            message: format!("line {line_no}: {message}"),
        },
    }
}

/// Collects the samples of one request, merging samples of the same series into one
/// [`SeriesSamples`] so that the engine looks each series up once per request. The
/// series limit is checked as series are added, so a huge request fails early.
///
/// The memory the batch holds (each new series' labels, kept twice, and its samples)
/// is charged against `decoded_body_bytes_max` too: one line-protocol line fans out
/// into a series per field, each repeating the measurement and every tag, so without a
/// budget a 1 MiB body of one long tag set and many fields decodes into gigabytes.
/// Bodies as clients send them hold a few times their size.
#[derive(Default)]
pub(crate) struct BatchBuilder {
    index: HashMap<Labels, usize>,
    series: Vec<SeriesSamples>,
    /// Bytes held: each series' labels in `index` and `series`, and the samples.
    decoded_bytes: usize,
}

impl BatchBuilder {
    pub(crate) fn push(
        &mut self,
        labels: Labels,
        sample: Sample,
        limits: &IngestLimits,
    ) -> Result<(), WireError> {
        if let Some(series) = self
            .index
            .get(&labels)
            .and_then(|&i| self.series.get_mut(i))
        {
            series.samples.push(sample);
            return self.charge(size_of::<Sample>(), limits);
        }
        self.charge(2 * labels.mem_bytes() + size_of::<Sample>(), limits)?;
        self.index.insert(labels.clone(), self.series.len());
        self.series.push(SeriesSamples {
            labels,
            samples: vec![sample],
        });
        check_series_count(&self.series, limits)
    }

    /// Adds several samples of one series at once (one lookup instead of one per sample).
    pub(crate) fn extend(
        &mut self,
        labels: Labels,
        samples: Vec<Sample>,
        limits: &IngestLimits,
    ) -> Result<(), WireError> {
        let samples_bytes = samples.len() * size_of::<Sample>();
        if let Some(series) = self
            .index
            .get(&labels)
            .and_then(|&i| self.series.get_mut(i))
        {
            series.samples.extend(samples);
            return self.charge(samples_bytes, limits);
        }
        self.charge(2 * labels.mem_bytes() + samples_bytes, limits)?;
        self.index.insert(labels.clone(), self.series.len());
        self.series.push(SeriesSamples { labels, samples });
        check_series_count(&self.series, limits)
    }

    fn charge(&mut self, bytes: usize, limits: &IngestLimits) -> Result<(), WireError> {
        self.decoded_bytes = self.decoded_bytes.saturating_add(bytes);
        if self.decoded_bytes > limits.decoded_body_bytes_max {
            return Err(WireError::Limit {
                limit: "decoded_body_size",
                message: format!(
                    "request decodes to series and samples taking more than {} bytes, the limit (limits.max_decoded_body_size)",
                    limits.decoded_body_bytes_max
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<SeriesSamples> {
        self.series
    }
}

/// A seeded generator of malformed inputs for the parsers' robustness tests: each
/// parser must survive mutated copies of valid examples without panicking.
#[cfg(test)]
pub(crate) mod fuzz {
    /// xorshift64*: tiny, deterministic, good enough to pick mutations.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.max(1))
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A number in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that mean something to at least one text format.
    const INTERESTING: &[u8] = b"\\\",= \n\r\t{}#:.-+eEiuInN0123456789x_\xff\xc3\x00";

    /// A mutated copy of one of `seeds` (or, sometimes, random bytes).
    pub(crate) fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
        let mut out = match seeds.get(rng.below(seeds.len())) {
            Some(s) if rng.below(16) != 0 => s.to_vec(),
            _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        };
        for _ in 0..=rng.below(4) {
            let at = rng.below(out.len() + 1);
            let byte = match rng.below(2) {
                0 => rng.next() as u8,
                _ => INTERESTING
                    .get(rng.below(INTERESTING.len()))
                    .copied()
                    .unwrap_or(0),
            };
            match rng.below(6) {
                0 => out.insert(at, byte),
                1 if at < out.len() => {
                    out.remove(at);
                }
                2 => out.truncate(at),
                3 => {
                    // Duplicate a span: grows repeated structure (labels, fields).
                    let end = (at + rng.below(32)).min(out.len());
                    let span: Vec<u8> = out.get(at..end).unwrap_or_default().to_vec();
                    out.splice(at..at, span);
                }
                _ => {
                    if let Some(b) = out.get_mut(at) {
                        *b = byte;
                    }
                }
            }
        }
        out
    }
}
