//! The WAL checkpoint: which segments the flushed blocks have made obsolete, one line
//! per recent flush ("generation").
//!
//! When the head is flushed, the writer first cuts a new segment `S`; once the block
//! `B` holding everything before `S` is durable, the checkpoint is rewritten
//! atomically (temp file, fsync, rename) with the generation `(S, B, next_ref)` added,
//! and only then are segments deleted — not those below `S`, but those below the cut
//! of the flush [`WAL_FLUSH_GENERATIONS_KEPT`] generations earlier. The segments of the
//! last generations stay on disk for whoever copies `wal/` after `blocks/` while the
//! server runs (the operations guide's live backup): if `B` is missing from that copy,
//! start-up finds no `B` and replays those older segments as well ([`plan_replay`]).
//!
//! The limit of that guarantee: a copy of `blocks/` followed by a copy of `wal/` loses
//! the data of a flush that happened between them only if more than
//! `WAL_FLUSH_GENERATIONS_KEPT` flushes did (the older segments are deleted by then).
//!
//! A crash between any two steps leaves either the old segments (replayed again;
//! duplicate samples are dropped by timestamp) or a checkpoint that says which ones
//! start-up may delete.
//!
//! Format (text, so an operator can read it): a line `tsdb-checkpoint 2`, then one
//! line per generation, oldest first: `<first needed segment> <block ULID> <next
//! series ref>`. Version 1 was a single decimal segment number.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::limits::WAL_FLUSH_GENERATIONS_KEPT;
use crate::storage::{DiskStorage, Storage};

pub const FILE: &str = crate::layout::CHECKPOINT_FILE;

/// The first line of a version 2 checkpoint.
const HEADER_V2: &str = "tsdb-checkpoint 2";

/// One flush: segments below `first_needed` hold only data that is in `block` or in
/// blocks flushed before it, and every series ref they use is below `next_ref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub first_needed: u64,
    /// The flushed block; `None` for a version 1 checkpoint, which did not say.
    pub block: Option<String>,
    pub next_ref: u64,
}

/// What start-up does with a shard's WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Replay segments from this one on; delete those below it (their data is in
    /// blocks that are present).
    pub replay_from: u64,
    /// Series refs below this may be in segments kept on disk but not replayed, so
    /// new refs start at least here.
    pub next_ref_min: u64,
    /// The newest flushed block, when it is missing (a backup copied `blocks/` before
    /// it was written): older segments are replayed instead.
    pub missing_block: Option<String>,
}

/// Reads the checkpoint of a shard's WAL directory, oldest generation first: empty
/// when there is none or it is unreadable (then everything is replayed, which is
/// always safe).
pub fn read_generations(dir: &Path) -> Vec<Generation> {
    read_generations_in(&DiskStorage, dir)
}

/// [`read_generations`] on any storage.
pub fn read_generations_in(storage: &impl Storage, dir: &Path) -> Vec<Generation> {
    let Ok(bytes) = storage.read(&dir.join(FILE)) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    parse(&text).unwrap_or_else(|| {
        // `tsdb inspect-wal` reports the same file as damage.
        tracing::warn!(
            dir = %dir.display(),
            content = ?text,
            "WAL checkpoint does not parse: ignored, every segment is replayed"
        );
        Vec::new()
    })
}

/// The first segment the newest flush still needs (0 when there is no checkpoint).
pub fn read(dir: &Path) -> u64 {
    read_in(&DiskStorage, dir)
}

/// [`read`] on any storage.
pub fn read_in(storage: &impl Storage, dir: &Path) -> u64 {
    read_generations_in(storage, dir)
        .last()
        .map_or(0, |g| g.first_needed)
}

pub(crate) fn parse(text: &str) -> Option<Vec<Generation>> {
    let mut lines = text.lines();
    let first = lines.next()?.trim();
    if first != HEADER_V2 {
        // Version 1: one segment number.
        return Some(vec![Generation {
            first_needed: first.parse().ok()?,
            block: None,
            next_ref: 0,
        }]);
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let (Some(seq), Some(block), Some(next_ref), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return None;
        };
        out.push(Generation {
            first_needed: seq.parse().ok()?,
            // `-`: a generation carried over from a version 1 checkpoint.
            block: (block != "-").then(|| block.to_string()),
            next_ref: next_ref.parse().ok()?,
        });
    }
    Some(out)
}

fn encode(generations: &[Generation]) -> String {
    let mut out = format!("{HEADER_V2}\n");
    for g in generations {
        out.push_str(&format!(
            "{} {} {}\n",
            g.first_needed,
            g.block.as_deref().unwrap_or("-"),
            g.next_ref
        ));
    }
    out
}

/// Durably records a flush, keeping the last `WAL_FLUSH_GENERATIONS_KEPT + 1`
/// generations. Returns the segment below which everything may now be deleted.
pub fn record_flush(dir: &Path, flush: Generation) -> Result<u64> {
    record_flush_in(&DiskStorage, dir, flush)
}

/// [`record_flush`] on any storage.
pub fn record_flush_in(storage: &impl Storage, dir: &Path, flush: Generation) -> Result<u64> {
    let mut generations = read_generations_in(storage, dir);
    generations.push(flush);
    let keep = WAL_FLUSH_GENERATIONS_KEPT + 1;
    if generations.len() > keep {
        generations.drain(..generations.len() - keep);
    }
    write(storage, dir, &generations)?;
    // Only when `keep` generations are recorded is the oldest one's cut known to be
    // a point before which the last `WAL_FLUSH_GENERATIONS_KEPT` flushes need nothing.
    Ok(if generations.len() == keep {
        generations.first().map_or(0, |g| g.first_needed)
    } else {
        0
    })
}

/// Chooses where replay starts: at the newest generation whose block is present
/// (`present(ulid)`: the block, or a compacted block that lists it among its
/// sources), since everything before its cut is in blocks; if none is, at the first
/// segment on disk.
pub fn plan_replay(generations: &[Generation], present: impl Fn(&str) -> bool) -> ReplayPlan {
    let next_ref_min = generations.iter().map(|g| g.next_ref).max().unwrap_or(0);
    let start = generations
        .iter()
        .rposition(|g| g.block.as_deref().is_none_or(&present));
    let newest = generations.len().checked_sub(1);
    ReplayPlan {
        replay_from: start
            .and_then(|i| generations.get(i))
            .map_or(0, |g| g.first_needed),
        next_ref_min,
        missing_block: if start == newest {
            None
        } else {
            generations.last().and_then(|g| g.block.clone())
        },
    }
}

fn write(storage: &impl Storage, dir: &Path, generations: &[Generation]) -> Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let path = dir.join(FILE);
    storage
        .write_file_synced(&tmp, encode(generations).as_bytes())
        .ctx(|| format!("write {}", tmp.display()))?;
    storage
        .rename(&tmp, &path)
        .ctx(|| format!("rename {}", tmp.display()))?;
    sync_dir(storage, dir)
}

/// fsyncs a directory so a rename or create in it is durable.
pub fn sync_dir(storage: &impl Storage, dir: &Path) -> Result<()> {
    storage
        .sync_dir(dir)
        .ctx(|| format!("fsync dir {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(first_needed: u64, block: &str, next_ref: u64) -> Generation {
        Generation {
            first_needed,
            block: Some(block.to_string()),
            next_ref,
        }
    }

    #[test]
    fn flushes_keep_the_last_generations_and_delete_one_late() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()), 0);
        // The first flush deletes nothing: segments below 3 are the kept generation.
        assert_eq!(record_flush(d.path(), generation(3, "A", 10)).unwrap(), 0);
        assert_eq!(read(d.path()), 3);
        assert_eq!(record_flush(d.path(), generation(7, "B", 25)).unwrap(), 3);
        assert_eq!(record_flush(d.path(), generation(9, "C", 30)).unwrap(), 7);
        assert_eq!(
            read_generations(d.path()),
            vec![generation(7, "B", 25), generation(9, "C", 30)]
        );
        assert_eq!(read(d.path()), 9);
    }

    #[test]
    fn replay_starts_after_the_newest_block_present() {
        let gens = [generation(7, "B", 25), generation(9, "C", 30)];
        let all = plan_replay(&gens, |_| true);
        assert_eq!(
            all,
            ReplayPlan {
                replay_from: 9,
                next_ref_min: 30,
                missing_block: None
            }
        );
        // A backup copied blocks/ before C was written: replay from B's cut.
        let no_c = plan_replay(&gens, |b| b != "C");
        assert_eq!(no_c.replay_from, 7);
        assert_eq!(no_c.missing_block.as_deref(), Some("C"));
        // Neither block: everything still on disk.
        assert_eq!(plan_replay(&gens, |_| false).replay_from, 0);
        assert_eq!(plan_replay(&[], |_| false).replay_from, 0);
    }

    #[test]
    fn version_1_and_damaged_checkpoints_are_read_safely() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE), "42\n").unwrap();
        let v1 = read_generations(d.path());
        assert_eq!(v1.len(), 1);
        assert_eq!(plan_replay(&v1, |_| false).replay_from, 42);
        // The next flush writes version 2 and deletes below the version 1 cut, which
        // stays a generation without a block (always taken as present).
        assert_eq!(record_flush(d.path(), generation(50, "A", 3)).unwrap(), 42);
        let upgraded = read_generations(d.path());
        assert_eq!(upgraded[0].block, None);
        assert_eq!(plan_replay(&upgraded, |_| false).replay_from, 42);
        std::fs::write(d.path().join(FILE), "tsdb-checkpoint 2\n7 B\n").unwrap();
        assert!(
            read_generations(d.path()).is_empty(),
            "damaged: replay everything"
        );
    }

    #[test]
    fn doc_example_matches_encoder() {
        let doc = include_str!("../../docs/format/wal.md");
        let want = crate::block::doc_block(doc, "checkpoint");
        let gens = [
            generation(41, "01JD3XQ8Z7A2B3C4D5E6F7G8H9", 1200),
            generation(57, "01JD3ZT4K9M0N1P2Q3R4S5T6V7", 1315),
        ];
        assert_eq!(
            encode(&gens),
            want,
            "wal.md's checkpoint example is out of date"
        );
        assert_eq!(parse(&want).unwrap(), gens);
    }
}
