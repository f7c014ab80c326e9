//! A selected series as its compressed chunks: what a query fetches from the shards
//! and decodes one series at a time while it evaluates, so a query over many samples
//! holds them at their stored size (about a byte each) instead of 16 bytes each.
//!
//! A series is answered in [`Part`]s, one per shard that holds it (two only after a
//! shard-count change), each a list of [`Piece`]s in write order: the shard's blocks
//! from oldest to newest, then its head (sealed chunks, the open chunk, the
//! out-of-order samples). Decoding concatenates the pieces, clips them to the
//! selected window, and, where they overlap, sorts them by time keeping the sample
//! of the later piece for a shared timestamp: the sample written last wins, as in
//! [`crate::mesh::merge_series`]. Each part then drops what its shard's tombstones
//! delete, and the parts merge the same way, the owner shard's part last.

use std::path::Path;
use std::sync::Arc;

use crate::block::ChunkData;
use crate::chunk;
use crate::error::{Error, Result};
use crate::head::{SeriesData, sort_dedup};
use crate::model::{Labels, Sample};

/// Where a chunk was read from, for the error when it does not decode.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A block's chunks file and the record's offset in it.
    Block { path: Arc<Path>, offset: u64 },
    /// The head (a chunk there that does not decode is a bug: logged, skipped).
    Head,
}

/// Some samples of a series, compressed or not.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// One chunk as stored (its checksum already verified where it has one).
    Chunk { chunk: ChunkData, origin: Origin },
    /// Samples sorted by time (the head's out-of-order buffer, in-memory stores).
    Samples(Vec<Sample>),
}

/// One shard's answer for a series: its pieces in write order and the ranges its
/// tombstones delete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Part {
    pub pieces: Vec<Piece>,
    pub deleted: Vec<(i64, i64)>,
}

/// A series selected over `[min_time_ms, max_time_ms]`, not yet decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedSeries {
    pub labels: Labels,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub parts: Vec<Part>,
}

impl SelectedSeries {
    /// A series of already decoded samples (sorted by time, one per timestamp).
    pub fn from_samples(
        labels: Labels,
        min_time_ms: i64,
        max_time_ms: i64,
        samples: Vec<Sample>,
    ) -> Self {
        SelectedSeries {
            labels,
            min_time_ms,
            max_time_ms,
            parts: vec![Part {
                pieces: vec![Piece::Samples(samples)],
                deleted: Vec::new(),
            }],
        }
    }

    /// The samples this series holds decoded (not in chunks).
    pub fn decoded_samples(&self) -> usize {
        self.parts
            .iter()
            .flat_map(|p| &p.pieces)
            .map(|p| match p {
                Piece::Chunk { .. } => 0,
                Piece::Samples(s) => s.len(),
            })
            .sum()
    }

    /// The samples in the window, sorted by time, one per timestamp, into `out`
    /// (cleared first, so a loop over series reuses one buffer).
    pub fn decode_into(&self, out: &mut Vec<Sample>) -> Result<()> {
        out.clear();
        let window = (self.min_time_ms, self.max_time_ms);
        match self.parts.as_slice() {
            [] => {}
            [one] => one.decode_into(window, out)?,
            many => {
                let mut part = Vec::new();
                for p in many {
                    p.decode_into(window, &mut part)?;
                    out.append(&mut part);
                }
                if !strictly_sorted(out) {
                    sort_dedup(out);
                }
            }
        }
        Ok(())
    }

    /// [`Self::decode_into`] into a new vector of the samples' size: the window
    /// often keeps a few samples of a chunk of hundreds, and a series kept for
    /// evaluation must not hold the whole chunk's room.
    pub fn decode(&self) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        self.decode_into(&mut out)?;
        out.shrink_to_fit();
        Ok(out)
    }

    /// The series with its samples decoded. Samples a shard already decoded (one
    /// part of one piece, sorted, inside the window, nothing to delete: what
    /// decoding would give) are moved, not copied again.
    pub fn into_data(mut self) -> Result<SeriesData> {
        let samples = match self.parts.as_mut_slice() {
            [Part { pieces, deleted }] if deleted.is_empty() => match pieces.as_mut_slice() {
                [Piece::Samples(s)]
                    if strictly_sorted(s)
                        && s.first().is_none_or(|x| x.timestamp_ms >= self.min_time_ms)
                        && s.last().is_none_or(|x| x.timestamp_ms <= self.max_time_ms) =>
                {
                    std::mem::take(s)
                }
                _ => self.decode()?,
            },
            _ => self.decode()?,
        };
        Ok(SeriesData {
            labels: self.labels,
            samples,
        })
    }
}

/// Every series of `series` decoded, those with no sample in their window left out.
pub fn decode_all(series: Vec<SelectedSeries>) -> Result<Vec<SeriesData>> {
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let data = s.into_data()?;
        if !data.samples.is_empty() {
            out.push(data);
        }
    }
    Ok(out)
}

impl Part {
    /// This part's samples in `[min, max]` (`window`), sorted by time, one per
    /// timestamp, without what its tombstones delete, into `out` (cleared first).
    pub fn decode_into(&self, window: (i64, i64), out: &mut Vec<Sample>) -> Result<()> {
        out.clear();
        let (lo, hi) = window;
        let inside = |s: &Sample| (lo..=hi).contains(&s.timestamp_ms);
        for piece in &self.pieces {
            match piece {
                Piece::Samples(s) => out.extend(s.iter().filter(|s| inside(s))),
                Piece::Chunk { chunk: c, origin } => {
                    if c.max_time < lo || c.min_time > hi {
                        continue;
                    }
                    let start = out.len();
                    decode_chunk(c, origin, out)?;
                    if c.min_time < lo || c.max_time > hi {
                        // A chunk's samples are sorted: keep the run inside the window.
                        let got = out.get(start..).unwrap_or(&[]);
                        let keep_from = start + got.partition_point(|s| s.timestamp_ms < lo);
                        let keep_to = start + got.partition_point(|s| s.timestamp_ms <= hi);
                        out.truncate(keep_to);
                        out.drain(start..keep_from);
                    }
                }
            }
        }
        if !strictly_sorted(out) {
            sort_dedup(out);
        }
        if !self.deleted.is_empty() {
            crate::tombstones::filter_samples(&self.deleted, out);
        }
        Ok(())
    }
}

/// Appends chunk `c`'s samples to `out`, checking they are what its index entry
/// says (count and first and last timestamps).
fn decode_chunk(c: &ChunkData, origin: &Origin, out: &mut Vec<Sample>) -> Result<()> {
    let start = out.len();
    let decoded = chunk::decode_into(c.encoding, &c.data, out);
    let got = out.get(start..).unwrap_or(&[]);
    let (first, last) = (
        got.first().map(|s| s.timestamp_ms),
        got.last().map(|s| s.timestamp_ms),
    );
    let problem = match decoded {
        Err(e) => Some(e.to_string()),
        Ok(())
            if got.len() != c.num_samples as usize
                || first != Some(c.min_time)
                || last != Some(c.max_time) =>
        {
            Some(format!(
                "chunk holds {} samples {first:?}..={last:?}, the index says {} samples {}..={}",
                got.len(),
                c.num_samples,
                c.min_time,
                c.max_time
            ))
        }
        Ok(()) => None,
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    match origin {
        Origin::Block { path, offset } => Err(Error::corrupt(path.as_ref(), *offset, problem)),
        Origin::Head => {
            tracing::error!(error = %problem, "BUG: head chunk does not decode");
            out.truncate(start);
            Ok(())
        }
    }
}

fn strictly_sorted(samples: &[Sample]) -> bool {
    samples.windows(2).all(|w| match w {
        [a, b] => a.timestamp_ms < b.timestamp_ms,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::model::Label;

    fn samples(ts: &[i64], v: f64) -> Vec<Sample> {
        ts.iter().map(|&t| Sample::new(t, v + t as f64)).collect()
    }

    fn chunk_piece(s: &[Sample], encoding: chunk::Encoding) -> Piece {
        let data = match encoding {
            chunk::Encoding::Xor => chunk::encode(s),
            chunk::Encoding::Packed => chunk::packed::encode(s).unwrap(),
        };
        Piece::Chunk {
            chunk: ChunkData {
                min_time: s.first().unwrap().timestamp_ms,
                max_time: s.last().unwrap().timestamp_ms,
                num_samples: s.len() as u32,
                encoding,
                data: data.into(),
            },
            origin: Origin::Block {
                path: Path::new("/b/chunks").into(),
                offset: 8,
            },
        }
    }

    fn series(min: i64, max: i64, parts: Vec<Part>) -> SelectedSeries {
        SelectedSeries {
            labels: Labels::new(vec![Label::new("__name__", "m")]).unwrap(),
            min_time_ms: min,
            max_time_ms: max,
            parts,
        }
    }

    fn pairs(s: &[Sample]) -> Vec<(i64, f64)> {
        s.iter().map(|s| (s.timestamp_ms, s.value)).collect()
    }

    /// Chunks clipped to the window, pieces concatenated in order, later pieces
    /// winning a shared timestamp, each part's deletions applied to that part only,
    /// and the later part winning across parts.
    #[test]
    fn decoding_merges_pieces_and_parts_as_the_materialised_read_did() {
        let a = samples(&[10, 20, 30, 40], 0.0);
        let b = samples(&[50, 60, 70], 0.0);
        let ooo = vec![Sample::new(20, -1.0), Sample::new(65, -2.0)];
        let first = Part {
            pieces: vec![
                chunk_piece(&a, chunk::Encoding::Xor),
                chunk_piece(&b, chunk::Encoding::Packed),
                Piece::Samples(ooo),
            ],
            deleted: vec![(60, 60)],
        };
        let second = Part {
            pieces: vec![Piece::Samples(samples(&[30, 45], 100.0))],
            deleted: vec![(45, 45)],
        };
        let s = series(20, 65, vec![first.clone(), second]);
        assert_eq!(
            pairs(&s.decode().unwrap()),
            vec![(20, -1.0), (30, 130.0), (40, 40.0), (50, 50.0), (65, -2.0)]
        );
        // One part alone, a window inside one chunk.
        let s = series(25, 45, vec![first]);
        assert_eq!(pairs(&s.decode().unwrap()), vec![(30, 30.0), (40, 40.0)]);
        // A buffer is reused: what it held before is gone.
        let mut buf = samples(&[1, 2, 3], 0.0);
        series(0, 5, Vec::new()).decode_into(&mut buf).unwrap();
        assert!(buf.is_empty());
    }

    /// A block chunk that disagrees with its index entry fails the read, naming the
    /// file and offset; a head chunk that does not decode is skipped.
    #[test]
    fn a_chunk_that_disagrees_with_its_index_is_an_error_from_a_block_and_skipped_in_the_head() {
        let a = samples(&[10, 20, 30], 0.0);
        let mut bad = chunk_piece(&a, chunk::Encoding::Xor);
        if let Piece::Chunk { chunk, .. } = &mut bad {
            chunk.max_time = 31;
        }
        let part = |p: Piece| Part {
            pieces: vec![p],
            deleted: Vec::new(),
        };
        let err = series(0, 100, vec![part(bad.clone())])
            .decode()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/b/chunks") && msg.contains("the index says 3 samples 10..=31"),
            "{msg}"
        );
        if let Piece::Chunk { origin, .. } = &mut bad {
            *origin = Origin::Head;
        }
        let good = Piece::Samples(samples(&[40], 0.0));
        let s = series(
            0,
            100,
            vec![Part {
                pieces: vec![bad, good],
                deleted: Vec::new(),
            }],
        );
        assert_eq!(pairs(&s.decode().unwrap()), vec![(40, 40.0)]);
        // Truncated bytes: the decoder's own error.
        let mut cut = chunk_piece(&a, chunk::Encoding::Packed);
        if let Piece::Chunk { chunk, .. } = &mut cut {
            chunk.data.truncate(3);
        }
        assert!(series(0, 100, vec![part(cut)]).decode().is_err());
    }
}
