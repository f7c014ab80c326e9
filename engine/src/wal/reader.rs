//! Reads a shard's WAL back on start and repairs a damaged tail.
//!
//! Segments are read in order from the checkpoint on. In the last segment, the first
//! record that is torn, zero-filled or corrupt ends the log: the file is truncated
//! there and a warn line says how many bytes were dropped. In an earlier segment a bad
//! record stops that segment's replay with an error line (the bytes are left on disk for
//! inspection) and replay goes on with the next segment. A segment whose header names
//! another shard is never truncated, wherever it is: it is not this shard's to cut. A
//! gap in the segment numbers (a missing middle segment) is damage too, logged with
//! an error line; its bytes are gone, so `bytes_dropped` is 0 (unknown).

use std::path::Path;

use super::record::{self, Framed, Record, RecordView};
use super::segment;
use crate::error::{Error, Result};
use crate::layout;
use crate::limits::WAL_RECORD_BYTES_MAX;
use crate::storage::{DiskStorage, Storage};

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
    on_record: impl FnMut(Record),
) -> Result<ReplayStats> {
    replay_in(&DiskStorage, dir, shard, first_seq, repair, on_record)
}

/// [`replay`] on any storage.
pub fn replay_in(
    storage: &impl Storage,
    dir: &Path,
    shard: u32,
    first_seq: u64,
    repair: Repair,
    mut on_record: impl FnMut(Record),
) -> Result<ReplayStats> {
    replay_views_in(storage, dir, shard, first_seq, repair, |rec| {
        on_record(rec.into_record());
    })
}

/// [`replay_in`], handing each samples record's samples over in place (the shard's
/// start-up replay, which appends them to its head without building a vector).
pub fn replay_views_in(
    storage: &impl Storage,
    dir: &Path,
    shard: u32,
    first_seq: u64,
    repair: Repair,
    mut on_record: impl FnMut(RecordView<'_>),
) -> Result<ReplayStats> {
    let segments: Vec<_> = segment::list_in(storage, dir)?
        .into_iter()
        .filter(|s| s.seq >= first_seq)
        .collect();
    let mut stats = ReplayStats::default();
    let last_index = segments.len().saturating_sub(1);
    let seqs: Vec<u64> = segments.iter().map(|s| s.seq).collect();
    let mut gaps = missing_segments(&seqs, first_seq).into_iter().peekable();
    for (i, seg) in segments.iter().enumerate() {
        while let Some(gap) = gaps.next_if(|g| g.before_seq <= seg.seq) {
            if repair == Repair::TruncateTail {
                tracing::error!(
                    shard,
                    segment = %gap.damage.segment,
                    offset = gap.damage.offset,
                    bytes_dropped = gap.damage.bytes_dropped,
                    reason = %gap.damage.reason,
                    "missing WAL segment: its records are lost; later segments are still replayed"
                );
            }
            stats.damage.push(gap.damage);
        }
        stats.segments += 1;
        stats.last_seq = Some(seg.seq);
        let buf = storage
            .read(&seg.path)
            .map_err(|e| Error::io(format!("read wal segment {}", seg.path.display()), e))?;
        stats.bytes += buf.len() as u64;
        let is_last = i == last_index;
        let name = layout::segment_name(seg.seq);
        if let Some(d) = read_segment_views(&buf, shard, &name, &mut stats, &mut on_record) {
            let truncated = is_last && repair == Repair::TruncateTail && !is_foreign(&d);
            let damage = Damage { truncated, ..d };
            if truncated {
                if damage.offset == 0 && buf.len() <= segment::HEADER_BYTES {
                    // A kill while the segment was being created left less than its
                    // header and no record. Truncating it to 0 bytes would leave a
                    // headerless segment in the middle of the log once the writer
                    // starts the next one, reported as damage at every start; a whole
                    // header makes it an empty segment.
                    storage
                        .write_file_synced(&seg.path, &segment::header(shard))
                        .map_err(|e| {
                            Error::io(
                                format!("rewrite header of wal segment {}", seg.path.display()),
                                e,
                            )
                        })?;
                } else {
                    storage.truncate(&seg.path, damage.offset).map_err(|e| {
                        Error::io(
                            format!(
                                "truncate wal segment {} to {}",
                                seg.path.display(),
                                damage.offset
                            ),
                            e,
                        )
                    })?;
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

/// A gap in a shard's segment numbers, reported before segment `before_seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub before_seq: u64,
    pub damage: Damage,
}

/// The gaps in `seqs` (ascending segment numbers, all at or above `first_seq`): a
/// segment below the first one present but at or above the checkpoint (`first_seq`, or
/// 1 with no checkpoint), or a jump between two neighbours. One [`Damage`] per gap,
/// naming its first missing segment; the reason says how many are missing.
pub fn missing_segments(seqs: &[u64], first_seq: u64) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut expected = first_seq.max(1);
    for &seq in seqs {
        if seq > expected {
            let missing = seq - expected;
            let reason = if missing == 1 {
                format!("segment {} is missing", layout::segment_name(expected))
            } else {
                format!(
                    "segments {}..={} are missing ({missing} segments)",
                    layout::segment_name(expected),
                    layout::segment_name(seq - 1)
                )
            };
            out.push(Gap {
                before_seq: seq,
                damage: Damage {
                    segment: layout::segment_name(expected),
                    offset: 0,
                    bytes_dropped: 0,
                    reason,
                    truncated: false,
                },
            });
        }
        expected = expected.max(seq + 1);
    }
    out
}

/// Whether the damage is a segment that belongs to another shard.
fn is_foreign(d: &Damage) -> bool {
    d.offset == 0 && d.reason.starts_with(FOREIGN_PREFIX)
}

const FOREIGN_PREFIX: &str = "segment belongs to shard";

/// Reads the records of one segment; returns the damage that ended it early, if any.
pub(crate) fn read_segment(
    buf: &[u8],
    shard: u32,
    name: &str,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(Record),
) -> Option<Damage> {
    read_segment_views(buf, shard, name, stats, &mut |rec: RecordView<'_>| {
        on_record(rec.into_record());
    })
}

/// [`read_segment`] with samples left in place.
fn read_segment_views(
    buf: &[u8],
    shard: u32,
    name: &str,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(RecordView<'_>),
) -> Option<Damage> {
    let damage = |offset: usize, reason: String| Damage {
        segment: name.to_string(),
        offset: offset as u64,
        bytes_dropped: (buf.len() - offset.min(buf.len())) as u64,
        reason,
        truncated: false,
    };
    // A crash between creating a segment and writing its header leaves an empty
    // file: nothing was written to it, so nothing is lost. (A torn header in the last
    // segment is truncated to this state, so it is reported once, not on every start.)
    if buf.is_empty() {
        return None;
    }
    match segment::parse_header(buf) {
        Ok(owner) if owner == shard => {}
        Ok(owner) => {
            return Some(damage(
                0,
                format!("{FOREIGN_PREFIX} {owner}, not shard {shard}"),
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
            Framed::Record { body, bytes } => match record::decode_view(body) {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
        assert_eq!(
            std::fs::read(&torn).unwrap(),
            segment::header(0),
            "the torn header is rewritten whole"
        );
        // Once a later segment follows it, it reads as an empty segment, not damage:
        // the torn header is reported once.
        write_segment(d.path(), 3, 0, &samples_record(2));
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!((n, stats.damage.len()), (5, 0), "{:?}", stats.damage);
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

    #[test]
    fn a_foreign_last_segment_is_never_truncated() {
        let d = tempfile::tempdir().unwrap();
        write_segment(d.path(), 1, 0, &samples_record(3));
        let foreign = write_segment(d.path(), 2, 1, &samples_record(4));
        let before = std::fs::read(&foreign).unwrap();
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!(n, 3);
        assert_eq!(stats.damage.len(), 1);
        assert!(!stats.damage[0].truncated);
        assert_eq!(stats.damage[0].bytes_dropped, before.len() as u64);
        assert_eq!(std::fs::read(&foreign).unwrap(), before);
    }

    #[test]
    fn a_missing_middle_segment_is_damage() {
        let d = tempfile::tempdir().unwrap();
        write_segment(d.path(), 1, 0, &samples_record(3));
        write_segment(d.path(), 4, 0, &samples_record(4));
        let (n, stats) = count(d.path(), Repair::TruncateTail);
        assert_eq!(n, 7);
        assert_eq!(stats.damage.len(), 1);
        let gap = &stats.damage[0];
        assert_eq!((gap.segment.as_str(), gap.offset), ("00000002", 0));
        assert!(gap.reason.contains("00000002..=00000003"), "{}", gap.reason);
        // Below the checkpoint nothing is expected; at it, a missing first segment is.
        assert!(missing_segments(&[4], 4).is_empty());
        assert_eq!(missing_segments(&[5, 6], 4)[0].damage.segment, "00000004");
        assert_eq!(missing_segments(&[2, 3], 0)[0].damage.segment, "00000001");
    }
}
