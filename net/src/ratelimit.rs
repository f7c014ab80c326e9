//! Per-client rate limiting (`--rate-limit`, `--rate-limit-burst`): a lock-free table
//! shared by every core, one generic cell rate algorithm (GCRA) bucket per client.
//!
//! A client is its authenticated identity when `--auth-file` is set, else its peer IP.
//! Each bucket is a single `AtomicU64`, the client's theoretical arrival time (TAT) in
//! nanoseconds since the limiter was made, advanced by compare-and-swap: a request is
//! admitted if advancing the TAT by one interval (`1s / rate`) keeps it within `burst`
//! intervals of now. So a client may send `burst` requests at once, then `rate` per
//! second, whichever core its connections land on.
//!
//! The table has a fixed number of slots, found by hashing the client (keyed with a
//! per-process random key) and probing a few neighbours. A slot whose bucket is full
//! again (its TAT in the past) is as good as empty and is taken over by a new client.
//! When every probed slot is busy with another active client, the request is admitted:
//! the table bounds memory, and failing open under an attack of many distinct clients
//! is preferred to punishing a client for a stranger's traffic.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Slots in the table: clients that can be limited at once (16 bytes each).
const SLOTS: usize = 1 << 14;
/// Neighbouring slots looked at for a client before giving up.
const PROBES: usize = 8;

#[derive(Debug, Default)]
struct Slot {
    /// The client's hash, 0 for never used.
    key: AtomicU64,
    /// The theoretical arrival time, nanoseconds since `epoch`.
    tat: AtomicU64,
}

/// The shared table of buckets.
#[derive(Debug)]
pub struct RateLimiter {
    /// Nanoseconds between two requests at the steady rate.
    interval_ns: u64,
    /// How far ahead of now a TAT may run: `burst` intervals.
    tolerance_ns: u64,
    slots: Box<[Slot]>,
    hasher: std::collections::hash_map::RandomState,
    epoch: Instant,
}

/// A refused request: when the client may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl RateLimiter {
    /// A limiter of `rate` requests per second per client with bursts of `burst`
    /// (at least 1); `None` when `rate` is 0 (off).
    pub fn new(rate: u64, burst: u64) -> Option<RateLimiter> {
        if rate == 0 {
            return None;
        }
        let interval_ns = (1_000_000_000 / rate).max(1);
        Some(RateLimiter {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst.max(1)),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: Instant::now(),
        })
    }

    /// Admits or refuses one request of `client`.
    pub fn check(&self, client: &impl Hash) -> Result<(), Throttled> {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.check_at(client, now)
    }

    fn check_at(&self, client: &impl Hash, now: u64) -> Result<(), Throttled> {
        let key = self.hasher.hash_one(client) | 1;
        let Some(slot) = self.slot(key, now) else {
            return Ok(());
        };
        let mut tat = slot.tat.load(Ordering::Acquire);
        loop {
            let new_tat = tat.max(now).saturating_add(self.interval_ns);
            let ahead = new_tat - now;
            if ahead > self.tolerance_ns {
                return Err(Throttled {
                    retry_after: Duration::from_nanos(ahead - self.tolerance_ns),
                });
            }
            match slot
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }

    /// The slot of `key`: its own, a never-used one, or one whose client has gone idle.
    fn slot(&self, key: u64, now: u64) -> Option<&Slot> {
        let start = (key as usize) % self.slots.len();
        for i in 0..PROBES {
            let slot = self.slots.get((start + i) % self.slots.len())?;
            let owner = slot.key.load(Ordering::Acquire);
            if owner == key {
                return Some(slot);
            }
            let idle = owner == 0 || slot.tat.load(Ordering::Acquire) <= now;
            if idle
                && slot
                    .key
                    .compare_exchange(owner, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                // An idle bucket is a full one: its old TAT is in the past and counts
                // as now. Nothing to reset.
                return Some(slot);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn bursts_then_the_steady_rate() {
        let l = RateLimiter::new(10, 5).unwrap();
        let t0 = 5 * SECOND;
        for _ in 0..5 {
            assert_eq!(l.check_at(&"a", t0), Ok(()));
        }
        let refused = l.check_at(&"a", t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        // Another client has its own bucket.
        assert_eq!(l.check_at(&"b", t0), Ok(()));
        // One interval later, one more request fits.
        assert_eq!(l.check_at(&"a", t0 + SECOND / 10), Ok(()));
        assert!(l.check_at(&"a", t0 + SECOND / 10).is_err());
        // Idle long enough, the whole burst is back.
        for _ in 0..5 {
            assert_eq!(l.check_at(&"a", t0 + 2 * SECOND), Ok(()));
        }
        assert!(l.check_at(&"a", t0 + 2 * SECOND).is_err());
    }

    #[test]
    fn off_at_zero() {
        assert!(RateLimiter::new(0, 10).is_none());
    }

    #[test]
    fn a_full_table_admits_rather_than_share_buckets() {
        let l = RateLimiter::new(1, 1).unwrap();
        // Every slot held by an active client...
        for (i, s) in l.slots.iter().enumerate() {
            s.key.store(((i as u64) << 1) | 1, Ordering::Relaxed);
            s.tat.store(u64::MAX, Ordering::Relaxed);
        }
        // ...so a newcomer is admitted, every time.
        for _ in 0..3 {
            assert_eq!(l.check_at(&"new", SECOND), Ok(()));
        }
    }
}
