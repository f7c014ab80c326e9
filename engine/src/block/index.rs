//! A block's `index` file: symbols, series with their chunk metas, the label-name →
//! values table and postings, a table of contents and a whole-file crc32c.
//!
//! The writer builds the file in memory; the reader checks the checksum and then every
//! structural rule (sorted, unique, in range, sections ending where the next begins)
//! while parsing it into [`Index`], so the rest of the block code works on values it
//! can trust. Byte layout and crash analysis: `engine/docs/format/index.md`.

#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::buf::{DecodeError, DecodeResult, Decoder, Encode};
use super::chunks::{CHUNKS_HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::chunk::CHUNK_SAMPLES_LIMIT;
use crate::error::{Error, Result};
use crate::model::{Label, LabelStr, Labels};

/// "TSIX": tsdb index.
pub(crate) const INDEX_MAGIC: [u8; 4] = *b"TSIX";
pub(crate) const INDEX_VERSION: u8 = 1;
/// Magic, version, three reserved bytes and the file's length: the length tells a
/// truncated file (a copy cut short) apart from damaged bytes before the checksum
/// is even computed.
const HEADER_BYTES: usize = 16;
/// Four section offsets.
const TOC_BYTES: usize = 32;
const CRC_BYTES: usize = 4;

/// Where one chunk of a series is and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) num_samples: u32,
    /// Offset of the chunk's record (its length field) in `chunks`.
    pub(crate) offset: u64,
    /// Bytes of chunk data, without the record header.
    pub(crate) len: u32,
}

impl ChunkMeta {
    pub(crate) fn overlaps(&self, min_time: i64, max_time: i64) -> bool {
        self.min_time <= max_time && self.max_time >= min_time
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesEntry {
    pub(crate) labels: Labels,
    pub(crate) chunks: Vec<ChunkMeta>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LabelValue {
    pub(crate) value: String,
    /// Positions of the series having this label pair, ascending.
    pub(crate) postings: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LabelName {
    pub(crate) name: String,
    /// Ascending by value.
    pub(crate) values: Vec<LabelValue>,
}

/// The parsed index: series in label order (a series' position is its `SeriesRef`)
/// and the label table with postings, ascending by name.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Index {
    pub(crate) series: Vec<SeriesEntry>,
    pub(crate) labels: Vec<LabelName>,
}

/// Encodes an index over `series`, which the caller has sorted strictly by labels.
pub(crate) fn encode(series: &[SeriesEntry]) -> Vec<u8> {
    let symbols: Vec<&str> = series
        .iter()
        .flat_map(|s| s.labels.iter())
        .flat_map(|l| [l.name.as_str(), l.value.as_str()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let sym = |s: &str| match symbols.binary_search(&s) {
        Ok(i) => i as u64,
        Err(_) => panic!("BUG: label string {s:?} missing from the symbol table"),
    };

    let mut out = Vec::new();
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&[INDEX_VERSION, 0, 0, 0]);
    // The length is patched in once the file is complete.
    out.put_u64(0);

    let symbols_offset = out.len() as u64;
    out.put_u32(len_u32(symbols.len(), "symbols"));
    for s in &symbols {
        out.put_str(s);
    }

    let series_offset = out.len() as u64;
    out.put_u32(len_u32(series.len(), "series"));
    let mut postings: BTreeMap<(u64, u64), Vec<u32>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        out.put_uvarint(s.labels.len() as u64);
        for l in s.labels.iter() {
            let key = (sym(&l.name), sym(&l.value));
            out.put_uvarint(key.0);
            out.put_uvarint(key.1);
            postings.entry(key).or_default().push(i as u32);
        }
        encode_chunk_metas(&mut out, &s.chunks);
    }

    let labels_offset = out.len() as u64;
    let mut by_name: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(name, value) in postings.keys() {
        by_name.entry(name).or_default().push(value);
    }
    out.put_u32(len_u32(by_name.len(), "label names"));
    for (name, values) in &by_name {
        out.put_uvarint(*name);
        out.put_uvarint(values.len() as u64);
        for v in values {
            out.put_uvarint(*v);
        }
    }

    let postings_offset = out.len() as u64;
    out.put_u32(len_u32(postings.len(), "postings lists"));
    for ((name, value), refs) in &postings {
        out.put_uvarint(*name);
        out.put_uvarint(*value);
        out.put_uvarint(refs.len() as u64);
        let mut prev = 0;
        for (j, r) in refs.iter().enumerate() {
            // Deltas keep dense lists at a byte per series.
            out.put_uvarint(u64::from(if j == 0 { *r } else { r - prev }));
            prev = *r;
        }
    }

    for offset in [
        symbols_offset,
        series_offset,
        labels_offset,
        postings_offset,
    ] {
        out.put_u64(offset);
    }
    let file_len = (out.len() + CRC_BYTES) as u64;
    if let Some(field) = out.get_mut(8..HEADER_BYTES) {
        field.copy_from_slice(&file_len.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    out
}

fn len_u32(n: usize, what: &str) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("BUG: {n} {what} exceed one block's u32 count"))
}

fn encode_chunk_metas(out: &mut Vec<u8>, chunks: &[ChunkMeta]) {
    out.put_uvarint(chunks.len() as u64);
    let mut prev_max = None;
    for c in chunks {
        match prev_max {
            None => out.put_varint(c.min_time),
            // Chunks do not overlap, so the gap is positive; the u64 wrapping
            // difference is exact even across the whole i64 range.
            Some(prev) => out.put_uvarint(c.min_time.wrapping_sub(prev) as u64),
        }
        out.put_uvarint(c.max_time.wrapping_sub(c.min_time) as u64);
        out.put_uvarint(u64::from(c.num_samples));
        out.put_uvarint(c.offset);
        out.put_uvarint(u64::from(c.len));
        prev_max = Some(c.max_time);
    }
}

/// Parses and checks an index file; `chunks_len` is the size of the block's `chunks`
/// file, which every chunk reference must fit.
pub(crate) fn parse(path: &Path, bytes: &[u8], chunks_len: u64) -> Result<Index> {
    parse_inner(bytes, chunks_len).map_err(|e| match e {
        ParseError::Checksum { expected, got } => Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset: bytes.len().saturating_sub(CRC_BYTES) as u64,
            expected,
            got,
        },
        ParseError::Decode(e) => Error::corrupt(path, e.offset, e.reason),
    })
}

enum ParseError {
    Checksum { expected: u32, got: u32 },
    Decode(DecodeError),
}

impl From<DecodeError> for ParseError {
    fn from(e: DecodeError) -> Self {
        ParseError::Decode(e)
    }
}

fn fail<T>(offset: u64, reason: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Decode(DecodeError {
        offset,
        reason: reason.into(),
    }))
}

fn parse_inner(bytes: &[u8], chunks_len: u64) -> Result<Index, ParseError> {
    let mut d = Decoder::new(bytes, 0);
    let magic = d.bytes(4, "magic")?;
    if magic != INDEX_MAGIC {
        return fail(0, format!("bad magic {magic:02x?}"));
    }
    let version = d.bytes(4, "version")?;
    if version != [INDEX_VERSION, 0, 0, 0] {
        return fail(4, format!("index version {version:02x?} is not supported"));
    }
    let file_len = d.u64("file length")?;
    if file_len != bytes.len() as u64 {
        return fail(
            8,
            format!(
                "the header says {file_len} bytes, the file has {}: truncated or extended",
                bytes.len()
            ),
        );
    }
    let min_len = HEADER_BYTES + TOC_BYTES + CRC_BYTES;
    if bytes.len() < min_len {
        return fail(
            0,
            format!("{} bytes is shorter than {min_len}", bytes.len()),
        );
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
    let expected = Decoder::new(crc, body.len() as u64).u32("crc")?;
    let got = crc32c::crc32c(body);
    if expected != got {
        return Err(ParseError::Checksum { expected, got });
    }

    let toc_start = body.len() - TOC_BYTES;
    let mut toc = Decoder::new(body.get(toc_start..).unwrap_or_default(), toc_start as u64);
    let mut bounds = [0usize; 5];
    for b in bounds.iter_mut().take(4) {
        *b = usize::try_from(toc.u64("toc")?).unwrap_or(usize::MAX);
    }
    if let Some(last) = bounds.last_mut() {
        *last = toc_start;
    }
    if bounds.first() != Some(&HEADER_BYTES)
        || !bounds.windows(2).all(|w| matches!(w, [a, b] if a <= b))
    {
        return fail(
            toc_start as u64,
            format!("sections out of order: {bounds:?}"),
        );
    }
    let section = |i: usize| {
        let (start, end) = match (bounds.get(i), bounds.get(i + 1)) {
            (Some(s), Some(e)) => (*s, *e),
            _ => (toc_start, toc_start),
        };
        Decoder::new(body.get(start..end).unwrap_or_default(), start as u64)
    };

    let symbols = parse_symbols(section(0))?;
    let series = parse_series(section(1), &symbols, chunks_len)?;
    let mut labels = parse_label_table(section(2), &symbols)?;
    parse_postings(section(3), &symbols, &mut labels, series.len())?;
    Ok(Index { series, labels })
}

/// A section must be consumed exactly: stray bytes mean a writer we do not know.
fn finish(d: &Decoder<'_>, what: &str) -> Result<(), ParseError> {
    if d.remaining() != 0 {
        return Err(d
            .error(format!("{} stray bytes after {what}", d.remaining()))
            .into());
    }
    Ok(())
}

fn parse_symbols<'a>(mut d: Decoder<'a>) -> Result<Vec<&'a str>, ParseError> {
    let n = d.count_u32("symbol count")?;
    let mut symbols: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.offset();
        let s = d.str("symbol")?;
        if symbols.last().is_some_and(|prev| *prev >= s) {
            return Err(DecodeError {
                offset: at,
                reason: format!("symbol {s:?} out of order"),
            }
            .into());
        }
        symbols.push(s);
    }
    finish(&d, "symbols")?;
    Ok(symbols)
}

fn symbol<'a>(d: &mut Decoder<'_>, symbols: &[&'a str], what: &str) -> DecodeResult<&'a str> {
    symbol_in(d, symbols, what).copied()
}

/// The entry of `symbols` the next varint names.
fn symbol_in<'s, T>(d: &mut Decoder<'_>, symbols: &'s [T], what: &str) -> DecodeResult<&'s T> {
    let at = d.offset();
    let r = d.uvarint(what)?;
    usize::try_from(r)
        .ok()
        .and_then(|i| symbols.get(i))
        .ok_or(DecodeError {
            offset: at,
            reason: format!(
                "{what}: symbol {r} out of range ({} symbols)",
                symbols.len()
            ),
        })
}

fn parse_series(
    mut d: Decoder<'_>,
    symbols: &[&str],
    chunks_len: u64,
) -> Result<Vec<SeriesEntry>, ParseError> {
    let n = d.count_u32("series count")?;
    // One shared copy of each string for all the block's label sets: most series
    // repeat most of their names and values.
    let symbols: Vec<LabelStr> = symbols.iter().map(|&s| LabelStr::from(s)).collect();
    let mut series: Vec<SeriesEntry> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.offset();
        let num_labels = d.count("label count")?;
        let mut pairs = Vec::with_capacity(num_labels);
        for _ in 0..num_labels {
            let name = symbol_in(&mut d, &symbols, "label name")?;
            let value = symbol_in(&mut d, &symbols, "label value")?;
            if value.is_empty() {
                return Err(d.error(format!("label {name:?} has an empty value")).into());
            }
            pairs.push(Label {
                name: name.clone(),
                value: value.clone(),
            });
        }
        let labels = Labels::from_sorted(pairs).map_err(|e| DecodeError {
            offset: at,
            reason: format!("series labels: {e}"),
        })?;
        if series.last().is_some_and(|prev| prev.labels >= labels) {
            return fail(at, format!("series {labels} out of order"));
        }
        let chunks = parse_chunk_metas(&mut d, chunks_len)?;
        series.push(SeriesEntry { labels, chunks });
    }
    finish(&d, "series")?;
    Ok(series)
}

fn parse_chunk_metas(d: &mut Decoder<'_>, chunks_len: u64) -> DecodeResult<Vec<ChunkMeta>> {
    let n = d.count("chunk count")?;
    if n == 0 {
        return Err(d.error("series without chunks"));
    }
    let mut chunks: Vec<ChunkMeta> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.offset();
        let bad = |reason: String| DecodeError { offset: at, reason };
        let min_time = match chunks.last() {
            None => d.varint("chunk min time")?,
            Some(prev) => {
                let gap = d.uvarint("chunk time gap")?;
                let t = i128::from(prev.max_time) + i128::from(gap);
                if gap == 0 || t > i128::from(i64::MAX) {
                    return Err(bad(format!("chunk time gap {gap} after {}", prev.max_time)));
                }
                t as i64
            }
        };
        let span = d.uvarint("chunk time span")?;
        let max_time = i128::from(min_time) + i128::from(span);
        if max_time > i128::from(i64::MAX) {
            return Err(bad(format!("chunk time span {span} overflows")));
        }
        let num_samples = d.uvarint32("chunk sample count")?;
        if num_samples == 0 || num_samples as usize > CHUNK_SAMPLES_LIMIT {
            return Err(bad(format!("chunk of {num_samples} samples")));
        }
        let offset = d.uvarint("chunk offset")?;
        let len = d.uvarint32("chunk length")?;
        let end = offset
            .checked_add(RECORD_HEADER_BYTES)
            .and_then(|o| o.checked_add(u64::from(len)));
        if offset < CHUNKS_HEADER_BYTES || end.is_none_or(|e| e > chunks_len) {
            return Err(bad(format!(
                "chunk of {len} bytes at {offset} outside the {chunks_len}-byte chunks file"
            )));
        }
        chunks.push(ChunkMeta {
            min_time,
            max_time: max_time as i64,
            num_samples,
            offset,
            len,
        });
    }
    Ok(chunks)
}

fn parse_label_table(mut d: Decoder<'_>, symbols: &[&str]) -> Result<Vec<LabelName>, ParseError> {
    let n = d.count_u32("label name count")?;
    let mut names: Vec<LabelName> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.offset();
        let name = symbol(&mut d, symbols, "label name")?;
        if names.last().is_some_and(|prev| prev.name.as_str() >= name) {
            return fail(at, format!("label name {name:?} out of order"));
        }
        let num_values = d.count("label value count")?;
        if num_values == 0 {
            return fail(at, format!("label name {name:?} without values"));
        }
        let mut values: Vec<LabelValue> = Vec::with_capacity(num_values);
        for _ in 0..num_values {
            let at = d.offset();
            let value = symbol(&mut d, symbols, "label value")?;
            if value.is_empty() || values.last().is_some_and(|p| p.value.as_str() >= value) {
                return fail(at, format!("label value {value:?} out of order"));
            }
            values.push(LabelValue {
                value: value.to_string(),
                postings: Vec::new(),
            });
        }
        names.push(LabelName {
            name: name.to_string(),
            values,
        });
    }
    finish(&d, "label table")?;
    Ok(names)
}

/// Fills each label value's postings; the lists must come in the label table's order,
/// one per (name, value) pair, which keeps the two sections from disagreeing.
fn parse_postings(
    mut d: Decoder<'_>,
    symbols: &[&str],
    labels: &mut [LabelName],
    num_series: usize,
) -> Result<(), ParseError> {
    let n = d.count_u32("postings list count")?;
    let pairs: usize = labels.iter().map(|l| l.values.len()).sum();
    if n != pairs {
        return fail(
            d.offset(),
            format!("{n} postings lists for {pairs} label pairs"),
        );
    }
    for entry in labels.iter_mut() {
        for v in entry.values.iter_mut() {
            let at = d.offset();
            let name = symbol(&mut d, symbols, "postings label name")?;
            let value = symbol(&mut d, symbols, "postings label value")?;
            if name != entry.name || value != v.value {
                return fail(
                    at,
                    format!(
                        "postings for {name}={value:?} where the label table has {}={:?}",
                        entry.name, v.value
                    ),
                );
            }
            let len = d.count("postings length")?;
            if len == 0 {
                return fail(at, format!("empty postings for {name}={value:?}"));
            }
            let mut refs: Vec<u32> = Vec::with_capacity(len);
            for _ in 0..len {
                let at = d.offset();
                let delta = d.uvarint32("postings entry")?;
                let r = match refs.last() {
                    None => Some(delta),
                    Some(prev) if delta > 0 => prev.checked_add(delta),
                    Some(_) => None,
                };
                match r {
                    Some(r) if (r as usize) < num_series => refs.push(r),
                    _ => {
                        return fail(
                            at,
                            format!("postings entry {delta} for {name}={value:?} out of range"),
                        );
                    }
                }
            }
            v.postings = refs;
        }
    }
    finish(&d, "postings")
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
