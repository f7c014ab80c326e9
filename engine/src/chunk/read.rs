//! The XOR chunk decoder: an iterator over the samples of a chunk read back from disk
//! or the WAL.
//!
//! Every input is untrusted: the decoder indexes nothing, allocates at most what the
//! input could hold, and turns every inconsistency into a [`ChunkError`]. Beyond the
//! stream itself it refuses timestamps that do not increase and whole bytes left over
//! after the last sample, both of which our encoder never produces.

#![deny(clippy::indexing_slicing)]

use super::ChunkError;
use super::bits::BitReader;
use super::xor::HEADER_BYTES;
use crate::model::Sample;

/// Iterates a chunk's samples; after the first error it yields nothing more.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    /// The sample count from the header, read on the first call.
    total: Option<u16>,
    read: u16,
    done: bool,
    timestamp_ms: i64,
    delta_ms: u64,
    value_bits: u64,
    leading: u32,
    trailing: u32,
}

/// Iterates the samples of the chunk `bytes`.
pub fn iter(bytes: &[u8]) -> XorIter<'_> {
    XorIter {
        r: BitReader::new(bytes),
        total: None,
        read: 0,
        done: false,
        timestamp_ms: 0,
        delta_ms: 0,
        value_bits: 0,
        // Prometheus' reader starts with an empty window, so a reuse bit before any
        // window means "64 meaningful bits"; accepting it keeps us able to read its
        // chunks.
        leading: 0,
        trailing: 0,
    }
}

/// Decodes a whole chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let claimed = match bytes {
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => 0,
    };
    // Each sample after the first takes at least two bits, so the input length bounds
    // the allocation whatever the header claims.
    let mut out = Vec::with_capacity(claimed.min(bytes.len() * 4 + 1));
    for s in iter(bytes) {
        out.push(s?);
    }
    Ok(out)
}

impl XorIter<'_> {
    fn err(&self, what: &str) -> ChunkError {
        ChunkError(format!(
            "sample {} of {}: {what}",
            self.read,
            self.total.unwrap_or(0)
        ))
    }

    fn bits(&mut self, nbits: u32, what: &str) -> Result<u64, ChunkError> {
        self.r
            .read_bits(nbits)
            .ok_or_else(|| self.err(&format!("stream ends inside {what}")))
    }

    fn step(&mut self) -> Result<Option<Sample>, ChunkError> {
        let total = match self.total {
            Some(t) => t,
            None => {
                let t = self.r.read_bits(8 * HEADER_BYTES as u32).ok_or_else(|| {
                    ChunkError(format!("chunk shorter than its {HEADER_BYTES}-byte header"))
                })? as u16;
                self.total = Some(t);
                t
            }
        };
        if self.read == total {
            if !self.r.at_last_byte() {
                return Err(self.err(&format!(
                    "{} bits left after the last sample",
                    self.r.remaining_bits()
                )));
            }
            return Ok(None);
        }
        let prev_ms = self.timestamp_ms;
        match self.read {
            0 => {
                self.timestamp_ms = self
                    .r
                    .read_varint()
                    .ok_or_else(|| self.err("bad first timestamp varint"))?;
                self.value_bits = self.bits(64, "first value")?;
            }
            1 => {
                self.delta_ms = self
                    .r
                    .read_uvarint()
                    .ok_or_else(|| self.err("bad timestamp delta varint"))?;
                self.timestamp_ms = self.timestamp_ms.wrapping_add(self.delta_ms as i64);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.delta_ms = self.delta_ms.wrapping_add(dod as u64);
                self.timestamp_ms = self.timestamp_ms.wrapping_add(self.delta_ms as i64);
                self.read_value()?;
            }
        }
        if self.read > 0 && self.timestamp_ms <= prev_ms {
            return Err(self.err(&format!(
                "timestamp {} does not increase after {prev_ms}",
                self.timestamp_ms
            )));
        }
        self.read += 1;
        Ok(Some(Sample::new(
            self.timestamp_ms,
            f64::from_bits(self.value_bits),
        )))
    }

    fn read_dod(&mut self) -> Result<i64, ChunkError> {
        // Up to four prefix bits: 0, 10, 110, 1110, 1111.
        let mut ones = 0;
        while ones < 4 && self.bits(1, "timestamp prefix")? == 1 {
            ones += 1;
        }
        let nbits = match ones {
            0 => return Ok(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Ok(self.bits(64, "timestamp delta-of-delta")? as i64),
        };
        let raw = self.bits(nbits, "timestamp delta-of-delta")?;
        // The encoder's range is -(2^(n-1) - 1) ..= 2^(n-1); larger raw values are the
        // two's complement of negative ones.
        let half = 1u64 << (nbits - 1);
        Ok(if raw > half {
            raw as i64 - (1i64 << nbits)
        } else {
            raw as i64
        })
    }

    fn read_value(&mut self) -> Result<(), ChunkError> {
        if self.bits(1, "value control bit")? == 0 {
            return Ok(());
        }
        if self.bits(1, "value window bit")? == 1 {
            let leading = self.bits(5, "leading zero count")? as u32;
            let sigbits = match self.bits(6, "significant bit count")? as u32 {
                0 => 64,
                n => n,
            };
            if leading + sigbits > 64 {
                return Err(self.err(&format!(
                    "{leading} leading zeros and {sigbits} significant bits exceed 64"
                )));
            }
            self.leading = leading;
            self.trailing = 64 - leading - sigbits;
        }
        let sigbits = 64 - self.leading - self.trailing;
        let xor = self.bits(sigbits, "value bits")?;
        self.value_bits ^= xor << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<Sample, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.total {
            _ if self.done => (0, Some(0)),
            // Each call yields a sample or the error that ends the iteration, and
            // after the last sample a trailing-bytes error may follow.
            Some(t) => {
                let left = usize::from(t.saturating_sub(self.read));
                (left.min(1), Some(left + 1))
            }
            // The header is unread: up to the most a header can count, plus an error.
            None => (0, Some(usize::from(u16::MAX) + 1)),
        }
    }
}

impl std::iter::FusedIterator for XorIter<'_> {}
