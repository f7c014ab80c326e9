//! Every bound of the engine, in one place, with the relations between them checked at
//! compile time.

/// The head is flushed to a block once it spans this much time (Prometheus' 2 h).
pub const BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;

/// Compaction levels: a merged block spans at most the next range in this list.
pub const COMPACTION_RANGES_MS: [i64; 4] = [
    BLOCK_RANGE_MS,
    3 * BLOCK_RANGE_MS,
    12 * BLOCK_RANGE_MS,
    84 * BLOCK_RANGE_MS,
];

/// Samples per head chunk before it is sealed (Prometheus' 120 keeps decode cheap).
pub const CHUNK_SAMPLES_MAX: usize = 120;

/// Chunk records of one block read that lie at most this many bytes apart are fetched
/// with one positioned read: copying a few KiB from the page cache costs less than the
/// system call saved.
pub const BLOCK_READ_GAP_BYTES_MAX: u64 = 4096;

/// The largest such merged read, bounding the buffer one block read holds at once.
pub const BLOCK_READ_SPAN_BYTES_MAX: u64 = 1 << 20;

const _: () = assert!(BLOCK_READ_GAP_BYTES_MAX < BLOCK_READ_SPAN_BYTES_MAX);

/// Samples each shard decodes for one query, over all its selects, before it leaves
/// the rest of the series compressed (2M samples, 32 MiB decoded). Under it the
/// shards decode in parallel, each on its core; over it the querying core decodes one
/// series at a time as it evaluates, so a query over a whole fleet's history holds
/// its samples at their stored size (about a byte each) rather than 16 bytes each.
pub const QUERY_SHARD_DECODE_SAMPLES_MAX: usize = 2 << 20;

/// Samples per block chunk: flush and compaction merge the head's chunks up to this
/// (2 h of a 10 s scrape), so a series of a 2 h block is usually one chunk. Longer
/// chunks cost fewer record headers and index entries; queries decode whole chunks,
/// and 720 packed samples decode in a few microseconds.
pub const BLOCK_CHUNK_SAMPLES_MAX: usize = 720;

/// Requests waiting in one shard's inbox; a full inbox makes senders wait (backpressure).
pub const SHARD_INBOX_CAPACITY: usize = 1024;

/// Append requests one WAL write may group (group commit).
pub const GROUP_COMMIT_REQUESTS_MAX: usize = 256;

/// Events one shard keeps during a `/debug/pprof/trace` window (about 100 bytes each,
/// so at most ~5 MiB per shard); later ones are counted as dropped.
pub const TRACE_EVENTS_PER_SHARD_MAX: usize = 50_000;

/// Bytes one WAL write may group.
pub const GROUP_COMMIT_BYTES_MAX: usize = 16 << 20;

/// The largest WAL record accepted on replay; a larger length field is corruption.
pub const WAL_RECORD_BYTES_MAX: usize = 64 << 20;

/// Samples in one WAL samples record (24 bytes each), so a record stays far below
/// [`WAL_RECORD_BYTES_MAX`] however large a request is.
pub const SAMPLES_PER_RECORD_MAX: usize = 256 * 1024;

/// Series in one WAL series record.
pub const SERIES_PER_RECORD_MAX: usize = 16 * 1024;

/// How deep a PromQL query may nest brackets (`(`, `[`, `{`). The parser and the
/// evaluator recurse once per level: at this depth a query of nested subqueries needs
/// well under a shard thread's 2 MiB stack, which a few thousand levels overflow.
pub const PROMQL_NESTING_MAX: usize = 64;

/// Operators one PromQL query may hold. promql-parser checks each operator's operands
/// by walking them again, so parsing a chain of n operators costs O(n²) and recurses n
/// deep: 16,000 of them took seconds. At this bound parsing takes milliseconds.
pub const PROMQL_OPERATORS_MAX: usize = 512;

/// Regex matchers (`=~`, `!~`) one query, or one request's `match[]`, may hold unless
/// configured otherwise (`query.max_regex_matchers`). Each runs against every value of
/// its label on every shard, so without a bound one request of thousands of them
/// could hold every core for long.
pub const REGEX_MATCHERS_DEFAULT: usize = 64;

/// The smallest WAL segment size we accept from configuration.
pub const WAL_SEGMENT_BYTES_MIN: u64 = 1 << 20;

/// The smallest memtable budget we accept from configuration.
pub const MEMTABLE_BYTES_MIN: u64 = 1 << 20;

/// How often a shard made read-only by a full disk checks for freed space.
pub const DISK_FULL_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Free space, in WAL segments, that both the WAL's and the data dir's filesystems need
/// before a shard stopped by a full disk resumes on its own: room for the current
/// segment to fill and the next to start, so one freed block does not make the shard
/// flap between writable and full. `POST /api/v1/admin/writable` resumes without it.
pub const DISK_FULL_RESUME_SEGMENTS: u64 = 2;

/// How long the parents of a compaction stay on disk after the merged block is in
/// place. They are already out of the shard's block list (never read again); the wait
/// is for a copy of `blocks/` taken while the server runs (the operations guide's
/// rsync backup): one that started before the compaction and takes less than this
/// finds every parent whole, one that started after it finds the merged block. The
/// cost is disk: merged data is held twice for this long.
pub const COMPACTED_PARENTS_GRACE_MS: u64 = 10 * 60 * 1000;

/// Flush generations of WAL segments kept after the flush that made them obsolete.
/// With 1, the segments a flush's block holds are deleted by the next flush, so a
/// `blocks/` copy followed by a `wal/` copy (the guide's backup) that has one flush
/// between them still finds the flushed data in the WAL copy; see
/// `wal::checkpoint`. Each generation kept costs one flush interval's worth of WAL on disk.
pub const WAL_FLUSH_GENERATIONS_KEPT: usize = 1;

const _: () = assert!(
    WAL_FLUSH_GENERATIONS_KEPT >= 1,
    "a live backup copying wal/ after blocks/ needs the segments of the last flush"
);
const _: () = assert!(
    GROUP_COMMIT_BYTES_MAX <= WAL_RECORD_BYTES_MAX,
    "a grouped write must fit one record on replay"
);
const _: () = assert!(
    (WAL_SEGMENT_BYTES_MIN as usize) < WAL_RECORD_BYTES_MAX,
    "a record may exceed a small segment; the writer then gives it a segment of its own"
);
const _: () = assert!(
    SAMPLES_PER_RECORD_MAX * crate::wal::record::SAMPLE_BYTES < WAL_RECORD_BYTES_MAX,
    "a full samples record must be readable on replay"
);
const _: () = assert!(COMPACTION_RANGES_MS[0] == BLOCK_RANGE_MS);
const _: () = assert!(
    CHUNK_SAMPLES_MAX <= BLOCK_CHUNK_SAMPLES_MAX
        && BLOCK_CHUNK_SAMPLES_MAX <= crate::chunk::CHUNK_SAMPLES_LIMIT,
    "block chunks merge head chunks and must fit a chunk header's u16 count"
);
