//! Offline compaction (`tsdb compact`): the server's retention and compaction run
//! over a stopped server's data dir until nothing is left to merge.
//!
//! Crash-safe the way the server is, because it is the server's code: the data dir is
//! readied by [`prepare_data_dir_in`] (half-written blocks removed, an interrupted
//! compaction finished), groups are chosen by [`plan`] among the blocks each shard
//! serves (`meta.shard % shards`), and each merge is written by `write_merged` (temp
//! dir, fsync, rename, fsync) before its parents are deleted with `delete_block_dir`
//! (rename to `.deleting`, then remove). The one difference: no server reads the dir,
//! so parents are deleted at once instead of after the live-backup grace period.

use std::collections::BTreeMap;
use std::path::Path;

use crate::block::Block;
use crate::compact::{delete_block_dir, plan, write_merged};
use crate::error::{IoContext, Result};
use crate::layout;
use crate::shard::prepare_data_dir_in;
use crate::storage::{Clock, Storage};

/// What an offline compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineReport {
    pub blocks_before: usize,
    pub blocks_after: usize,
    /// Bytes of the blocks' files (meta, index, chunks).
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The ULIDs of the blocks the merges wrote.
    pub merged: Vec<String>,
    /// The ULIDs of the blocks deleted past retention.
    pub expired: Vec<String>,
}

/// Compacts the blocks of `data_dir`, which no server may be running on (the caller
/// holds the data dir's lock). `shards` is the shard count the server runs with
/// (`None`: each block stays with the shard that wrote it); `retention_ms`, when set,
/// first deletes the blocks wholly older than it.
pub fn compact_offline(
    storage: &impl Storage,
    clock: &impl Clock,
    data_dir: &Path,
    shards: Option<u32>,
    retention_ms: Option<i64>,
) -> Result<OfflineReport> {
    prepare_data_dir_in(storage, data_dir)?;
    let blocks_dir = layout::blocks_dir(data_dir);
    let mut by_shard: BTreeMap<u32, Vec<Block>> = BTreeMap::new();
    let mut report = OfflineReport::default();
    let mut last_ulid: Option<ulid::Ulid> = None;
    let mut entries = storage
        .read_dir(&blocks_dir)
        .ctx(|| format!("list {}", blocks_dir.display()))?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        // prepare_data_dir removed `.tmp` and `.deleting`; `.broken` is set aside.
        if !entry.is_dir || entry.name.contains('.') {
            continue;
        }
        let block = Block::open_in(storage, &blocks_dir.join(&entry.name))?;
        if let Ok(u) = ulid::Ulid::from_string(&block.meta().ulid) {
            last_ulid = last_ulid.max(Some(u));
        }
        report.blocks_before += 1;
        report.bytes_before += block.size_bytes();
        let owner = match shards {
            Some(n) => block.meta().shard % n.max(1),
            None => block.meta().shard,
        };
        by_shard.entry(owner).or_default().push(block);
    }

    for (shard, mut blocks) in by_shard {
        if let Some(retention_ms) = retention_ms.filter(|&r| r > 0) {
            let cutoff = clock.now_ms().saturating_sub(retention_ms);
            let (expired, keep): (Vec<Block>, Vec<Block>) =
                blocks.into_iter().partition(|b| b.meta().max_time < cutoff);
            blocks = keep;
            for b in expired {
                let dir = b.dir().to_path_buf();
                report.expired.push(b.meta().ulid.clone());
                drop(b);
                delete_block_dir(storage, &dir)?;
            }
        }
        // Each merge shortens the list, so this ends; the bound is belt and braces.
        for _ in 0..1024 {
            blocks.sort_by_key(|b| b.meta().min_time);
            let metas: Vec<_> = blocks.iter().map(Block::meta).collect();
            let Some(group) = plan(&metas) else {
                break;
            };
            // Newer than every block, as a shard's next block is: of two overlapping
            // blocks, the larger ULID holds the later writes.
            let fresh = clock.ulid();
            let ulid = match last_ulid {
                Some(last) if fresh <= last => last.increment().unwrap_or(fresh),
                _ => fresh,
            };
            last_ulid = Some(ulid);
            let ulid = ulid.to_string();
            let parents: Vec<&Block> = group.iter().filter_map(|&i| blocks.get(i)).collect();
            let merged = write_merged(storage, data_dir, shard, &ulid, &parents)?;
            let mut doomed = Vec::new();
            let mut keep = Vec::new();
            for (i, b) in blocks.into_iter().enumerate() {
                if group.contains(&i) {
                    doomed.push(b.dir().to_path_buf());
                } else {
                    keep.push(b);
                }
            }
            keep.push(merged);
            blocks = keep;
            for dir in doomed {
                delete_block_dir(storage, &dir)?;
            }
            report.merged.push(ulid);
        }
        report.blocks_after += blocks.len();
        report.bytes_after += blocks.iter().map(Block::size_bytes).sum::<u64>();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{ChunkData, SeriesChunks, encode_block, write_block_dir};
    use crate::model::{Label, Labels, Sample};
    use crate::storage::{DiskStorage, SystemClock};

    const H: i64 = 3_600_000;

    /// Block `ulid` of `shard` with series `up{job="a"}` sampled at `times`.
    fn block(data: &Path, ulid: &str, shard: u32, times: &[i64]) {
        let labels = Labels::new(vec![Label::new("__name__", "up"), Label::new("job", "a")]);
        let samples: Vec<Sample> = times.iter().map(|&t| Sample::new(t, t as f64)).collect();
        let series = vec![SeriesChunks {
            labels: labels.unwrap(),
            chunks: vec![ChunkData::from_samples(&samples)],
        }];
        let b = encode_block(ulid, shard, 1, vec![ulid.to_owned()], vec![], series);
        write_block_dir(&layout::blocks_dir(data), &b).unwrap();
    }

    fn blocks(data: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(layout::blocks_dir(data))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn merges_each_shards_blocks_until_nothing_is_left() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemClock::new().now_ms();
        let base = now - now.rem_euclid(2 * H) - 8 * H;
        block(
            d.path(),
            "01JDQ8Z1W0T2B3C4D5E6F7G8H1",
            0,
            &[base, base + 1000],
        );
        block(d.path(), "01JDQ8Z1W0T2B3C4D5E6F7G8H2", 0, &[base + 2000]);
        // Overlaps the first: the later block's sample wins the shared timestamp.
        block(
            d.path(),
            "01JDQ8Z1W0T2B3C4D5E6F7G8H3",
            0,
            &[base + 1000, base + 3000],
        );
        // Another shard's block is never merged with shard 0's.
        block(d.path(), "01JDQ8Z1W0T2B3C4D5E6F7G8H4", 1, &[base]);
        let r =
            compact_offline(&DiskStorage, &SystemClock::new(), d.path(), Some(2), None).unwrap();
        assert_eq!(r.blocks_before, 4);
        assert_eq!(r.blocks_after, 2, "{r:?}");
        assert!(!r.merged.is_empty());
        assert!(r.expired.is_empty());
        let left = blocks(d.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&"01JDQ8Z1W0T2B3C4D5E6F7G8H4".to_owned()));
        let merged = left.iter().find(|n| !n.ends_with("H4")).unwrap();
        assert!(merged.as_str() > "01JDQ8Z1W0T2B3C4D5E6F7G8H4");
        let b = Block::open(&layout::blocks_dir(d.path()).join(merged)).unwrap();
        let s = b.all_series().next().unwrap();
        let got: Vec<i64> = b
            .read_samples(s, i64::MIN, i64::MAX)
            .unwrap()
            .iter()
            .map(|x| x.timestamp_ms)
            .collect();
        assert_eq!(got, vec![base, base + 1000, base + 2000, base + 3000]);
        assert_eq!(b.meta().compaction.sources.len(), 3);
        crate::block::verify_block(b.dir()).unwrap();

        let again =
            compact_offline(&DiskStorage, &SystemClock::new(), d.path(), Some(2), None).unwrap();
        assert!(again.merged.is_empty(), "{again:?}");
        assert_eq!(again.blocks_before, 2);
        assert_eq!(again.bytes_before, again.bytes_after);
    }

    #[test]
    fn retention_deletes_old_blocks_first() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemClock::new().now_ms();
        block(d.path(), "01JDQ8Z1W0T2B3C4D5E6F7G8H1", 0, &[now - 100 * H]);
        block(d.path(), "01JDQ8Z1W0T2B3C4D5E6F7G8H2", 0, &[now - H]);
        let r = compact_offline(
            &DiskStorage,
            &SystemClock::new(),
            d.path(),
            None,
            Some(10 * H),
        )
        .unwrap();
        assert_eq!(r.expired, vec!["01JDQ8Z1W0T2B3C4D5E6F7G8H1".to_owned()]);
        assert_eq!(
            blocks(d.path()),
            vec!["01JDQ8Z1W0T2B3C4D5E6F7G8H2".to_owned()]
        );
        assert_eq!((r.blocks_before, r.blocks_after), (2, 1));
        assert!(r.bytes_after < r.bytes_before);
    }
}
