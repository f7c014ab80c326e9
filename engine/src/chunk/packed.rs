//! The packed chunk: block chunks of decimal values as bit-packed integers.
//!
//! Exporters write values that are decimal numbers with few digits (CPU seconds in
//! hundredths, byte counts, pages of 4 KiB) and scrape at a fixed interval. Scaled by
//! `10^e` such values are integers, and their differences are small; packed to the
//! bits they need they take a fraction of the XOR chunk's 64-bit windows. Timestamps
//! are deltas, which for a regular scrape collapse to one number.
//!
//! [`encode`] returns `None` when a chunk cannot be represented exactly (NaN, ±Inf,
//! -0.0, values with more than [`EXPONENT_MAX`] decimals, integers beyond 2^53), and
//! the caller keeps the XOR chunk. Every value is checked to come back with the same
//! bits, so an encoded chunk always round-trips. [`decode`] reads any bytes without
//! panicking. The layout, with a worked example, is in `engine/docs/format/chunks.md`.

#![deny(clippy::indexing_slicing)]

use super::ChunkError;
use super::bits::BitReader;
use crate::model::Sample;

/// The largest decimal exponent tried: `10^12` still leaves 2^53 / 10^12 ≈ 9,000 as
/// the largest value with twelve decimals, beyond which there is nothing to gain.
pub const EXPONENT_MAX: u32 = 12;

/// Items per group of a packed sequence; each group has its own bit width, so a burst
/// costs wide items only in its own group.
const GROUP_ITEMS: usize = 32;

/// Integers whose `f64` is exact: beyond 2^53 not every integer has one.
const EXACT_INT_MAX: i64 = 1 << 53;

const POW10: [f64; EXPONENT_MAX as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
];

/// How the scaled integers of the values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The integers themselves (gauges wandering in a narrow range).
    Raw = 0,
    /// The first integer, then differences (counters, random walks).
    Delta = 1,
    /// The first integer and difference, then differences of differences.
    DeltaOfDelta = 2,
}

/// Encodes samples sorted strictly by time (at most [`super::CHUNK_SAMPLES_LIMIT`]),
/// or `None` if the values are not all decimals this encoding keeps exactly.
pub fn encode(samples: &[Sample]) -> Option<Vec<u8>> {
    let count = u16::try_from(samples.len()).ok()?;
    let first = samples.first()?;
    let (exponent, ints) = scale(samples)?;
    let mut out = count.to_be_bytes().to_vec();
    put_varint(&mut out, first.timestamp_ms);
    let deltas: Vec<i64> = samples
        .windows(2)
        .map(|w| match w {
            [a, b] => b.timestamp_ms.wrapping_sub(a.timestamp_ms),
            _ => 0,
        })
        .collect();
    put_seq(&mut out, &deltas);
    // Each mode is tried and the smallest kept: which wins depends on the series
    // (delta for counters, raw for gauges pinned in a range), and encoding 720
    // integers three times is cheap next to the disk it saves.
    let mut best: Option<Vec<u8>> = None;
    for mode in [Mode::Raw, Mode::Delta, Mode::DeltaOfDelta] {
        let mut v = vec![(exponent as u8) | ((mode as u8) << 4)];
        put_values(&mut v, mode, &ints);
        if best.as_ref().is_none_or(|b| v.len() < b.len()) {
            best = Some(v);
        }
    }
    out.extend_from_slice(&best?);
    Some(out)
}

/// The smallest exponent `e` at which every value is an integer `m` with
/// `m as f64 / 10^e` giving back its exact bits, and those integers.
fn scale(samples: &[Sample]) -> Option<(u32, Vec<i64>)> {
    'exponent: for e in 0..=EXPONENT_MAX {
        let p = POW10.get(e as usize).copied()?;
        let mut ints = Vec::with_capacity(samples.len());
        for s in samples {
            let scaled = (s.value * p).round();
            // NaN and ±Inf fail, as do integers an f64 cannot hold exactly.
            if !scaled.is_finite() || scaled.abs() >= EXACT_INT_MAX as f64 {
                continue 'exponent;
            }
            let m = scaled as i64;
            if (m as f64 / p).to_bits() != s.value.to_bits() {
                continue 'exponent;
            }
            ints.push(m);
        }
        return Some((e, ints));
    }
    None
}

fn put_values(out: &mut Vec<u8>, mode: Mode, ints: &[i64]) {
    match mode {
        Mode::Raw => put_seq(out, ints),
        Mode::Delta => {
            let (first, rest) = ints.split_first().unwrap_or((&0, &[]));
            put_varint(out, *first);
            put_seq(out, &differences(ints, rest.len()));
        }
        Mode::DeltaOfDelta => {
            let (first, _) = ints.split_first().unwrap_or((&0, &[]));
            put_varint(out, *first);
            let deltas = differences(ints, ints.len().saturating_sub(1));
            if let Some((d1, _)) = deltas.split_first() {
                put_varint(out, *d1);
                put_seq(out, &differences(&deltas, deltas.len() - 1));
            }
        }
    }
}

fn differences(xs: &[i64], n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    out.extend(xs.windows(2).map(|w| match w {
        [a, b] => b.wrapping_sub(*a),
        _ => 0,
    }));
    out
}

/// Writes integers as: the minimum (varint), the greatest common divisor of their
/// distances from it (uvarint, 0 when all are equal, and then nothing follows), the
/// width in bits of the largest quotient (a byte), then per group of
/// [`GROUP_ITEMS`] the group's width and each quotient in that many bits.
fn put_seq(out: &mut Vec<u8>, xs: &[i64]) {
    let Some(&base) = xs.iter().min() else {
        return;
    };
    put_varint(out, base);
    // The wrapping difference from the minimum is the exact distance, which always
    // fits a u64; the decoder adds it back modulo 2^64.
    let mut quotients: Vec<u64> = xs.iter().map(|&x| x.wrapping_sub(base) as u64).collect();
    let mut step = 0u64;
    for &d in &quotients {
        step = gcd(step, d);
        // Most sequences reach 1 within a few items; the rest cannot lower it.
        if step == 1 {
            break;
        }
    }
    put_uvarint(out, step);
    if step == 0 {
        return;
    }
    if step > 1 {
        for q in &mut quotients {
            *q /= step;
        }
    }
    let width = bits(quotients.iter().fold(0, |a, &q| a | q));
    out.push(width as u8);
    let width_bits = bits(u64::from(width));
    let mut w = Packer::new(out);
    for group in quotients.chunks(GROUP_ITEMS) {
        let gw = bits(group.iter().fold(0, |a, &q| a | q));
        w.put(u64::from(gw), width_bits);
        for &q in group {
            w.put(q, gw);
        }
    }
    w.finish();
}

/// Appends bits most significant first, like the XOR chunk's bit writer but through a 128-bit
/// accumulator: block chunks are packed at flush, on the shard's thread.
struct Packer<'a> {
    out: &'a mut Vec<u8>,
    acc: u128,
    /// Bits held in `acc`, fewer than 8 between calls.
    held: u32,
}

impl<'a> Packer<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Packer {
            out,
            acc: 0,
            held: 0,
        }
    }

    /// Appends the low `nbits` (at most 64) of `value`, which has no higher bits set.
    fn put(&mut self, value: u64, nbits: u32) {
        self.acc = (self.acc << nbits) | u128::from(value);
        self.held += nbits;
        while self.held >= 8 {
            self.held -= 8;
            self.out.push((self.acc >> self.held) as u8);
        }
        self.acc &= (1u128 << self.held) - 1;
    }

    /// Pads the last byte with zero bits.
    fn finish(self) {
        if self.held > 0 {
            self.out.push((self.acc << (8 - self.held)) as u8);
        }
    }
}

/// Bits needed to write `x`.
fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

/// Decodes a packed chunk. The bytes are untrusted: every length, width and mode is
/// checked, timestamps must increase and nothing may follow the last field.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let mut r = Reader { bytes, pos: 0 };
    let count = match r.take(2) {
        Some([hi, lo]) => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => return Err(err("chunk shorter than its 2-byte header")),
    };
    if count == 0 {
        return Err(err("a packed chunk of no samples"));
    }
    // Every sample after the first takes at least one bit in some sequence unless the
    // sequence is constant, so only the header's count bounds the allocation: at most
    // 65,535 samples, 1 MiB.
    let t0 = r.varint("first timestamp")?;
    let deltas = r.seq(count - 1, "timestamp deltas")?;
    let mut samples = Vec::with_capacity(count);
    let mut t = t0;
    samples.push(Sample::new(t, 0.0));
    for d in deltas {
        let next = t.wrapping_add(d);
        if next <= t {
            return Err(err(&format!(
                "timestamp {next} does not increase after {t}"
            )));
        }
        t = next;
        samples.push(Sample::new(t, 0.0));
    }
    let header = r.byte("value header")?;
    let exponent = u32::from(header & 0x0f);
    let p = POW10
        .get(exponent as usize)
        .copied()
        .ok_or_else(|| err(&format!("decimal exponent {exponent} above {EXPONENT_MAX}")))?;
    let ints = match header >> 4 {
        0 => r.seq(count, "values")?,
        1 => {
            let first = r.varint("first value")?;
            integrate(first, r.seq(count - 1, "value deltas")?)
        }
        2 => {
            let first = r.varint("first value")?;
            if count == 1 {
                vec![first]
            } else {
                let d1 = r.varint("first value delta")?;
                let deltas = integrate(d1, r.seq(count - 2, "value deltas of deltas")?);
                integrate(first, deltas)
            }
        }
        m => return Err(err(&format!("value mode {m} is unknown"))),
    };
    if r.pos != bytes.len() {
        return Err(err(&format!(
            "{} bytes left after the last sample",
            bytes.len() - r.pos
        )));
    }
    for (s, m) in samples.iter_mut().zip(ints) {
        s.value = m as f64 / p;
    }
    Ok(samples)
}

/// `first`, then running sums of `diffs` (wrapping, as the encoder subtracted).
fn integrate(first: i64, diffs: Vec<i64>) -> Vec<i64> {
    let mut out = Vec::with_capacity(diffs.len() + 1);
    let mut acc = first;
    out.push(acc);
    for d in diffs {
        acc = acc.wrapping_add(d);
        out.push(acc);
    }
    out
}

fn err(what: &str) -> ChunkError {
    ChunkError(format!("packed: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    fn byte(&mut self, what: &str) -> Result<u8, ChunkError> {
        match self.take(1) {
            Some([b]) => Ok(*b),
            _ => Err(err(&format!("ends before {what}"))),
        }
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, ChunkError> {
        let mut out = 0u64;
        for i in 0..10u32 {
            let b = u64::from(self.byte(what)?);
            // The tenth byte may only carry the 64th bit.
            if i == 9 && b > 1 {
                break;
            }
            out |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(out);
            }
        }
        Err(err(&format!("{what}: varint longer than 64 bits")))
    }

    fn varint(&mut self, what: &str) -> Result<i64, ChunkError> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a sequence of `n` integers written by [`put_seq`].
    fn seq(&mut self, n: usize, what: &str) -> Result<Vec<i64>, ChunkError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let base = self.varint(what)?;
        let step = self.uvarint(what)?;
        if step == 0 {
            return Ok(vec![base; n]);
        }
        let width = u32::from(self.byte(what)?);
        if width == 0 || width > 64 {
            return Err(err(&format!("{what}: width {width} outside 1..=64")));
        }
        let width_bits = bits(u64::from(width));
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let mut br = BitReader::new(rest);
        let short = || err(&format!("{what}: stream ends inside the packed bits"));
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let gw = br.read_bits(width_bits).ok_or_else(short)? as u32;
            if gw > width {
                return Err(err(&format!("{what}: group width {gw} above {width}")));
            }
            for _ in 0..(n - out.len()).min(GROUP_ITEMS) {
                let q = br.read_bits(gw).ok_or_else(short)?;
                out.push(base.wrapping_add(q.wrapping_mul(step) as i64));
            }
        }
        // The bit stream is padded to a whole byte.
        let used = rest.len() - br.remaining_bits() / 8;
        self.pos += used;
        Ok(out)
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
