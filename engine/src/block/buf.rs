//! Byte encoding helpers shared by the block's `index` and `chunks` files: an
//! appending encoder, and a decoder over untrusted bytes that reports where it failed.
//!
//! The decoder never indexes and never allocates: callers bound every allocation by
//! [`Decoder::remaining`] before making it.

#![deny(clippy::indexing_slicing)]

/// Appends little-endian integers and LEB128 varints to a byte vector.
pub(crate) trait Encode {
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_uvarint(&mut self, v: u64);
    fn put_varint(&mut self, v: i64);
    fn put_str(&mut self, s: &str);
}

impl Encode for Vec<u8> {
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }

    fn put_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }

    fn put_varint(&mut self, v: i64) {
        self.put_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A uvarint length, then the UTF-8 bytes.
    fn put_str(&mut self, s: &str) {
        self.put_uvarint(s.len() as u64);
        self.extend_from_slice(s.as_bytes());
    }
}

/// Why a decode failed, and at which offset of the file; the caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

/// Reads from a byte slice that sits at `base` in its file, so errors carry file
/// offsets.
#[derive(Clone, Debug)]
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(data: &'a [u8], base: u64) -> Self {
        Decoder { data, pos: 0, base }
    }

    /// The file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.offset(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.data.get(self.pos..end)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.error(format!(
                "{what}: needs {n} bytes, {} left",
                self.remaining()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> DecodeResult<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub(crate) fn uvarint(&mut self, what: &str) -> DecodeResult<u64> {
        let start = self.offset();
        let mut out = 0u64;
        for i in 0..10u32 {
            let [byte] = self.array::<1>(what)?;
            // The tenth byte may only carry the 64th bit.
            if i == 9 && byte > 1 {
                break;
            }
            out |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(out);
            }
        }
        Err(DecodeError {
            offset: start,
            reason: format!("{what}: varint overflows 64 bits"),
        })
    }

    pub(crate) fn varint(&mut self, what: &str) -> DecodeResult<i64> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint that must fit `u32`.
    pub(crate) fn uvarint32(&mut self, what: &str) -> DecodeResult<u32> {
        let start = self.offset();
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| DecodeError {
            offset: start,
            reason: format!("{what}: {v} does not fit 32 bits"),
        })
    }

    /// A count of items that each take at least one more byte, so a corrupt count
    /// cannot make the caller allocate more than the input holds.
    pub(crate) fn count(&mut self, what: &str) -> DecodeResult<usize> {
        let start = self.offset();
        let n = self.uvarint(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(DecodeError {
                offset: start,
                reason: format!("{what}: {n} exceeds the {} bytes left", self.remaining()),
            }),
        }
    }

    /// Like [`Decoder::count`] for a fixed-width `u32` count.
    pub(crate) fn count_u32(&mut self, what: &str) -> DecodeResult<usize> {
        let start = self.offset();
        let n = self.u32(what)? as usize;
        if n > self.remaining() {
            return Err(DecodeError {
                offset: start,
                reason: format!("{what}: {n} exceeds the {} bytes left", self.remaining()),
            });
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self, what: &str) -> DecodeResult<&'a str> {
        let n = self.count(what)?;
        let start = self.offset();
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b).map_err(|e| DecodeError {
            offset: start,
            reason: format!("{what}: not UTF-8: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_overflow() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            b.put_uvarint(v);
            assert_eq!(Decoder::new(&b, 0).uvarint("v"), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            b.put_varint(v);
            assert_eq!(Decoder::new(&b, 0).varint("v"), Ok(v));
        }
        assert!(Decoder::new(&[0xff; 10], 0).uvarint("v").is_err());
        assert!(Decoder::new(&[0x80], 0).uvarint("v").is_err());
        let e = Decoder::new(&[5, b'a'], 100).str("s").unwrap_err();
        assert_eq!(e.offset, 100);
    }
}
