//! The head: the in-memory part of a shard (its memtable). A series index with
//! postings, and per series its sealed chunks, one open chunk and an out-of-order
//! buffer.
//!
//! Samples arriving in time order go into Gorilla chunks; a sample at or before the
//! series' last timestamp (backfill, replays) goes into the out-of-order buffer, which
//! is merged in when the series is read or flushed. Duplicate timestamps keep the
//! sample written last.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::block::{ChunkData, SeriesChunks};
use crate::chunk::{self, XorAppender};
use crate::ingest::SeriesView;
use crate::limits::CHUNK_SAMPLES_MAX;
use crate::model::{Label, LabelStr, Labels, Matcher, Sample, matches_all};
use crate::select::{Origin, Part, Piece};
use crate::wal::record::SeriesRef;

/// One series in the head.
#[derive(Clone, Debug)]
struct MemSeries {
    labels: Labels,
    wal_ref: SeriesRef,
    sealed: Vec<ChunkData>,
    open: XorAppender,
    /// Samples at or before the last in-order timestamp, in arrival order.
    ooo: Vec<Sample>,
    last_timestamp_ms: i64,
    min_time_ms: i64,
    max_time_ms: i64,
    /// Whether this process has written the series' record to the WAL. A series
    /// replayed on start has not: its record may sit in bytes whose sync failed
    /// before a restart, which a crash can still take away.
    logged: bool,
}

impl MemSeries {
    fn has_samples(&self) -> bool {
        self.min_time_ms <= self.max_time_ms
    }

    fn overlaps(&self, min_time_ms: i64, max_time_ms: i64) -> bool {
        self.has_samples() && self.min_time_ms <= max_time_ms && self.max_time_ms >= min_time_ms
    }

    /// The series' data overlapping `[min, max]` as pieces in write order: sealed
    /// chunks, the open chunk, the out-of-order samples (not yet clipped to the
    /// window; [`crate::select::SelectedSeries`] does that when it decodes).
    fn pieces(&self, min_time_ms: i64, max_time_ms: i64) -> Vec<Piece> {
        let mut out: Vec<Piece> = self
            .sealed
            .iter()
            .filter(|c| c.max_time >= min_time_ms && c.min_time <= max_time_ms)
            .map(|c| Piece::Chunk {
                chunk: c.clone(),
                origin: Origin::Head,
            })
            .collect();
        if self.open.num_samples() > 0
            && self.open.max_time() >= min_time_ms
            && self.open.min_time() <= max_time_ms
            && let Some(chunk) = self.open_chunk()
        {
            out.push(Piece::Chunk {
                chunk,
                origin: Origin::Head,
            });
        }
        let ooo: Vec<Sample> = self
            .ooo
            .iter()
            .filter(|s| s.timestamp_ms >= min_time_ms && s.timestamp_ms <= max_time_ms)
            .copied()
            .collect();
        if !ooo.is_empty() {
            out.push(Piece::Samples(ooo));
        }
        out
    }

    /// All samples in `[min, max]`, sorted, one per timestamp: the pieces decoded as
    /// a query decodes them.
    fn samples(&self, min_time_ms: i64, max_time_ms: i64) -> Vec<Sample> {
        let part = Part {
            pieces: self.pieces(min_time_ms, max_time_ms),
            deleted: Vec::new(),
        };
        let mut out = Vec::new();
        // A head chunk that does not decode is logged there and skipped, never an error.
        if let Err(e) = part.decode_into((min_time_ms, max_time_ms), &mut out) {
            tracing::error!(error = %e, "BUG: head series does not decode");
        }
        out
    }

    /// The open chunk as a chunk, if it holds samples.
    fn open_chunk(&self) -> Option<ChunkData> {
        (self.open.num_samples() > 0).then(|| ChunkData {
            min_time: self.open.min_time(),
            max_time: self.open.max_time(),
            num_samples: u32::try_from(self.open.num_samples()).unwrap_or(u32::MAX),
            encoding: chunk::Encoding::Xor,
            data: bytes::Bytes::copy_from_slice(self.open.bytes()),
        })
    }
}

/// Sorts samples by time and keeps, for each timestamp, the one that came last.
pub fn sort_dedup(samples: &mut Vec<Sample>) {
    samples.sort_by_key(|s| s.timestamp_ms);
    // `dedup_by` keeps the first of a run; we want the last, so walk it by hand.
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples.drain(..) {
        match out.last_mut() {
            Some(last) if last.timestamp_ms == s.timestamp_ms => *last = s,
            _ => out.push(s),
        }
    }
    *samples = out;
}

/// The series a label hash names: almost always one, kept inline (no allocation, and
/// no second pointer to follow on every lookup).
#[derive(Clone, Debug)]
enum HashIds {
    One(u32),
    Many(Vec<u32>),
}

impl HashIds {
    fn ids(&self) -> &[u32] {
        match self {
            HashIds::One(id) => std::slice::from_ref(id),
            HashIds::Many(ids) => ids,
        }
    }

    fn push(&mut self, id: u32) {
        match self {
            HashIds::One(first) => *self = HashIds::Many(vec![*first, id]),
            HashIds::Many(ids) => ids.push(id),
        }
    }
}

/// The hasher of `Head::by_hash`: its keys are `Labels::stable_hash`, xxh3 digests
/// already, so hashing them again (SipHash, the default) only costs time.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is called for a `u64` key; this keeps other input correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// WAL reference → series id. A shard hands out references in increasing order and
/// never reuses one, so the references of one head's series form a nearly gapless run:
/// they index a vector from the first one seen (one load per replayed sample, where a
/// hash map costs a hash, a probe of its control bytes and a compare). A reference far
/// outside the run (an alias from before a flush, a gap of lost records) goes to a map.
#[derive(Debug, Default)]
struct RefTable {
    /// The reference `dense[0]` stands for.
    base: SeriesRef,
    /// Series ids by `reference - base`; [`NO_SERIES`] where none is known.
    dense: Vec<u32>,
    sparse: HashMap<SeriesRef, u32>,
}

/// A slot of [`RefTable::dense`] no reference has filled.
const NO_SERIES: u32 = u32::MAX;

/// How far past the end of [`RefTable::dense`] a reference may land and still be
/// stored there (the slots between are left empty).
const REF_TABLE_GAP_MAX: u64 = 4096;

impl RefTable {
    fn slot(&self, r: SeriesRef) -> Option<usize> {
        usize::try_from(r.checked_sub(self.base)?).ok()
    }

    fn get(&self, r: SeriesRef) -> Option<u32> {
        match self.slot(r) {
            Some(i) if i < self.dense.len() => {
                self.dense.get(i).copied().filter(|&id| id != NO_SERIES)
            }
            _ => self.sparse.get(&r).copied(),
        }
    }

    fn insert(&mut self, r: SeriesRef, id: u32) {
        if self.dense.is_empty() && self.sparse.is_empty() {
            self.base = r;
        }
        let Some(i) = self
            .slot(r)
            .filter(|&i| (i as u64) < self.dense.len() as u64 + REF_TABLE_GAP_MAX)
        else {
            self.sparse.insert(r, id);
            return;
        };
        if i >= self.dense.len() {
            let from = self.dense.len();
            self.dense.resize(i + 1, NO_SERIES);
            // References the map took while they were beyond the run move into it.
            if !self.sparse.is_empty() {
                for j in from..=i {
                    if let Some(old) = self.sparse.remove(&(self.base + j as u64))
                        && let Some(slot) = self.dense.get_mut(j)
                    {
                        *slot = old;
                    }
                }
            }
        }
        if let Some(slot) = self.dense.get_mut(i) {
            *slot = id;
        }
    }
}

/// The in-memory series index and data of one shard.
#[derive(Debug, Default)]
pub struct Head {
    series: Vec<MemSeries>,
    by_ref: RefTable,
    by_hash: HashMap<u64, HashIds, BuildHasherDefault<HashIsKey>>,
    /// label name → label value → ids of series having it, ascending.
    postings: HashMap<LabelStr, HashMap<LabelStr, Vec<u32>>>,
    min_time_ms: i64,
    max_time_ms: i64,
    num_samples: u64,
    mem_bytes: usize,
}

/// A series and its samples, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

impl Head {
    pub fn new() -> Self {
        Head {
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
            ..Head::default()
        }
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    pub fn num_samples(&self) -> u64 {
        self.num_samples
    }

    pub fn mem_bytes(&self) -> usize {
        self.mem_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.num_samples == 0
    }

    pub fn min_time_ms(&self) -> i64 {
        self.min_time_ms
    }

    pub fn max_time_ms(&self) -> i64 {
        self.max_time_ms
    }

    /// The time the head's samples span; 0 when empty.
    pub fn span_ms(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.max_time_ms.saturating_sub(self.min_time_ms)
        }
    }

    /// The id of the series with these labels, if the head has it.
    pub fn lookup(&self, labels: &Labels, hash: u64) -> Option<u32> {
        self.by_hash.get(&hash)?.ids().iter().copied().find(|&id| {
            self.series
                .get(id as usize)
                .is_some_and(|s| &s.labels == labels)
        })
    }

    /// The id of the series a batch's borrowed labels name, if the head has it: no
    /// label is copied to look it up.
    pub fn lookup_borrowed(&self, series: &SeriesView<'_>) -> Option<u32> {
        self.by_hash
            .get(&series.hash)?
            .ids()
            .iter()
            .copied()
            .find(|&id| {
                self.series
                    .get(id as usize)
                    .is_some_and(|s| series.labels_eq(&s.labels))
            })
    }

    /// The id of the series with WAL reference `wal_ref`.
    pub fn lookup_ref(&self, wal_ref: SeriesRef) -> Option<u32> {
        self.by_ref.get(wal_ref)
    }

    /// Makes WAL reference `wal_ref` name series `id` too. Replay meets one label set
    /// under two references when it reads segments from both sides of a flush (the
    /// head was reset, so the series was logged again under a new reference): kept
    /// segments replayed because the last flush's block is missing, or a flush whose
    /// checkpoint was not written.
    pub fn alias_ref(&mut self, wal_ref: SeriesRef, id: u32) {
        self.by_ref.insert(wal_ref, id);
    }

    /// Replays a WAL series record: creates the series, or, when the head already has
    /// its labels under another reference, makes `wal_ref` name that series too.
    pub fn replay_series(&mut self, labels: Labels, hash: u64, wal_ref: SeriesRef) {
        if self.lookup_ref(wal_ref).is_some() {
            return;
        }
        match self.lookup(&labels, hash) {
            Some(id) => self.alias_ref(wal_ref, id),
            None => {
                self.create(labels, hash, wal_ref);
            }
        }
    }

    pub fn labels(&self, id: u32) -> Option<&Labels> {
        self.series.get(id as usize).map(|s| &s.labels)
    }

    pub fn wal_ref(&self, id: u32) -> Option<SeriesRef> {
        self.series.get(id as usize).map(|s| s.wal_ref)
    }

    /// Adds a series (which the caller has checked is new) and returns its id.
    pub fn create(&mut self, labels: Labels, hash: u64, wal_ref: SeriesRef) -> u32 {
        let id = u32::try_from(self.series.len()).unwrap_or(u32::MAX);
        // The postings' keys are the head's one copy of each name and value: the
        // series' labels are rebuilt to refer to them, so a string shared by many
        // series (most are) is held once, and the caller's copies go.
        let mut shared = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            let names = self.postings.entry(l.name.clone());
            let name = names.key().clone();
            let values = names.or_default().entry(l.value.clone());
            let value = values.key().clone();
            values.or_default().push(id);
            shared.push(Label { name, value });
        }
        let labels = Labels::from_shared(shared, &labels);
        // Postings, maps and the struct itself: an estimate, for the memtable budget.
        self.mem_bytes +=
            labels.mem_bytes() + std::mem::size_of::<MemSeries>() + 64 * labels.len() + 48;
        self.by_hash
            .entry(hash)
            .and_modify(|ids| ids.push(id))
            .or_insert(HashIds::One(id));
        self.by_ref.insert(wal_ref, id);
        self.series.push(MemSeries {
            labels,
            wal_ref,
            sealed: Vec::new(),
            open: XorAppender::new(),
            ooo: Vec::new(),
            last_timestamp_ms: i64::MIN,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
            logged: true,
        });
        id
    }

    /// Marks every series as not yet logged by this process (after a replay).
    pub fn mark_all_unlogged(&mut self) {
        for s in &mut self.series {
            s.logged = false;
        }
    }

    /// True, once, for a series this process has not logged yet: the caller writes
    /// its record along with its samples.
    pub fn log_once(&mut self, id: u32) -> bool {
        match self.series.get_mut(id as usize) {
            Some(s) if !s.logged => {
                s.logged = true;
                true
            }
            _ => false,
        }
    }

    /// Reads what an append to series `id` reads first (the series' last timestamp
    /// and the end of its open chunk) and returns a digest of it. Replay reads a window
    /// of series this way before appending to any: the reads do not depend on each
    /// other, so the CPU overlaps their cache misses, which it cannot do across
    /// appends. (Safe Rust has no prefetch instruction; this is its portable stand-in.)
    pub fn warm(&self, id: u32) -> u64 {
        self.series.get(id as usize).map_or(0, |s| {
            s.last_timestamp_ms as u64 ^ u64::from(s.open.bytes().last().copied().unwrap_or(0))
        })
    }

    /// Appends one sample to series `id`.
    pub fn append(&mut self, id: u32, sample: Sample) {
        let Some(s) = self.series.get_mut(id as usize) else {
            tracing::error!(id, "BUG: append to a series the head does not have");
            return;
        };
        let t = sample.timestamp_ms;
        if t > s.last_timestamp_ms {
            if s.open.num_samples() >= CHUNK_SAMPLES_MAX {
                let full = std::mem::take(&mut s.open);
                // Room for this chunk only: a head series holds a few sealed chunks,
                // and the first push would otherwise make room for four.
                s.sealed.reserve_exact(1);
                s.sealed.push(ChunkData {
                    min_time: full.min_time(),
                    max_time: full.max_time(),
                    num_samples: u32::try_from(full.num_samples()).unwrap_or(u32::MAX),
                    encoding: chunk::Encoding::Xor,
                    data: bytes::Bytes::copy_from_slice(full.bytes()),
                });
                self.mem_bytes += std::mem::size_of::<ChunkData>();
            }
            let before = s.open.bytes().len();
            s.open.append(t, sample.value);
            self.mem_bytes += s.open.bytes().len().saturating_sub(before);
            s.last_timestamp_ms = t;
        } else {
            s.ooo.push(sample);
            self.mem_bytes += std::mem::size_of::<Sample>();
        }
        s.min_time_ms = s.min_time_ms.min(t);
        s.max_time_ms = s.max_time_ms.max(t);
        self.min_time_ms = self.min_time_ms.min(t);
        self.max_time_ms = self.max_time_ms.max(t);
        self.num_samples += 1;
    }

    /// Ids of the series every matcher selects, ascending.
    fn select_ids(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut candidates: Option<Vec<u32>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.postings.get(m.name.as_str()) else {
                return Vec::new();
            };
            let mut ids: Vec<u32> = match &m.op {
                crate::model::MatchOp::Equal => {
                    values.get(m.value.as_str()).cloned().unwrap_or_default()
                }
                _ => {
                    let mut ids: Vec<u32> = values
                        .iter()
                        .filter(|(v, _)| m.matches(v))
                        .flat_map(|(_, ids)| ids.iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids
                }
            };
            if let Some(prev) = candidates {
                ids = intersect(&prev, &ids);
            }
            if ids.is_empty() {
                return ids;
            }
            candidates = Some(ids);
        }
        let all = || (0..u32::try_from(self.series.len()).unwrap_or(u32::MAX)).collect::<Vec<_>>();
        candidates
            .unwrap_or_else(all)
            .into_iter()
            .filter(|&id| {
                self.series
                    .get(id as usize)
                    .is_some_and(|s| matches_all(matchers, &s.labels))
            })
            .collect()
    }

    /// Series selected by `matchers` with samples in `[min, max]`, and those samples.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<SeriesData> {
        self.select_ids(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(id as usize))
            .filter(|s| s.overlaps(min_time_ms, max_time_ms))
            .filter_map(|s| {
                let samples = s.samples(min_time_ms, max_time_ms);
                (!samples.is_empty()).then(|| SeriesData {
                    labels: s.labels.clone(),
                    samples,
                })
            })
            .collect()
    }

    /// [`Head::select`] with each series' data left compressed: its labels and
    /// pieces in write order.
    pub fn select_pieces(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<(Labels, Vec<Piece>)> {
        self.select_ids(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(id as usize))
            .filter(|s| s.overlaps(min_time_ms, max_time_ms))
            .map(|s| (s.labels.clone(), s.pieces(min_time_ms, max_time_ms)))
            .filter(|(_, p)| !p.is_empty())
            .collect()
    }

    /// Label sets of the series selected by `matchers` with samples in `[min, max]`.
    pub fn series_labels(
        &self,
        matchers: &[Matcher],
        min_time_ms: i64,
        max_time_ms: i64,
    ) -> Vec<Labels> {
        self.select_ids(matchers)
            .into_iter()
            .filter_map(|id| self.series.get(id as usize))
            .filter(|s| s.overlaps(min_time_ms, max_time_ms))
            .map(|s| s.labels.clone())
            .collect()
    }

    /// Every label name of series with samples (unsorted).
    pub fn label_names(&self) -> Vec<String> {
        self.postings.keys().map(|n| n.to_string()).collect()
    }

    /// Every value of label `name` (unsorted).
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings
            .get(name)
            .map(|v| v.keys().map(|v| v.to_string()).collect())
            .unwrap_or_default()
    }

    /// Chunks in the head: every series' sealed chunks and its open one.
    pub fn num_chunks(&self) -> u64 {
        self.series
            .iter()
            .map(|s| s.sealed.len() as u64 + u64::from(s.open.num_samples() > 0))
            .sum()
    }

    /// The postings' sizes and the head's stats, for cardinality reports.
    pub fn postings_stats(&self) -> crate::cardinality::HeadPostings {
        crate::cardinality::HeadPostings {
            num_series: self.series.len() as u64,
            chunks: self.num_chunks(),
            min_time_ms: self.min_time_ms,
            max_time_ms: self.max_time_ms,
            labels: self
                .postings
                .iter()
                .map(|(name, values)| {
                    let values = values
                        .iter()
                        .map(|(v, ids)| (v.to_string(), ids.len() as u64))
                        .collect();
                    (name.to_string(), values)
                })
                .collect(),
        }
    }

    /// The series holding samples as block series, in label order, each built only
    /// when the iterator reaches it: a flush holds one series' copy at a time next to
    /// the head, not a copy of the whole head (which doubled the head's memory while
    /// the block was written).
    pub fn block_series_sorted(&self) -> impl Iterator<Item = SeriesChunks> + '_ {
        let mut ids: Vec<u32> = (0..u32::try_from(self.series.len()).unwrap_or(u32::MAX))
            .filter(|&id| {
                self.series
                    .get(id as usize)
                    .is_some_and(MemSeries::has_samples)
            })
            .collect();
        ids.sort_unstable_by(|&a, &b| {
            let label = |id: u32| self.series.get(id as usize).map(|s| &s.labels);
            label(a).cmp(&label(b))
        });
        ids.into_iter()
            .filter_map(|id| self.series.get(id as usize).map(MemSeries::block_series))
    }
}

impl MemSeries {
    /// This series as a block series (it holds samples).
    fn block_series(&self) -> SeriesChunks {
        let chunks = if self.ooo.is_empty() {
            let mut chunks = Vec::with_capacity(self.sealed.len() + 1);
            chunks.extend_from_slice(&self.sealed);
            chunks.extend(self.open_chunk());
            chunks
        } else {
            encode_chunks(&self.samples(i64::MIN, i64::MAX))
        };
        SeriesChunks {
            labels: self.labels.clone(),
            chunks,
        }
    }
}

/// Encodes sorted, deduplicated samples into chunks of at most `CHUNK_SAMPLES_MAX`.
pub fn encode_chunks(samples: &[Sample]) -> Vec<ChunkData> {
    samples
        .chunks(CHUNK_SAMPLES_MAX)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            Some(ChunkData {
                min_time: first.timestamp_ms,
                max_time: last.timestamp_ms,
                num_samples: u32::try_from(part.len()).unwrap_or(u32::MAX),
                encoding: chunk::Encoding::Xor,
                data: chunk::encode(part).into(),
            })
        })
        .collect()
}

/// Intersects two ascending id lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Label;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()).unwrap()
    }

    /// The reference table against a map, over references in order, aliases far
    /// below the run, gaps past [`REF_TABLE_GAP_MAX`] that the run later reaches, and
    /// overwrites.
    #[test]
    fn ref_table_answers_as_a_map_does() {
        let mut t = RefTable::default();
        let mut model: HashMap<SeriesRef, u32> = HashMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = 1_000u64;
        for id in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = match x % 16 {
                // An alias from before a flush: below the run's base.
                0 => x % 1_000,
                // A gap too wide for the run: the map holds it until the run gets there.
                1 => next + REF_TABLE_GAP_MAX + x % 3 * 1_000,
                // An overwrite of a reference already known.
                2 => 1_000 + x % (next - 999),
                _ => {
                    next += 1 + x % 3;
                    next
                }
            };
            t.insert(r, id);
            model.insert(r, id);
        }
        assert!(!t.sparse.is_empty() && t.dense.len() > 10_000);
        for r in 0..next + 4 * REF_TABLE_GAP_MAX {
            assert_eq!(t.get(r), model.get(&r).copied(), "reference {r}");
        }
        // Nothing is held twice: a reference is in the run or in the map.
        let in_run = t.dense.iter().filter(|&&id| id != NO_SERIES).count();
        assert_eq!(in_run + t.sparse.len(), model.len());
    }

    #[test]
    fn head_appends_in_and_out_of_order_and_dedups() {
        let mut h = Head::new();
        let l = labels(&[("__name__", "up"), ("job", "a")]);
        let id = h.create(l.clone(), l.stable_hash(), 1);
        for t in 0..300 {
            h.append(id, Sample::new(t * 10, t as f64));
        }
        h.append(id, Sample::new(5, -1.0));
        h.append(id, Sample::new(10, 42.0));
        let got = h.select(&[Matcher::equal("job", "a")], 0, 30);
        assert_eq!(got.len(), 1);
        let ts: Vec<_> = got[0]
            .samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        assert_eq!(ts, [(0, 0.0), (5, -1.0), (10, 42.0), (20, 2.0), (30, 3.0)]);
        assert_eq!(h.lookup(&l, l.stable_hash()), Some(id));
        let blocks: Vec<SeriesChunks> = h.block_series_sorted().collect();
        let n: u32 = blocks[0].chunks.iter().map(|c| c.num_samples).sum();
        assert_eq!(n, 301);
    }

    #[test]
    fn block_series_come_in_label_order_without_empty_series() {
        let mut h = Head::new();
        for (i, job) in ["c", "a", "d", "b"].iter().enumerate() {
            let l = labels(&[("__name__", "up"), ("job", job)]);
            let id = h.create(l.clone(), l.stable_hash(), i as u64);
            // Series "d" holds no sample: a block has nothing to read of it.
            if *job != "d" {
                for t in 0..200 {
                    h.append(id, Sample::new(t * 10, i as f64));
                }
            }
        }
        let got: Vec<_> = h.block_series_sorted().collect();
        let jobs: Vec<_> = got.iter().map(|s| s.labels.get("job").unwrap()).collect();
        assert_eq!(jobs, ["a", "b", "c"]);
        for s in &got {
            let n: u32 = s.chunks.iter().map(|c| c.num_samples).sum();
            assert_eq!((s.chunks.len(), n), (2, 200), "{}", s.labels);
        }
    }

    #[test]
    fn postings_select_by_every_matcher_kind() {
        let mut h = Head::new();
        for (i, job) in ["a", "b", "c"].iter().enumerate() {
            let l = labels(&[("__name__", "up"), ("job", job)]);
            let id = h.create(l.clone(), l.stable_hash(), i as u64);
            h.append(id, Sample::new(1, 1.0));
        }
        let count = |m: Vec<Matcher>| h.select(&m, 0, 10).len();
        assert_eq!(count(vec![Matcher::new("job", "=", "a").unwrap()]), 1);
        assert_eq!(count(vec![Matcher::new("job", "!=", "a").unwrap()]), 2);
        assert_eq!(count(vec![Matcher::new("job", "=~", "a|b").unwrap()]), 2);
        assert_eq!(count(vec![Matcher::new("job", "!~", "a|b").unwrap()]), 1);
        assert_eq!(count(vec![Matcher::new("__name__", "=", "up").unwrap()]), 3);
        assert_eq!(count(vec![Matcher::new("nope", "=", "x").unwrap()]), 0);
        assert_eq!(h.select(&[Matcher::equal("job", "a")], 2, 10).len(), 0);
    }

    #[test]
    fn intersect_works() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), [3, 7]);
    }
}
