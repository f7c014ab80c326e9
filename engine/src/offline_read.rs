//! Reading a stopped server's data dir without starting it (`tsdb export --data-dir`,
//! for when the server cannot start): every block and every shard's WAL, merged as the
//! server would answer a query.
//!
//! Read-only: blocks are opened for reading and the WAL is replayed with
//! [`Repair::ReadOnly`], so a damaged tail is skipped, not truncated. The merge order is
//! the server's: blocks oldest ULID first, then the WAL in record order, so the sample
//! written last wins a shared timestamp ([`merge_series`] keeps the last).

use std::collections::HashMap;
use std::path::Path;

use crate::block::Block;
use crate::compact::by_age;
use crate::error::Result;
use crate::head::SeriesData;
use crate::layout;
use crate::mesh::merge_series;
use crate::model::{Labels, Matcher, matches_all};
use crate::storage::Storage;
use crate::wal::checkpoint;
use crate::wal::inspect::shard_dirs_in;
use crate::wal::reader::{Repair, replay_in};
use crate::wal::record::Record;

/// The series any of `matcher_sets` selects with their samples in
/// `[min_time, max_time]`, from the blocks of `data_dir` and the WAL under `wal_root`.
/// A block that cannot be opened or read is an error naming it.
pub fn read_offline(
    storage: &impl Storage,
    data_dir: &Path,
    wal_root: &Path,
    matcher_sets: &[Vec<Matcher>],
    min_time: i64,
    max_time: i64,
) -> Result<Vec<SeriesData>> {
    let selects = |labels: &Labels| matcher_sets.iter().any(|m| matches_all(m, labels));
    let mut parts: Vec<SeriesData> = Vec::new();

    let blocks_dir = layout::blocks_dir(data_dir);
    let entries = match storage.read_dir(&blocks_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(crate::Error::io(
                format!("list {}", blocks_dir.display()),
                e,
            ));
        }
    };
    let mut blocks = Vec::new();
    for entry in entries {
        // `.tmp`, `.deleting` and `.broken` directories are not served.
        if entry.is_dir && !entry.name.contains('.') {
            blocks.push(Block::open_in(storage, &blocks_dir.join(&entry.name))?);
        }
    }
    for b in by_age(&blocks) {
        for set in matcher_sets {
            for s in b.select(set, min_time, max_time) {
                parts.push(SeriesData {
                    labels: b.labels(s).clone(),
                    samples: b.read_samples(s, min_time, max_time)?,
                });
            }
        }
    }

    for (shard, dir) in shard_dirs_in(storage, wal_root)? {
        let first = checkpoint::read_in(storage, &dir);
        let mut labels_of: HashMap<u64, usize> = HashMap::new();
        let mut series: Vec<SeriesData> = Vec::new();
        replay_in(
            storage,
            &dir,
            shard,
            first,
            Repair::ReadOnly,
            |rec| match rec {
                Record::Series(list) => {
                    for (r, labels) in list {
                        if selects(&labels) {
                            labels_of.insert(r, series.len());
                            series.push(SeriesData {
                                labels,
                                samples: Vec::new(),
                            });
                        }
                    }
                }
                Record::Samples(batch) => {
                    for (r, sample) in batch {
                        if (min_time..=max_time).contains(&sample.timestamp_ms)
                            && let Some(s) = labels_of.get(&r).and_then(|&i| series.get_mut(i))
                        {
                            s.samples.push(sample);
                        }
                    }
                }
            },
        )?;
        parts.extend(series.into_iter().filter(|s| !s.samples.is_empty()));
    }
    let mut merged = merge_series(parts);
    // One source per series is returned as it came; the WAL's may be out of order.
    for s in &mut merged {
        crate::head::sort_dedup(&mut s.samples);
    }
    Ok(merged)
}
