//! Tombstones: data deleted by `delete_series` but not yet rewritten away.
//!
//! A tombstone is a matcher set and a time range. Every tombstone lives in one file,
//! `<data-dir>/blocks/tombstones` (JSON), which every shard loads when it opens and
//! shard 0 alone rewrites (temp file, fsync, rename, fsync of `blocks/`) before a
//! delete is answered. While a tombstone is listed, every read of every shard drops
//! the samples it covers, a flush leaves them out of the block it writes, and
//! `clean_tombstones` rewrites the blocks that hold them and then removes it.
//!
//! The file sits in `blocks/` so that whatever copies `blocks/` (a live backup, a
//! snapshot) copies the deletions with the data; start-up skips it, as it skips every
//! file there.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::block::SeriesChunks;
use crate::error::{Error, IoContext, Result};
use crate::head::encode_chunks;
use crate::layout;
use crate::model::{Labels, MatchOp, Matcher, Sample, matches_all};
use crate::storage::Storage;

/// Samples of the series matched by `matchers` in `[min_time_ms, max_time_ms]` are
/// deleted.
#[derive(Clone, Debug)]
pub struct Tombstone {
    /// Unique in the file; 0 until shard 0 hands one out.
    pub id: u64,
    pub matchers: Vec<Matcher>,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
}

impl Tombstone {
    /// Whether it deletes anything of `labels` in `[min, max]`.
    pub fn applies(&self, labels: &Labels, min_time_ms: i64, max_time_ms: i64) -> bool {
        self.min_time_ms <= max_time_ms
            && self.max_time_ms >= min_time_ms
            && matches_all(&self.matchers, labels)
    }
}

/// Every tombstone, in the order they were made.
#[derive(Clone, Debug, Default)]
pub struct Tombstones {
    entries: Vec<Tombstone>,
    next_id: u64,
}

#[derive(Serialize, Deserialize)]
struct FileMatcher {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct FileTombstone {
    id: u64,
    matchers: Vec<FileMatcher>,
    min_time: i64,
    max_time: i64,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    tombstones: Vec<FileTombstone>,
}

const VERSION: u32 = 1;

fn kind(op: &MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex(_) => "=~",
        MatchOp::NotRegex(_) => "!~",
    }
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Tombstone] {
        &self.entries
    }

    /// Adds `t`, handing it an id if it has none; a tombstone already listed (by id)
    /// is not added twice. Returns it as listed.
    pub fn add(&mut self, mut t: Tombstone) -> Tombstone {
        if t.id == 0 {
            self.next_id = self.next_id.max(1);
            t.id = self.next_id;
        }
        self.next_id = self.next_id.max(t.id.saturating_add(1));
        if !self.entries.iter().any(|e| e.id == t.id) {
            self.entries.push(t.clone());
        }
        t
    }

    /// Removes the tombstones with these ids.
    pub fn remove(&mut self, ids: &[u64]) {
        self.entries.retain(|e| !ids.contains(&e.id));
    }

    /// The deleted ranges of series `labels`, in no particular order.
    pub fn intervals(&self, labels: &Labels) -> Vec<(i64, i64)> {
        intervals(&self.entries, labels)
    }

    /// JSON, one object per tombstone.
    pub fn encode(&self) -> Vec<u8> {
        let file = File {
            version: VERSION,
            tombstones: self
                .entries
                .iter()
                .map(|t| FileTombstone {
                    id: t.id,
                    matchers: t
                        .matchers
                        .iter()
                        .map(|m| FileMatcher {
                            name: m.name.clone(),
                            kind: kind(&m.op).to_string(),
                            value: m.value.clone(),
                        })
                        .collect(),
                    min_time: t.min_time_ms,
                    max_time: t.max_time_ms,
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Tombstones> {
        let bad = |reason: String| Error::corrupt(path, 0, reason);
        let file: File = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not a tombstones file: {e}")))?;
        if file.version != VERSION {
            return Err(bad(format!("unknown tombstones version {}", file.version)));
        }
        let mut out = Tombstones::default();
        for t in file.tombstones {
            let mut matchers = Vec::with_capacity(t.matchers.len());
            for m in t.matchers {
                matchers.push(
                    Matcher::new(&m.name, &m.kind, &m.value)
                        .map_err(|e| bad(format!("tombstone {}: matcher: {e}", t.id)))?,
                );
            }
            if t.id == 0 {
                return Err(bad("tombstone with id 0".into()));
            }
            out.add(Tombstone {
                id: t.id,
                matchers,
                min_time_ms: t.min_time,
                max_time_ms: t.max_time,
            });
        }
        Ok(out)
    }

    /// The tombstones of the data dir; none when the file is absent.
    pub fn load_in(storage: &impl Storage, data_dir: &Path) -> Result<Tombstones> {
        let path = layout::tombstones_file(data_dir);
        match storage.read(&path) {
            Ok(bytes) => Tombstones::decode(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// Replaces the file durably (temp file, fsync, rename, fsync of `blocks/`), or
    /// removes it when no tombstone is left.
    pub fn store_in(&self, storage: &impl Storage, data_dir: &Path) -> Result<()> {
        let path = layout::tombstones_file(data_dir);
        let dir = layout::blocks_dir(data_dir);
        if self.entries.is_empty() {
            match storage.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
            }
        } else {
            // Not `.tmp`: start-up removes `.tmp` directories; it skips other files.
            let tmp = path.with_file_name(format!("{}.new", layout::TOMBSTONES_FILE));
            storage
                .write_file_synced(&tmp, &self.encode())
                .ctx(|| format!("write {}", tmp.display()))?;
            storage
                .rename(&tmp, &path)
                .ctx(|| format!("rename {} into place", tmp.display()))?;
        }
        storage
            .sync_dir(&dir)
            .ctx(|| format!("fsync {}", dir.display()))
    }
}

/// The deleted ranges of series `labels` under `entries`.
pub fn intervals(entries: &[Tombstone], labels: &Labels) -> Vec<(i64, i64)> {
    entries
        .iter()
        .filter(|t| matches_all(&t.matchers, labels))
        .map(|t| (t.min_time_ms, t.max_time_ms))
        .collect()
}

/// Drops the samples inside any of `intervals`; returns whether any was dropped.
pub fn filter_samples(intervals: &[(i64, i64)], samples: &mut Vec<Sample>) -> bool {
    let before = samples.len();
    samples.retain(|s| {
        !intervals
            .iter()
            .any(|&(lo, hi)| lo <= s.timestamp_ms && s.timestamp_ms <= hi)
    });
    samples.len() != before
}

/// `series` without the samples `entries` delete: a series they touch is decoded,
/// filtered and re-encoded, and left out when nothing remains. Returns the series
/// and whether anything was deleted.
pub fn drop_deleted(
    entries: &[Tombstone],
    series: Vec<SeriesChunks>,
) -> Result<(Vec<SeriesChunks>, bool)> {
    let mut out = Vec::with_capacity(series.len());
    let mut changed = false;
    for s in series {
        let (kept, deleted) = drop_deleted_one(entries, s)?;
        changed |= deleted;
        out.extend(kept);
    }
    Ok((out, changed))
}

/// [`drop_deleted`] of one series: the series without its deleted samples (`None`
/// when nothing remains) and whether anything was deleted.
pub fn drop_deleted_one(
    entries: &[Tombstone],
    s: SeriesChunks,
) -> Result<(Option<SeriesChunks>, bool)> {
    let deleted = intervals(entries, &s.labels);
    let touched = s.chunks.iter().any(|c| {
        deleted
            .iter()
            .any(|&(lo, hi)| lo <= c.max_time && c.min_time <= hi)
    });
    if !touched {
        return Ok((Some(s), false));
    }
    let mut samples = Vec::new();
    for c in &s.chunks {
        samples.extend(c.decode().map_err(|e| {
            Error::corrupt(
                s.labels.to_string(),
                0,
                format!("chunk does not decode: {}", e.0),
            )
        })?);
    }
    let changed = filter_samples(&deleted, &mut samples);
    let kept = (!samples.is_empty()).then(|| SeriesChunks {
        labels: s.labels,
        chunks: encode_chunks(&samples),
    });
    Ok((kept, changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Label;

    fn labels(name: &str, job: &str) -> Labels {
        Labels::new(vec![Label::new("__name__", name), Label::new("job", job)]).unwrap()
    }

    #[test]
    fn tombstones_round_trip_and_cover_only_their_series_and_range() {
        let mut ts = Tombstones::default();
        let a = ts.add(Tombstone {
            id: 0,
            matchers: vec![
                Matcher::equal("__name__", "up"),
                Matcher::new("job", "=~", "a|b").unwrap(),
            ],
            min_time_ms: 10,
            max_time_ms: 20,
        });
        let b = ts.add(Tombstone {
            id: 0,
            matchers: vec![Matcher::new("job", "!=", "c").unwrap()],
            min_time_ms: 100,
            max_time_ms: 100,
        });
        assert_eq!((a.id, b.id), (1, 2));
        // Adding a listed one again changes nothing.
        ts.add(a.clone());
        assert_eq!(ts.entries().len(), 2);

        let d = tempfile::tempdir().unwrap();
        let storage = crate::storage::DiskStorage;
        std::fs::create_dir_all(layout::blocks_dir(d.path())).unwrap();
        ts.store_in(&storage, d.path()).unwrap();
        let mut back = Tombstones::load_in(&storage, d.path()).unwrap();
        assert_eq!(back.encode(), ts.encode());
        assert_eq!(back.add(Tombstone { id: 0, ..b.clone() }).id, 3);

        let up_a = labels("up", "a");
        let mut iv = ts.intervals(&up_a);
        iv.sort();
        assert_eq!(iv, vec![(10, 20), (100, 100)]);
        assert_eq!(ts.intervals(&labels("up", "c")), vec![]);
        assert!(a.applies(&up_a, 20, 30));
        assert!(!a.applies(&up_a, 21, 30));
        let mut samples: Vec<Sample> = [5, 10, 15, 20, 21, 100]
            .iter()
            .map(|&t| Sample::new(t, 1.0))
            .collect();
        assert!(filter_samples(&iv, &mut samples));
        let left: Vec<i64> = samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(left, vec![5, 21]);
        assert!(!filter_samples(&iv, &mut samples));

        // Removing every tombstone removes the file.
        ts.remove(&[1, 2]);
        ts.store_in(&storage, d.path()).unwrap();
        assert!(!layout::tombstones_file(d.path()).exists());
        assert!(Tombstones::load_in(&storage, d.path()).unwrap().is_empty());
        std::fs::write(layout::tombstones_file(d.path()), b"{").unwrap();
        assert!(Tombstones::load_in(&storage, d.path()).is_err());
    }
}
