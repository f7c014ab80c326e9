//! [`IngestBatch`]: a request's series as the write path carries them, label names and
//! values borrowed from one shared buffer (the decoded request body) instead of a
//! `String` each.
//!
//! A remote_write request of 2,000 series with ten labels each used to become 40,000
//! `String`s, built on the core that decoded it and freed on the core that owns the
//! series, only to be compared with labels the head already holds. Here the decoder
//! hands the body's bytes over once; every series is a run of spans into it, checked
//! as [`Labels::new`] checks a label set, and hashed as [`Labels::stable_hash`] hashes
//! it. The mesh shares the batch between the shards (an `Arc` and a list of series
//! indices each), and a shard builds an owned [`Labels`] only for a series its head
//! does not have yet.
#![deny(clippy::indexing_slicing)]

use std::ops::Range;
use std::sync::Arc;

use crate::model::{
    Label, Labels, LabelsError, METRIC_NAME, Sample, SeriesSamples, is_valid_label_name,
    is_valid_metric_name, stable_hash_of,
};

/// One label of a series: byte ranges of its name and value in the batch's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LabelSpan {
    name: (u32, u32),
    value: (u32, u32),
}

/// One series of a batch: its labels (sorted, valid) and samples, by position.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SeriesEntry {
    labels: Range<u32>,
    samples: Range<u32>,
    hash: u64,
}

/// Validated series and their samples, label bytes shared. Built by [`IngestBatchBuilder`]
/// (from borrowed labels) or [`IngestBatch::from_series`] (from owned ones).
#[derive(Clone, Debug, Default)]
pub struct IngestBatch {
    bytes: Arc<Vec<u8>>,
    labels: Vec<LabelSpan>,
    series: Vec<SeriesEntry>,
    samples: Vec<Sample>,
}

/// One series of an [`IngestBatch`], borrowed.
#[derive(Clone, Copy, Debug)]
pub struct SeriesView<'a> {
    bytes: &'a [u8],
    labels: &'a [LabelSpan],
    /// The series' samples, in the order they came.
    pub samples: &'a [Sample],
    /// [`Labels::stable_hash`] of the series' labels.
    pub hash: u64,
}

fn span(bytes: &[u8], (start, len): (u32, u32)) -> &[u8] {
    bytes
        .get(start as usize..start as usize + len as usize)
        .unwrap_or_default()
}

impl<'a> SeriesView<'a> {
    /// Name and value bytes of each label, sorted by name.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone + 'a {
        let bytes = self.bytes;
        self.labels
            .iter()
            .map(move |l| (span(bytes, l.name), span(bytes, l.value)))
    }

    /// Whether `labels` is this label set.
    pub fn labels_eq(&self, labels: &Labels) -> bool {
        labels.len() == self.labels.len()
            && labels
                .iter()
                .zip(self.labels())
                .all(|(l, (n, v))| l.name.as_bytes() == n && l.value.as_bytes() == v)
    }

    /// The label set, owned: for a series the head does not have yet.
    pub fn to_labels(&self) -> Labels {
        let owned = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let labels = self
            .labels()
            .map(|(n, v)| Label {
                name: owned(n).into(),
                value: owned(v).into(),
            })
            .collect();
        match Labels::from_sorted(labels) {
            Ok(l) => l,
            Err(e) => panic!("BUG: an ingest batch holds a label set that is not valid: {e}"),
        }
    }
}

impl IngestBatch {
    /// A batch of owned series (the text formats' decoders build those), copying their
    /// label bytes into one buffer. The labels were validated when built.
    pub fn from_series(batch: Vec<SeriesSamples>) -> IngestBatch {
        let label_bytes = batch
            .iter()
            .flat_map(|s| s.labels.iter())
            .map(|l| l.name.len() + l.value.len())
            .sum();
        let mut bytes = Vec::with_capacity(label_bytes);
        let mut out = IngestBatch {
            labels: Vec::with_capacity(batch.iter().map(|s| s.labels.len()).sum()),
            series: Vec::with_capacity(batch.len()),
            samples: Vec::with_capacity(batch.iter().map(|s| s.samples.len()).sum()),
            ..IngestBatch::default()
        };
        fn push(bytes: &mut Vec<u8>, s: &str) -> (u32, u32) {
            let start = offset(bytes.len());
            bytes.extend_from_slice(s.as_bytes());
            (start, offset(s.len()))
        }
        for s in batch {
            let labels_start = offset(out.labels.len());
            for l in s.labels.iter() {
                let name = push(&mut bytes, &l.name);
                let value = push(&mut bytes, &l.value);
                out.labels.push(LabelSpan { name, value });
            }
            let samples_start = offset(out.samples.len());
            out.samples.extend_from_slice(&s.samples);
            out.series.push(SeriesEntry {
                labels: labels_start..offset(out.labels.len()),
                samples: samples_start..offset(out.samples.len()),
                hash: s.labels.stable_hash(),
            });
        }
        out.bytes = Arc::new(bytes);
        out
    }

    /// Series in the batch.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Samples in the batch.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// Series `i`, if there is one.
    pub fn series(&self, i: usize) -> Option<SeriesView<'_>> {
        let e = self.series.get(i)?;
        Some(SeriesView {
            bytes: &self.bytes,
            labels: self
                .labels
                .get(e.labels.start as usize..e.labels.end as usize)
                .unwrap_or_default(),
            samples: self
                .samples
                .get(e.samples.start as usize..e.samples.end as usize)
                .unwrap_or_default(),
            hash: e.hash,
        })
    }

    /// Every series, in order.
    pub fn iter(&self) -> impl Iterator<Item = SeriesView<'_>> {
        (0..self.series.len()).filter_map(|i| self.series(i))
    }

    /// The batch as owned series (tests and tools compare with those).
    pub fn to_series(&self) -> Vec<SeriesSamples> {
        self.iter()
            .map(|s| SeriesSamples {
                labels: s.to_labels(),
                samples: s.samples.to_vec(),
            })
            .collect()
    }
}

/// An offset or length within a batch. A batch's buffer is a request body, bounded far
/// below 4 GiB by the decoded body size limit; past that is a bug.
fn offset(n: usize) -> u32 {
    match u32::try_from(n) {
        Ok(n) => n,
        Err(_) => panic!("BUG: ingest batch offset {n} past 4 GiB"),
    }
}

/// Builds an [`IngestBatch`] over a buffer the caller borrows label names and values
/// from (a decoded request body).
#[derive(Debug)]
pub struct IngestBatchBuilder {
    batch: IngestBatch,
    /// Where the buffer starts and ends in memory, to turn a borrowed `&str` into a span.
    base: usize,
    end: usize,
    scratch: Vec<LabelSpan>,
}

impl IngestBatchBuilder {
    /// A builder over `bytes`; every label pushed must borrow from it.
    pub fn new(bytes: Arc<Vec<u8>>) -> IngestBatchBuilder {
        let base = bytes.as_ptr() as usize;
        let end = base + bytes.len();
        IngestBatchBuilder {
            batch: IngestBatch {
                bytes,
                ..IngestBatch::default()
            },
            base,
            end,
            scratch: Vec::new(),
        }
    }

    /// Reserves room for about `series` more series.
    pub fn reserve(&mut self, series: usize) {
        self.batch.series.reserve(series);
    }

    /// Series pushed so far.
    pub fn len(&self) -> usize {
        self.batch.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.series.is_empty()
    }

    fn span_of(&self, s: &str) -> (u32, u32) {
        let start = s.as_ptr() as usize;
        if start < self.base || start + s.len() > self.end {
            panic!("BUG: a label pushed to an ingest batch does not borrow from its buffer");
        }
        (offset(start - self.base), offset(s.len()))
    }

    /// Adds a series: its labels as they came (any order, empty values allowed) are
    /// normalised and checked exactly as [`Labels::new`] does, with the same errors.
    /// `labels` is the caller's scratch list, reused from series to series: it is left
    /// normalised.
    pub fn push_series(
        &mut self,
        labels: &mut Vec<(&str, &str)>,
        samples: impl IntoIterator<Item = Sample>,
    ) -> Result<(), LabelsError> {
        labels.retain(|(_, v)| !v.is_empty());
        let sorted = labels;
        if sorted.is_empty() {
            return Err(LabelsError::Empty);
        }
        // Prometheus sends labels sorted: then one pass proves them sorted and unique.
        let strictly_sorted = sorted
            .windows(2)
            .all(|pair| matches!(pair, [a, b] if a.0 < b.0));
        if !strictly_sorted {
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for pair in sorted.windows(2) {
                if let [a, b] = pair
                    && a.0 == b.0
                {
                    return Err(LabelsError::DuplicateName(a.0.to_owned()));
                }
            }
        }
        for &(name, value) in sorted.iter() {
            if name == METRIC_NAME {
                if !is_valid_metric_name(value) {
                    return Err(LabelsError::InvalidMetricName(value.to_owned()));
                }
            } else if !is_valid_label_name(name) {
                return Err(LabelsError::InvalidName(name.to_owned()));
            }
        }
        let hash = stable_hash_of(sorted.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(sorted.iter().map(|&(n, v)| LabelSpan {
            name: self.span_of(n),
            value: self.span_of(v),
        }));
        let b = &mut self.batch;
        let labels_start = offset(b.labels.len());
        b.labels.extend_from_slice(&scratch);
        self.scratch = scratch;
        let samples_start = offset(b.samples.len());
        b.samples.extend(samples);
        b.series.push(SeriesEntry {
            labels: labels_start..offset(b.labels.len()),
            samples: samples_start..offset(b.samples.len()),
            hash,
        });
        Ok(())
    }

    pub fn finish(self) -> IngestBatch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn owned(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|&(n, v)| Label::new(n, v)).collect()).unwrap()
    }

    #[test]
    fn borrowed_series_equal_their_owned_labels_and_hash() {
        let body = Arc::new(b"jobapi__name__upenvinstancex".to_vec());
        let text = std::str::from_utf8(&body).unwrap();
        let (job, api, name, up, env, inst, x) = (
            &text[0..3],
            &text[3..6],
            &text[6..14],
            &text[14..16],
            &text[16..19],
            &text[19..27],
            &text[27..28],
        );
        let mut b = IngestBatchBuilder::new(Arc::clone(&body));
        b.push_series(
            &mut vec![(job, api), (name, up), (env, ""), (inst, x)],
            [Sample::new(1, 2.0)],
        )
        .unwrap();
        let batch = b.finish();
        let want = owned(&[("job", "api"), ("__name__", "up"), ("instance", "x")]);
        let s = batch.series(0).unwrap();
        assert_eq!(s.hash, want.stable_hash());
        assert!(s.labels_eq(&want));
        assert!(!s.labels_eq(&owned(&[("job", "api"), ("__name__", "up")])));
        assert_eq!(s.to_labels(), want);
        assert_eq!(s.samples, [Sample::new(1, 2.0)]);
    }

    #[test]
    fn refuses_what_labels_new_refuses() {
        let body = Arc::new(b"__name__a-bjob1bad".to_vec());
        let t = std::str::from_utf8(&body).unwrap();
        let (name, bad_metric, job, bad_name) = (&t[0..8], &t[8..11], &t[11..14], &t[14..18]);
        let mut b = IngestBatchBuilder::new(Arc::clone(&body));
        let cases: [&[(&str, &str)]; 4] = [
            &[(name, bad_metric)],
            &[(bad_name, job)],
            &[(job, bad_name), (job, job)],
            &[(job, "")],
        ];
        for labels in cases {
            let want = Labels::new(labels.iter().map(|&(n, v)| Label::new(n, v)).collect());
            let got = b.push_series(&mut labels.to_vec(), [Sample::new(1, 1.0)]);
            assert_eq!(got.unwrap_err(), want.unwrap_err(), "{labels:?}");
        }
        assert!(b.is_empty());
    }

    #[test]
    fn from_series_keeps_every_series() {
        let series = vec![
            SeriesSamples {
                labels: owned(&[("__name__", "a"), ("x", "1")]),
                samples: vec![Sample::new(1, 1.0), Sample::new(2, 2.0)],
            },
            SeriesSamples {
                labels: owned(&[("__name__", "b")]),
                samples: vec![Sample::new(3, 3.0)],
            },
        ];
        let batch = IngestBatch::from_series(series.clone());
        assert_eq!((batch.len(), batch.num_samples()), (2, 3));
        assert_eq!(batch.to_series(), series);
        for (view, s) in batch.iter().zip(&series) {
            assert_eq!(view.hash, s.labels.stable_hash());
        }
    }
}
