//! A duration histogram a shard keeps for `/metrics`: counts per fixed upper bound,
//! the count and the sum, as a Prometheus histogram needs them.

use std::time::Duration;

/// Durations counted per bucket of `bounds` (seconds, ascending, not cumulative;
/// slower ones only in `count`), as `tsdb_wal_fsync_duration_seconds` and
/// `tsdb_compaction_duration_seconds` export them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DurationHistogram {
    pub bounds: &'static [f64],
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: Duration,
}

impl DurationHistogram {
    pub fn new(bounds: &'static [f64]) -> DurationHistogram {
        DurationHistogram {
            bounds,
            buckets: vec![0; bounds.len()],
            count: 0,
            sum: Duration::ZERO,
        }
    }

    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|&le| secs <= le)
            && let Some(b) = self.buckets.get_mut(i)
        {
            *b += 1;
        }
        self.count += 1;
        self.sum += took;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_its_first_bucket_and_the_total() {
        let mut h = DurationHistogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        assert_eq!(h.buckets, vec![2, 1]);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum, Duration::from_micros(1_006_500));
    }
}
