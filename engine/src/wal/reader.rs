//! Reads a shard's WAL back on start and repairs a damaged tail.
//!
//! Segments are read in order from the checkpoint on. In the last segment, the first
//! record that is torn, zero-filled or corrupt ends the log: the file is truncated
//! there and a warn line says how many bytes were dropped. In an earlier segment a bad
//! record stops that segment's replay with an error line (the bytes are left on disk for
//! inspection) and replay goes on with the next segment.

use std::path::{Path, PathBuf};

use super::record::{self, Framed, Record};
use super::segment;
use crate::error::{Error, Result};
use crate::layout;
use crate::limits::WAL_RECORD_BYTES_MAX;

/// Damage found while reading a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub segment: String,
    pub offset: u64,
    pub bytes_dropped: u64,
    pub reason: String,
    /// Whether the segment was truncated at `offset` (only the last segment is).
    pub truncated: bool,
}

/// What a replay read.
#[derive(Clone, Debug, Default)]
pub struct ReplayStats {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// The highest segment number seen (the writer starts after it).
    pub last_seq: Option<u64>,
    pub damage: Vec<Damage>,
}

/// How a replay treats damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Truncate a damaged last segment (what the server does on start).
    TruncateTail,
    /// Change nothing (what `tsdb inspect-wal` does).
    ReadOnly,
}

/// Replays the segments of `dir` from `first_seq` on, calling `on_record` for every
/// record in order.
pub fn replay(
    dir: &Path,
    shard: u32,
    first_seq: u64,
    repair: Repair,
    mut on_record: impl FnMut(Record),
) -> Result<ReplayStats> {
    let segments: Vec<_> = segment::list(dir)?
        .into_iter()
        .filter(|s| s.seq >= first_seq)
        .collect();
    let mut stats = ReplayStats::default();
    let last_index = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        stats.segments += 1;
        stats.last_seq = Some(seg.seq);
        let buf = std::fs::read(&seg.path)
            .map_err(|e| Error::io(format!("read wal segment {}", seg.path.display()), e))?;
        stats.bytes += buf.len() as u64;
        let is_last = i == last_index;
        let name = layout::segment_name(seg.seq);
        if let Some(d) = read_segment(&buf, shard, &name, &mut stats, &mut on_record) {
            let truncated = is_last && repair == Repair::TruncateTail;
            let damage = Damage { truncated, ..d };
            if truncated {
                if damage.offset == 0 && buf.len() <= segment::HEADER_BYTES {
                    // A kill while the segment was being created left less than its
                    // header and no record. Truncating it to 0 bytes would leave a
                    // headerless segment in the middle of the log once the writer
                    // starts the next one, reported as damage at every start; a whole
                    // header makes it an empty segment.
                    rewrite_header(&seg.path, shard)?;
                } else {
                    truncate(&seg.path, damage.offset)?;
                }
                tracing::warn!(
                    shard,
                    segment = %name,
                    offset = damage.offset,
                    bytes_dropped = damage.bytes_dropped,
                    reason = %damage.reason,
                    "truncated damaged WAL tail"
                );
            } else if repair == Repair::TruncateTail {
                tracing::error!(
                    shard,
                    segment = %name,
                    offset = damage.offset,
                    bytes_dropped = damage.bytes_dropped,
                    reason = %damage.reason,
                    "damaged WAL segment: replay of this segment stopped here; later segments are still replayed"
                );
            }
            stats.damage.push(damage);
        }
    }
    Ok(stats)
}

/// Reads the records of one segment; returns the damage that ended it early, if any.
fn read_segment(
    buf: &[u8],
    shard: u32,
    name: &str,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(Record),
) -> Option<Damage> {
    let damage = |offset: usize, reason: String| Damage {
        segment: name.to_string(),
        offset: offset as u64,
        bytes_dropped: (buf.len() - offset.min(buf.len())) as u64,
        reason,
        truncated: false,
    };
    match segment::parse_header(buf) {
        Ok(owner) if owner == shard => {}
        Ok(owner) => {
            return Some(damage(
                0,
                format!("segment belongs to shard {owner}, not shard {shard}"),
            ));
        }
        Err(reason) => return Some(damage(0, reason)),
    }
    let mut offset = segment::HEADER_BYTES;
    loop {
        let rest = buf.get(offset..).unwrap_or_default();
        match record::read_frame(rest, WAL_RECORD_BYTES_MAX) {
            Framed::End => return None,
            Framed::Zeros => return Some(damage(offset, "zero-filled tail".into())),
            Framed::Truncated => return Some(damage(offset, "torn record".into())),
            Framed::Corrupt(reason) => return Some(damage(offset, reason)),
            Framed::Record { body, bytes } => match record::decode(body) {
                Ok(rec) => {
                    stats.records += 1;
                    on_record(rec);
                    offset += bytes;
                }
                Err(reason) => {
                    return Some(damage(offset, format!("undecodable record: {reason}")));
                }
            },
        }
    }
}

fn truncate(path: &PathBuf, len: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| {
            Error::io(
                format!("open wal segment {} to truncate", path.display()),
                e,
            )
        })?;
    f.set_len(len).and_then(|()| f.sync_all()).map_err(|e| {
        Error::io(
            format!("truncate wal segment {} to {len}", path.display()),
            e,
        )
    })
}

fn rewrite_header(path: &PathBuf, shard: u32) -> Result<()> {
    std::fs::write(path, segment::header(shard))
        .and_then(|()| std::fs::File::open(path)?.sync_all())
        .map_err(|e| {
            Error::io(
                format!("rewrite header of wal segment {}", path.display()),
                e,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;

    fn write_segment(dir: &Path, seq: u64, shard: u32, records: &[u8]) -> PathBuf {
        let path = dir.join(layout::segment_name(seq));
        let mut buf = segment::header(shard).to_vec();
        buf.extend_from_slice(records);
        std::fs::write(&path, buf).unwrap();
        path
    }

    fn samples_record(n: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        let s: Vec<_> = (0..n)
            .map(|i| (i, Sample::new(i as i64, i as f64)))
            .collect();
        record::encode_samples(&mut buf, &s);
        buf
    }

    fn count(dir: &Path, repair: Repair) -> (u64, ReplayStats) {
        let mut n = 0;
        let stats = replay(dir, 0, 0, repair, |r| {
            if let Record::Samples(s) = r {
                n += s.len() as u64;
            }
        })
        .unwrap();
        (n, stats)
    }

    #[test]
    fn torn_tail_is_truncated_at_every_offset() {
        let a = samples_record(3);
        let b = samples_record(2);
        for cut in 1..b.len() {
            let d = tempfile::tempdir().unwrap();
            let mut recs = a.clone();
            recs.extend_from_slice(&b[..cut]);
            let path = write_segment(d.path(), 1, 0, &recs);
            let (n, stats) = count(d.path(), Repair::TruncateTail);
            assert_eq!(n, 3, "cut {cut}");
            assert_eq!(stats.damage.len(), 1);
            assert_eq!(stats.damage[0].bytes_dropped, cut as u64);
            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(len, (segment::HEADER_BYTES + a.len()) as u64);
            // A second replay finds nothing wrong.
            let (n, stats) = count(d.path(), Repair::TruncateTail);
            assert_eq!((n, stats.damage.len()), (3, 0));
        }
    }

    #[test]
    fn a_torn_segment_header_becomes_an_empty_segment() {
        let d = tempfile::tempdir().unwrap();
        write_segment(d.path(), 1, 0, &samples_record(3));
        let torn = d.path().join(layout::segment_name(2));
        std::fs::write(&torn, &segment::header(0)[..7]).unwrap();
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!((n, stats.damage.len()), (3, 1));
        assert_eq!(std::fs::read(&torn).unwrap(), segment::header(0));
        // Once a later segment follows it, it reads as an empty segment, not damage.
        write_segment(d.path(), 3, 0, &samples_record(2));
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!((n, stats.damage.len()), (5, 0));
    }

    #[test]
    fn read_only_replay_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut recs = samples_record(3);
        recs.extend_from_slice(&[0u8; 100]);
        let path = write_segment(d.path(), 1, 0, &recs);
        let before = std::fs::read(&path).unwrap();
        let (n, stats) = count(d.path(), Repair::ReadOnly);
        assert_eq!(n, 3);
        assert_eq!(stats.damage[0].reason, "zero-filled tail");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn damage_in_a_middle_segment_keeps_later_segments() {
        let d = tempfile::tempdir().unwrap();
        let mut bad = samples_record(3);
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        write_segment(d.path(), 1, 0, &bad);
        write_segment(d.path(), 2, 0, &samples_record(4));
        write_segment(d.path(), 3, 1, &samples_record(5));
        write_segment(d.path(), 4, 0, &samples_record(6));
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!(n, 10);
        assert_eq!(stats.damage.len(), 2);
        assert!(stats.damage[1].reason.contains("belongs to shard 1"));
        assert!(!stats.damage.iter().any(|d| d.truncated));
    }
}
