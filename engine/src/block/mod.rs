//! Immutable on-disk blocks: `<data-dir>/blocks/<ULID>/` holding `meta.json`,
//! `index` and `chunks`.
//!
//! A block is written once (by a head flush or a compaction) into a `.tmp` directory,
//! fsynced and renamed into place, and never modified after; that is what makes
//! hard-link snapshots and rsync backups safe. The byte formats are documented, with
//! crash analyses, in `engine/docs/format/{meta,index,chunks}.md`, and tests here keep
//! those documents' examples equal to what the code writes.
//!
//! - [`writer`]: [`encode_block`] (bytes in memory) and [`write_block_dir`] (to disk).
//! - [`reader`]: [`Block`] (open, select through postings, read chunks) and
//!   [`verify_block`].
//! - [`meta`], `index`, `chunks`: one file format each.

mod buf;
mod chunks;
pub(crate) mod index;
pub mod inspect;
pub mod meta;
pub mod reader;
pub mod writer;

#[cfg(test)]
mod tests;

pub use inspect::{BlockReport, inspect_block};
pub use meta::{BlockMeta, BlockStats, CompactionMeta, META_VERSION};
pub use reader::{Block, SeriesRef, verify_block};
pub use writer::{
    BlockEncoder, ChunkData, EncodedBlock, SeriesChunks, encode_block, write_block_dir,
    write_block_dir_in,
};

/// The bytes of the first ` ```hex ` block of a format document. Each line holds hex
/// byte pairs; `#` starts a comment, so the dump can be annotated field by field.
#[cfg(test)]
pub(crate) fn doc_hex(doc: &str) -> Vec<u8> {
    doc_block(doc, "hex")
        .lines()
        .flat_map(|line| line.split('#').next().unwrap_or("").split_whitespace())
        .map(|pair| {
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex byte {pair:?}"))
        })
        .collect()
}

/// The text of the first fenced block tagged `lang` in a format document.
#[cfg(test)]
pub(crate) fn doc_block(doc: &str, lang: &str) -> String {
    let open = format!("```{lang}\n");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("no {open:?} block in the document"))
        + open.len();
    let len = doc[start..].find("```").expect("unterminated block");
    doc[start..start + len].to_string()
}

/// Bytes as hex lines of 16, to paste into a document when the format changes.
#[cfg(test)]
pub(crate) fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The block all three format documents show: `up{job="a"}` with one chunk of four
/// samples and `up{job="b"}` with two chunks.
#[cfg(test)]
pub(crate) fn example_block() -> EncodedBlock {
    use crate::model::{Label, Labels, Sample};
    let labels = |job: &str| {
        Labels::new(vec![Label::new("__name__", "up"), Label::new("job", job)]).unwrap()
    };
    let s = |t, v| Sample::new(t, v);
    let series = vec![
        SeriesChunks {
            labels: labels("b"),
            chunks: vec![
                ChunkData::from_samples(&[s(1000, 1.0), s(2000, 1.0)]),
                ChunkData::from_samples(&[s(3000, 7.0)]),
            ],
        },
        SeriesChunks {
            labels: labels("a"),
            chunks: vec![ChunkData::from_samples(&[
                s(1000, 1.0),
                s(2000, 1.0),
                s(3000, 2.0),
                s(3500, 2.5),
            ])],
        },
    ];
    encode_block("01JDQ8Z1W0T2B3C4D5E6F7G8H9", 0, 1, vec![], vec![], series)
}
