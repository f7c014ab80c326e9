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
    // One window buffer for every segment of the shard.
    let mut window_buf = Vec::new();
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
        let read_err = |e| Error::io(format!("read wal segment {}", seg.path.display()), e);
        let file = storage.open_read(&seg.path).map_err(read_err)?;
        let mut win = Window::new(&*file, &mut window_buf).map_err(read_err)?;
        let seg_len = win.len;
        stats.bytes += seg_len as u64;
        let is_last = i == last_index;
        let name = layout::segment_name(seg.seq);
        let found = read_segment_views(&mut win, shard, &name, &mut stats, &mut on_record)
            .map_err(read_err)?;
        drop(file);
        if let Some(d) = found {
            let truncated = is_last && repair == Repair::TruncateTail && !is_foreign(&d);
            let damage = Damage { truncated, ..d };
            if truncated {
                if damage.offset == 0 && seg_len <= segment::HEADER_BYTES {
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

/// Reads the records of one segment file through a [`Window`]; returns the damage
/// that ended it early, if any.
pub(crate) fn read_segment(
    file: &dyn crate::storage::ReadAt,
    shard: u32,
    name: &str,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(Record),
) -> std::io::Result<Option<Damage>> {
    let mut scratch = Vec::new();
    let mut win = Window::new(file, &mut scratch)?;
    read_segment_views(&mut win, shard, name, stats, &mut |rec: RecordView<'_>| {
        on_record(rec.into_record());
    })
}

/// [`read_segment`] with samples left in place.
fn read_segment_views(
    win: &mut Window<'_>,
    shard: u32,
    name: &str,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(RecordView<'_>),
) -> std::io::Result<Option<Damage>> {
    let len = win.len;
    let damage = |offset: usize, reason: String| Damage {
        segment: name.to_string(),
        offset: offset as u64,
        bytes_dropped: (len - offset.min(len)) as u64,
        reason,
        truncated: false,
    };
    // A crash between creating a segment and writing its header leaves an empty
    // file: nothing was written to it, so nothing is lost. (A torn header in the last
    // segment is truncated to this state, so it is reported once, not on every start.)
    if len == 0 {
        return Ok(None);
    }
    match segment::parse_header(win.at(0, segment::HEADER_BYTES)?) {
        Ok(owner) if owner == shard => {}
        Ok(owner) => {
            return Ok(Some(damage(
                0,
                format!("{FOREIGN_PREFIX} {owner}, not shard {shard}"),
            )));
        }
        Err(reason) => return Ok(Some(damage(0, reason))),
    }
    let mut offset = segment::HEADER_BYTES;
    loop {
        // The window holds the whole frame, or everything up to the end of the file,
        // so the framing reads what it would read from the whole segment.
        let head = win.at(offset, record::HEADER_BYTES)?;
        let body_len = head
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize);
        let frame_bytes = record::HEADER_BYTES + body_len.min(WAL_RECORD_BYTES_MAX);
        let rest = win.at(offset, frame_bytes)?;
        match record::read_frame(rest, WAL_RECORD_BYTES_MAX) {
            Framed::End => return Ok(None),
            Framed::Zeros => {
                if win.reaches_end() || win.zeros_to_end(offset)? {
                    return Ok(Some(damage(offset, "zero-filled tail".into())));
                }
                // Zeros to the end of the window but not of the file: a zero length.
                return Ok(Some(damage(offset, "zero record length".into())));
            }
            Framed::Truncated => return Ok(Some(damage(offset, "torn record".into()))),
            Framed::Corrupt(reason) => return Ok(Some(damage(offset, reason))),
            Framed::Record { body, bytes } => match record::decode_view(body) {
                Ok(rec) => {
                    stats.records += 1;
                    on_record(rec);
                    offset += bytes;
                }
                Err(reason) => {
                    return Ok(Some(damage(
                        offset,
                        format!("undecodable record: {reason}"),
                    )));
                }
            },
        }
    }
}

/// Bytes a replay reads from a segment at once: a segment is read through a window
/// of this size (or one frame, if larger) rather than whole, so replaying a shard
/// holds a few MiB of its WAL, not a 128 MiB segment.
const REPLAY_WINDOW_BYTES: usize = 4 << 20;

/// A part of one segment file in memory: `buf` holds the file's bytes from `base`.
struct Window<'a> {
    file: &'a dyn crate::storage::ReadAt,
    len: usize,
    base: usize,
    buf: &'a mut Vec<u8>,
    /// Bytes read at once ([`REPLAY_WINDOW_BYTES`]; tests make it tiny).
    read_bytes: usize,
}

impl<'a> Window<'a> {
    fn new(file: &'a dyn crate::storage::ReadAt, buf: &'a mut Vec<u8>) -> std::io::Result<Self> {
        let len = usize::try_from(file.file_len()?).unwrap_or(usize::MAX);
        buf.clear();
        Ok(Window {
            file,
            len,
            base: 0,
            buf,
            read_bytes: REPLAY_WINDOW_BYTES,
        })
    }

    /// The file's bytes from `at` to the end of the window, which covers at least
    /// `n` bytes from `at` or everything up to the end of the file.
    fn at(&mut self, at: usize, n: usize) -> std::io::Result<&[u8]> {
        let want_end = at.saturating_add(n).min(self.len);
        let start = at.min(self.len);
        if start < self.base || want_end > self.base + self.buf.len() {
            let end = want_end
                .max(start.saturating_add(self.read_bytes))
                .min(self.len);
            self.buf.clear();
            self.buf.resize(end - start, 0);
            self.file.read_exact_at(self.buf, start as u64)?;
            self.base = start;
        }
        Ok(self.buf.get(start - self.base..).unwrap_or_default())
    }

    /// Whether the window holds the file up to its end.
    fn reaches_end(&self) -> bool {
        self.base + self.buf.len() >= self.len
    }

    /// Whether every byte from `from` to the end of the file is zero.
    fn zeros_to_end(&mut self, from: usize) -> std::io::Result<bool> {
        let mut at = from;
        while at < self.len {
            let chunk = self.at(at, self.read_bytes)?;
            if chunk.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += chunk.len().max(1);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::Sample;

    /// A segment already read whole, as a [`Window`] reads it.
    #[derive(Debug)]
    struct InMemory<'a>(&'a [u8]);

    impl crate::storage::ReadAt for InMemory<'_> {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let src = start
                .checked_add(buf.len())
                .and_then(|end| self.0.get(start..end))
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        }

        fn file_len(&self) -> std::io::Result<u64> {
            Ok(self.0.len() as u64)
        }
    }

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

    /// Whatever the window size, a segment reads as it reads whole: the same records
    /// and the same damage, for torn frames at every cut, zero tails, zeros followed
    /// by data, and corrupt records.
    #[test]
    fn a_segment_reads_the_same_through_any_window() {
        let a = samples_record(3);
        let b = samples_record(40);
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let mut whole = a.clone();
        whole.extend_from_slice(&b);
        for cut in 0..=b.len() {
            let mut v = a.clone();
            v.extend_from_slice(&b[..cut]);
            bodies.push(v);
        }
        let mut zero_tail = whole.clone();
        zero_tail.extend_from_slice(&[0u8; 50]);
        bodies.push(zero_tail.clone());
        let mut zeros_then_data = zero_tail;
        zeros_then_data.push(1);
        bodies.push(zeros_then_data);
        let mut flipped = whole.clone();
        if let Some(byte) = flipped.get_mut(a.len() + 20) {
            *byte ^= 0x10;
        }
        bodies.push(flipped);
        let read = |seg: &[u8], window: usize| {
            let source = InMemory(seg);
            let mut scratch = Vec::new();
            let mut win = Window::new(&source, &mut scratch).unwrap();
            win.read_bytes = window;
            let mut stats = ReplayStats::default();
            let mut got = Vec::new();
            let damage = read_segment_views(&mut win, 0, "s", &mut stats, &mut |r| {
                got.push(format!("{:?}", r.into_record()));
            })
            .unwrap();
            (got, damage.map(|d| (d.offset, d.bytes_dropped, d.reason)))
        };
        for body in &bodies {
            let mut seg = segment::header(0).to_vec();
            seg.extend_from_slice(body);
            let want = read(&seg, REPLAY_WINDOW_BYTES);
            for window in 1..=48 {
                assert_eq!(
                    read(&seg, window),
                    want,
                    "window {window}, {} bytes",
                    seg.len()
                );
            }
        }
        // The whole segment reads all 43 samples; a torn one reads the first record.
        let mut seg = segment::header(0).to_vec();
        seg.extend_from_slice(&whole);
        assert_eq!(read(&seg, 7).0.len(), 2);
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
