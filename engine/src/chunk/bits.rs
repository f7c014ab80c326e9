//! The bit stream under the XOR chunk: a writer that packs bits most significant first
//! into a growing byte buffer, and a reader that never reads past the end of its slice.
//!
//! The reader runs over bytes read back from disk, so it indexes nothing and reports
//! running out of bits as `None` instead of panicking.

#![deny(clippy::indexing_slicing)]

/// Appends bits, most significant first, to a byte buffer.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Unused low bits of the last byte of `buf` (0 when it is full or `buf` is empty).
    free_bits: u32,
}

impl BitWriter {
    /// A writer whose stream starts after `prefix` (the chunk header), byte-aligned.
    pub(crate) fn with_prefix(prefix: &[u8]) -> Self {
        BitWriter {
            buf: prefix.to_vec(),
            free_bits: 0,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `nbits` (at most 64) of `value`, most significant first. The used
    /// bits of a partly filled last byte and the new bits are lined up in one 128-bit
    /// word, which goes out as one copy of its leading bytes: no loop turn per byte,
    /// and one capacity check per call.
    pub(crate) fn write_bits(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64, "BUG: write_bits of {nbits} bits");
        let nbits = nbits.min(64);
        if nbits == 0 {
            return;
        }
        let value = if nbits == 64 {
            value
        } else {
            value & ((1u64 << nbits) - 1)
        };
        // Bits already used in the last byte (its free bits are zero).
        let used = (8 - self.free_bits) % 8;
        let mut word = u128::from(value) << (128 - used - nbits);
        if used > 0
            && let Some(last) = self.buf.pop()
        {
            word |= u128::from(last) << 120;
        }
        let total = used + nbits;
        let bytes = total.div_ceil(8);
        self.buf
            .extend_from_slice(word.to_be_bytes().get(..bytes as usize).unwrap_or_default());
        self.free_bits = bytes * 8 - total;
    }

    /// Writes `value` as an unsigned LEB128 varint (Go's `binary.PutUvarint`).
    pub(crate) fn write_uvarint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, 8);
            value >>= 7;
        }
        self.write_bits(value, 8);
    }

    /// Writes `value` zig-zag encoded as a varint (Go's `binary.PutVarint`).
    pub(crate) fn write_varint(&mut self, value: i64) {
        self.write_uvarint(((value << 1) ^ (value >> 63)) as u64);
    }
}

/// Reads bits, most significant first, from a byte slice.
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos_bits: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos_bits: 0 }
    }

    /// Bits not yet read.
    pub(crate) fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos_bits)
    }

    /// Whether everything left is padding of the last partly used byte.
    pub(crate) fn at_last_byte(&self) -> bool {
        self.remaining_bits() < 8
    }

    /// Reads `nbits` (at most 64) bits; `None` if the slice has fewer left.
    pub(crate) fn read_bits(&mut self, nbits: u32) -> Option<u64> {
        if nbits > 64 || (nbits as usize) > self.remaining_bits() {
            return None;
        }
        if nbits == 0 {
            return Some(0);
        }
        // Fast path: the bits lie within the next eight bytes, read as one big-endian
        // word (every byte of a chunk but its last seven).
        let byte = self.pos_bits / 8;
        let skip = (self.pos_bits % 8) as u32;
        if nbits + skip <= 64
            && let Some(word) = self.data.get(byte..byte + 8)
            && let Ok(word) = <[u8; 8]>::try_from(word)
        {
            self.pos_bits += nbits as usize;
            return Some((u64::from_be_bytes(word) << skip) >> (64 - nbits));
        }
        let mut out = 0u64;
        let mut left = nbits;
        while left > 0 {
            let byte = u64::from(*self.data.get(self.pos_bits / 8)?);
            let avail = 8 - (self.pos_bits % 8) as u32;
            let take = left.min(avail);
            let piece = (byte >> (avail - take)) & ((1u64 << take) - 1);
            // `out` holds `nbits - left` bits, so with `nbits <= 64` the shift loses none.
            out = (out << take) | piece;
            self.pos_bits += take as usize;
            left -= take;
        }
        Some(out)
    }

    /// Reads an unsigned LEB128 varint; `None` when truncated or longer than 64 bits.
    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for i in 0..10u32 {
            let byte = self.read_bits(8)?;
            // The tenth byte may only carry the 64th bit (Go's overflow rule).
            if i == 9 && byte > 1 {
                return None;
            }
            out |= (byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(out);
            }
        }
        None
    }

    /// Reads a zig-zag varint.
    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer as it was, one bit at a time: the bytes must not change.
    fn reference(writes: &[(u64, u32)]) -> Vec<u8> {
        let mut bits = Vec::new();
        for &(value, nbits) in writes {
            for i in (0..nbits).rev() {
                bits.push((value >> i) & 1 == 1);
            }
        }
        bits.chunks(8)
            .map(|byte| {
                byte.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i)))
            })
            .collect()
    }

    #[test]
    fn write_bits_packs_as_one_bit_at_a_time_would() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            let mut writes = Vec::new();
            let mut w = BitWriter::default();
            for _ in 0..(x % 20) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let nbits = (x % 65) as u32;
                // Bits above `nbits` must be ignored.
                let value = x.rotate_left(17);
                writes.push((value, nbits));
                w.write_bits(value, nbits);
            }
            assert_eq!(w.bytes(), reference(&writes), "{writes:?}");
        }
    }
}
