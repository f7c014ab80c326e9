//! The read-only report of `tsdb inspect <BLOCK_DIR>`: a block's meta, counts, file
//! sizes and most common label names, and [`verify_block`]'s verdict on every byte.
//!
//! Built from the reader's own functions ([`Block::open`], `verify_dir`), so the report
//! calls damaged exactly what the server would refuse or set aside.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::meta::{BlockMeta, BlockStats};
use super::reader::{Block, verify_dir};
use crate::error::{Error, Result};
use crate::layout::{CHUNKS_FILE, INDEX_FILE, META_FILE};
use crate::storage::Storage;

/// How many label names [`BlockReport::top_label_names`] lists.
pub const TOP_LABEL_NAMES: usize = 10;

/// What `tsdb inspect` prints about one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockReport {
    pub dir: PathBuf,
    /// `None` when `meta.json` is missing or does not parse (then `damage` says why).
    pub meta: Option<BlockMeta>,
    /// Each of the block's three files and its length, `None` when it is missing.
    pub files: Vec<(&'static str, Option<u64>)>,
    /// Counted from the data by the verification; `None` when it failed.
    pub counted: Option<BlockStats>,
    /// Label names by the number of series carrying them, most first (ties by name),
    /// at most [`TOP_LABEL_NAMES`]; empty when the index could not be read.
    pub top_label_names: Vec<(String, u64)>,
    /// Why the block is damaged: the error that open or verification stopped at.
    pub damage: Option<String>,
}

impl BlockReport {
    pub fn is_intact(&self) -> bool {
        self.damage.is_none()
    }
}

/// Reports on the block in `dir`, reading every file and changing none. An error means
/// `dir` is no block directory at all (not a directory, or none of the three files is
/// there) or could not be listed; anything wrong inside a block is the report's
/// `damage`.
pub fn inspect_block(storage: &impl Storage, dir: &Path) -> Result<BlockReport> {
    let m = storage
        .metadata(dir)
        .map_err(|e| Error::io(format!("inspect block {}", dir.display()), e))?;
    if !m.is_dir {
        return Err(Error::io(
            format!("inspect block {}", dir.display()),
            io::Error::other("not a directory"),
        ));
    }
    let files: Vec<(&'static str, Option<u64>)> = [META_FILE, INDEX_FILE, CHUNKS_FILE]
        .into_iter()
        .map(|name| (name, storage.metadata(&dir.join(name)).ok().map(|m| m.len)))
        .collect();
    if files.iter().all(|(_, len)| len.is_none()) {
        return Err(Error::io(
            format!("inspect block {}", dir.display()),
            io::Error::other(format!(
                "no block directory: none of {META_FILE}, {INDEX_FILE}, {CHUNKS_FILE} is there"
            )),
        ));
    }
    let meta_path = dir.join(META_FILE);
    let meta = storage
        .read(&meta_path)
        .ok()
        .and_then(|b| BlockMeta::parse(&meta_path, &b).ok());
    let top_label_names = match Block::open_in(storage, dir) {
        Ok(block) => top_label_names(&block),
        Err(_) => Vec::new(),
    };
    let (counted, damage) = match verify_dir(storage, dir, true) {
        Ok(stats) => (Some(stats), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(BlockReport {
        dir: dir.to_path_buf(),
        meta,
        files,
        counted,
        top_label_names,
        damage,
    })
}

fn top_label_names(block: &Block) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for s in block.all_series() {
        for l in block.labels(s).iter() {
            *counts.entry(l.name.as_str()).or_default() += 1;
        }
    }
    let mut top: Vec<(String, u64)> = counts.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
    // Stable: names were in order, so ties stay alphabetical.
    top.sort_by_key(|b| std::cmp::Reverse(b.1));
    top.truncate(TOP_LABEL_NAMES);
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{ChunkData, SeriesChunks, encode_block, write_block_dir};
    use crate::model::{Label, Labels, Sample};
    use crate::storage::DiskStorage;

    const ULID: &str = "01JDQ8Z1W0T2B3C4D5E6F7G8H9";

    fn write() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let series = (0..4)
            .map(|i| {
                let mut pairs = vec![
                    Label::new("__name__", "up"),
                    Label::new("job", format!("j{i}")),
                ];
                if i == 0 {
                    pairs.push(Label::new("zone", "a"));
                }
                SeriesChunks {
                    labels: Labels::new(pairs).unwrap(),
                    chunks: vec![ChunkData::from_samples(&[
                        Sample::new(1000, 1.0),
                        Sample::new(2000, 2.0),
                    ])],
                }
            })
            .collect();
        let block = encode_block(ULID, 2, 1, vec![], vec![], series);
        let dir = write_block_dir(&tmp.path().join("blocks"), &block).unwrap();
        (tmp, dir)
    }

    #[test]
    fn intact_block_is_reported_with_counts_and_top_labels() {
        let (_tmp, dir) = write();
        let r = inspect_block(&DiskStorage, &dir).unwrap();
        assert!(r.is_intact(), "{:?}", r.damage);
        let meta = r.meta.as_ref().unwrap();
        assert_eq!(meta.ulid, ULID);
        assert_eq!(meta.shard, 2);
        let counted = r.counted.clone().unwrap();
        assert_eq!(counted.num_series, 4);
        assert_eq!(counted.num_samples, 8);
        assert_eq!(counted, meta.stats);
        assert_eq!(
            r.top_label_names,
            vec![
                ("__name__".to_owned(), 4),
                ("job".to_owned(), 4),
                ("zone".to_owned(), 1)
            ]
        );
        assert!(r.files.iter().all(|(_, len)| len.is_some_and(|l| l > 0)));
    }

    #[test]
    fn damaged_chunk_is_damage_and_nothing_changes() {
        let (_tmp, dir) = write();
        let chunks = dir.join(CHUNKS_FILE);
        let mut bytes = std::fs::read(&chunks).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&chunks, &bytes).unwrap();
        let r = inspect_block(&DiskStorage, &dir).unwrap();
        let damage = r.damage.clone().unwrap();
        assert!(damage.contains(CHUNKS_FILE), "{damage}");
        assert!(r.counted.is_none());
        // The meta and index are fine, so they are still reported.
        assert_eq!(r.meta.unwrap().ulid, ULID);
        assert_eq!(r.top_label_names.len(), 3);
        assert_eq!(std::fs::read(&chunks).unwrap(), bytes);
    }

    #[test]
    fn missing_meta_is_damage_but_an_empty_dir_is_no_block() {
        let (tmp, dir) = write();
        std::fs::remove_file(dir.join(META_FILE)).unwrap();
        let r = inspect_block(&DiskStorage, &dir).unwrap();
        assert!(r.meta.is_none());
        assert!(r.damage.unwrap().contains(META_FILE));
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(inspect_block(&DiskStorage, &empty).is_err());
        assert!(inspect_block(&DiskStorage, &tmp.path().join("absent")).is_err());
    }
}
