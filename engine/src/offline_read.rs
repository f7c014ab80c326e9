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
use crate::wal::reader::{Damage, Repair, replay_in};
use crate::wal::record::Record;

/// What [`read_offline`] read.
#[derive(Debug, Clone, Default)]
pub struct OfflineRead {
    /// Sorted by labels; each series' samples sorted by time, one per timestamp.
    pub series: Vec<SeriesData>,
    /// Damage met in the WAL, per shard: the records behind it were not read (what
    /// the server's start would drop too; `tsdb inspect-wal` says more).
    pub wal_damage: Vec<(u32, Damage)>,
}

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
) -> Result<OfflineRead> {
    let mut wal_damage = Vec::new();
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
        let stats = replay_in(
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
        wal_damage.extend(stats.damage.into_iter().map(|d| (shard, d)));
        parts.extend(series.into_iter().filter(|s| !s.samples.is_empty()));
    }
    let mut merged = merge_series(parts);
    // One source per series is returned as it came; the WAL's may be out of order.
    for s in &mut merged {
        crate::head::sort_dedup(&mut s.samples);
    }
    Ok(OfflineRead {
        series: merged,
        wal_damage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{ChunkData, SeriesChunks, encode_block, write_block_dir};
    use crate::model::{Label, Sample};
    use crate::storage::DiskStorage;
    use crate::wal::{record, segment};

    fn labels(job: &str) -> Labels {
        Labels::new(vec![Label::new("__name__", "up"), Label::new("job", job)]).unwrap()
    }

    /// A block with `up{job="a"}` at 1000 and 2000 (value 1), and a WAL for shard 1
    /// that overwrites 2000 (value 9), adds 3000, and holds `up{job="b"}`.
    fn data_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let series = vec![SeriesChunks {
            labels: labels("a"),
            chunks: vec![ChunkData::from_samples(&[
                Sample::new(1000, 1.0),
                Sample::new(2000, 1.0),
            ])],
        }];
        let b = encode_block("01JDQ8Z1W0T2B3C4D5E6F7G8H1", 0, 1, vec![], vec![], series);
        write_block_dir(&layout::blocks_dir(d.path()), &b).unwrap();
        let wal = d.path().join(layout::WAL_DIR).join("1");
        std::fs::create_dir_all(&wal).unwrap();
        let (a, b) = (labels("a"), labels("b"));
        let mut buf = segment::header(1).to_vec();
        record::encode_series(&mut buf, [(7, &a), (8, &b)].into_iter());
        record::encode_samples(
            &mut buf,
            &[
                (8, Sample::new(3000, 5.0)),
                (7, Sample::new(3000, 9.0)),
                (7, Sample::new(2000, 9.0)),
            ],
        );
        std::fs::write(wal.join(layout::segment_name(1)), buf).unwrap();
        d
    }

    fn read(d: &Path, sets: &[Vec<Matcher>], min: i64, max: i64) -> Vec<SeriesData> {
        let r = read_offline(&DiskStorage, d, &d.join(layout::WAL_DIR), sets, min, max).unwrap();
        assert!(r.wal_damage.is_empty(), "{:?}", r.wal_damage);
        r.series
    }

    #[test]
    fn blocks_and_wal_merge_with_the_wal_winning_a_shared_timestamp() {
        let d = data_dir();
        let before: Vec<_> = std::fs::read_dir(d.path().join("wal/1"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        let all = vec![Matcher::new("__name__", "=~", ".+").unwrap()];
        let got = read(d.path(), std::slice::from_ref(&all), i64::MIN, i64::MAX);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels, labels("a"));
        let a: Vec<(i64, f64)> = got[0]
            .samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value))
            .collect();
        assert_eq!(a, vec![(1000, 1.0), (2000, 9.0), (3000, 9.0)]);
        assert_eq!(got[1].samples, vec![Sample::new(3000, 5.0)]);

        let only_b = vec![Matcher::new("job", "=", "b").unwrap()];
        let got = read(d.path(), &[only_b], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels, labels("b"));
        let got = read(d.path(), &[all], 1500, 2500);
        assert_eq!(got.len(), 1, "job b has no sample in the range");
        assert_eq!(got[0].samples, vec![Sample::new(2000, 9.0)]);

        let after: Vec<_> = std::fs::read_dir(d.path().join("wal/1"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(before, after, "read-only");
    }

    #[test]
    fn wal_damage_is_reported_and_the_rest_read() {
        let d = data_dir();
        let seg = d.path().join("wal/1").join(layout::segment_name(1));
        let mut bytes = std::fs::read(&seg).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&seg, &bytes).unwrap();
        let all = vec![Matcher::new("__name__", "=~", ".+").unwrap()];
        let r = read_offline(
            &DiskStorage,
            d.path(),
            &d.path().join(layout::WAL_DIR),
            &[all],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
        assert_eq!(r.wal_damage.len(), 1, "{:?}", r.wal_damage);
        assert_eq!(r.wal_damage[0].0, 1);
        // The block is still read; the damaged samples record is not.
        assert_eq!(r.series.len(), 1);
        assert_eq!(r.series[0].samples.len(), 2);
        assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing truncated");
    }
}
