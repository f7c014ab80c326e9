//! Replaying a shard's WAL into a fresh head, the heart of [`super::Shard::open_in`].
//!
//! Series records create series (or alias a second reference of a label set the head
//! already has); samples records append to the series their reference names. A
//! sample whose series record was lost to damage is counted and dropped, and its
//! reference is never handed out again. Every replayed series ends up not yet logged
//! by this process (see `Head::log_once`).

use std::path::Path;

use crate::error::Result;
use crate::head::Head;
use crate::model::Sample;
use crate::storage::Storage;
use crate::wal::reader::{self, Repair, ReplayStats};
use crate::wal::record::{RecordView, SeriesRef};

/// Samples whose series are looked up and read together before they are appended:
/// enough to keep the CPU's outstanding misses busy, few enough that the series read
/// are still in cache when their samples are appended.
const REPLAY_WINDOW_SAMPLES: usize = 256;

/// What a replay built and counted.
#[derive(Debug)]
pub struct Replayed {
    pub head: Head,
    /// One past the highest series reference the replayed records use.
    pub next_ref: u64,
    /// Samples appended to the head.
    pub samples: u64,
    /// Samples dropped because their series record was lost.
    pub unknown: u64,
    pub stats: ReplayStats,
}

/// Replays the WAL segments of `dir` from `first_seq` on into a new head.
pub fn replay_head(
    storage: &impl Storage,
    dir: &Path,
    shard: u32,
    first_seq: u64,
    repair: Repair,
) -> Result<Replayed> {
    let mut head = Head::new();
    let mut next_ref = 0u64;
    let mut samples = 0u64;
    let mut unknown = 0u64;
    // A window of a samples record's entries with their series, reused.
    let mut window: Vec<(SeriesRef, Sample, Option<u32>)> =
        Vec::with_capacity(REPLAY_WINDOW_SAMPLES);
    let stats = reader::replay_views_in(storage, dir, shard, first_seq, repair, |rec| match rec {
        RecordView::Series(series) => {
            for (r, labels) in series {
                next_ref = next_ref.max(r + 1);
                if head.lookup_ref(r).is_some() {
                    continue;
                }
                let hash = labels.stable_hash();
                head.replay_series(labels, hash, r);
            }
        }
        RecordView::Samples(batch) => {
            let mut entries = batch.iter();
            let mut last: Option<(SeriesRef, Option<u32>)> = None;
            loop {
                // A window's references are resolved and its series read before any
                // of its samples is appended: the look-ups and reads do not depend on
                // each other, so the CPU overlaps their cache misses, which one miss
                // between two appends would not let it do. A run of one series'
                // samples (an import) is looked up once.
                window.clear();
                window.extend(entries.by_ref().take(REPLAY_WINDOW_SAMPLES).map(|(r, s)| {
                    let id = match last {
                        Some((prev, id)) if prev == r => id,
                        _ => head.lookup_ref(r),
                    };
                    last = Some((r, id));
                    (r, s, id)
                }));
                if window.is_empty() {
                    break;
                }
                let digest = window
                    .iter()
                    .filter_map(|&(_, _, id)| id)
                    .fold(0u64, |acc, id| acc.wrapping_add(head.warm(id)));
                std::hint::black_box(digest);
                for &(r, s, id) in &window {
                    match id {
                        Some(id) => {
                            head.append(id, s);
                            samples += 1;
                        }
                        None => {
                            // A ref whose series record was lost: never hand it out
                            // again, or its orphaned samples would join a new series
                            // on the next replay.
                            next_ref = next_ref.max(r + 1);
                            unknown += 1;
                        }
                    }
                }
            }
        }
    })?;
    head.mark_all_unlogged();
    Ok(Replayed {
        head,
        next_ref,
        samples,
        unknown,
        stats,
    })
}
