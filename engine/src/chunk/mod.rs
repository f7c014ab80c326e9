//! Compressed chunks of samples: Prometheus' XOR ("Gorilla") encoding.
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

mod bits;
mod read;
mod xor;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

pub use read::{XorIter, decode, iter};
pub use xor::{CHUNK_SAMPLES_LIMIT, XorAppender, encode};

/// Why a chunk did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub String);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xor chunk: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}
