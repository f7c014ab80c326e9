//! Black-box: the upgrade-by-switchover drill of docs/OPERATIONS.md, step by step,
//! under continuous remote_write load.
//!
//! Instance A takes writes from several writers. `POST /api/v1/admin/readonly` on A
//! makes it answer 503; each writer then keeps the refused batch and resends it, as a
//! Prometheus remote_write queue does. A's data dir is copied with `rsync -a`, instance
//! B (the "new version") starts on the copy on another port, the writers are switched
//! to B and resend there, and A is stopped. Every sample acknowledged by A or by B must
//! then be on B with its value, once, and nothing else, and again after B restarts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, agent, remote_write_body};

const WRITERS: usize = 3;
const SERIES_PER_WRITER: u64 = 2;
const SAMPLES_PER_BATCH: u64 = 20;
/// Spacing of a series' samples: small, so the heads never span a block range and the
/// only flush is the test's.
const STEP_MS: i64 = 10;
const ARGS: &[&str] = &["--shards=2"];

/// Who acknowledged a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ack {
    A,
    B,
}

/// What the writers sent and which instance acknowledged each batch.
struct Shared {
    base_ms: i64,
    /// The URL writers send to; switched from A's to B's.
    target: Mutex<(Ack, String)>,
    /// Per writer, batch number → who acknowledged it (`None`: not yet).
    batches: Mutex<Vec<BTreeMap<u64, Option<Ack>>>>,
    /// Per writer, 503 answers received.
    refused: Vec<AtomicUsize>,
    stop: AtomicBool,
}

fn value(w: usize, k: u64, seq: u64) -> f64 {
    ((w as u64 * SERIES_PER_WRITER + k) * 1_000_000_000 + seq) as f64
}

impl Shared {
    fn timestamp_ms(&self, seq: u64) -> i64 {
        self.base_ms + seq as i64 * STEP_MS
    }

    fn acked_by(&self, who: Ack) -> usize {
        let b = self.batches.lock().unwrap();
        b.iter()
            .flat_map(|w| w.values())
            .filter(|a| **a == Some(who))
            .count()
    }

    fn writers_acked_by(&self, who: Ack, after: &[u64]) -> bool {
        let b = self.batches.lock().unwrap();
        b.iter()
            .zip(after)
            .all(|(w, &after)| w.range(after..).any(|(_, a)| *a == Some(who)))
    }

    fn next_batch(&self) -> Vec<u64> {
        let b = self.batches.lock().unwrap();
        b.iter().map(|w| w.len() as u64).collect()
    }
}

/// One writer: batch after batch; a 503 keeps the batch, to be resent (to whichever
/// instance is the target by then) after a pause.
fn writer(w: usize, shared: &Shared) {
    let agent = agent();
    let writer = w.to_string();
    let names: Vec<String> = (0..SERIES_PER_WRITER).map(|k| k.to_string()).collect();
    let mut batch = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        shared.batches.lock().unwrap()[w].insert(batch, None);
        let first = batch * SAMPLES_PER_BATCH;
        let series: Vec<_> = (0..SERIES_PER_WRITER)
            .map(|k| {
                let labels = vec![
                    ("__name__", "switchover"),
                    ("writer", writer.as_str()),
                    ("s", names[k as usize].as_str()),
                ];
                let samples = (first..first + SAMPLES_PER_BATCH)
                    .map(|seq| (shared.timestamp_ms(seq), value(w, k, seq)))
                    .collect();
                (labels, samples)
            })
            .collect();
        let body = remote_write_body(&series);
        loop {
            let (who, url) = shared.target.lock().unwrap().clone();
            let mut r = agent
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .send(&body[..])
                .unwrap_or_else(|e| panic!("writer {w}: {url}: {e}"));
            match r.status().as_u16() {
                200..=299 => {
                    shared.batches.lock().unwrap()[w].insert(batch, Some(who));
                    break;
                }
                503 => {
                    shared.refused[w].fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
                s => panic!(
                    "writer {w}: {url} answered {s}: {}",
                    r.body_mut().read_to_string().unwrap_or_default()
                ),
            }
        }
        batch += 1;
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn admin(server: &Server, route: &str) {
    let (status, body) = server.post(route, "text/plain", b"");
    assert_eq!(status, 204, "{route}: {body}");
}

/// Checks B's `switchover` series against what was acknowledged; returns the samples
/// checked.
fn check(shared: &Shared, b: &Server) -> u64 {
    let mut stored: BTreeMap<(usize, u64), Vec<(i64, f64)>> = BTreeMap::new();
    for line in b.export("switchover") {
        let w: usize = line["metric"]["writer"].as_str().unwrap().parse().unwrap();
        let k: u64 = line["metric"]["s"].as_str().unwrap().parse().unwrap();
        assert!(
            stored.insert((w, k), common::points(&line)).is_none(),
            "series writer={w} s={k} exported twice"
        );
    }
    let batches = shared.batches.lock().unwrap();
    let mut checked = 0;
    for (w, sent) in batches.iter().enumerate() {
        for k in 0..SERIES_PER_WRITER {
            let points = stored.remove(&(w, k)).unwrap_or_default();
            let by_ts: BTreeMap<i64, f64> = points.iter().copied().collect();
            assert_eq!(
                by_ts.len(),
                points.len(),
                "writer {w} s={k}: a sample appears twice"
            );
            let mut expected = BTreeMap::new();
            for (&batch, ack) in sent {
                assert!(
                    ack.is_some(),
                    "writer {w}: batch {batch} was never acknowledged"
                );
                for seq in batch * SAMPLES_PER_BATCH..(batch + 1) * SAMPLES_PER_BATCH {
                    expected.insert(shared.timestamp_ms(seq), value(w, k, seq));
                }
            }
            for (t, v) in &expected {
                match by_ts.get(t) {
                    Some(got) => assert_eq!(got, v, "writer {w} s={k} t={t}: wrong value"),
                    None => panic!("writer {w} s={k}: acknowledged sample t={t} is not on B"),
                }
            }
            assert_eq!(
                by_ts.len(),
                expected.len(),
                "writer {w} s={k}: B holds samples nobody acknowledged"
            );
            checked += expected.len() as u64;
        }
    }
    assert!(
        stored.is_empty(),
        "series nobody wrote: {:?}",
        stored.keys()
    );
    checked
}

#[test]
fn switchover_to_a_copy_loses_and_duplicates_nothing() {
    let ok = std::process::Command::new("rsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "rsync is needed: apt-get install rsync (.ci/run installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = Server::start(&data_a, ARGS);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let shared = Arc::new(Shared {
        base_ms: now_ms - 3_600_000,
        target: Mutex::new((Ack::A, a.url("/api/v1/write"))),
        batches: Mutex::new(vec![BTreeMap::new(); WRITERS]),
        refused: (0..WRITERS).map(|_| AtomicUsize::new(0)).collect(),
        stop: AtomicBool::new(false),
    });
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let shared = shared.clone();
            std::thread::spawn(move || writer(w, &shared))
        })
        .collect();

    // Load on A, with one flush so the copy holds blocks as well as a WAL.
    wait_for("A to acknowledge writes", Duration::from_secs(10), || {
        shared.acked_by(Ack::A) >= 20
    });
    admin(&a, "/api/v1/admin/flush");
    std::thread::sleep(Duration::from_millis(300));

    // 1. A read-only: every writer is refused and holds its batch.
    admin(&a, "/api/v1/admin/readonly");
    wait_for(
        "every writer to be refused by A",
        Duration::from_secs(10),
        || shared.refused.iter().all(|r| r.load(Ordering::Relaxed) > 0),
    );
    let (status, body) = a.get("/api/v1/query?query=count(switchover)");
    assert_eq!(
        status, 200,
        "a read-only A must still answer queries: {body}"
    );
    let acked_by_a = shared.acked_by(Ack::A);

    // 2. Copy A's data dir, as the guide does.
    let out = std::process::Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", data_a.display()))
        .arg(format!("{}/", data_b.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {out:?}");

    // 3. B, the new version, on the copy.
    let b = Server::start(&data_b, ARGS);

    // 4. Switch the writers; they resend what A refused.
    let switched_at = shared.next_batch();
    *shared.target.lock().unwrap() = (Ack::B, b.url("/api/v1/write"));
    wait_for(
        "every writer to be acknowledged by B",
        Duration::from_secs(10),
        || shared.writers_acked_by(Ack::B, &switched_at),
    );
    assert_eq!(
        shared.acked_by(Ack::A),
        acked_by_a,
        "A acknowledged a write while read-only"
    );

    // 5. Stop A; B goes on taking writes.
    a.assert_no_unexpected_warnings(&[]);
    let (status, out) = a.terminate();
    assert!(status.success(), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let checked = check(&shared, &b);
    let acked_by_b = shared.acked_by(Ack::B);
    let refused: usize = shared
        .refused
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .sum();
    b.assert_no_unexpected_warnings(&[]);
    let (status, out) = b.terminate();
    assert!(status.success(), "{out}");
    // The new instance's data outlives its own restart: what it took is in its WAL.
    let b = Server::start(&data_b, ARGS);
    assert_eq!(check(&shared, &b), checked);
    b.assert_no_unexpected_warnings(&[]);
    let (status, out) = b.terminate();
    assert!(status.success(), "{out}");
    eprintln!(
        "switchover drill: {acked_by_a} batches acknowledged by A, {acked_by_b} by B \
         (the read-only A refused {refused} sends; each refused batch was resent), \
         {checked} samples on B, each once"
    );
}
