//! Compressed chunks of samples: Prometheus' XOR ("Gorilla") encoding, and the packed
//! encoding block chunks use where it is smaller.
//!
//! A chunk is a 2-byte big-endian sample count followed by a bit stream: the first
//! timestamp as a varint and the first value as 64 raw bits, the second timestamp as
//! an unsigned delta, then timestamp deltas-of-deltas in Prometheus' buckets and values
//! as XORs with the previous one. The byte layout, with a worked example, is in
//! `engine/docs/format/chunks.md`.
//!
//! [`XorAppender`] builds a chunk sample by sample and is decodable after every append
//! (the head serves queries from it); [`encode`] does a whole slice; [`iter`] and
//! [`decode`] read any bytes back without panicking. Values are kept bit for bit, so
//! NaN payloads such as the staleness marker survive.
//!
//! [`packed`] stores decimal values as bit-packed integers; it can represent only some
//! chunks, so [`encode_smallest`] tries it and keeps XOR otherwise. [`Encoding`] names
//! a chunk's encoding, and [`decode_as`] reads either.

mod bits;
pub mod packed;
mod read;
mod xor;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use crate::model::Sample;

pub use read::{XorIter, decode, iter};
pub use xor::{CHUNK_SAMPLES_LIMIT, XorAppender, encode};

/// How a chunk's bytes are encoded; the byte is what a version-2 `chunks` record
/// starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Prometheus' XOR chunk ([`encode`]).
    Xor = 1,
    /// Decimal values as bit-packed integers ([`packed::encode`]).
    Packed = 2,
}

impl Encoding {
    pub fn byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(b: u8) -> Option<Encoding> {
        match b {
            1 => Some(Encoding::Xor),
            2 => Some(Encoding::Packed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Xor => "xor",
            Encoding::Packed => "packed",
        }
    }
}

/// Decodes a chunk of either encoding.
pub fn decode_as(encoding: Encoding, bytes: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    match encoding {
        Encoding::Xor => decode(bytes),
        Encoding::Packed => packed::decode(bytes),
    }
}

/// Appends the samples of a chunk of either encoding to `out` (a query decodes into
/// one reused buffer). On an error `out` may hold part of the chunk.
pub fn decode_into(
    encoding: Encoding,
    bytes: &[u8],
    out: &mut Vec<Sample>,
) -> Result<(), ChunkError> {
    match encoding {
        Encoding::Xor => iter(bytes).try_for_each(|s| {
            out.push(s?);
            Ok(())
        }),
        Encoding::Packed => packed::decode(bytes).map(|s| out.extend(s)),
    }
}

/// Encodes samples sorted strictly by time as the smaller of the packed and the XOR
/// chunk (XOR when packed cannot represent them, or on a tie).
pub fn encode_smallest(samples: &[Sample]) -> (Encoding, Vec<u8>) {
    let xor = encode(samples);
    match packed::encode(samples) {
        Some(p) if p.len() < xor.len() => (Encoding::Packed, p),
        _ => (Encoding::Xor, xor),
    }
}

/// Why a chunk did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub String);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chunk: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}
