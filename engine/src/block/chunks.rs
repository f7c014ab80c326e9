//! A block's `chunks` file: a header, then every chunk of every series as
//! `[len u32 LE][crc32c u32 LE][data]`, in series order. In version 2, `data` opens
//! with the chunk's encoding byte; version 1 (XOR only, no such byte) still reads.
//!
//! Reading goes through positioned reads (`pread`) of exactly the records a query
//! needs, so a block of any size costs no memory until it is queried. Byte layout and
//! crash analysis: `engine/docs/format/chunks.md`.

#![deny(clippy::indexing_slicing)]

use std::path::Path;

use crate::chunk::Encoding;
use crate::error::{Error, IoContext, Result};
use crate::storage::ReadAt;

/// "TSCH": tsdb chunks.
pub(crate) const CHUNKS_MAGIC: [u8; 4] = *b"TSCH";
/// The version written; [`CHUNKS_VERSION_XOR_ONLY`] files are still read.
pub(crate) const CHUNKS_VERSION: u8 = 2;
/// Version 1: every record's data is an XOR chunk, without an encoding byte.
pub(crate) const CHUNKS_VERSION_XOR_ONLY: u8 = 1;
/// Magic, version, three reserved zero bytes: keeps records 4-byte aligned.
pub(crate) const CHUNKS_HEADER_BYTES: u64 = 8;
/// Length and checksum in front of each chunk's data.
pub(crate) const RECORD_HEADER_BYTES: u64 = 8;

/// The file header.
pub(crate) fn header() -> [u8; CHUNKS_HEADER_BYTES as usize] {
    let [m0, m1, m2, m3] = CHUNKS_MAGIC;
    [m0, m1, m2, m3, CHUNKS_VERSION, 0, 0, 0]
}

/// Appends one chunk record (the encoding byte, then the chunk) and returns its offset
/// in the file and the length of its data.
pub(crate) fn append_record(file: &mut Vec<u8>, encoding: Encoding, chunk: &[u8]) -> (u64, u32) {
    let offset = file.len() as u64;
    let len = u32::try_from(chunk.len() + 1)
        .unwrap_or_else(|_| panic!("BUG: a chunk of {} bytes exceeds u32", chunk.len()));
    file.extend_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[encoding.byte()]), chunk);
    file.extend_from_slice(&crc.to_le_bytes());
    file.push(encoding.byte());
    file.extend_from_slice(chunk);
    (offset, len)
}

/// Checks the header of an opened `chunks` file of `len` bytes and returns its
/// version.
pub(crate) fn check_header(file: &dyn ReadAt, path: &Path, len: u64) -> Result<u8> {
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
        [_, _, _, _, v, ..] if v == CHUNKS_VERSION || v == CHUNKS_VERSION_XOR_ONLY => Ok(v),
        [_, _, _, _, v, ..] => Err(Error::corrupt(
            path,
            4,
            format!(
                "chunks version {v} is not supported (this build reads \
                 {CHUNKS_VERSION_XOR_ONLY} and {CHUNKS_VERSION})"
            ),
        )),
    }
}

/// Reads the record at `offset` of a file of `version` whose data the index says is
/// `len` bytes, checks the length it carries and its checksum, and returns the chunk
/// and its encoding.
pub(crate) fn read_record(
    file: &dyn ReadAt,
    path: &Path,
    version: u8,
    offset: u64,
    len: u32,
) -> Result<(Encoding, Vec<u8>)> {
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
    if version == CHUNKS_VERSION_XOR_ONLY {
        buf.drain(..RECORD_HEADER_BYTES as usize);
        return Ok((Encoding::Xor, buf));
    }
    let byte = buf.get(RECORD_HEADER_BYTES as usize).copied();
    let Some(encoding) = byte.and_then(Encoding::from_byte) else {
        return Err(Error::corrupt(
            path,
            offset + RECORD_HEADER_BYTES,
            format!("chunk encoding {byte:?} is unknown"),
        ));
    };
    buf.drain(..=RECORD_HEADER_BYTES as usize);
    Ok((encoding, buf))
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
        assert_eq!(
            check_header(&file, &path, bytes.len() as u64).unwrap(),
            CHUNKS_VERSION
        );
        // The first record, `up{job="a"}`'s packed chunk of four samples.
        let at = CHUNKS_HEADER_BYTES as usize;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let read = |file: &File, len| read_record(file, &path, CHUNKS_VERSION, 8, len);
        let (encoding, data) = read(&file, len).unwrap();
        assert_eq!(encoding, Encoding::Packed);
        assert_eq!(data.len() + 1, len as usize);
        assert_eq!(chunk::decode_as(encoding, &data).unwrap().len(), 4);
        assert!(matches!(read(&file, len - 1), Err(Error::Corrupt { .. })));
        assert!(matches!(
            read_record(&file, &path, CHUNKS_VERSION, bytes.len() as u64 - 4, 13),
            Err(Error::Io { .. })
        ));
        // An unknown encoding byte with a good checksum is corrupt, not a panic.
        let mut unknown = bytes.clone();
        unknown[at + 8] = 9;
        let crc = crc32c::crc32c(&unknown[at + 8..at + 8 + len as usize]);
        unknown[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &unknown).unwrap();
        let e = read(&File::open(&path).unwrap(), len).unwrap_err();
        assert!(e.to_string().contains("encoding Some(9) is unknown"), "{e}");
        bytes[at + 8 + 3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert!(matches!(
            read(&file, len),
            Err(Error::ChecksumMismatch { offset: 8, .. })
        ));
        bytes[4] = 3;
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert!(check_header(&file, &path, bytes.len() as u64).is_err());
        bytes[4] = CHUNKS_VERSION_XOR_ONLY;
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            check_header(&file, &path, bytes.len() as u64).unwrap(),
            CHUNKS_VERSION_XOR_ONLY
        );
        bytes[0] = b'X';
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert!(check_header(&file, &path, bytes.len() as u64).is_err());
        assert!(check_header(&file, &path, 3).is_err());
    }
}
