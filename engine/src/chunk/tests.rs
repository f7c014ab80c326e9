//! Tests of the XOR chunk codec: round trips over many shapes of series, a seeded
//! garbage loop that must never panic, and the bytes/sample the encoder achieves.

use super::*;
use crate::model::{STALE_NAN_BITS, Sample};

/// A seeded xorshift64* generator, so failures reproduce without a new dependency.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // Zero is xorshift's fixed point; mixing the seed avoids it and decorrelates
        // neighbouring seeds.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), close enough for tests.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Asserts the chunk decodes to exactly `samples`, comparing values bit for bit.
/// Asserts `got` holds `want`'s timestamps and the same value bits (NaN payloads
/// included), sample by sample.
pub(crate) fn assert_same(got: &[Sample], want: &[Sample]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.timestamp_ms, w.timestamp_ms);
        assert_eq!(
            g.value.to_bits(),
            w.value.to_bits(),
            "at {}",
            w.timestamp_ms
        );
    }
}

fn assert_round_trip(samples: &[Sample]) {
    let bytes = encode(samples);
    let got = decode(&bytes).unwrap();
    assert_same(&got, samples);
    let via_iter: Vec<Sample> = iter(&bytes).map(|s| s.unwrap()).collect();
    assert_eq!(via_iter.len(), samples.len());
}

fn series(timestamps: &[i64], value: impl Fn(usize) -> f64) -> Vec<Sample> {
    timestamps
        .iter()
        .enumerate()
        .map(|(i, &t)| Sample::new(t, value(i)))
        .collect()
}

fn regular(n: usize, start_ms: i64, step_ms: i64) -> Vec<i64> {
    (0..n as i64).map(|i| start_ms + i * step_ms).collect()
}

#[test]
fn empty_chunk_is_a_bare_header() {
    let app = XorAppender::new();
    assert_eq!(app.bytes(), [0, 0]);
    assert_eq!(app.num_samples(), 0);
    assert_eq!(app.min_time(), i64::MAX);
    assert_eq!(app.max_time(), i64::MIN);
    assert_eq!(app.last_value(), None);
    assert_eq!(decode(app.bytes()).unwrap(), []);
}

#[test]
fn random_series_round_trip() {
    for seed in 0..200 {
        let mut rng = Rng::new(seed);
        let n = 1 + rng.below(300) as usize;
        let mut t = rng.next_u64() as i64 >> 20;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let v = match rng.below(4) {
                0 => f64::from_bits(rng.next_u64()),
                1 => rng.below(1000) as f64,
                2 => (rng.below(1_000_000) as f64) / 100.0,
                _ => samples.last().map_or(0.0, |s: &Sample| s.value),
            };
            samples.push(Sample::new(t, v));
            let spread = match rng.below(3) {
                0 => 3,
                1 => 20_000,
                _ => 1 << 40,
            };
            t += 1 + rng.below(spread) as i64;
        }
        assert_round_trip(&samples);
    }
}

#[test]
fn constant_and_counter_series_round_trip() {
    let ts = regular(120, 1_700_000_000_000, 10_000);
    assert_round_trip(&series(&ts, |_| 42.0));
    assert_round_trip(&series(&ts, |i| (i * 7) as f64));
    assert_round_trip(&series(&ts, |i| 1e15 + i as f64));
    assert_round_trip(&series(&ts, |_| 0.0));
    assert_round_trip(&series(&ts, |i| if i % 2 == 0 { 0.0 } else { -0.0 }));
}

#[test]
fn irregular_timestamps_round_trip() {
    // Every delta-of-delta bucket edge, both signs, plus the 64-bit escape.
    let mut ts = vec![-5_000_000, -4_999_990];
    let mut delta = 10i64;
    for dod in [
        0,
        1,
        -1,
        8191,
        -8191,
        8192,
        -8192,
        65535,
        -65535,
        65536,
        -65536,
        524_287,
        -524_287,
        524_288,
        -524_288,
        1 << 40,
        -(1 << 39),
        3,
        0,
        0,
    ] {
        delta += dod;
        assert!(delta > 0);
        let last = *ts.last().unwrap();
        ts.push(last + delta);
    }
    assert_round_trip(&series(&ts, |i| i as f64));
    // Huge deltas across the whole i64 range.
    assert_round_trip(&series(&[i64::MIN, 0, i64::MAX], |i| i as f64));
    assert_round_trip(&series(&[i64::MIN, i64::MAX], |_| 1.0));
    assert_round_trip(&series(
        &[i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX],
        |_| 1.0,
    ));
    assert_round_trip(&series(&[-3, -2, -1, 0, 1], |i| -(i as f64)));
    assert_round_trip(&series(&[i64::MAX], |_| 1.0));
}

#[test]
fn special_values_round_trip_bit_exact() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let values = [
        1.0,
        f64::NAN,
        stale,
        f64::INFINITY,
        f64::NEG_INFINITY,
        stale,
        -f64::NAN,
        f64::from_bits(0x7ff8_dead_beef_0001),
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        5e-324,
        0.0,
        stale,
        stale,
    ];
    let ts = regular(values.len(), 0, 15_000);
    assert_round_trip(&series(&ts, |i| values[i]));
}

#[test]
fn bytes_mid_stream_decode_to_the_prefix() {
    let mut rng = Rng::new(7);
    let mut app = XorAppender::new();
    let mut want = Vec::new();
    let mut t = 1_000i64;
    for _ in 0..500 {
        let v = f64::from_bits(rng.next_u64() & 0xffff_0000_ffff_ffff);
        app.append(t, v);
        want.push(Sample::new(t, v));
        let got = decode(app.bytes()).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(
            |(g, w)| g.timestamp_ms == w.timestamp_ms && g.value.to_bits() == w.value.to_bits()
        ));
        assert_eq!(app.num_samples(), want.len());
        assert_eq!(app.min_time(), 1_000);
        assert_eq!(app.max_time(), t);
        assert_eq!(app.last_value().map(f64::to_bits), Some(v.to_bits()));
        assert!(app.mem_bytes() >= app.bytes().len());
        t += 1 + rng.below(30_000) as i64;
    }
    assert_eq!(app.clone().into_bytes(), app.bytes());
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(0xc0ffee);
    let valid = encode(&series(&regular(120, 1_700_000_000_000, 10_000), |i| {
        (i as f64) * 1.5
    }));
    let mut errors = 0;
    for round in 0..20_000u32 {
        let input = if round % 2 == 0 {
            let len = rng.below(64) as usize;
            rng.bytes(len)
        } else {
            // Valid chunks with a few flipped bytes reach deep into the decoder.
            let mut b = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] ^= 1 << rng.below(8);
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len() as u64) as usize);
            }
            b
        };
        match decode(&input) {
            Ok(samples) => {
                assert!(samples.len() <= input.len() * 4 + 1);
                assert!(
                    samples
                        .windows(2)
                        .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
                );
            }
            Err(_) => errors += 1,
        }
        // The iterator stops after its first error.
        let items: Vec<_> = iter(&input).collect();
        assert!(items.iter().filter(|r| r.is_err()).count() <= 1);
        assert!(
            items
                .last()
                .is_none_or(|_| items[..items.len() - 1].iter().all(Result::is_ok))
        );
    }
    // A decoder that rejected nothing would not be checking anything.
    assert!(errors > 10_000, "only {errors} inputs rejected");
}

#[test]
fn decoder_refuses_inconsistent_input() {
    assert!(decode(&[]).is_err());
    assert!(decode(&[0]).is_err());
    // A header claiming samples the stream does not hold.
    assert!(decode(&[0, 5]).is_err());
    // Whole bytes after the last sample.
    let mut b = encode(&[Sample::new(1, 1.0)]);
    b.push(0);
    assert!(decode(&b).is_err());
    // A varint longer than 64 bits.
    let mut b = vec![0, 1];
    b.extend([0xff; 11]);
    assert!(decode(&b).is_err());
}

/// Bytes per sample of a 120-sample chunk, the head's chunk size.
fn bytes_per_sample(values: impl Fn(usize) -> f64) -> f64 {
    let ts = regular(120, 1_700_000_000_000, 10_000);
    encode(&series(&ts, values)).len() as f64 / 120.0
}

#[test]
fn compression_matches_gorilla() {
    let mut rng = Rng::new(11);
    let mut counter = vec![0.0f64];
    for _ in 1..120 {
        let last = *counter.last().unwrap();
        counter.push(last + rng.below(5) as f64);
    }
    let counter_bps = bytes_per_sample(|i| counter[i]);
    let mut gauge = vec![50.0f64];
    for _ in 1..120 {
        let last = *gauge.last().unwrap();
        // A random walk rounded to 2 decimals, as a gauge scraped from a float.
        let step = (rng.below(201) as f64 - 100.0) / 100.0;
        gauge.push(((last + step) * 100.0).round() / 100.0);
    }
    let gauge_bps = bytes_per_sample(|i| gauge[i]);
    assert!(counter_bps < 1.6, "counter: {counter_bps} bytes/sample");
    assert!(gauge_bps < 8.0, "gauge: {gauge_bps} bytes/sample");
    assert!(bytes_per_sample(|_| 1.0) <= 0.4);
}
