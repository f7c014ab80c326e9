//! WAL record framing and payloads.
//!
//! A record is `[len: u32 LE][crc32c: u32 LE][type: u8][payload]`, where `len` counts
//! the type byte and the payload, and the checksum covers the same bytes. A zero
//! length is never written, so zero-filled space reads as a torn tail.
#![deny(clippy::indexing_slicing)]

use crate::model::{Label, Labels, Sample};

/// Bytes of the record header (length + checksum).
pub const HEADER_BYTES: usize = 8;

/// The kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// New series: `count: u32`, then per series `ref: u64, nlabels: u16`, then per
    /// label `name_len: u16, name, value_len: u32, value` (all LE).
    Series = 1,
    /// Samples: `count: u32`, then `count` × `ref: u64, timestamp_ms: i64, value: f64 bits`.
    Samples = 2,
}

impl RecordType {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            _ => None,
        }
    }
}

/// Bytes one sample takes in a samples record.
pub const SAMPLE_BYTES: usize = 24;

/// A series reference: unique within a shard for the life of its WAL.
pub type SeriesRef = u64;

/// One decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(Vec<(SeriesRef, Sample)>),
}

/// One decoded record whose samples are read in place from the record's bytes: no
/// vector is built for them (replay appends them straight to the head).
#[derive(Clone, Debug, PartialEq)]
pub enum RecordView<'a> {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(SamplesView<'a>),
}

impl RecordView<'_> {
    /// The owned record, as [`decode`] returns it.
    pub fn into_record(self) -> Record {
        match self {
            RecordView::Series(series) => Record::Series(series),
            RecordView::Samples(samples) => Record::Samples(samples.iter().collect()),
        }
    }
}

/// The samples of a samples record, decoded as they are iterated. Its length was
/// checked against the count when it was made, so every entry is whole.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplesView<'a> {
    payload: &'a [u8],
}

impl<'a> SamplesView<'a> {
    pub fn len(&self) -> usize {
        self.payload.len() / SAMPLE_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (SeriesRef, Sample)> + 'a {
        self.payload.chunks_exact(SAMPLE_BYTES).map(|entry| {
            let word = |i: usize| {
                let mut a = [0u8; 8];
                if let Some(b) = entry.get(i * 8..i * 8 + 8) {
                    a.copy_from_slice(b);
                }
                u64::from_le_bytes(a)
            };
            (
                word(0),
                Sample::new(word(1) as i64, f64::from_bits(word(2))),
            )
        })
    }
}

/// Frames `payload` of kind `kind` and appends it to `out`.
fn frame(out: &mut Vec<u8>, kind: RecordType, payload_len: usize, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    out.push(kind as u8);
    fill(out);
    let body = out.get(start + HEADER_BYTES..).unwrap_or_default();
    debug_assert_eq!(body.len(), payload_len + 1, "record length estimate");
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(body);
    if let Some(h) = out.get_mut(start..start + HEADER_BYTES) {
        let (l, c) = h.split_at_mut(4);
        l.copy_from_slice(&len.to_le_bytes());
        c.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Appends a series record for `series` to `out`.
pub fn encode_series<'a>(
    out: &mut Vec<u8>,
    series: impl ExactSizeIterator<Item = (SeriesRef, &'a Labels)> + Clone,
) {
    let payload_len = 4 + series
        .clone()
        .map(|(_, l)| {
            10 + l
                .iter()
                .map(|l| 6 + l.name.len() + l.value.len())
                .sum::<usize>()
        })
        .sum::<usize>();
    let count = u32::try_from(series.len()).unwrap_or(u32::MAX);
    frame(out, RecordType::Series, payload_len, |out| {
        out.extend_from_slice(&count.to_le_bytes());
        for (r, labels) in series {
            out.extend_from_slice(&r.to_le_bytes());
            out.extend_from_slice(
                &u16::try_from(labels.len())
                    .unwrap_or(u16::MAX)
                    .to_le_bytes(),
            );
            for l in labels.iter() {
                out.extend_from_slice(
                    &u16::try_from(l.name.len())
                        .unwrap_or(u16::MAX)
                        .to_le_bytes(),
                );
                out.extend_from_slice(l.name.as_bytes());
                out.extend_from_slice(
                    &u32::try_from(l.value.len())
                        .unwrap_or(u32::MAX)
                        .to_le_bytes(),
                );
                out.extend_from_slice(l.value.as_bytes());
            }
        }
    });
}

/// Appends a samples record to `out`.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[(SeriesRef, Sample)]) {
    let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    frame(
        out,
        RecordType::Samples,
        4 + samples.len() * SAMPLE_BYTES,
        |out| {
            out.extend_from_slice(&count.to_le_bytes());
            for (r, s) in samples {
                out.extend_from_slice(&r.to_le_bytes());
                out.extend_from_slice(&s.timestamp_ms.to_le_bytes());
                out.extend_from_slice(&s.value.to_bits().to_le_bytes());
            }
        },
    );
}

/// What reading one record at an offset found.
#[derive(Debug, PartialEq)]
pub enum Framed<'a> {
    /// A whole record with a good checksum: its type byte + payload, and its total size.
    Record { body: &'a [u8], bytes: usize },
    /// Nothing more: the buffer ends exactly here.
    End,
    /// The rest of the buffer is zeros (preallocated or zero-filled space).
    Zeros,
    /// The header or body runs past the end of the buffer: a torn write.
    Truncated,
    /// The checksum does not match or the length is impossible.
    Corrupt(String),
}

/// Reads the framing of the record starting at the front of `buf`.
pub fn read_frame(buf: &[u8], record_bytes_max: usize) -> Framed<'_> {
    if buf.is_empty() {
        return Framed::End;
    }
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return if buf.iter().all(|&b| b == 0) {
            Framed::Zeros
        } else {
            Framed::Truncated
        };
    };
    let len = u32_at(header, 0) as usize;
    let crc = u32_at(header, 4);
    if len == 0 {
        return if buf.iter().all(|&b| b == 0) {
            Framed::Zeros
        } else {
            Framed::Corrupt("zero record length".into())
        };
    }
    if len > record_bytes_max {
        return Framed::Corrupt(format!(
            "record length {len} exceeds the maximum {record_bytes_max}"
        ));
    }
    let Some(body) = buf.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Framed::Truncated;
    };
    let got = crc32c::crc32c(body);
    if got != crc {
        return Framed::Corrupt(format!(
            "checksum mismatch (expected {crc:#010x}, got {got:#010x})"
        ));
    }
    Framed::Record {
        body,
        bytes: HEADER_BYTES + len,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// A cursor over a record body that never reads past its end.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!("payload ends {} bytes early", n - self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }
    fn string(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "label is not UTF-8".to_string())
    }
}

/// Decodes a record body (type byte + payload) as framed by [`read_frame`].
pub fn decode(body: &[u8]) -> Result<Record, String> {
    decode_view(body).map(RecordView::into_record)
}

/// [`decode`], leaving a samples record's samples in `body` to be read in place.
pub fn decode_view(body: &[u8]) -> Result<RecordView<'_>, String> {
    let (&kind, payload) = body.split_first().ok_or("empty record")?;
    let kind = RecordType::from_u8(kind).ok_or_else(|| format!("unknown record type {kind}"))?;
    let mut c = Cursor { buf: payload };
    let count = c.u32()? as usize;
    match kind {
        RecordType::Samples => {
            if count.saturating_mul(SAMPLE_BYTES) != c.buf.len() {
                return Err(format!(
                    "samples record of {count} samples has {} payload bytes",
                    c.buf.len()
                ));
            }
            Ok(RecordView::Samples(SamplesView { payload: c.buf }))
        }
        RecordType::Series => {
            // Each series takes at least 10 bytes, which bounds the allocation.
            let mut out = Vec::with_capacity(count.min(c.buf.len() / 10));
            for _ in 0..count {
                let sref = c.u64()?;
                let n = c.u16()? as usize;
                let mut labels = Vec::with_capacity(n.min(c.buf.len() / 6));
                for _ in 0..n {
                    let nl = c.u16()? as usize;
                    let name = c.string(nl)?;
                    let vl = c.u32()? as usize;
                    let value = c.string(vl)?;
                    labels.push(Label::new(name, value));
                }
                let labels =
                    Labels::from_sorted(labels).map_err(|e| format!("series {sref}: {e}"))?;
                out.push((sref, labels));
            }
            if !c.buf.is_empty() {
                return Err(format!(
                    "{} trailing bytes after series record",
                    c.buf.len()
                ));
            }
            Ok(RecordView::Series(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
    }

    #[test]
    fn records_round_trip() {
        let a = labels(&[("__name__", "up"), ("job", "api")]);
        let b = labels(&[("__name__", "x")]);
        let mut buf = Vec::new();
        encode_series(&mut buf, [(1u64, &a), (2u64, &b)].into_iter());
        let samples = vec![(1, Sample::new(1000, 1.5)), (2, Sample::new(-5, f64::NAN))];
        encode_samples(&mut buf, &samples);
        let Framed::Record { body, bytes } = read_frame(&buf, 1 << 20) else {
            panic!()
        };
        assert_eq!(decode(body).unwrap(), Record::Series(vec![(1, a), (2, b)]));
        let rest = &buf[bytes..];
        let Framed::Record { body, bytes } = read_frame(rest, 1 << 20) else {
            panic!()
        };
        let Record::Samples(got) = decode(body).unwrap() else {
            panic!()
        };
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], samples[0]);
        assert!(got[1].1.value.is_nan());
        assert_eq!(read_frame(&rest[bytes..], 1 << 20), Framed::End);
    }

    #[test]
    fn doc_example_matches_encoder() {
        let doc = include_str!("../../docs/format/wal.md");
        let want = crate::block::doc_hex(doc);
        let mut got = Vec::new();
        encode_series(
            &mut got,
            [(0u64, &labels(&[("__name__", "up")]))].into_iter(),
        );
        encode_samples(&mut got, &[(0, Sample::new(1000, 1.0))]);
        assert_eq!(
            got,
            want,
            "wal.md is out of date; the encoder writes:\n{}",
            crate::block::hex_lines(&got)
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_samples(
            &mut buf,
            &[(7, Sample::new(1, 2.0)), (8, Sample::new(3, 4.0))],
        );
        for cut in 1..buf.len() {
            assert!(
                matches!(
                    read_frame(&buf[..cut], 1 << 20),
                    Framed::Truncated | Framed::Zeros
                ),
                "cut {cut}"
            );
        }
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(read_frame(&b, 1 << 20), Framed::Record { .. }),
                "bit {bit}"
            );
        }
        assert_eq!(read_frame(&[0u8; 20], 1 << 20), Framed::Zeros);
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let _ = decode(&bytes);
            let _ = read_frame(&bytes, 1 << 20);
        }
    }
}
