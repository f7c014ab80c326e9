//! A block's `chunks` file: a header, then every chunk of every series as
//! `[len u32 LE][crc32c u32 LE][data]`, in series order.
//!
//! Reading goes through positioned reads (`pread`) of exactly the records a query
//! needs, so a block of any size costs no memory until it is queried. Byte layout and
//! crash analysis: `engine/docs/format/chunks.md`.

#![deny(clippy::indexing_slicing)]

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::storage::ReadAt;

/// "TSCH": tsdb chunks.
pub(crate) const CHUNKS_MAGIC: [u8; 4] = *b"TSCH";
pub(crate) const CHUNKS_VERSION: u8 = 1;
/// Magic, version, three reserved zero bytes: keeps records 4-byte aligned.
pub(crate) const CHUNKS_HEADER_BYTES: u64 = 8;
/// Length and checksum in front of each chunk's data.
pub(crate) const RECORD_HEADER_BYTES: u64 = 8;

/// The file header.
pub(crate) fn header() -> [u8; CHUNKS_HEADER_BYTES as usize] {
    let [m0, m1, m2, m3] = CHUNKS_MAGIC;
    [m0, m1, m2, m3, CHUNKS_VERSION, 0, 0, 0]
}

/// Appends one chunk record and returns its offset in the file.
pub(crate) fn append_record(file: &mut Vec<u8>, data: &[u8]) -> u64 {
    let offset = file.len() as u64;
    let len = u32::try_from(data.len())
        .unwrap_or_else(|_| panic!("BUG: a chunk of {} bytes exceeds u32", data.len()));
    file.extend_from_slice(&len.to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    file.extend_from_slice(data);
    offset
}

/// Checks the header of an opened `chunks` file of `len` bytes.
pub(crate) fn check_header(file: &dyn ReadAt, path: &Path, len: u64) -> Result<()> {
    if len < CHUNKS_HEADER_BYTES {
        return Err(Error::corrupt(
            path,
            0,
            format!("{len} bytes is shorter than the {CHUNKS_HEADER_BYTES}-byte header"),
        ));
    }
    let mut got = [0u8; CHUNKS_HEADER_BYTES as usize];
    file.read_exact_at(&mut got, 0)
        .ctx(|| format!("read header of {}", path.display()))?;
    match got {
        [m0, m1, m2, m3, ..] if [m0, m1, m2, m3] != CHUNKS_MAGIC => Err(Error::corrupt(
            path,
            0,
            format!("bad magic {:02x?}", [m0, m1, m2, m3]),
        )),
        [_, _, _, _, v, ..] if v != CHUNKS_VERSION => Err(Error::corrupt(
            path,
            4,
            format!("chunks version {v} is not supported (this build reads {CHUNKS_VERSION})"),
        )),
        _ => Ok(()),
    }
}

/// Reads the record at `offset` whose data the index says is `len` bytes, checks
/// the length it carries and its checksum, and returns the data.
pub(crate) fn read_record(
    file: &dyn ReadAt,
    path: &Path,
    offset: u64,
    len: u32,
) -> Result<Vec<u8>> {
    // The index was checked against the file size at open, so this allocation is
    // bounded by the file; one pread fetches header and data together.
    let mut buf = vec![0u8; RECORD_HEADER_BYTES as usize + len as usize];
    file.read_exact_at(&mut buf, offset)
        .ctx(|| format!("read chunk at offset {offset} of {}", path.display()))?;
    let (head, data) = buf.split_at(RECORD_HEADER_BYTES as usize);
    let (len_bytes, crc_bytes) = head.split_at(4);
    let stored_len = u32::from_le_bytes(four(len_bytes));
    if stored_len != len {
        return Err(Error::corrupt(
            path,
            offset,
            format!("chunk record says {stored_len} bytes, the index says {len}"),
        ));
    }
    let expected = u32::from_le_bytes(four(crc_bytes));
    let got = crc32c::crc32c(data);
    if expected != got {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset,
            expected,
            got,
        });
    }
    buf.drain(..RECORD_HEADER_BYTES as usize);
    Ok(buf)
}

fn four(b: &[u8]) -> [u8; 4] {
    let mut out = [0; 4];
    for (o, i) in out.iter_mut().zip(b) {
        *o = *i;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::chunk;

    /// The `chunks` file of the block all format documents show.
    fn example() -> Vec<u8> {
        super::super::example_block().chunks
    }

    #[test]
    fn doc_example_matches_encoder() {
        let doc = include_str!("../../docs/format/chunks.md");
        let want = super::super::doc_hex(doc);
        let got = example();
        assert_eq!(
            got,
            want,
            "chunks.md is out of date; the encoder writes:\n{}",
            super::super::hex_lines(&got)
        );
    }

    #[test]
    fn records_read_back_and_refuse_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let mut bytes = example();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        check_header(&file, &path, bytes.len() as u64).unwrap();
        // The first record, `up{job="a"}`'s chunk of four samples.
        let len = 21;
        let data = read_record(&file, &path, CHUNKS_HEADER_BYTES, len).unwrap();
        assert_eq!(chunk::decode(&data).unwrap().len(), 4);
        assert!(matches!(
            read_record(&file, &path, CHUNKS_HEADER_BYTES, len - 1),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            read_record(&file, &path, 60, 13),
            Err(Error::Io { .. })
        ));
        bytes[CHUNKS_HEADER_BYTES as usize + 8 + 20] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert!(matches!(
            read_record(&file, &path, CHUNKS_HEADER_BYTES, len),
            Err(Error::ChecksumMismatch { offset: 8, .. })
        ));
        bytes[0] = b'X';
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert!(check_header(&file, &path, bytes.len() as u64).is_err());
        assert!(check_header(&file, &path, 3).is_err());
    }
}
