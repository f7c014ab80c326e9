//! Size on disk: each system is asked to persist and compact what it holds, in its
//! own way, and then the directory that holds its compressed form is measured.
//!
//! - tsdb: `POST /api/v1/admin/flush` (the head into blocks), then
//!   `POST /api/v1/admin/compact`; its live blocks (the `blocks` directory without the
//!   compacted parents, which stay 10 minutes for a live backup and are measured apart
//!   as `kept_parents`). The WAL segments a flush keeps for one more generation (so a
//!   live backup can copy them) are measured apart too, as `kept_wal`: they go at the
//!   next flush.
//! - Prometheus: keeps two hours in its head and has no flush, so
//!   `POST /api/v1/admin/tsdb/snapshot` writes the head as a block into a snapshot
//!   directory; that directory (its compressed on-disk form) is measured.
//! - VictoriaMetrics: `/internal/force_flush` then `/internal/force_merge`, then the
//!   whole storage directory once its size has stopped changing.
//! - InfluxDB: configured to snapshot its cache and fully compact a few seconds after
//!   the last write (see peers.rs); its data and WAL directories once that time has
//!   passed and the size has stopped changing.
//!
//! Waits are bounded; a size that did not settle is measured anyway and reported as
//! such. Sizes are allocated blocks (what `du` counts), because InfluxDB preallocates
//! sparse index files; the apparent size (what `du -b` counts) is reported too.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::peers::{self, Peer, System};

/// How long a size may take to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// InfluxDB's configured cold durations (peers.rs), plus its once-a-second check and
/// a margin.
const INFLUX_COLD: Duration = Duration::from_secs(8);
/// How often the size is read while waiting.
const POLL: Duration = Duration::from_millis(500);
/// Readings in a row that must agree before the size counts as settled.
const STABLE_READINGS: usize = 4;

/// Apparent and allocated bytes of the files under a directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Sum of file lengths.
    pub apparent_bytes: u64,
    /// Sum of blocks allocated (512-byte units × 512).
    pub allocated_bytes: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            apparent_bytes: self.apparent_bytes + o.apparent_bytes,
            allocated_bytes: self.allocated_bytes + o.allocated_bytes,
        }
    }
}

/// Usage of everything under `dir`, recursively; unreadable entries count as 0, since
/// files come and go while a server compacts.
pub fn usage(dir: &Path) -> Usage {
    let Ok(entries) = fs::read_dir(dir) else {
        return Usage::default();
    };
    entries
        .flatten()
        .map(|e| entry_usage(&e.path()))
        .fold(Usage::default(), |a, b| a + b)
}

/// Usage of one directory entry: a file's own, a directory's recursively (0 when it
/// vanished meanwhile).
fn entry_usage(path: &Path) -> Usage {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => usage(path),
        Ok(m) => Usage {
            apparent_bytes: m.len(),
            allocated_bytes: m.blocks() * 512,
        },
        Err(_) => Usage::default(),
    }
}

/// The size on disk after persisting and compacting.
#[derive(Clone, Debug, Serialize)]
pub struct OnDisk {
    /// What was done and measured, in words.
    pub method: &'static str,
    /// Time from the first request to the measurement (flush, compaction, waits).
    pub seconds: f64,
    /// False when the size was still changing when the wait ran out.
    pub settled: bool,
    #[serde(flatten)]
    pub usage: Usage,
    /// tsdb only: its `wal` directory after the flush, the segments kept for one
    /// more flush generation (deleted by the next flush), not in `usage`.
    pub kept_wal: Option<Usage>,
    /// tsdb only: compacted parents still on disk for their grace period (10
    /// minutes, for a live backup), not in `usage`.
    pub kept_parents: Option<Usage>,
}

/// Usage of a tsdb `blocks` directory split into live blocks (and the files beside
/// them, such as tombstones) and compacted parents: block directories that another
/// block's `meta.json` names in `compaction.parents`.
fn tsdb_blocks(blocks: &Path) -> (Usage, Usage) {
    let Ok(entries) = fs::read_dir(blocks) else {
        return (Usage::default(), Usage::default());
    };
    let entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    let parents: std::collections::HashSet<String> = entries
        .iter()
        .filter_map(|p| fs::read(p.join("meta.json")).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .flat_map(|m| {
            m.pointer("/compaction/parents")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    let (mut live, mut retired) = (Usage::default(), Usage::default());
    for p in &entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let u = entry_usage(p);
        if parents.contains(name) {
            retired = retired + u;
        } else {
            live = live + u;
        }
    }
    (live, retired)
}

/// Persists and compacts `peer`'s data and measures it (see the module doc).
pub fn settle(peer: &Peer) -> Result<OnDisk, String> {
    let started = Instant::now();
    let agent = peers::agent(Duration::from_secs(1800));
    let base = peer.url.trim_end_matches('/');
    let dir = &peer.data_dir;
    // `kept`: tsdb's WAL and compacted parents held for a live backup.
    let (method, settled, usage, kept) = match peer.system {
        System::Tsdb => {
            peers::call(&agent, "POST", &format!("{base}/api/v1/admin/flush"))?;
            peers::call(&agent, "POST", &format!("{base}/api/v1/admin/compact"))?;
            let (live, parents) = tsdb_blocks(&dir.join("blocks"));
            (
                "admin/flush + admin/compact; live blocks (compacted parents and the WAL kept for a live backup apart)",
                true,
                live,
                Some((usage(&dir.join("wal")), parents)),
            )
        }
        System::Prometheus => {
            let url = format!("{base}/api/v1/admin/tsdb/snapshot");
            let body = peers::call(&agent, "POST", &url)?;
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| format!("POST {url}: answer is not JSON: {e}"))?;
            let name = v
                .pointer("/data/name")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("POST {url}: no data.name in the answer"))?;
            // A name from the server becomes a path: refuse anything but one plain
            // component.
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!("POST {url}: odd snapshot name {name:?}"));
            }
            (
                "admin/tsdb/snapshot (head written as a block); snapshot dir",
                true,
                usage(&dir.join("snapshots").join(name)),
                None,
            )
        }
        System::VictoriaMetrics => {
            peers::call(&agent, "GET", &format!("{base}/internal/force_flush"))?;
            peers::call(&agent, "GET", &format!("{base}/internal/force_merge"))?;
            let (settled, u) = wait_stable(std::slice::from_ref(dir), |_| true);
            (
                "internal/force_flush + force_merge, size stable; storage dir",
                settled,
                u,
                None,
            )
        }
        System::Influxdb => {
            // Its cache snapshot and full compaction start 5 s after the last write,
            // checked once a second. A WAL segment replayed at the restart may stay
            // on disk after the snapshot, so the wait is for that time and a stable
            // size, not for an empty WAL.
            let (settled, u) = wait_stable(&[dir.join("data"), dir.join("wal")], |_| {
                started.elapsed() > INFLUX_COLD
            });
            (
                "cache snapshot + full compaction 5 s after the last write, size stable; data + wal dirs",
                settled,
                u,
                None,
            )
        }
    };
    Ok(OnDisk {
        method,
        seconds: started.elapsed().as_secs_f64(),
        settled,
        usage,
        kept_wal: kept.map(|(wal, _)| wal),
        kept_parents: kept.map(|(_, parents)| parents),
    })
}

/// Polls the total usage of `dirs` until `STABLE_READINGS` readings in a row agree
/// and `done` holds, or `SETTLE_TIMEOUT`; returns whether it settled, and the last
/// reading.
fn wait_stable(dirs: &[PathBuf], done: impl Fn(&Usage) -> bool) -> (bool, Usage) {
    let started = Instant::now();
    let read = || {
        dirs.iter()
            .map(|d| usage(d))
            .fold(Usage::default(), |a, b| a + b)
    };
    let mut last = read();
    let mut agreeing = 1;
    loop {
        if agreeing >= STABLE_READINGS && done(&last) {
            return (true, last);
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            return (false, last);
        }
        std::thread::sleep(POLL);
        let now = read();
        agreeing = if now == last { agreeing + 1 } else { 1 };
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_parents_are_counted_apart_from_live_blocks() {
        let dir = peers::fresh_dir("test-blocks").unwrap();
        let meta = |parents: &[&str]| {
            serde_json::json!({"compaction": {"level": 2, "parents": parents}}).to_string()
        };
        for (name, parents, bytes) in [
            ("A", vec![], 5000),
            ("B", vec![], 7000),
            ("M", vec!["A", "B"], 9000),
        ] {
            fs::create_dir(dir.join(name)).unwrap();
            fs::write(dir.join(name).join("meta.json"), meta(&parents)).unwrap();
            fs::write(dir.join(name).join("chunks"), vec![1u8; bytes]).unwrap();
        }
        fs::write(dir.join("tombstones"), [1u8; 10]).unwrap();
        let (live, retired) = tsdb_blocks(&dir);
        let meta_len = |p: &[&str]| meta(p).len() as u64;
        assert_eq!(live.apparent_bytes, 9000 + meta_len(&["A", "B"]) + 10);
        assert_eq!(retired.apparent_bytes, 5000 + 7000 + 2 * meta_len(&[]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn usage_sums_recursively_and_counts_sparse_files_as_allocated() {
        let dir = peers::fresh_dir("test").unwrap();
        fs::create_dir(dir.join("a")).unwrap();
        fs::write(dir.join("x"), [1u8; 10]).unwrap();
        fs::write(dir.join("a/y"), [1u8; 5]).unwrap();
        let sparse = fs::File::create(dir.join("sparse")).unwrap();
        sparse.set_len(1 << 22).unwrap();
        let u = usage(&dir);
        assert_eq!(u.apparent_bytes, 15 + (1 << 22));
        // Two small files take a block or two each; the sparse one takes none.
        assert!(
            u.allocated_bytes > 0 && u.allocated_bytes < 1 << 20,
            "{u:?}"
        );
        let (settled, again) = wait_stable(std::slice::from_ref(&dir), |_| true);
        assert!(settled);
        assert_eq!(again, u);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(usage(&dir), Usage::default());
    }
}
