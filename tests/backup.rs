//! Black-box: the operations guide's live backup drill. While writers ingest over
//! several connections, the guide's commands back up the running server —
//! `rsync -av --link-dest=<latest> $DATA_DIR/blocks/ $BACKUP/blocks/`, then
//! `rsync -av $DATA_DIR/wal/ $BACKUP/wal/`, then `ln -sfn $BACKUP latest` — and the
//! guide's restore (`rsync -av $BACKUP/ <fresh dir>/`) must start cleanly and serve
//! every sample acknowledged before the copy began.
//!
//! The race is forced: round 1 flushes the head and compacts between the `blocks/` and
//! the `wal/` copy; round 2 (incremental, `--link-dest` to round 1) does both while the
//! `blocks/` copy is under way, slowed with `--bwlimit` so they land inside it.
//! `TSDB_BACKUP_ROUNDS=N` repeats the pair of rounds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a black-box test fails loudly on any unexpected step"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::load::{Ledger, Load};
use common::{Server, count_from_env};

/// The one warn line a restore may log: the live WAL segment was copied while a
/// record was being written, so its copy ends in a torn record, which is cut off.
const TORN_TAIL: &str = "truncated damaged WAL tail";

/// The start of the info line of a shard whose newest flushed block is not in the
/// restored copy.
const MISSING_BLOCK: &str = "the block of the last flush is missing";

const WRITERS: usize = 4;

/// Server flags: the default memtable (256 MB), so the head flushes only when the
/// test asks; compaction only when asked, too.
const ARGS: &[&str] = &["--shards=2", "--compaction-interval=1h"];

/// Where the race is forced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Race {
    /// Flush and compact after the `blocks/` copy, before the `wal/` copy.
    BetweenCopies,
    /// Flush and compact while the `blocks/` copy runs.
    DuringBlocksCopy,
}

/// rsync's exit code for "some files vanished before they could be transferred": a
/// warning, which the guide's script does not act on. The restored data decides
/// whether anything that mattered was lost.
const RSYNC_VANISHED: i32 = 24;

fn rsync_command() -> Command {
    let ok = Command::new("rsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "rsync is needed for the backup drill: apt-get install rsync (.ci/run installs it)"
    );
    Command::new("rsync")
}

/// Fails the test unless rsync succeeded or only saw files vanish.
fn check_rsync(what: &str, status: std::process::ExitStatus, output: &str) {
    match status.code() {
        Some(0) => {}
        Some(RSYNC_VANISHED) => eprintln!("{what}: files vanished during the copy:\n{output}"),
        _ => panic!("{what}: {status}\n{output}"),
    }
}

/// Runs rsync with `args` to completion.
fn rsync(args: &[&str]) {
    let out = rsync_command().args(args).output().unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    check_rsync(&format!("rsync {args:?}"), out.status, &output);
}

/// `dir` with a trailing slash, as rsync wants a directory's contents.
fn contents(dir: &Path) -> String {
    format!("{}/", dir.display())
}

fn admin(server: &Server, route: &str) {
    let (status, body) = server.post(route, "text/plain", b"");
    assert_eq!(status, 204, "{route}: {body}");
}

/// Flushes the head into a block and merges the blocks: the two things that delete
/// files under a running backup (WAL segments, compacted parents).
fn flush_and_compact(server: &Server) {
    admin(server, "/api/v1/admin/flush");
    admin(server, "/api/v1/admin/compact");
}

/// The guide's `blocks/` copy, slowed when the race must land inside it. Returns once
/// the copy has finished; `during` runs once rsync has started copying.
fn copy_blocks(data: &Path, backup: &Path, latest: &Path, slow: bool, during: impl FnOnce()) {
    let link_dest = format!("--link-dest={}", latest.display());
    let src = contents(&data.join("blocks"));
    let dst = contents(&backup.join("blocks"));
    if !slow {
        rsync(&["-av", &link_dest, &src, &dst]);
        during();
        return;
    }
    // A quarter of the blocks' size per second: what is not hard-linked from the last
    // backup (at least the last flush's block and the merged block, about half)
    // takes seconds to copy however fast this machine ingests.
    let bwlimit_kib = (dir_bytes(&data.join("blocks")) / 1024 / 4).max(16);
    let mut child = rsync_command()
        .args([
            "-av",
            &format!("--bwlimit={bwlimit_kib}"),
            &link_dest,
            &src,
            &dst,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // rsync has listed the source once it creates the first block directory in the
    // copy; the flush and compaction then run while it copies.
    while std::fs::read_dir(backup.join("blocks"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "rsync never started copying"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    during();
    let still_copying = child.try_wait().unwrap().is_none();
    let status = child.wait().unwrap();
    check_rsync("rsync of blocks/", status, "(its messages are above)");
    assert!(
        still_copying,
        "the blocks/ copy ended before the flush and compaction: the race did not happen"
    );
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Files in `dir`'s `blocks/` (block directories) for the failure message.
fn block_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("blocks"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// One backup round against the running `server`, then its restore and check.
fn round(server: &Server, ledger: &Arc<Mutex<Ledger>>, root: &Path, name: &str, race: Race) -> u64 {
    let data = server.data_dir.clone();
    let backup = root.join(name);
    let latest = root.join("latest");
    // The guide's script lacks this step: rsync creates only the last component of
    // its destination, so `$BACKUP_DIR/blocks/` fails (code 11) for a new
    // `$BACKUP_DIR` unless it is made first.
    std::fs::create_dir_all(&backup).unwrap();
    let acked_before = ledger.lock().unwrap().acked();
    match race {
        Race::BetweenCopies => {
            copy_blocks(&data, &backup, &latest, false, || flush_and_compact(server));
        }
        Race::DuringBlocksCopy => {
            copy_blocks(&data, &backup, &latest, true, || flush_and_compact(server));
        }
    }
    rsync(&[
        "-av",
        &contents(&data.join("wal")),
        &contents(&backup.join("wal")),
    ]);
    let status = Command::new("ln")
        .arg("-sfn")
        .arg(&backup)
        .arg(&latest)
        .status()
        .unwrap();
    assert!(status.success());

    // The guide's restore: into an empty data dir, then start.
    let restored: PathBuf = root.join(format!("{name}-restored"));
    std::fs::create_dir(&restored).unwrap();
    rsync(&["-av", &contents(&backup), &contents(&restored)]);
    let r = Server::start(&restored, ARGS);
    let checked = ledger.lock().unwrap().check(&r, &acked_before);
    let report = checked.unwrap_or_else(|e| {
        panic!(
            "{name} ({race:?}): {e}\nlive blocks: {:?}\nbacked-up blocks: {:?}\n\
                 data dir:\n{}\nbackup:\n{}\nrestored server's output:\n{}\n\
                 live server's output:\n{}",
            block_names(&data),
            block_names(&backup),
            common::tree(&data),
            common::tree(&backup),
            r.output(),
            server.output()
        )
    });
    let torn: Vec<_> = r
        .logs()
        .into_iter()
        .filter(|l| l["msg"] == TORN_TAIL)
        .collect();
    for l in &torn {
        assert!(
            l["bytes_dropped"].as_u64().unwrap() > 0 && l["segment"].is_string(),
            "the torn-tail line must say what was dropped: {l}"
        );
    }
    // The flush between (or during) the copies wrote a block the `blocks/` copy lacks;
    // the restore must have noticed and replayed the WAL it was made from.
    let missing = r
        .logs()
        .into_iter()
        .filter(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with(MISSING_BLOCK))
        })
        .count();
    assert!(
        missing > 0,
        "{name}: no shard missed its last flushed block: the race did not happen\n{}",
        r.output()
    );
    r.assert_no_unexpected_warnings(&[TORN_TAIL]);
    let (status, out) = r.terminate();
    assert!(status.success(), "{out}");
    eprintln!(
        "{name}: {} acknowledged samples restored; {missing} shards replayed the WAL of a \
         block missing from the copy; {} torn WAL tails cut off",
        report.acked_checked,
        torn.len()
    );
    report.acked_checked
}

#[test]
fn live_rsync_backup_restores_everything_acknowledged_before_it_began() {
    let rounds = count_from_env("TSDB_BACKUP_ROUNDS", 1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("backup");
    std::fs::create_dir_all(&root).unwrap();
    let server = Server::start(&data, ARGS);
    // A sample every millisecond: the head never spans a block range on its own, so
    // the only flushes are the test's.
    let ledger = Ledger::new(WRITERS, 1);
    let load = Load::start(&server, &ledger);
    let mut checked = 0;
    for r in 0..rounds {
        // Blocks for the compaction to merge, and a head in the WAL.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            admin(&server, "/api/v1/admin/flush");
        }
        std::thread::sleep(Duration::from_millis(300));
        for (name, race) in [
            (format!("r{r}-between"), Race::BetweenCopies),
            (format!("r{r}-during"), Race::DuringBlocksCopy),
        ] {
            let started = Instant::now();
            checked += round(&server, &ledger, &root, &name, race);
            eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    load.stop();
    server.assert_no_unexpected_warnings(&[]);
    let (status, out) = server.terminate();
    assert!(status.success(), "{out}");
    eprintln!(
        "live backup drill: {} rounds, {checked} acknowledged samples found in the restored copies",
        rounds * 2
    );
}
