//! The XOR chunk encoder: Prometheus' Gorilla variant, sample by sample.
//!
//! Timestamps are stored as delta-of-delta in Prometheus' millisecond buckets, values as
//! the XOR with the previous value, reusing the previous window of meaningful bits when
//! the new XOR fits in it. The byte layout is in `engine/docs/format/chunks.md`.

#![deny(clippy::indexing_slicing)]

use super::bits::BitWriter;
use crate::model::Sample;

/// Bytes of the chunk header: the sample count, big-endian.
pub(crate) const HEADER_BYTES: usize = 2;

/// The most samples one chunk can count in its 2-byte header.
pub const CHUNK_SAMPLES_LIMIT: usize = u16::MAX as usize;

/// `leading` before any XOR window exists; Prometheus uses the same sentinel.
const NO_WINDOW: u8 = 0xff;

/// Encodes samples one at a time into a chunk that is decodable after every append.
#[derive(Clone, Debug)]
pub struct XorAppender {
    w: BitWriter,
    num_samples: usize,
    first_timestamp_ms: i64,
    last_timestamp_ms: i64,
    /// The previous timestamp delta, as the wrapping difference of two timestamps.
    delta_ms: u64,
    last_value_bits: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    pub fn new() -> Self {
        XorAppender {
            w: BitWriter::with_prefix(&[0; HEADER_BYTES]),
            num_samples: 0,
            first_timestamp_ms: i64::MAX,
            last_timestamp_ms: i64::MIN,
            delta_ms: 0,
            last_value_bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Appends a sample. The caller guarantees timestamps strictly increase and that
    /// the chunk holds fewer than [`CHUNK_SAMPLES_LIMIT`] samples.
    pub fn append(&mut self, timestamp_ms: i64, value: f64) {
        // O(1), so it stays on in release: a 65,536th sample would wrap the header
        // and silently lose the whole chunk.
        assert!(
            self.num_samples < CHUNK_SAMPLES_LIMIT,
            "BUG: chunk already holds {CHUNK_SAMPLES_LIMIT} samples"
        );
        debug_assert!(
            self.num_samples == 0 || timestamp_ms > self.last_timestamp_ms,
            "BUG: chunk timestamps must increase: {timestamp_ms} after {}",
            self.last_timestamp_ms
        );
        let value_bits = value.to_bits();
        // Wrapping arithmetic keeps huge deltas (i64::MIN to i64::MAX) exact: the
        // decoder wraps the same way, so every step is undone modulo 2^64.
        let delta_ms = timestamp_ms.wrapping_sub(self.last_timestamp_ms) as u64;
        match self.num_samples {
            0 => {
                self.w.write_varint(timestamp_ms);
                self.w.write_bits(value_bits, 64);
                self.first_timestamp_ms = timestamp_ms;
            }
            1 => {
                self.w.write_uvarint(delta_ms);
                self.write_value(value_bits);
                self.delta_ms = delta_ms;
            }
            _ => {
                self.write_dod(delta_ms.wrapping_sub(self.delta_ms) as i64);
                self.write_value(value_bits);
                self.delta_ms = delta_ms;
            }
        }
        self.last_timestamp_ms = timestamp_ms;
        self.last_value_bits = value_bits;
        self.num_samples += 1;
        // The header is rewritten on every append so `bytes()` is always a whole chunk.
        let count = (self.num_samples as u16).to_be_bytes();
        if let Some(header) = self.w.bytes_mut().get_mut(..HEADER_BYTES) {
            header.copy_from_slice(&count);
        }
    }

    /// Prometheus' buckets: they are wider than Gorilla's because timestamps are in
    /// milliseconds, where scrape jitter of a few ms is the common case.
    fn write_dod(&mut self, dod: i64) {
        match dod {
            0 => self.w.write_bit(false),
            _ if fits(dod, 14) => {
                self.w.write_bits(0b10, 2);
                self.w.write_bits(dod as u64, 14);
            }
            _ if fits(dod, 17) => {
                self.w.write_bits(0b110, 3);
                self.w.write_bits(dod as u64, 17);
            }
            _ if fits(dod, 20) => {
                self.w.write_bits(0b1110, 4);
                self.w.write_bits(dod as u64, 20);
            }
            _ => {
                self.w.write_bits(0b1111, 4);
                self.w.write_bits(dod as u64, 64);
            }
        }
    }

    fn write_value(&mut self, value_bits: u64) {
        let xor = value_bits ^ self.last_value_bits;
        if xor == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // Five bits hold the leading count, so 32 or more is stored as 31.
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let bits = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(xor >> self.trailing, bits);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(u64::from(leading), 5);
        let sigbits = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit six bits; 0 is never needed (xor != 0), so 0
        // stands for 64.
        self.w.write_bits(u64::from(sigbits & 63), 6);
        self.w.write_bits(xor >> trailing, sigbits);
    }

    pub fn num_samples(&self) -> usize {
        self.num_samples
    }

    /// The first sample's timestamp, `i64::MAX` when empty.
    pub fn min_time(&self) -> i64 {
        self.first_timestamp_ms
    }

    /// The last sample's timestamp, `i64::MIN` when empty.
    pub fn max_time(&self) -> i64 {
        self.last_timestamp_ms
    }

    /// The chunk so far: header plus bit stream, padded with zero bits to a byte.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Consumes the appender, returning the chunk without copying it.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    pub fn last_value(&self) -> Option<f64> {
        (self.num_samples > 0).then(|| f64::from_bits(self.last_value_bits))
    }

    /// Heap bytes held (the buffer's capacity), for memtable accounting.
    pub fn mem_bytes(&self) -> usize {
        self.w.capacity()
    }
}

/// Whether `dod` fits an `nbits` bucket. The range is Prometheus':
/// `-(2^(n-1) - 1) ..= 2^(n-1)`, one wider on the positive side, matching how the
/// decoder maps raw bits back (`raw > 2^(n-1)` is negative).
fn fits(dod: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= dod && dod <= half
}

/// Encodes samples sorted strictly by time into one chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut app = XorAppender::new();
    for s in samples {
        app.append(s.timestamp_ms, s.value);
    }
    app.into_bytes()
}
