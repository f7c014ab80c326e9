//! The differential data set: two hours of deterministic samples (a seeded PRNG, so a
//! failure reproduces) placed three days in the past, with every shape PromQL treats
//! specially: counters with resets and scrape jitter, fractional, negative and
//! integer gauges, classic histograms, gaps longer than the lookback, a series that
//! ends early, explicit stale markers, and NaN / ±Inf values.
//!
//! The same remote-write bodies go to tsdb and to Prometheus, oldest first: Prometheus
//! 2.42's receiver refuses samples older than its head's out-of-order window, so time
//! only moves forward across requests.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: a failed step should fail the test loudly"
)]

use crate::common::{Server, TestSeries, remote_write_body};
use crate::prometheus::Prometheus;

/// Prometheus' staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// The scrape interval of most series.
pub const STEP_MS: i64 = 15_000;
/// Steps in the data set: two hours at 15 s.
pub const STEPS: i64 = 480;
/// Steps per remote-write request (five minutes), oldest first.
const STEPS_PER_REQUEST: i64 = 20;

pub use tsdb_engine::rng::Rng;

/// Where [`Dataset::write`] sends each remote-write body.
pub type Sink<'a> = &'a dyn Fn(&[u8]);

/// One series: sorted label pairs and its samples in time order.
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

pub struct Dataset {
    /// Timestamp of the first step; the last step is `start_ms + (STEPS-1) * STEP_MS`.
    pub start_ms: i64,
    pub series: Vec<Series>,
}

impl Dataset {
    pub fn end_ms(&self) -> i64 {
        self.start_ms + (STEPS - 1) * STEP_MS
    }

    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Writes everything to each sink in requests of [`STEPS_PER_REQUEST`] steps,
    /// oldest first; every sink gets the same bodies.
    pub fn write(&self, sinks: &[Sink<'_>]) {
        let mut from = self.start_ms;
        while from <= self.end_ms() + STEP_MS {
            let to = from + STEPS_PER_REQUEST * STEP_MS;
            let batch: Vec<TestSeries<'_>> = self
                .series
                .iter()
                .filter_map(|s| {
                    let samples: Vec<(i64, f64)> = s
                        .samples
                        .iter()
                        .copied()
                        .filter(|&(t, _)| t >= from && t < to)
                        .collect();
                    (!samples.is_empty()).then(|| {
                        (
                            s.labels
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_str()))
                                .collect(),
                            samples,
                        )
                    })
                })
                .collect();
            if !batch.is_empty() {
                let body = remote_write_body(&batch);
                for sink in sinks {
                    sink(&body);
                }
            }
            from = to;
        }
    }

    /// Writes the data set to tsdb and Prometheus alike.
    pub fn write_to_both(&self, tsdb: &Server, prom: &Prometheus) {
        let to_tsdb = |body: &[u8]| {
            let (status, resp) = tsdb.post("/api/v1/write", "application/x-protobuf", body);
            assert_eq!(status, 204, "tsdb refused a remote write: {resp}");
        };
        let to_prom = |body: &[u8]| prom.remote_write(body);
        self.write(&[&to_tsdb, &to_prom]);
    }
}

/// The first step: three days ago, on a two-hour block boundary so the whole set
/// lands in one Prometheus head block range.
pub fn start_ms() -> i64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let block_ms = 2 * 3600 * 1000;
    (now_ms - 3 * 24 * 3600 * 1000) / block_ms * block_ms
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Jobs and their instances; `instance` values contain `:` and `-` for label_replace.
pub const TARGETS: [(&str, &str); 5] = [
    ("api", "host-a:9100"),
    ("api", "host-b:9100"),
    ("web", "host-c:8080"),
    ("web", "host-d:8080"),
    ("batch", "host-e:9091"),
];

/// Builds the data set from `seed`.
pub fn generate(seed: u64, start_ms: i64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut series = Vec::new();
    let step_t = |k: i64| start_ms + k * STEP_MS;

    // Counters: per target, methods × codes, with scrape jitter and resets.
    for (ti, (job, instance)) in TARGETS.iter().enumerate() {
        for (mi, method) in ["get", "post"].iter().enumerate() {
            for code in ["200", "500"] {
                if *job == "batch" && code == "500" {
                    continue;
                }
                let rate = if code == "200" { 5.0 } else { 0.3 } * (1.0 + ti as f64 + mi as f64);
                let reset_at = match (ti + mi) % 3 {
                    0 => Some(100 + 37 * ti as i64),
                    1 => Some(300 + 11 * mi as i64),
                    _ => None,
                };
                let mut v = rng.below(1000) as f64;
                let mut samples = Vec::new();
                for k in 0..STEPS {
                    if Some(k) == reset_at {
                        v = rng.below(3) as f64;
                    } else {
                        v += (rate * 15.0 * rng.f64() * 2.0).floor();
                    }
                    let jitter_ms = rng.below(1500) as i64;
                    samples.push((step_t(k) + jitter_ms, v));
                }
                series.push(Series {
                    labels: labels(&[
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", instance),
                        ("method", method),
                        ("code", code),
                    ]),
                    samples,
                });
            }
        }
        // A fractional counter at 30 s, one reset for the web job.
        let mut v = 10.0 * rng.f64();
        let mut samples = Vec::new();
        for k in (0..STEPS).step_by(2) {
            if *job == "web" && k == 250 {
                v = 0.25;
            } else {
                v += 0.4 * rng.f64();
            }
            samples.push((step_t(k), v));
        }
        series.push(Series {
            labels: labels(&[
                ("__name__", "process_cpu_seconds_total"),
                ("job", job),
                ("instance", instance),
            ]),
            samples,
        });
        // up: mostly 1, a few 0s.
        let samples = (0..STEPS)
            .map(|k| (step_t(k), if rng.below(25) == 0 { 0.0 } else { 1.0 }))
            .collect();
        series.push(Series {
            labels: labels(&[("__name__", "up"), ("job", job), ("instance", instance)]),
            samples,
        });
        // Integer gauge: a bounded random walk.
        let mut q: i64 = rng.below(10) as i64;
        let mut samples = Vec::new();
        for k in 0..STEPS {
            q = (q + rng.below(5) as i64 - 2).clamp(0, 20);
            samples.push((step_t(k), q as f64));
        }
        series.push(Series {
            labels: labels(&[
                ("__name__", "queue_length"),
                ("job", job),
                ("instance", instance),
            ]),
            samples,
        });
        // Info metric for group_left joins: one per target, constant 1.
        series.push(Series {
            labels: labels(&[
                ("__name__", "build_info"),
                ("job", job),
                ("instance", instance),
                ("version", if ti % 2 == 0 { "1.2.3" } else { "2.0.0-rc.1" }),
            ]),
            samples: (0..STEPS).step_by(4).map(|k| (step_t(k), 1.0)).collect(),
        });
    }

    // Fractional gauges around zero (negative values included), 2 sensors per node.
    for (job, instance) in TARGETS.iter().take(3) {
        for sensor in ["cpu", "board"] {
            let mut v = 5.0 * (rng.f64() - 0.5);
            let mut samples = Vec::new();
            for k in 0..STEPS {
                v += 0.8 * (rng.f64() - 0.5);
                samples.push((step_t(k), v));
            }
            series.push(Series {
                labels: labels(&[
                    ("__name__", "node_temperature_celsius"),
                    ("job", job),
                    ("instance", instance),
                    ("sensor", sensor),
                ]),
                samples,
            });
        }
    }

    // Classic histograms at 30 s for the api and web targets, one with a reset.
    const BOUNDS: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    for (ti, (job, instance)) in TARGETS.iter().take(4).enumerate() {
        let mut buckets = [0.0f64; 7];
        let mut sum = 0.0;
        let mut hs: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 9];
        for k in (0..STEPS).step_by(2) {
            if ti == 1 && k == 200 {
                buckets = [0.0; 7];
                sum = 0.0;
            }
            for _ in 0..(5 + rng.below(20)) {
                // Roughly exponential latencies, mean depending on the target.
                let x = -(1.0 - rng.f64()).ln() * (0.1 + 0.15 * ti as f64);
                sum += x;
                for (b, bound) in BOUNDS.iter().enumerate() {
                    let le: f64 = bound.parse().unwrap_or(f64::INFINITY);
                    if x <= le {
                        buckets[b] += 1.0;
                    }
                }
            }
            for b in 0..7 {
                hs[b].push((step_t(k), buckets[b]));
            }
            hs[7].push((step_t(k), sum));
            hs[8].push((step_t(k), buckets[6]));
        }
        for (b, samples) in hs.into_iter().enumerate() {
            let (name, le) = match b {
                0..=6 => ("request_duration_seconds_bucket", Some(BOUNDS[b])),
                7 => ("request_duration_seconds_sum", None),
                _ => ("request_duration_seconds_count", None),
            };
            let mut pairs = vec![("__name__", name), ("job", job), ("instance", instance)];
            if let Some(le) = le {
                pairs.push(("le", le));
            }
            series.push(Series {
                labels: labels(&pairs),
                samples,
            });
        }
    }

    // Gaps: a 10-minute hole (longer than the 5 m lookback) and a 4-minute one.
    for instance in ["g1", "g2"] {
        let mut samples = Vec::new();
        for k in 0..STEPS {
            let hole = (40..80).contains(&k) || (130..146).contains(&k);
            let hole = hole || (instance == "g2" && (300..340).contains(&k));
            if !hole {
                samples.push((step_t(k), (k % 17) as f64 - 3.5));
            }
        }
        series.push(Series {
            labels: labels(&[
                ("__name__", "gappy"),
                ("job", "gaps"),
                ("instance", instance),
            ]),
            samples,
        });
    }

    // Ends early: gone after 50 minutes (stale by absence).
    series.push(Series {
        labels: labels(&[
            ("__name__", "short_lived"),
            ("job", "batch"),
            ("instance", "host-e:9091"),
        ]),
        samples: (0..200).map(|k| (step_t(k), k as f64)).collect(),
    });

    // Explicit stale markers: up to step 160, marker; back at 300..360, marker.
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut samples: Vec<(i64, f64)> = (0..160).map(|k| (step_t(k), 2.0 * k as f64)).collect();
    samples.push((step_t(160), stale));
    samples.extend((300..360).map(|k| (step_t(k), 1000.0 - k as f64)));
    samples.push((step_t(360), stale));
    series.push(Series {
        labels: labels(&[
            ("__name__", "stale_marked"),
            ("job", "batch"),
            ("instance", "host-e:9091"),
        ]),
        samples,
    });

    // NaN and ±Inf among ordinary values.
    for kind in ["nan", "inf", "mixed"] {
        let mut samples = Vec::new();
        for k in 0..STEPS {
            let v = match (kind, k % 23) {
                ("nan", 5) | ("mixed", 7) => f64::NAN,
                ("inf", 9) | ("mixed", 13) => f64::INFINITY,
                ("inf", 17) | ("mixed", 19) => f64::NEG_INFINITY,
                _ => (k % 11) as f64 * 0.5 - 1.0,
            };
            samples.push((step_t(k), v));
        }
        series.push(Series {
            labels: labels(&[
                ("__name__", "odd_values"),
                ("job", "node"),
                ("instance", "host-a:9100"),
                ("kind", kind),
            ]),
            samples,
        });
    }
    // Magnitudes that overflow naive sums and averages, lose precision, or print with
    // an exponent; and -0.
    for (kind, base) in [
        ("max", 1.5e308),
        ("min", -1.7e308),
        ("precise", 1e15),
        ("tiny", 1e-300),
    ] {
        let samples = (0..STEPS)
            .map(|k| {
                let v = match kind {
                    "precise" => base + (k % 7) as f64 * 0.125,
                    "tiny" if k % 5 == 0 => -0.0,
                    _ => base * (1.0 - (k % 9) as f64 * 1e-3),
                };
                (step_t(k), v)
            })
            .collect();
        series.push(Series {
            labels: labels(&[("__name__", "huge_values"), ("job", "node"), ("kind", kind)]),
            samples,
        });
    }

    // Irregular timestamps (1 s to 90 s apart, any millisecond), a counter-like gauge
    // with a NaN in its middle, and label values JSON and regexes must escape.
    let mut t = start_ms + 321;
    let mut v = 0.0;
    let mut samples = Vec::new();
    while t <= start_ms + (STEPS - 1) * STEP_MS {
        v += rng.f64() * 3.0;
        samples.push((t, v));
        t += 1_000 + rng.below(89_000) as i64;
    }
    series.push(Series {
        labels: labels(&[
            ("__name__", "irregular_gauge"),
            ("job", "batch"),
            ("instance", "host-e:9091"),
        ]),
        samples,
    });
    let samples = (0..STEPS)
        .map(|k| (step_t(k), if k == 222 { f64::NAN } else { 3.0 * k as f64 }))
        .collect();
    series.push(Series {
        labels: labels(&[("__name__", "nan_counter_total"), ("job", "batch")]),
        samples,
    });
    for (i, path) in ["/a\"b\\c", "ü → <&>", "tab\there", "a.b*c"]
        .iter()
        .enumerate()
    {
        series.push(Series {
            labels: labels(&[("__name__", "weird_labels"), ("path", path), ("job", "api")]),
            samples: (0..STEPS)
                .map(|k| (step_t(k), (i as i64 * k) as f64))
                .collect(),
        });
    }
    Dataset { start_ms, series }
}
