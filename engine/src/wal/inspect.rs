//! `tsdb inspect-wal`: a read-only report of one shard's WAL or of every shard's.
//!
//! It reads the segments with the same functions replay uses
//! ([`reader::read_segment`], [`reader::missing_segments`]), so the damage it reports
//! is the damage the next start will log, at the same segment and offset, with the
//! same bytes dropped. It opens files for reading only: nothing on disk changes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::reader::{self, Damage, ReplayStats};
use super::record::Record;
use super::{checkpoint, segment};
use crate::error::{Error, IoContext, Result};
use crate::layout;
use crate::storage::{DiskStorage, Storage};

/// The tool reads the real disk, through the one seam the engine uses for files.
const DISK: DiskStorage = DiskStorage;

/// One segment file as inspected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    pub name: String,
    pub bytes: u64,
    /// Whole records read before the end or the first damage.
    pub records: u64,
    /// Below the checkpoint: its data is in a block and the next start deletes it.
    pub obsolete: bool,
}

/// The report of one shard's WAL directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardReport {
    pub shard: u32,
    pub dir: PathBuf,
    /// The first segment still needed, when a `checkpoint` file says so.
    pub checkpoint: Option<u64>,
    pub segments: Vec<SegmentReport>,
    /// Distinct series introduced by series records.
    pub series: u64,
    /// Samples whose series is known (what replay loads into the head).
    pub samples: u64,
    /// Samples naming a series whose record was lost (replay drops them).
    pub orphan_samples: u64,
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
    pub damage: Vec<Damage>,
}

/// The report of a WAL root or of one shard's directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WalReport {
    /// The shard count recorded under the WAL root, when the root was inspected.
    pub recorded_shards: Option<u32>,
    pub shards: Vec<ShardReport>,
}

impl WalReport {
    pub fn damage_count(&self) -> usize {
        self.shards.iter().map(|s| s.damage.len()).sum()
    }
}

/// Inspects `dir`: a shard's WAL directory (named by its shard number, holding
/// segments) or a WAL root (holding `<shard>/` directories). Errors are I/O errors
/// or a directory that is neither.
pub fn inspect(dir: &Path) -> Result<WalReport> {
    let meta = DISK
        .metadata(dir)
        .ctx(|| format!("inspect {}", dir.display()))?;
    if !meta.is_dir {
        return Err(not_a_wal(dir, "not a directory"));
    }
    let shard_dirs = shard_dirs(dir)?;
    let has_segments = !segment::list(dir)?.is_empty() || exists(&dir.join(checkpoint::FILE));
    let is_root = !shard_dirs.is_empty() || exists(&dir.join(layout::WAL_SHARDS_FILE));
    if is_root && !has_segments {
        let recorded_shards = super::shard_count::read(dir)?;
        let shards = shard_dirs
            .iter()
            .map(|(shard, path)| inspect_shard(path, *shard))
            .collect::<Result<_>>()?;
        return Ok(WalReport {
            recorded_shards,
            shards,
        });
    }
    let shard = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| {
            not_a_wal(
                dir,
                "neither a WAL root (holding <shard>/ directories) nor a shard's WAL directory (named by its shard number)",
            )
        })?;
    Ok(WalReport {
        recorded_shards: None,
        shards: vec![inspect_shard(dir, shard)?],
    })
}

fn not_a_wal(dir: &Path, why: &str) -> Error {
    Error::BadRequest(format!("{}: {why}", dir.display()))
}

/// The `<n>/` directories of a WAL root, by shard number.
pub fn shard_dirs(root: &Path) -> Result<Vec<(u32, PathBuf)>> {
    shard_dirs_in(&DISK, root)
}

/// [`shard_dirs`] on any storage.
pub fn shard_dirs_in(storage: &impl Storage, root: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match storage.read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("list {}", root.display()), e)),
    };
    for entry in entries {
        let Ok(shard) = entry.name.parse::<u32>() else {
            continue;
        };
        // `0`, `1`… only: `01` would parse but is not a name tsdb writes.
        if entry.name != shard.to_string() || !entry.is_dir {
            continue;
        }
        out.push((shard, root.join(&entry.name)));
    }
    out.sort();
    Ok(out)
}

/// Inspects one shard's WAL directory, as replay would read it, changing nothing.
pub fn inspect_shard(dir: &Path, shard: u32) -> Result<ShardReport> {
    let mut report = ShardReport {
        shard,
        dir: dir.to_path_buf(),
        ..ShardReport::default()
    };
    let checkpoint_path = dir.join(checkpoint::FILE);
    let text = DISK
        .read(&checkpoint_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let first = match text {
        Ok(text) => match checkpoint::parse(&text) {
            // The newest flush's cut: older segments are kept one flush generation for
            // a live backup and are not replayed while that flush's block is present.
            Some(generations) => {
                let seq = generations.last().map_or(0, |g| g.first_needed);
                report.checkpoint = Some(seq);
                seq
            }
            None => {
                // Replay treats an unreadable checkpoint as none and replays everything.
                report.damage.push(Damage {
                    segment: checkpoint::FILE.to_string(),
                    offset: 0,
                    bytes_dropped: 0,
                    reason: format!("checkpoint {text:?} does not parse; ignored"),
                    truncated: false,
                });
                0
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(Error::io(format!("read {}", checkpoint_path.display()), e)),
    };
    let segments = segment::list(dir)?;
    let live: Vec<u64> = segments
        .iter()
        .map(|s| s.seq)
        .filter(|&s| s >= first)
        .collect();
    let mut gaps = reader::missing_segments(&live, first)
        .into_iter()
        .peekable();
    let mut series = HashSet::new();
    for seg in &segments {
        let name = layout::segment_name(seg.seq);
        let file = DISK
            .open_read(&seg.path)
            .ctx(|| format!("open {}", seg.path.display()))?;
        let len = file
            .file_len()
            .ctx(|| format!("stat {}", seg.path.display()))?;
        let obsolete = seg.seq < first;
        if obsolete {
            report.segments.push(SegmentReport {
                name,
                bytes: len,
                records: 0,
                obsolete,
            });
            continue;
        }
        while let Some(gap) = gaps.next_if(|g| g.before_seq <= seg.seq) {
            report.damage.push(gap.damage);
        }
        let mut stats = ReplayStats::default();
        let damage = reader::read_segment(&*file, shard, &name, &mut stats, &mut |rec| {
            count_record(&mut report, &mut series, rec);
        })
        .ctx(|| format!("read {}", seg.path.display()))?;
        report.segments.push(SegmentReport {
            name,
            bytes: len,
            records: stats.records,
            obsolete,
        });
        report.damage.extend(damage);
    }
    report.series = series.len() as u64;
    Ok(report)
}

fn count_record(report: &mut ShardReport, series: &mut HashSet<u64>, rec: Record) {
    match rec {
        Record::Series(list) => series.extend(list.into_iter().map(|(r, _)| r)),
        Record::Samples(batch) => {
            for (r, s) in batch {
                if !series.contains(&r) {
                    report.orphan_samples += 1;
                    continue;
                }
                report.samples += 1;
                let t = s.timestamp_ms;
                report.min_time_ms = Some(report.min_time_ms.map_or(t, |m| m.min(t)));
                report.max_time_ms = Some(report.max_time_ms.map_or(t, |m| m.max(t)));
            }
        }
    }
}

fn exists(path: &Path) -> bool {
    DISK.metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;
    use crate::wal::record;

    fn segment_bytes(shard: u32, samples: &[(u64, i64)]) -> Vec<u8> {
        let mut buf = segment::header(shard).to_vec();
        let s: Vec<_> = samples
            .iter()
            .map(|&(r, t)| (r, Sample::new(t, 1.0)))
            .collect();
        record::encode_samples(&mut buf, &s);
        buf
    }

    fn series_bytes(shard: u32) -> Vec<u8> {
        let mut buf = segment::header(shard).to_vec();
        let labels =
            crate::model::Labels::new(vec![crate::model::Label::new("__name__", "up")]).unwrap();
        record::encode_series(&mut buf, [(7, &labels)].into_iter());
        buf
    }

    #[test]
    fn reports_segments_counts_and_a_gap_without_changing_anything() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("0");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("00000001"), series_bytes(0)).unwrap();
        std::fs::write(dir.join("00000002"), segment_bytes(0, &[(7, 5), (7, 9)])).unwrap();
        // 00000003 is missing.
        let mut torn = segment_bytes(0, &[(7, 20), (8, 21)]);
        torn.extend_from_slice(&[9, 0, 0]);
        std::fs::write(dir.join("00000004"), &torn).unwrap();
        let before: Vec<Vec<u8>> = ["00000001", "00000002", "00000004"]
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect();

        let report = inspect(root.path()).unwrap();
        assert_eq!(report.shards.len(), 1);
        let s = &report.shards[0];
        assert_eq!((s.series, s.samples, s.orphan_samples), (1, 3, 1));
        assert_eq!((s.min_time_ms, s.max_time_ms), (Some(5), Some(20)));
        let records: Vec<u64> = s.segments.iter().map(|g| g.records).collect();
        assert_eq!(records, vec![1, 1, 1]);
        assert_eq!(s.damage.len(), 2, "{:?}", s.damage);
        assert_eq!(s.damage[0].segment, "00000003");
        assert!(s.damage[0].reason.contains("missing"));
        assert_eq!(s.damage[1].segment, "00000004");
        assert_eq!(s.damage[1].offset, torn.len() as u64 - 3);
        assert_eq!(s.damage[1].bytes_dropped, 3);
        // The shard directory alone gives the same report.
        assert_eq!(inspect(&dir).unwrap().shards[0], *s);
        let after: Vec<Vec<u8>> = ["00000001", "00000002", "00000004"]
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn a_directory_that_is_no_wal_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("notes");
        std::fs::create_dir(&plain).unwrap();
        assert!(matches!(inspect(&plain), Err(Error::BadRequest(_))));
        assert!(matches!(
            inspect(&d.path().join("absent")),
            Err(Error::Io { .. })
        ));
    }
}
