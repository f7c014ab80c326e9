//! A block's `meta.json`: its identity, time range, statistics and compaction lineage.
//!
//! JSON, unlike the binary `index` and `chunks`, so an operator can read it with `cat`
//! and tools can list blocks without our code. Format and crash analysis:
//! `engine/docs/format/meta.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `version` this code writes and the only one it reads.
pub const META_VERSION: u32 = 1;

/// What `meta.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: String,
    /// The first sample's timestamp (`i64::MAX` in a block without samples).
    pub min_time: i64,
    /// The last sample's timestamp, inclusive (`i64::MIN` in a block without samples).
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: CompactionMeta,
    pub version: u32,
    /// The shard that wrote the block. Informational: series are found by labels, so a
    /// data dir reopened with another shard count still reads every block.
    pub shard: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionMeta {
    /// 1 for a block flushed from the head, one more for each merge.
    pub level: u32,
    /// The ULIDs of the level-1 blocks merged into this one (itself at level 1), so
    /// compaction can tell blocks that overlap because they share data.
    pub sources: Vec<String>,
    /// The ULIDs of the blocks merged directly into this one.
    pub parents: Vec<String>,
}

impl BlockMeta {
    /// Parses and checks `meta.json`; `path` names the file in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<BlockMeta> {
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json reports line and column; the offset is not recoverable from
            // it cheaply, so the reason carries the position.
            Error::corrupt(path, 0, format!("not valid block meta: {e}"))
        })?;
        if meta.version != META_VERSION {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "meta version {} is not supported (this build reads {META_VERSION})",
                    meta.version
                ),
            ));
        }
        if meta.ulid.is_empty() || meta.ulid.contains(['/', '\0']) {
            return Err(Error::corrupt(
                path,
                0,
                format!("ulid {:?} is not a block name", meta.ulid),
            ));
        }
        let empty = meta.stats.num_samples == 0;
        if empty != (meta.min_time > meta.max_time) {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "time range {}..={} does not fit {} samples",
                    meta.min_time, meta.max_time, meta.stats.num_samples
                ),
            ));
        }
        if meta.compaction.level == 0 {
            return Err(Error::corrupt(path, 0, "compaction level 0"));
        }
        Ok(meta)
    }

    /// The file's bytes: pretty JSON with a trailing newline, for the operator's `cat`.
    pub fn to_json(&self) -> Vec<u8> {
        match serde_json::to_vec_pretty(self) {
            Ok(mut v) => {
                v.push(b'\n');
                v
            }
            // Only strings and integers: serialization has no way to fail.
            Err(e) => panic!("BUG: serializing block meta: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> BlockMeta {
        super::super::example_block().meta
    }

    #[test]
    fn doc_example_matches_encoder() {
        let doc = include_str!("../../docs/format/meta.md");
        let json = super::super::doc_block(doc, "json");
        assert_eq!(String::from_utf8(example().to_json()).unwrap(), json);
        let path = Path::new("meta.json");
        assert_eq!(BlockMeta::parse(path, json.as_bytes()).unwrap(), example());
    }

    #[test]
    fn parse_refuses_bad_meta() {
        let path = Path::new("x/meta.json");
        let good = example();
        let bad = |m: BlockMeta| BlockMeta::parse(path, &m.to_json()).unwrap_err();
        let e = bad(BlockMeta {
            version: 2,
            ..good.clone()
        });
        assert!(e.to_string().contains("x/meta.json"), "{e}");
        bad(BlockMeta {
            min_time: 5,
            max_time: 4,
            ..good.clone()
        });
        bad(BlockMeta {
            ulid: "../x".into(),
            ..good.clone()
        });
        assert!(BlockMeta::parse(path, b"{").is_err());
        assert!(BlockMeta::parse(path, b"").is_err());
        assert!(BlockMeta::parse(path, &[0xff, 0x00]).is_err());
    }
}
