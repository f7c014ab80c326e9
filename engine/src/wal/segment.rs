//! WAL segment files: naming, the 16-byte header, and listing a shard's segments.
//!
//! Header: `b"TSDBWAL1"`, the owning shard as u32 LE, and a crc32c of those 12 bytes.
//! The shard number lets a segment copied into the wrong shard directory be noticed.
#![deny(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::layout;
use crate::storage::{DiskStorage, Storage};

pub const MAGIC: &[u8; 8] = b"TSDBWAL1";
pub const HEADER_BYTES: usize = 16;

/// Encodes the header of a segment owned by `shard`.
pub fn header(shard: u32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let (magic, rest) = h.split_at_mut(8);
    magic.copy_from_slice(MAGIC);
    let (s, crc) = rest.split_at_mut(4);
    s.copy_from_slice(&shard.to_le_bytes());
    let mut first = [0u8; 12];
    let (fm, fs) = first.split_at_mut(8);
    fm.copy_from_slice(MAGIC);
    fs.copy_from_slice(&shard.to_le_bytes());
    crc.copy_from_slice(&crc32c::crc32c(&first).to_le_bytes());
    h
}

/// Parses a segment header; `Err` says what is wrong with it.
pub fn parse_header(buf: &[u8]) -> Result<u32, String> {
    let h = buf
        .get(..HEADER_BYTES)
        .ok_or_else(|| format!("segment is {} bytes, shorter than its header", buf.len()))?;
    let (first, crc) = h.split_at(12);
    if first.get(..8) != Some(MAGIC.as_slice()) {
        return Err("bad segment magic".into());
    }
    let mut c = [0u8; 4];
    c.copy_from_slice(crc);
    let expected = u32::from_le_bytes(c);
    let got = crc32c::crc32c(first);
    if expected != got {
        return Err(format!(
            "segment header checksum mismatch (expected {expected:#010x}, got {got:#010x})"
        ));
    }
    let mut s = [0u8; 4];
    s.copy_from_slice(first.get(8..12).unwrap_or(&[0; 4]));
    Ok(u32::from_le_bytes(s))
}

/// A segment on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    pub seq: u64,
    pub path: PathBuf,
}

/// Lists the segments in `dir` in order. Files that are not segments are ignored
/// (and left alone).
pub fn list(dir: &Path) -> Result<Vec<SegmentFile>> {
    list_in(&DiskStorage, dir)
}

/// [`list`] on any storage.
pub fn list_in(storage: &impl Storage, dir: &Path) -> Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    let entries = match storage.read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(crate::Error::io(
                format!("list wal dir {}", dir.display()),
                e,
            ));
        }
    };
    for entry in entries {
        if let Some(seq) = layout::parse_segment_name(&entry.name) {
            out.push(SegmentFile {
                seq,
                path: dir.join(&entry.name),
            });
        }
    }
    out.sort_by_key(|s| s.seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = header(3);
        assert_eq!(parse_header(&h), Ok(3));
        let mut bad = h;
        bad[9] ^= 1;
        assert!(parse_header(&bad).is_err());
        assert!(parse_header(&h[..10]).is_err());
    }
}
