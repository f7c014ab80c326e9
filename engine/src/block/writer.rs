//! Building a block: [`encode_block`] (or [`BlockEncoder`], one series at a time) turns
//! series and their sealed chunks into the bytes of `chunks`, `index` and `meta.json`
//! in memory; [`write_block_dir`] puts them
//! on disk so that a crash at any point leaves either no block or a whole one.
//!
//! Encoding is separate from writing so the shard can hand the bytes to whatever
//! storage it drives (io_uring, a simulated disk) and tests need no file system.

use std::path::{Path, PathBuf};

use super::chunks;
use super::index::{self, ChunkMeta, SeriesEntry};
use super::meta::{BlockMeta, BlockStats, CompactionMeta, META_VERSION};
use crate::chunk::{self, Encoding};
use crate::error::{Error, IoContext, Result};
use crate::layout::{CHUNKS_FILE, INDEX_FILE, META_FILE, TMP_SUFFIX};
use crate::limits::BLOCK_CHUNK_SAMPLES_MAX;
use crate::model::{Labels, Sample};
use crate::storage::{DiskStorage, Storage};

/// One sealed chunk and what it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkData {
    pub min_time: i64,
    /// The last sample's timestamp, inclusive.
    pub max_time: i64,
    pub num_samples: u32,
    /// How `data` is encoded: the head seals XOR chunks, blocks hold either.
    pub encoding: Encoding,
    /// The chunk, as [`chunk::encode`] or [`chunk::packed::encode`] makes it; both
    /// start with the sample count as a big-endian u16. Shared: a query or a flush
    /// holds the head's sealed chunks by reference count instead of copying them.
    pub data: bytes::Bytes,
}

impl ChunkData {
    /// Encodes samples sorted strictly by time (at least one, at most
    /// [`chunk::CHUNK_SAMPLES_LIMIT`]).
    pub fn from_samples(samples: &[Sample]) -> ChunkData {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            panic!("BUG: a chunk needs at least one sample");
        };
        ChunkData {
            min_time: first.timestamp_ms,
            max_time: last.timestamp_ms,
            num_samples: samples.len() as u32,
            encoding: Encoding::Xor,
            data: chunk::encode(samples).into(),
        }
    }

    /// The chunk's samples.
    pub fn decode(&self) -> Result<Vec<Sample>, chunk::ChunkError> {
        chunk::decode_as(self.encoding, &self.data)
    }
}

/// Re-cuts one series' chunks for a block: consecutive chunks are merged up to
/// [`BLOCK_CHUNK_SAMPLES_MAX`] samples and each is stored as the smaller of the packed
/// and the XOR encoding. Chunks already packed and as long as they can be are kept as
/// they are, so compacting packed blocks copies their bytes; a chunk that does not
/// decode is kept too, for the reader to report.
fn compress(chunks: Vec<ChunkData>) -> Vec<ChunkData> {
    let mergeable = chunks.windows(2).any(|w| match w {
        [a, b] => (a.num_samples + b.num_samples) as usize <= BLOCK_CHUNK_SAMPLES_MAX,
        _ => false,
    });
    if !mergeable && chunks.iter().all(|c| c.encoding == Encoding::Packed) {
        return chunks;
    }
    let mut samples = Vec::with_capacity(chunks.iter().map(|c| c.num_samples as usize).sum());
    for c in &chunks {
        match c.decode() {
            Ok(s) => samples.extend(s),
            Err(_) => return chunks,
        }
    }
    samples
        .chunks(BLOCK_CHUNK_SAMPLES_MAX)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let (encoding, data) = chunk::encode_smallest(part);
            Some(ChunkData {
                min_time: first.timestamp_ms,
                max_time: last.timestamp_ms,
                num_samples: part.len() as u32,
                encoding,
                data: data.into(),
            })
        })
        .collect()
}

/// A series and its chunks, sorted by time and not overlapping.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesChunks {
    pub labels: Labels,
    pub chunks: Vec<ChunkData>,
}

/// A block's three files, encoded.
#[derive(Clone, Debug)]
pub struct EncodedBlock {
    pub index: Vec<u8>,
    pub chunks: Vec<u8>,
    pub meta: BlockMeta,
}

/// Encodes a block. Series are sorted by labels (a series' position becomes its
/// `SeriesRef`); series without chunks are left out, since they hold nothing to read.
/// A level-1 block lists itself among its sources if the caller did not.
///
/// Duplicate or empty label sets, empty label values, unsorted or overlapping chunks
/// and chunks whose header disagrees with their `num_samples` are bugs of the caller
/// and panic.
pub fn encode_block(
    ulid: &str,
    shard: u32,
    level: u32,
    sources: Vec<String>,
    parents: Vec<String>,
    mut series: Vec<SeriesChunks>,
) -> EncodedBlock {
    series.retain(|s| !s.chunks.is_empty());
    series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    let mut encoder = BlockEncoder::new(series.len());
    for s in series {
        encoder.push(s);
    }
    encoder.finish(ulid, shard, level, sources, parents)
}

/// A block encoded one series at a time, the series given in label order: the caller
/// need hold only the series it is adding, not all of them (a flush builds each head
/// series' chunks as it adds it instead of copying the whole head first). Each
/// series' chunks are compressed and appended to the `chunks` file bytes at once and
/// dropped; what is kept is the file and the index entries.
pub struct BlockEncoder {
    chunks_file: Vec<u8>,
    entries: Vec<SeriesEntry>,
    stats: BlockStats,
    min_time: i64,
    max_time: i64,
}

impl BlockEncoder {
    /// An empty block; `series_hint` is how many series it will likely hold. The
    /// ULID is given at the end, so a flush that finds every sample deleted takes none.
    pub fn new(series_hint: usize) -> Self {
        BlockEncoder {
            chunks_file: chunks::header().to_vec(),
            entries: Vec::with_capacity(series_hint),
            stats: BlockStats::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    /// Whether no series with chunks has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a series, which must sort after every series added before it; one
    /// without chunks is left out.
    pub fn push(&mut self, s: SeriesChunks) {
        if s.chunks.is_empty() {
            return;
        }
        if let Some(prev) = self.entries.last() {
            match prev.labels.cmp(&s.labels) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    panic!("BUG: block given series {} twice", s.labels)
                }
                std::cmp::Ordering::Greater => {
                    panic!("BUG: block given series {} after {}", s.labels, prev.labels)
                }
            }
        }
        // The reader refuses both, so writing them would make an unreadable block.
        assert!(
            !s.labels.is_empty() && s.labels.iter().all(|l| !l.value.is_empty()),
            "BUG: block given series {} with no labels or an empty value",
            s.labels
        );
        check_chunks(&s.labels, &s.chunks);
        let labels = s.labels;
        let series_chunks = compress(s.chunks);
        check_chunks(&labels, &series_chunks);
        let mut metas = Vec::with_capacity(series_chunks.len());
        for c in &series_chunks {
            let (offset, len) = chunks::append_record(&mut self.chunks_file, c.encoding, &c.data);
            metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                num_samples: c.num_samples,
                offset,
                len,
            });
            self.stats.num_samples += u64::from(c.num_samples);
            self.stats.num_chunks += 1;
            self.min_time = self.min_time.min(c.min_time);
            self.max_time = self.max_time.max(c.max_time);
        }
        self.stats.num_series += 1;
        self.entries.push(SeriesEntry {
            labels,
            chunks: metas,
        });
    }

    /// The block's three files. A level-1 block lists itself among its sources if
    /// the caller did not.
    pub fn finish(
        self,
        ulid: &str,
        shard: u32,
        level: u32,
        mut sources: Vec<String>,
        parents: Vec<String>,
    ) -> EncodedBlock {
        assert!(level >= 1, "BUG: block {ulid} at compaction level 0");
        if level == 1 && !sources.iter().any(|s| s == ulid) {
            sources.push(ulid.to_string());
        }
        EncodedBlock {
            index: index::encode(&self.entries),
            chunks: self.chunks_file,
            meta: BlockMeta {
                ulid: ulid.to_string(),
                min_time: self.min_time,
                max_time: self.max_time,
                stats: self.stats,
                compaction: CompactionMeta {
                    level,
                    sources,
                    parents,
                },
                version: META_VERSION,
                shard,
            },
        }
    }
}

/// The invariants the index format relies on, checked before a chunk is sealed into a
/// block; the matching checks run when it is read back.
fn check_chunks(labels: &Labels, chunks: &[ChunkData]) {
    let mut prev_max: Option<i64> = None;
    for c in chunks {
        let header = c
            .data
            .get(..2)
            .map(|h| h.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)));
        assert!(
            c.num_samples >= 1 && c.min_time <= c.max_time && header == Some(c.num_samples),
            "BUG: series {}: chunk {}..={} of {} samples has header count {header:?}",
            labels,
            c.min_time,
            c.max_time,
            c.num_samples
        );
        assert!(
            prev_max.is_none_or(|p| p < c.min_time),
            "BUG: series {}: chunk at {} overlaps or precedes the one ending at {prev_max:?}",
            labels,
            c.min_time
        );
        debug_assert!(
            c.decode().is_ok_and(|d| d.len() == c.num_samples as usize
                && d.first().map(|x| x.timestamp_ms) == Some(c.min_time)
                && d.last().map(|x| x.timestamp_ms) == Some(c.max_time)),
            "BUG: series {}: chunk {}..={} does not decode to what it claims",
            labels,
            c.min_time,
            c.max_time
        );
        prev_max = Some(c.max_time);
    }
}

/// Writes `block` under `blocks_dir` and returns its directory.
///
/// The files go into `<ULID>.tmp/` (`meta.json` last, as the mark of a whole block),
/// each is fsynced, then the directory; only then is it renamed to `<ULID>` and
/// `blocks_dir` fsynced so the rename itself is durable. A crash before the rename
/// leaves a `.tmp` directory, which start-up removes; after it, a whole block.
pub fn write_block_dir(blocks_dir: &Path, block: &EncodedBlock) -> Result<PathBuf> {
    write_block_dir_in(&DiskStorage, blocks_dir, block)
}

/// [`write_block_dir`] on any storage.
pub fn write_block_dir_in(
    storage: &impl Storage,
    blocks_dir: &Path,
    block: &EncodedBlock,
) -> Result<PathBuf> {
    let ulid = &block.meta.ulid;
    let step = |what: &str| format!("write block {ulid}: {what}");
    let final_dir = blocks_dir.join(ulid);
    let tmp_dir = blocks_dir.join(format!("{ulid}{TMP_SUFFIX}"));
    storage
        .create_dir_all(blocks_dir)
        .ctx(|| step(&format!("create {}", blocks_dir.display())))?;
    if storage.metadata(&final_dir).is_ok() {
        return Err(Error::io(
            step(&format!("{} exists", final_dir.display())),
            std::io::ErrorKind::AlreadyExists.into(),
        ));
    }
    // A leftover from a crash while writing this same block: nothing refers to it.
    match storage.remove_dir_all(&tmp_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(
                step(&format!("remove stale {}", tmp_dir.display())),
                e,
            ));
        }
        _ => {}
    }
    storage
        .create_dir(&tmp_dir)
        .ctx(|| step(&format!("create {}", tmp_dir.display())))?;
    for (name, bytes) in [
        (CHUNKS_FILE, &block.chunks[..]),
        (INDEX_FILE, &block.index[..]),
        (META_FILE, &block.meta.to_json()[..]),
    ] {
        let path = tmp_dir.join(name);
        storage
            .write_file_synced(&path, bytes)
            .ctx(|| step(&format!("write {}", path.display())))?;
    }
    sync_dir(storage, &tmp_dir, &step)?;
    // Reading the block back is O(block), so only test and debug builds pay for it.
    if cfg!(debug_assertions) {
        match super::reader::verify_dir(storage, &tmp_dir, false) {
            Ok(_) => {}
            Err(e @ Error::Io { .. }) => return Err(e),
            Err(e) => panic!("BUG: block {ulid} does not read back before rename: {e}"),
        }
    }
    storage.rename(&tmp_dir, &final_dir).ctx(|| {
        step(&format!(
            "rename {} to {}",
            tmp_dir.display(),
            final_dir.display()
        ))
    })?;
    sync_dir(storage, blocks_dir, &step)?;
    Ok(final_dir)
}

fn sync_dir(storage: &impl Storage, path: &Path, step: &dyn Fn(&str) -> String) -> Result<()> {
    storage
        .sync_dir(path)
        .ctx(|| step(&format!("fsync directory {}", path.display())))
}
