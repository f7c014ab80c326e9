//! Reading a block: [`Block::open`] checks `meta.json` and the whole `index` and keeps
//! the parsed index in memory; queries pick series through postings and read only the
//! chunks they need with positioned reads. [`verify_block`] checks everything.

#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::chunks;
use super::index::{self, ChunkMeta, Index, SeriesEntry};
use super::meta::{BlockMeta, BlockStats};
use super::writer::ChunkData;
use crate::chunk;
use crate::error::{Error, IoContext, Result};
use crate::layout::{CHUNKS_FILE, INDEX_FILE, META_FILE};
use crate::limits::{BLOCK_READ_GAP_BYTES_MAX, BLOCK_READ_SPAN_BYTES_MAX};
use crate::model::{Labels, MatchOp, Matcher, Sample, matches_all};
use crate::storage::{DiskStorage, ReadAt, Storage};

/// A series of one block: its position in the block's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef(pub u32);

/// An opened block: its meta, its parsed index and its open `chunks` file.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: Index,
    chunks: Box<dyn ReadAt>,
    chunks_path: std::sync::Arc<Path>,
    /// The `chunks` file's format version: 1 holds only XOR chunks.
    chunks_version: u8,
    size_bytes: u64,
}

impl Block {
    /// Opens the block in `dir`, checking `meta.json`, the index's checksum and
    /// structure, the chunks file's header and that all three agree. Every error
    /// names the file at fault.
    pub fn open(dir: &Path) -> Result<Block> {
        open_dir(&DiskStorage, dir, true)
    }

    /// [`Block::open`] on any storage.
    pub fn open_in(storage: &impl Storage, dir: &Path) -> Result<Block> {
        open_dir(storage, dir, true)
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The series all `matchers` select that have a chunk overlapping
    /// `[min_time, max_time]`, ascending.
    ///
    /// Matchers that do not match the empty string narrow the candidates through
    /// postings (a series lacking their label cannot match them); the others are
    /// checked on each candidate's labels. With only the latter, every series is a
    /// candidate, as in Prometheus.
    pub fn select(&self, matchers: &[Matcher], min_time: i64, max_time: i64) -> Vec<SeriesRef> {
        let (narrowing, filtering): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        let mut lists: Vec<Cow<'_, [u32]>> = narrowing.iter().map(|m| self.postings(m)).collect();
        // Intersecting from the shortest list keeps every step as cheap as possible.
        lists.sort_unstable_by_key(|l| l.len());
        let mut lists = lists.into_iter();
        let mut candidates = match lists.next() {
            Some(first) => first.into_owned(),
            None => (0..self.index.series.len() as u32).collect(),
        };
        for list in lists {
            candidates.retain(|r| list.binary_search(r).is_ok());
        }
        // `matches_all` takes a slice of matchers; cloning one shares its compiled regex.
        let filtering: Vec<Matcher> = filtering.into_iter().cloned().collect();
        candidates
            .into_iter()
            .filter_map(|r| {
                let s = self.index.series.get(r as usize)?;
                let in_range = s.chunks.iter().any(|c| c.overlaps(min_time, max_time));
                (in_range && matches_all(&filtering, &s.labels)).then_some(SeriesRef(r))
            })
            .collect()
    }

    /// The union of the postings of the values of `m.name` that `m` matches.
    fn postings(&self, m: &Matcher) -> Cow<'_, [u32]> {
        let Some(name) = self.label_name(&m.name) else {
            return Cow::Borrowed(&[]);
        };
        if let MatchOp::Equal = m.op {
            return name
                .values
                .binary_search_by(|v| v.value.as_str().cmp(&m.value))
                .ok()
                .and_then(|i| name.values.get(i))
                .map_or(Cow::Borrowed(&[]), |v| Cow::Borrowed(&v.postings));
        }
        let mut out: Vec<u32> = name
            .values
            .iter()
            .filter(|v| m.matches(&v.value))
            .flat_map(|v| v.postings.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        Cow::Owned(out)
    }

    fn label_name(&self, name: &str) -> Option<&index::LabelName> {
        let i = self
            .index
            .labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()?;
        self.index.labels.get(i)
    }

    fn series(&self, s: SeriesRef) -> &SeriesEntry {
        match self.index.series.get(s.0 as usize) {
            Some(e) => e,
            None => panic!(
                "BUG: {s:?} out of range for block {} of {} series",
                self.meta.ulid,
                self.index.series.len()
            ),
        }
    }

    pub fn labels(&self, s: SeriesRef) -> &Labels {
        &self.series(s).labels
    }

    /// The series' samples in `[min_time, max_time]`, reading only the chunks that
    /// overlap it, each checked against its checksum and its index entry.
    pub fn read_samples(&self, s: SeriesRef, min_time: i64, max_time: i64) -> Result<Vec<Sample>> {
        let mut out = self.read_series_samples(&[s], min_time, max_time)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// [`Block::read_samples`] of each of `refs`, in their order.
    pub fn read_series_samples(
        &self,
        refs: &[SeriesRef],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<Vec<Sample>>> {
        let chunks = self.read_series_chunks(refs, min_time, max_time)?;
        let mut out = Vec::with_capacity(chunks.len());
        for pieces in chunks {
            let part = crate::select::Part {
                pieces,
                deleted: Vec::new(),
            };
            let mut samples = Vec::new();
            part.decode_into((min_time, max_time), &mut samples)?;
            out.push(samples);
        }
        Ok(out)
    }

    /// The chunks of each of `refs` that overlap `[min_time, max_time]`, in their
    /// order, as stored: each record's checksum and length verified and its sample
    /// count checked against the index, the data left encoded (a query decodes one
    /// series at a time; [`crate::select::SelectedSeries::decode_into`] checks the
    /// rest of what the index says). Chunk records close together in the file (a
    /// series' chunks, neighbouring series) are fetched with one positioned read
    /// (`limits::BLOCK_READ_GAP_BYTES_MAX`), so a select over many series costs a
    /// few large reads rather than one system call per chunk.
    pub fn read_series_chunks(
        &self,
        refs: &[SeriesRef],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<Vec<crate::select::Piece>>> {
        let wanted: Vec<(usize, &ChunkMeta)> = refs
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                self.series(*s)
                    .chunks
                    .iter()
                    .filter(move |c| c.overlaps(min_time, max_time))
                    .map(move |c| (i, c))
            })
            .collect();
        let mut out: Vec<Vec<crate::select::Piece>> = vec![Vec::new(); refs.len()];
        let mut buf = Vec::new();
        let mut rest = wanted.as_slice();
        while let Some(((_, first), _)) = rest.split_first() {
            let start = first.offset;
            let mut end = record_end(first);
            let n = 1 + rest
                .iter()
                .skip(1)
                .take_while(|(_, c)| {
                    let near = c.offset >= end
                        && c.offset - end <= BLOCK_READ_GAP_BYTES_MAX
                        && record_end(c) - start <= BLOCK_READ_SPAN_BYTES_MAX;
                    if near {
                        end = record_end(c);
                    }
                    near
                })
                .count();
            let (group, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            buf.clear();
            buf.resize(usize::try_from(end - start).unwrap_or(usize::MAX), 0);
            self.chunks.read_exact_at(&mut buf, start).ctx(|| {
                format!(
                    "read chunks at offsets {start}..{end} of {}",
                    self.chunks_path.display()
                )
            })?;
            let fetched = Fetched {
                offset: start,
                bytes: &buf,
            };
            for (i, c) in group {
                let (encoding, data) = chunks::read_record(
                    &fetched,
                    &self.chunks_path,
                    self.chunks_version,
                    c.offset,
                    c.len,
                )?;
                let chunk = self.checked_chunk(c, encoding, data)?;
                if let Some(dst) = out.get_mut(*i) {
                    dst.push(crate::select::Piece::Chunk {
                        chunk,
                        origin: crate::select::Origin::Block {
                            path: self.chunks_path.clone(),
                            offset: c.offset,
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// A chunk record read back, its header's sample count checked against the
    /// index entry (an O(1) check that the two agree; decoding checks the rest).
    fn checked_chunk(
        &self,
        c: &ChunkMeta,
        encoding: chunk::Encoding,
        data: Vec<u8>,
    ) -> Result<ChunkData> {
        let count = data
            .get(..2)
            .map(|h| h.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)));
        if count != Some(c.num_samples) {
            return Err(Error::corrupt(
                &*self.chunks_path,
                c.offset,
                format!(
                    "chunk counts {count:?} samples, the index says {}",
                    c.num_samples
                ),
            ));
        }
        Ok(ChunkData {
            min_time: c.min_time,
            max_time: c.max_time,
            num_samples: c.num_samples,
            encoding,
            data: data.into(),
        })
    }

    /// The series' chunks as stored (checksums verified, not decoded), so compaction
    /// can copy them without re-encoding.
    pub fn read_chunks(&self, s: SeriesRef) -> Result<Vec<ChunkData>> {
        self.series(s)
            .chunks
            .iter()
            .map(|c| {
                let (encoding, data) = self.read_record(c)?;
                self.checked_chunk(c, encoding, data)
            })
            .collect()
    }

    fn read_record(&self, c: &ChunkMeta) -> Result<(chunk::Encoding, Vec<u8>)> {
        chunks::read_record(
            &*self.chunks,
            &self.chunks_path,
            self.chunks_version,
            c.offset,
            c.len,
        )
    }

    /// Label names present in the block, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.index.labels.iter().map(|l| l.name.as_str()).collect()
    }

    /// The values of label `name`, sorted; empty if no series has it.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.label_name(name)
            .map(|l| l.values.iter().map(|v| v.value.as_str()).collect())
            .unwrap_or_default()
    }

    pub fn num_series(&self) -> usize {
        self.index.series.len()
    }

    pub fn all_series(&self) -> impl Iterator<Item = SeriesRef> + use<> {
        (0..self.index.series.len() as u32).map(SeriesRef)
    }

    /// Bytes of the block's three files.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// Where a chunk record ends in the file.
fn record_end(c: &ChunkMeta) -> u64 {
    c.offset + chunks::RECORD_HEADER_BYTES + u64::from(c.len)
}

/// Bytes of the chunks file fetched with one read, served to [`chunks::read_record`]
/// as the file would serve them.
#[derive(Debug)]
struct Fetched<'a> {
    offset: u64,
    bytes: &'a [u8],
}

impl ReadAt for Fetched<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let src = offset
            .checked_sub(self.offset)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.bytes.get(at..at.checked_add(buf.len())?))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("BUG: offset {offset} outside the bytes read"),
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn file_len(&self) -> std::io::Result<u64> {
        Ok(self.offset + self.bytes.len() as u64)
    }
}

/// Opens a block; `check_name` also requires the directory to be named by the ULID
/// (false only for the `.tmp` directory checked before its rename).
fn open_dir(storage: &impl Storage, dir: &Path, check_name: bool) -> Result<Block> {
    let meta_path = dir.join(META_FILE);
    let index_path = dir.join(INDEX_FILE);
    let chunks_path = dir.join(CHUNKS_FILE);
    let read = |path: &Path| {
        storage
            .read(path)
            .ctx(|| format!("open block: read {}", path.display()))
    };

    let meta_bytes = read(&meta_path)?;
    let meta = BlockMeta::parse(&meta_path, &meta_bytes)?;
    if check_name && dir.file_name().and_then(|n| n.to_str()) != Some(meta.ulid.as_str()) {
        return Err(Error::corrupt(
            &meta_path,
            0,
            format!("ulid {} does not name the block's directory", meta.ulid),
        ));
    }
    let chunks = storage
        .open_read(&chunks_path)
        .ctx(|| format!("open block: open {}", chunks_path.display()))?;
    let chunks_len = chunks
        .file_len()
        .ctx(|| format!("open block: stat {}", chunks_path.display()))?;
    let chunks_version = chunks::check_header(&*chunks, &chunks_path, chunks_len)?;
    let index_bytes = read(&index_path)?;
    let index = index::parse(&index_path, &index_bytes, chunks_len)?;
    check_meta_matches_index(&meta_path, &meta, &index)?;
    Ok(Block {
        dir: dir.to_path_buf(),
        size_bytes: meta_bytes.len() as u64 + index_bytes.len() as u64 + chunks_len,
        meta,
        index,
        chunks,
        chunks_path: chunks_path.into(),
        chunks_version,
    })
}

/// The meta is written from the same data as the index, so any disagreement means
/// one of the two files is not what the writer wrote.
fn check_meta_matches_index(meta_path: &Path, meta: &BlockMeta, index: &Index) -> Result<()> {
    let chunks = || index.series.iter().flat_map(|s| s.chunks.iter());
    let stats = BlockStats {
        num_samples: chunks().map(|c| u64::from(c.num_samples)).sum(),
        num_series: index.series.len() as u64,
        num_chunks: chunks().count() as u64,
    };
    let min_time = chunks().map(|c| c.min_time).min().unwrap_or(i64::MAX);
    let max_time = chunks().map(|c| c.max_time).max().unwrap_or(i64::MIN);
    if stats != meta.stats || min_time != meta.min_time || max_time != meta.max_time {
        return Err(Error::corrupt(
            meta_path,
            0,
            format!(
                "meta says {:?} over {}..={}, the index holds {stats:?} over {min_time}..={max_time}",
                meta.stats, meta.min_time, meta.max_time
            ),
        ));
    }
    Ok(())
}

/// Checks a block completely: everything [`Block::open`] checks, plus every chunk's
/// checksum and decoding against its index entry, chunk records not overlapping in
/// `chunks`, and postings equal to what the series' labels imply. Returns the stats
/// counted from the data.
pub fn verify_block(dir: &Path) -> Result<BlockStats> {
    verify_dir(&DiskStorage, dir, true)
}

pub(crate) fn verify_dir(
    storage: &impl Storage,
    dir: &Path,
    check_name: bool,
) -> Result<BlockStats> {
    let block = open_dir(storage, dir, check_name)?;
    let mut stats = BlockStats::default();
    let mut records: Vec<(u64, u64)> = Vec::new();
    for s in block.all_series() {
        let samples = block.read_samples(s, i64::MIN, i64::MAX)?;
        stats.num_series += 1;
        stats.num_samples += samples.len() as u64;
        for c in &block.series(s).chunks {
            stats.num_chunks += 1;
            records.push((
                c.offset,
                c.offset + chunks::RECORD_HEADER_BYTES + u64::from(c.len),
            ));
        }
    }
    records.sort_unstable();
    for pair in records.windows(2) {
        if let [(_, end), (next, _)] = pair
            && end > next
        {
            return Err(Error::corrupt(
                &*block.chunks_path,
                *next,
                format!("chunk record at {next} overlaps the one ending at {end}"),
            ));
        }
    }
    check_postings(&block)?;
    if stats != block.meta.stats {
        return Err(Error::corrupt(
            dir.join(META_FILE),
            0,
            format!("meta says {:?}, the data holds {stats:?}", block.meta.stats),
        ));
    }
    Ok(stats)
}

/// Rebuilds the label table and postings from the series' labels and compares.
fn check_postings(block: &Block) -> Result<()> {
    let mut want: std::collections::BTreeMap<(&str, &str), Vec<u32>> = Default::default();
    for (i, s) in block.index.series.iter().enumerate() {
        for l in s.labels.iter() {
            want.entry((&l.name, &l.value)).or_default().push(i as u32);
        }
    }
    let got: Vec<((&str, &str), &Vec<u32>)> = block
        .index
        .labels
        .iter()
        .flat_map(|n| {
            n.values
                .iter()
                .map(move |v| ((n.name.as_str(), v.value.as_str()), &v.postings))
        })
        .collect();
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.0 == *w.0 && g.1 == w.1);
    if !same {
        return Err(Error::corrupt(
            block.dir.join(INDEX_FILE),
            0,
            "postings do not match the series' labels",
        ));
    }
    Ok(())
}
