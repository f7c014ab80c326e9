//! Continuous remote_write load for the crash and backup tests: writer threads that
//! each own their series and record in a shared [`Ledger`] exactly which samples were
//! attempted and which were acknowledged, and the check of a server's data against it.
//!
//! Sample `seq` of series `k` of writer `w` has a timestamp and a value that are
//! functions of `(w, k, seq)` alone, so a sample read back can be traced to the write
//! that sent it, and a wrong value, a duplicate or a sample nobody sent is caught.
//! Sequence numbers come from one counter shared by all writers, so every writer's
//! timestamps advance together, as scraped data does: a writer that falls behind does
//! not end up hours behind the others (a head spanning 2 h of timestamps flushes on
//! every write, which is another test's matter).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{Server, agent, now_ms, remote_write_body};

/// The metric every load series carries.
pub const METRIC: &str = "load";
/// Series each writer owns (`load{writer="w", s="k"}`).
pub const SERIES_PER_WRITER: u64 = 2;
/// Samples per series in one request.
pub const SAMPLES_PER_REQUEST: u64 = 10;
/// How far before now the first sample lies: far enough that a long run (hundreds of
/// thousands of samples per series) stays in the past, well inside the default 30 d
/// retention.
const BASE_AGO_MS: i64 = 10 * 24 * 3_600_000;

/// One request a writer sent: samples `first_seq..first_seq + SAMPLES_PER_REQUEST` of
/// each of its series.
#[derive(Clone, Copy, Debug)]
struct Request {
    first_seq: u64,
    acked: bool,
}

/// What one writer has sent.
#[derive(Clone, Debug, Default)]
struct WriterLog {
    requests: Vec<Request>,
}

/// Everything every writer attempted, and which of it was acknowledged (2xx).
#[derive(Debug)]
pub struct Ledger {
    base_ms: i64,
    /// Spacing of a series' samples.
    step_ms: i64,
    /// The first sample of the next request, whichever writer sends it.
    next_seq: u64,
    writers: Vec<WriterLog>,
}

/// Per writer, the first sequence numbers of the requests acknowledged at one moment.
#[derive(Clone, Debug, Default)]
pub struct Acked(Vec<Vec<u64>>);

impl Acked {
    /// Samples these requests hold.
    pub fn samples(&self) -> u64 {
        self.0.iter().map(|r| r.len() as u64).sum::<u64>() * SAMPLES_PER_REQUEST * SERIES_PER_WRITER
    }
}

/// What [`Ledger::check`] found (it panics on any loss or stray sample).
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckReport {
    /// Acknowledged samples found with their value.
    pub acked_checked: u64,
    /// Samples attempted but not acknowledged that are there anyway (allowed: the
    /// server may have written them before it died).
    pub unacked_present: u64,
}

/// The value of sample `seq` of series `k` of writer `w`: exact in an f64 and unique
/// to the triple.
pub fn value(w: usize, k: u64, seq: u64) -> f64 {
    ((w as u64 * SERIES_PER_WRITER + k) * 1_000_000_000 + seq) as f64
}

impl Ledger {
    /// A ledger for `writers` writers whose series have a sample every `step_ms`. The
    /// step sets how fast the head spans a block range (2 h) and so how often it
    /// flushes on its own: at 1 s, every few seconds under this load; at 1 ms, never
    /// within a test.
    pub fn new(writers: usize, step_ms: i64) -> Arc<Mutex<Ledger>> {
        Arc::new(Mutex::new(Ledger {
            base_ms: (now_ms() - BASE_AGO_MS).div_euclid(60_000) * 60_000,
            step_ms,
            next_seq: 0,
            writers: vec![WriterLog::default(); writers],
        }))
    }

    /// The timestamp of sample `seq` (the same for every series).
    pub fn timestamp_ms(&self, seq: u64) -> i64 {
        self.base_ms + seq as i64 * self.step_ms
    }

    /// The requests acknowledged so far.
    pub fn acked(&self) -> Acked {
        Acked(
            self.writers
                .iter()
                .map(|w| {
                    w.requests
                        .iter()
                        .filter(|r| r.acked)
                        .map(|r| r.first_seq)
                        .collect()
                })
                .collect(),
        )
    }

    /// Requests sent so far (acknowledged or not).
    pub fn attempted_requests(&self) -> usize {
        self.writers.iter().map(|w| w.requests.len()).sum()
    }

    /// Checks the server's load series against the ledger: every sample of `must_have`
    /// is there with its value; no (series, timestamp) appears twice; every sample
    /// there was attempted by its writer and has the value that writer sent. `Err` says
    /// what is wrong.
    pub fn check(&self, server: &Server, must_have: &Acked) -> Result<CheckReport, String> {
        let mut stored: BTreeMap<(usize, u64), Vec<(i64, f64)>> = BTreeMap::new();
        for line in server.export(METRIC) {
            let metric = &line["metric"];
            let w: usize = metric["writer"].as_str().unwrap().parse().unwrap();
            let k: u64 = metric["s"].as_str().unwrap().parse().unwrap();
            let points = super::points(&line);
            if stored.insert((w, k), points).is_some() {
                return Err(format!("series writer={w} s={k} exported twice"));
            }
        }
        let mut report = CheckReport::default();
        for (w, log) in self.writers.iter().enumerate() {
            // Which request each sequence number belongs to, and whether it was acked.
            let sent: BTreeMap<u64, bool> = log
                .requests
                .iter()
                .map(|r| (r.first_seq, r.acked))
                .collect();
            let required = must_have.0.get(w).cloned().unwrap_or_default();
            for k in 0..SERIES_PER_WRITER {
                let points = stored.remove(&(w, k)).unwrap_or_default();
                let by_ts: BTreeMap<i64, f64> = points.iter().copied().collect();
                if by_ts.len() != points.len() {
                    return Err(format!("writer {w} series {k}: a timestamp appears twice"));
                }
                for &first in &required {
                    for seq in first..first + SAMPLES_PER_REQUEST {
                        let t = self.timestamp_ms(seq);
                        match by_ts.get(&t) {
                            Some(&v) if v == value(w, k, seq) => {}
                            Some(&v) => {
                                return Err(format!(
                                    "writer {w} series {k} sample {seq}: value {v}, sent {}",
                                    value(w, k, seq)
                                ));
                            }
                            None => {
                                return Err(format!(
                                    "writer {w} series {k}: acknowledged sample {seq} (t={t}) lost"
                                ));
                            }
                        }
                    }
                }
                report.acked_checked += required.len() as u64 * SAMPLES_PER_REQUEST;
                for (&t, &v) in &by_ts {
                    let offset = t - self.base_ms;
                    if offset < 0 || offset % self.step_ms != 0 {
                        return Err(format!(
                            "writer {w} series {k}: timestamp {t} was never sent"
                        ));
                    }
                    let seq = (offset / self.step_ms) as u64;
                    let first = seq - seq % SAMPLES_PER_REQUEST;
                    let Some(&acked) = sent.get(&first) else {
                        return Err(format!(
                            "writer {w} series {k}: sample {seq} (t={t}) was never attempted"
                        ));
                    };
                    if v != value(w, k, seq) {
                        return Err(format!(
                            "writer {w} series {k} sample {seq}: value {v}, sent {}",
                            value(w, k, seq)
                        ));
                    }
                    if !acked {
                        report.unacked_present += 1;
                    }
                }
            }
        }
        if !stored.is_empty() {
            return Err(format!(
                "series nobody wrote: {:?}",
                stored.keys().collect::<Vec<_>>()
            ));
        }
        Ok(report)
    }
}

/// Writer threads sending continuously to one server until stopped or until the
/// server stops answering.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts one thread per writer of `ledger`, each on its own connection.
    pub fn start(server: &Server, ledger: &Arc<Mutex<Ledger>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = ledger.lock().unwrap().writers.len();
        let threads = (0..writers)
            .map(|w| {
                let (url, stop, ledger) =
                    (server.url("/api/v1/write"), stop.clone(), ledger.clone());
                std::thread::spawn(move || write_until_stopped(&url, w, &stop, &ledger))
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the writers and waits for them (each finishes the request it is in).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// One writer's loop. A request is entered in the ledger as attempted before it is
/// sent and marked acknowledged only on a 2xx answer; the first transport failure (the
/// server was killed) ends the loop, so nothing is retried with the same samples. A
/// refusal from a live server fails the test.
fn write_until_stopped(url: &str, w: usize, stop: &AtomicBool, ledger: &Mutex<Ledger>) {
    let agent = agent();
    let writer = w.to_string();
    let names: Vec<String> = (0..SERIES_PER_WRITER).map(|k| k.to_string()).collect();
    while !stop.load(Ordering::Relaxed) {
        let (timestamps, first_seq, index) = {
            let mut l = ledger.lock().unwrap();
            let first_seq = l.next_seq;
            l.next_seq += SAMPLES_PER_REQUEST;
            let timestamps: Vec<i64> = (first_seq..first_seq + SAMPLES_PER_REQUEST)
                .map(|seq| l.timestamp_ms(seq))
                .collect();
            let log = &mut l.writers[w];
            log.requests.push(Request {
                first_seq,
                acked: false,
            });
            (timestamps, first_seq, log.requests.len() - 1)
        };
        let series: Vec<_> = (0..SERIES_PER_WRITER)
            .map(|k| {
                let labels = vec![
                    ("__name__", METRIC),
                    ("writer", writer.as_str()),
                    ("s", names[k as usize].as_str()),
                ];
                let samples = (first_seq..first_seq + SAMPLES_PER_REQUEST)
                    .zip(&timestamps)
                    .map(|(seq, &t)| (t, value(w, k, seq)))
                    .collect();
                (labels, samples)
            })
            .collect();
        let body = remote_write_body(&series);
        let answer = agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .send(&body[..]);
        match answer {
            Ok(r) if r.status().is_success() => {
                ledger.lock().unwrap().writers[w].requests[index].acked = true;
            }
            // A running server must accept every write of this load.
            Ok(mut r) => panic!(
                "writer {w}: write refused with {}: {}",
                r.status(),
                r.body_mut().read_to_string().unwrap_or_default()
            ),
            // The server died (or was killed) with the request in flight.
            Err(_) => break,
        }
    }
}
