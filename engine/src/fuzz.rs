//! The fuzz entry points of the engine: one function over `&[u8]` per parser or codec
//! of on-disk bytes (WAL records and segments, XOR chunks, the block index,
//! `meta.json`).
//!
//! Each must return for any input without panicking, hanging or allocating more than
//! the input can justify; where the format has an encoder, whatever decodes is encoded
//! again and must read back the same (values bit for bit). A failed check panics with
//! what differed. Two callers drive them: the seeded loop of `engine/tests/fuzz.rs`
//! under `cargo test`, and the cargo-fuzz targets of `fuzz/` for long runs.
//!
//! Checksums guard the WAL and the index, so most mutated bytes would stop at the
//! checksum; the harnesses also feed the bytes past it (a record body decoded without
//! its frame, an index resealed with a fresh length and checksum) so that the
//! structural checks behind it are reached too.
#![deny(clippy::indexing_slicing)]

use std::path::Path;

use crate::block::index::{self, Index, LabelName, LabelValue};
use crate::block::meta::BlockMeta;
use crate::chunk::{self, CHUNK_SAMPLES_LIMIT, XorAppender};
use crate::limits::WAL_RECORD_BYTES_MAX;
use crate::model::Sample;
use crate::wal::record::{self, Framed, Record};
use crate::wal::segment;

/// WAL record framing and payloads: `data` read as a run of framed records (as a
/// segment holds them after its header), and as one record body without its frame.
pub fn wal_record(data: &[u8]) {
    let mut rest = data;
    while let Framed::Record { body, bytes } = record::read_frame(rest, WAL_RECORD_BYTES_MAX) {
        assert!(
            bytes > record::HEADER_BYTES && bytes <= rest.len(),
            "frame of {bytes} bytes"
        );
        if let Ok(rec) = record::decode(body) {
            check_record_round_trip(body, &rec);
        }
        rest = rest.get(bytes..).unwrap_or_default();
    }
    if let Ok(rec) = record::decode(data) {
        check_record_round_trip(data, &rec);
    }
}

/// Encodes `rec` again: the body must come back byte for byte (the format has one
/// encoding per record) and decode to the same record, sample values bit for bit.
fn check_record_round_trip(body: &[u8], rec: &Record) {
    let mut framed = Vec::new();
    match rec {
        Record::Series(series) => {
            record::encode_series(&mut framed, series.iter().map(|(r, l)| (*r, l)));
        }
        Record::Samples(samples) => record::encode_samples(&mut framed, samples),
    }
    let Framed::Record { body: again, bytes } = record::read_frame(&framed, usize::MAX) else {
        panic!("a re-encoded record does not frame: {rec:?}");
    };
    assert_eq!(bytes, framed.len(), "re-encoded frame length");
    assert_eq!(again, body, "re-encoding changed the record's bytes");
    match (record::decode(again), rec) {
        (Ok(Record::Samples(got)), Record::Samples(want)) => {
            assert_eq!(got.len(), want.len());
            for ((gr, g), (wr, w)) in got.iter().zip(want) {
                assert_eq!((gr, g.timestamp_ms), (wr, w.timestamp_ms));
                assert_eq!(g.value.to_bits(), w.value.to_bits(), "value bits");
            }
        }
        (Ok(got @ Record::Series(_)), want) => assert_eq!(&got, want),
        (got, want) => panic!("re-encoded {want:?} decodes as {got:?}"),
    }
}

/// A WAL segment: its header, then records until the end or the first damage, as
/// replay walks it. Every step must make progress and every verdict must be true of
/// the bytes it is given for.
pub fn wal_segment(data: &[u8]) {
    let Ok(shard) = segment::parse_header(data) else {
        return;
    };
    assert_eq!(
        data.get(..segment::HEADER_BYTES),
        Some(segment::header(shard).as_slice()),
        "an accepted header is not the one the writer writes"
    );
    let mut offset = segment::HEADER_BYTES;
    loop {
        let rest = data.get(offset..).unwrap_or_default();
        match record::read_frame(rest, WAL_RECORD_BYTES_MAX) {
            Framed::End => {
                assert!(rest.is_empty());
                return;
            }
            Framed::Zeros => {
                assert!(!rest.is_empty() && rest.iter().all(|&b| b == 0));
                return;
            }
            Framed::Truncated | Framed::Corrupt(_) => return,
            Framed::Record { body, bytes } => {
                assert!(bytes > record::HEADER_BYTES && bytes <= rest.len());
                if let Ok(rec) = record::decode(body) {
                    check_record_round_trip(body, &rec);
                } else {
                    return;
                }
                offset += bytes;
            }
        }
    }
}

/// XOR chunk decoding of arbitrary bytes. Whatever decodes must have increasing
/// timestamps and as many samples as the header says, and must encode to a chunk that
/// decodes to the same samples bit for bit. The iterator must agree with [`chunk::decode`]
/// and keep within its size hint.
pub fn chunk_decode(data: &[u8]) {
    let decoded = chunk::decode(data);
    let it = chunk::iter(data);
    let (_, upper) = it.size_hint();
    let mut via_iter = Vec::new();
    let mut iter_err = None;
    for s in it {
        match s {
            Ok(s) => via_iter.push(s),
            Err(e) => iter_err = Some(e),
        }
    }
    let yielded = via_iter.len() + usize::from(iter_err.is_some());
    assert!(
        upper.is_none_or(|u| yielded <= u),
        "iterator yielded {yielded} items over its size hint {upper:?}"
    );
    let samples = match (decoded, iter_err) {
        (Ok(samples), None) => samples,
        (Err(a), Some(b)) => {
            assert_eq!(a, b, "decode and iter fail differently");
            return;
        }
        (d, i) => panic!("decode gave {d:?}, the iterator's error {i:?}"),
    };
    assert_same_samples(&samples, &via_iter, "decode against iter");
    let header = data
        .get(..2)
        .map(|h| h.iter().fold(0usize, |a, b| a << 8 | usize::from(*b)));
    assert_eq!(header, Some(samples.len()), "header count");
    assert!(
        samples
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.timestamp_ms < b.timestamp_ms)),
        "decoded timestamps do not increase"
    );
    let again = chunk::encode(&samples);
    match chunk::decode(&again) {
        Ok(back) => assert_same_samples(&back, &samples, "re-encoded chunk"),
        Err(e) => panic!("a re-encoded chunk does not decode: {e}"),
    }
}

/// Packed chunk decoding of arbitrary bytes: whatever decodes has as many samples as
/// its header says, increasing timestamps, and encodes (packed or XOR, whichever is
/// smaller) to a chunk that decodes to the same samples bit for bit.
pub fn packed_decode(data: &[u8]) {
    let Ok(samples) = chunk::packed::decode(data) else {
        return;
    };
    let header = data
        .get(..2)
        .map(|h| h.iter().fold(0usize, |a, b| a << 8 | usize::from(*b)));
    assert_eq!(header, Some(samples.len()), "packed header count");
    assert!(
        samples
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.timestamp_ms < b.timestamp_ms)),
        "packed timestamps do not increase"
    );
    check_smallest(&samples);
}

/// The block writer's choice of encoding for `samples` decodes back exactly, and a
/// packed chunk is only chosen when it is smaller.
fn check_smallest(samples: &[Sample]) {
    let (encoding, bytes) = chunk::encode_smallest(samples);
    match chunk::decode_as(encoding, &bytes) {
        Ok(back) => assert_same_samples(&back, samples, "smallest encoding"),
        Err(e) => panic!("a {} chunk does not decode: {e}", encoding.name()),
    }
    if let Some(p) = chunk::packed::encode(samples) {
        match chunk::packed::decode(&p) {
            Ok(back) => assert_same_samples(&back, samples, "packed chunk"),
            Err(e) => panic!("a packed chunk does not decode: {e}"),
        }
        let xor = chunk::encode(samples).len();
        assert_eq!(
            encoding == chunk::Encoding::Packed,
            p.len() < xor,
            "chose {} with packed {} and xor {xor} bytes",
            encoding.name(),
            p.len()
        );
    }
}

/// XOR chunk encoding of samples derived from `data` (timestamps strictly increasing,
/// with steps from 1 ms to the whole i64 range; values repeated, nudged, XORed with
/// random bits or raw, NaN payloads included). The appender's bytes must decode to the
/// samples so far at every power-of-two count, and the finished chunk must equal
/// [`chunk::encode`]'s and decode back exactly.
pub fn chunk_round_trip(data: &[u8]) {
    let samples = samples_from(data);
    let mut app = XorAppender::new();
    for (i, s) in samples.iter().enumerate() {
        app.append(s.timestamp_ms, s.value);
        if (i + 1).is_power_of_two() {
            match chunk::decode(app.bytes()) {
                Ok(got) => {
                    assert_same_samples(&got, samples.get(..=i).unwrap_or_default(), "open chunk")
                }
                Err(e) => panic!("an open chunk of {} samples does not decode: {e}", i + 1),
            }
        }
    }
    assert_eq!(app.num_samples(), samples.len());
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        assert_eq!(
            (app.min_time(), app.max_time()),
            (first.timestamp_ms, last.timestamp_ms)
        );
    }
    let bytes = app.into_bytes();
    assert_eq!(bytes, chunk::encode(&samples), "appender and encode differ");
    match chunk::decode(&bytes) {
        Ok(got) => assert_same_samples(&got, &samples, "sealed chunk"),
        Err(e) => panic!("a chunk of {} samples does not decode: {e}", samples.len()),
    }
    if !samples.is_empty() {
        check_smallest(&samples);
        // The same timestamps with decimal values, which the packed encoding takes.
        let decimal: Vec<Sample> = samples
            .iter()
            .map(|s| Sample::new(s.timestamp_ms, (s.value.to_bits() % 100_000) as f64 / 100.0))
            .collect();
        check_smallest(&decimal);
    }
}

/// Reads samples out of fuzz bytes; runs out of bytes as zeros and stops there.
fn samples_from(data: &[u8]) -> Vec<Sample> {
    let mut src = Source(data);
    let mut out = Vec::new();
    let mut t = src.u64() as i64;
    let mut v = src.u64();
    let mut step = 1u64;
    while out.len() < CHUNK_SAMPLES_LIMIT {
        out.push(Sample::new(t, f64::from_bits(v)));
        let Some(op) = src.u8() else { break };
        step = match op & 3 {
            // The same step again: a zero delta-of-delta, the common case.
            0 => step,
            1 => 1 + u64::from(src.u8().unwrap_or(0)),
            2 => 1 + (src.u64() >> 40),
            _ => src.u64().max(1),
        };
        let Some(next) = t.checked_add_unsigned(step) else {
            break;
        };
        t = next;
        v = match (op >> 2) & 3 {
            0 => v,
            1 => v ^ (1 << (src.u8().unwrap_or(0) % 64)),
            2 => v ^ src.u64(),
            _ => src.u64(),
        };
    }
    out
}

/// Little-endian integers taken from the front of a byte slice.
struct Source<'a>(&'a [u8]);

impl Source<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for slot in &mut b {
            *slot = self.u8().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    }
}

fn assert_same_samples(got: &[Sample], want: &[Sample], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sample count");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.timestamp_ms == w.timestamp_ms && g.value.to_bits() == w.value.to_bits(),
            "{what}: got {g:?} ({:#x}), want {w:?} ({:#x})",
            g.value.to_bits(),
            w.value.to_bits()
        );
    }
}

/// A block's `index` file, against a small and a huge `chunks` file, and resealed
/// (header length and checksum recomputed) so that damage reaches the structure.
pub fn block_index(data: &[u8]) {
    index_case(data, data.len() as u64);
    index_case(data, 1 << 40);
    let mut sealed = data.to_vec();
    if reseal(&mut sealed) {
        index_case(&sealed, 1 << 40);
    }
}

/// Writes the file length into the header and a fresh checksum over the rest.
fn reseal(bytes: &mut [u8]) -> bool {
    let len = bytes.len();
    let Some(body_len) = len.checked_sub(4).filter(|&b| b >= 16) else {
        return false;
    };
    if let Some(field) = bytes.get_mut(8..16) {
        field.copy_from_slice(&(len as u64).to_le_bytes());
    }
    let crc = crc32c::crc32c(bytes.get(..body_len).unwrap_or_default());
    if let Some(field) = bytes.get_mut(body_len..) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    true
}

fn index_case(bytes: &[u8], chunks_len: u64) {
    let Ok(parsed) = index::parse(Path::new("index"), bytes, chunks_len) else {
        return;
    };
    check_index_invariants(&parsed, chunks_len);
    let again = index::encode(&parsed.series);
    let back = match index::parse(Path::new("index"), &again, chunks_len) {
        Ok(back) => back,
        Err(e) => panic!("a re-encoded index does not parse: {e}"),
    };
    assert_eq!(back.series, parsed.series, "series after re-encoding");
    // `Block::open` does not compare postings with the series' labels (that is
    // `verify_block`'s O(index) work), so only a consistent index comes back whole.
    if parsed.labels == postings_of(&parsed) {
        assert_eq!(back, parsed, "a consistent index after re-encoding");
    }
}

/// What the reader relies on without checking again.
fn check_index_invariants(index: &Index, chunks_len: u64) {
    assert!(
        index
            .series
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.labels < b.labels)),
        "series out of order"
    );
    for s in &index.series {
        assert!(!s.labels.is_empty() && s.labels.iter().all(|l| !l.value.is_empty()));
        assert!(!s.chunks.is_empty(), "series {} without chunks", s.labels);
        let mut prev_max: Option<i64> = None;
        for c in &s.chunks {
            assert!(
                c.min_time <= c.max_time,
                "chunk {c:?} ends before it starts"
            );
            assert!(prev_max.is_none_or(|p| p < c.min_time), "chunks overlap");
            assert!(c.num_samples >= 1 && c.num_samples as usize <= CHUNK_SAMPLES_LIMIT);
            assert!(
                c.offset + 8 + u64::from(c.len) <= chunks_len,
                "chunk {c:?} past the file"
            );
            prev_max = Some(c.max_time);
        }
    }
    assert!(
        index
            .labels
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.name < b.name))
    );
    for name in &index.labels {
        assert!(!name.values.is_empty());
        assert!(
            name.values
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.value < b.value))
        );
        for v in &name.values {
            assert!(!v.postings.is_empty());
            assert!(v.postings.windows(2).all(|w| matches!(w, [a, b] if a < b)));
            assert!(
                v.postings
                    .iter()
                    .all(|&r| (r as usize) < index.series.len())
            );
        }
    }
}

/// The label table and postings that the series' labels imply.
fn postings_of(index: &Index) -> Vec<LabelName> {
    let mut pairs: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, Vec<u32>>> =
        std::collections::BTreeMap::new();
    for (i, s) in index.series.iter().enumerate() {
        for l in s.labels.iter() {
            pairs
                .entry(l.name.as_str())
                .or_default()
                .entry(l.value.as_str())
                .or_default()
                .push(i as u32);
        }
    }
    pairs
        .into_iter()
        .map(|(name, values)| LabelName {
            name: name.to_string(),
            values: values
                .into_iter()
                .map(|(value, postings)| LabelValue {
                    value: value.to_string(),
                    postings,
                })
                .collect(),
        })
        .collect()
}

/// A block's `meta.json`: whatever parses must write out as JSON that parses to the
/// same meta.
pub fn block_meta(data: &[u8]) {
    let Ok(meta) = BlockMeta::parse(Path::new("meta.json"), data) else {
        return;
    };
    match BlockMeta::parse(Path::new("meta.json"), &meta.to_json()) {
        Ok(again) => assert_eq!(again, meta, "meta after writing it out"),
        Err(e) => panic!("a written-out meta does not parse: {e}"),
    }
}
