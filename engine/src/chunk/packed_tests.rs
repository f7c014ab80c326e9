//! Tests of the packed chunk: round trips of exporter-like and random decimal series,
//! the cases it must refuse (and XOR then keeps), its size on typical series, and a
//! seeded garbage loop that must never panic.

use super::*;
use crate::chunk::tests::{Rng, assert_same};
use crate::chunk::{Encoding, decode_as, encode_smallest};
use crate::model::STALE_NAN_BITS;

fn regular(
    n: usize,
    start_ms: i64,
    step_ms: i64,
    mut value: impl FnMut(usize) -> f64,
) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample::new(start_ms + i as i64 * step_ms, value(i)))
        .collect()
}

/// Asserts `samples` pack and decode to the same bits; returns the chunk's size.
fn round_trip(samples: &[Sample]) -> usize {
    let bytes = encode(samples).expect("packable");
    let got = decode(&bytes).unwrap();
    assert_same(&got, samples);
    bytes.len()
}

#[test]
fn regular_constant_series_is_a_few_bytes() {
    let samples = regular(720, 1_700_000_000_000, 10_000, |_| 1.0);
    let len = round_trip(&samples);
    // count 2, t0 6, deltas 3+1, header 1, raw values 1+1.
    assert!(len <= 16, "{len} bytes");
}

#[test]
fn hundredths_counter_packs_to_its_entropy() {
    let mut rng = Rng::new(7);
    let mut ticks = 1_234_567i64;
    let samples = regular(720, 1_700_000_000_005, 10_000, |_| {
        ticks += 390 + rng.below(781) as i64;
        ticks as f64 / 100.0
    });
    let len = round_trip(&samples);
    // Increments need 10 bits; group widths and headers add little.
    assert!(len < 720 * 10 / 8 + 40, "{len} bytes");
    let xor = crate::chunk::encode(&samples).len();
    assert!(len * 2 < xor, "packed {len} bytes, xor {xor}");
}

#[test]
fn multiples_of_a_page_cost_no_bits_for_the_page() {
    let mut rng = Rng::new(3);
    let mut pages = 1_000_000i64;
    let samples = regular(720, 0, 15_000, |_| {
        pages += rng.below(4001) as i64 - 2000;
        (pages * 4096) as f64
    });
    let len = round_trip(&samples);
    assert!(len < 720 * 12 / 8 + 40, "{len} bytes");
}

#[test]
fn jittered_timestamps_and_negative_values_round_trip() {
    let mut rng = Rng::new(11);
    let mut t = -5_000i64;
    let samples: Vec<Sample> = (0..500)
        .map(|_| {
            t += 9_990 + rng.below(21) as i64;
            Sample::new(t, (rng.below(2_000_001) as f64 - 1e6) / 1000.0)
        })
        .collect();
    round_trip(&samples);
}

#[test]
fn random_decimal_series_round_trip() {
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
        let n = 1 + rng.below(800) as usize;
        let exponent = rng.below(13) as i32;
        let bits = rng.below(50);
        let spread = 1 + rng.below(1 << bits);
        let mut t = rng.next_u64() as i64 >> rng.below(64);
        let mut m = (rng.next_u64() >> 12) as i64 - (1 << 51);
        let samples: Vec<Sample> = (0..n)
            .map(|_| {
                let jump = 1 << rng.below(40);
                t = t.saturating_add(1 + rng.below(jump) as i64);
                m = (m + rng.below(spread) as i64 - (spread / 2) as i64) % (1 << 52);
                Sample::new(t, m as f64 / 10f64.powi(exponent))
            })
            .collect();
        // Timestamps may saturate at i64::MAX; keep them strictly increasing.
        let samples: Vec<Sample> = samples
            .windows(2)
            .filter_map(|w| (w[0].timestamp_ms < w[1].timestamp_ms).then_some(w[1]))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let (encoding, bytes) = encode_smallest(&samples);
        assert_same(&decode_as(encoding, &bytes).unwrap(), &samples);
        if let Some(p) = encode(&samples) {
            assert_same(&decode(&p).unwrap(), &samples);
        }
    }
}

#[test]
fn extreme_timestamps_round_trip() {
    let samples = vec![
        Sample::new(i64::MIN, 1.0),
        Sample::new(-1, 2.0),
        Sample::new(i64::MAX - 1, 3.0),
        Sample::new(i64::MAX, 4.0),
    ];
    round_trip(&samples);
    round_trip(&samples[..1]);
    round_trip(&samples[..2]);
}

#[test]
fn values_it_cannot_hold_exactly_fall_back_to_xor() {
    let cases: [f64; 8] = [
        f64::from_bits(STALE_NAN_BITS),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e300,
        (1u64 << 53) as f64 + 2.0,
        0.1 + 0.2,
    ];
    for bad in cases {
        let samples = regular(10, 0, 1000, |i| if i == 5 { bad } else { i as f64 });
        assert_eq!(encode(&samples), None, "{bad:?} packed");
        let (encoding, bytes) = encode_smallest(&samples);
        assert_eq!(encoding, Encoding::Xor);
        assert_same(&decode_as(encoding, &bytes).unwrap(), &samples);
    }
    // Thirteen decimals are beyond the exponents tried.
    let samples = regular(3, 0, 1000, |i| 1.0 + i as f64 * 1e-13);
    assert_eq!(encode(&samples), None);
    // Twelve are not; 0.0 and small negatives are fine.
    round_trip(&regular(3, 0, 1000, |i| i as f64 * 1e-12));
    round_trip(&regular(3, 0, 1000, |i| -(i as f64 + 1.0) / 4.0));
}

#[test]
fn smallest_picks_packed_when_it_is_smaller() {
    let one = [Sample::new(1000, 7.0)];
    let (encoding, _) = encode_smallest(&one);
    // One sample: XOR is 2 + 2 + 8 bytes, packed 2 + 2 + 1 + 2.
    assert_eq!(encoding, Encoding::Packed);
    let counter = regular(120, 0, 10_000, |i| (i * 3) as f64);
    assert_eq!(encode_smallest(&counter).0, Encoding::Packed);
}

#[test]
fn refuses_damage() {
    let samples = regular(100, 1000, 1000, |i| (i % 7) as f64 / 10.0);
    let bytes = encode(&samples).unwrap();
    assert!(decode(&[]).is_err());
    assert!(decode(&[0, 0]).is_err(), "no samples");
    assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "truncated");
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode(&longer).is_err(), "trailing byte");
    let mut more = bytes.clone();
    more[1] += 100;
    assert!(decode(&more).is_err(), "count 100 more");
}

#[test]
fn garbage_never_panics() {
    let samples = regular(200, 5, 10_000, |i| ((i * i) % 1000) as f64 / 100.0);
    let good = encode(&samples).unwrap();
    for seed in 0..3000 {
        let mut rng = Rng::new(seed);
        let mut bytes = if seed % 2 == 0 {
            good.clone()
        } else {
            let n = rng.below(64) as usize;
            rng.bytes(n)
        };
        for _ in 0..=rng.below(4) {
            if !bytes.is_empty() {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        crate::fuzz::packed_decode(&bytes);
    }
}
