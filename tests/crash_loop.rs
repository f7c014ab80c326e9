//! Black-box crash loop: four writers send remote_write continuously while the server
//! is `kill -9`ed at seeded-random moments (some right after a flush or compaction
//! request, so the kill lands mid-flush or mid-compaction), restarted on the same data
//! dir, and checked through export: every acknowledged sample is there with its value,
//! no (series, timestamp) appears twice, and nothing appears that was never sent.
//!
//! `TSDB_CRASH_CYCLES=N` runs more cycles, `TSDB_CRASH_SEED=S` repeats a run (the seed
//! is printed at the start, so a failing run shows it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::load::{Ledger, Load};
use common::{Server, agent, count_from_env, seed_from_env};
use tsdb_engine::rng::Rng;

/// Warn lines a restart after kill -9 may log: a WAL record cut by the kill, and a
/// block directory the kill left half-written.
const AFTER_KILL: &[&str] = &[
    "truncated damaged WAL tail",
    "removing half-written block left by a crash",
];

/// Writer threads (connections), each owning its series.
const WRITERS: usize = 4;

/// What one crash loop did, for the summary line.
#[derive(Debug, Default)]
struct Summary {
    cycles: usize,
    kills_after_flush_request: usize,
    kills_after_compact_request: usize,
    restarts_removing_half_written_block: usize,
    restarts_truncating_wal_tail: usize,
    acked_samples: u64,
    acked_sample_checks: u64,
    unacked_survivors: u64,
}

fn start(dir: &Path, sync: &str) -> Server {
    Server::start(
        dir,
        &[
            &format!("--wal-sync={sync}"),
            // The smallest memtable: the head flushes every few hundred writes, so
            // kills land during flushes on their own too.
            "--memtable-size=1MB",
            "--shards=2",
            "--compaction-interval=1s",
        ],
    )
}

/// Sends an admin request from another thread; the kill may cut it off.
fn admin_in_background(server: &Server, route: &str) -> std::thread::JoinHandle<()> {
    let url = server.url(route);
    std::thread::spawn(move || {
        let _ = agent().post(&url).send(&b""[..]);
    })
}

fn crash_loop(sync: &str, default_cycles: usize) {
    let seed = seed_from_env("TSDB_CRASH_SEED");
    let cycles = count_from_env("TSDB_CRASH_CYCLES", default_cycles);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    // A sample a second: the head spans a block range every couple of seconds of this
    // load and flushes on its own, besides the memtable budget.
    let ledger = Ledger::new(WRITERS, 1000);
    let mut summary = Summary {
        cycles,
        ..Summary::default()
    };
    let mut server = start(dir.path(), sync);
    for cycle in 0..cycles {
        let acked_before = ledger.lock().unwrap().acked().samples();
        let load = Load::start(&server, &ledger);
        std::thread::sleep(Duration::from_millis(rng.range(150, 700)));
        let admin = match rng.range(0, 4) {
            2 => {
                summary.kills_after_flush_request += 1;
                Some(admin_in_background(&server, "/api/v1/admin/flush"))
            }
            3 => {
                summary.kills_after_compact_request += 1;
                Some(admin_in_background(&server, "/api/v1/admin/compact"))
            }
            _ => None,
        };
        if admin.is_some() {
            // Into the flush or compaction the request started (each takes a few to a
            // few tens of ms), or after it.
            std::thread::sleep(Duration::from_millis(rng.range(0, 60)));
        }
        server.assert_no_unexpected_warnings(AFTER_KILL);
        let killed_output = server.kill9();
        load.stop();
        if let Some(a) = admin {
            a.join().unwrap();
        }

        server = start(dir.path(), sync);
        let messages: Vec<String> = server
            .logs()
            .iter()
            .filter_map(|l| l["msg"].as_str().map(str::to_string))
            .collect();
        summary.restarts_removing_half_written_block += usize::from(
            messages
                .iter()
                .any(|m| m == "removing half-written block left by a crash"),
        );
        summary.restarts_truncating_wal_tail +=
            usize::from(messages.iter().any(|m| m == "truncated damaged WAL tail"));
        // A flush's block is in place before the checkpoint names it, so a crash never
        // leaves the checkpoint naming a missing block (only a live backup does).
        assert!(
            !messages
                .iter()
                .any(|m| m.starts_with("the block of the last flush is missing")),
            "cycle {cycle}: a crash left the checkpoint naming a missing block\n{}",
            server.output()
        );
        let l = ledger.lock().unwrap();
        let acked = l.acked();
        assert!(
            acked.samples() > acked_before,
            "cycle {cycle}: no write was acknowledged ({} requests attempted in all)",
            l.attempted_requests()
        );
        let report = match l.check(&server, &acked) {
            Ok(r) => r,
            Err(e) => {
                let kept = dir.keep();
                panic!(
                    "cycle {cycle} (seed {seed}): {e}\ndata dir kept at {}:\n{}\n\
                     killed server's output:\n{killed_output}\nrestarted server's output:\n{}",
                    kept.display(),
                    common::tree(&kept),
                    server.output()
                );
            }
        };
        summary.acked_sample_checks += report.acked_checked;
        summary.acked_samples = acked.samples();
        summary.unacked_survivors = report.unacked_present;
    }
    server.assert_no_unexpected_warnings(AFTER_KILL);
    let (status, out) = server.terminate();
    assert!(status.success(), "exit status {status:?}\n{out}");
    eprintln!(
        "crash loop --wal-sync={sync}: seed {seed}, {} cycles ({} kills right after a \
         flush request, {} after a compaction request; {} restarts removed a half-written \
         block, {} truncated a torn WAL tail); {} acknowledged samples, all present after \
         every restart ({} sample checks); {} unacknowledged samples survived",
        summary.cycles,
        summary.kills_after_flush_request,
        summary.kills_after_compact_request,
        summary.restarts_removing_half_written_block,
        summary.restarts_truncating_wal_tail,
        summary.acked_samples,
        summary.acked_sample_checks,
        summary.unacked_survivors,
    );
}

#[test]
fn kill_9_loop_with_sync_always_loses_no_acknowledged_sample() {
    let started = Instant::now();
    crash_loop("always", 50);
    eprintln!("took {:.1} s", started.elapsed().as_secs_f64());
}

/// With `interval`, a write is acknowledged once it is in the page cache, which a
/// killed process cannot take back: a process crash loses nothing acknowledged even
/// here. (What `wal.sync_interval` bounds is the loss to a power cut or kernel crash,
/// which the deterministic simulation measures.)
#[test]
fn kill_9_loop_with_sync_interval_loses_no_acknowledged_sample() {
    crash_loop("interval", 10);
}
