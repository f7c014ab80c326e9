//! A block found damaged after it was opened: set aside at read time.
//!
//! [`crate::block::Block::open`] checks `meta.json`, the whole `index` and the
//! `chunks` header, but not every chunk's checksum: that would read every byte of
//! every block on each start. A chunk is checked when it is read (a query or a
//! compaction). When that check fails, the shard renames the block `<ULID>.broken`
//! (never deleting it), logs an error line naming it, drops it from its list, and the
//! request fails with an error naming the block rather than answering with silently
//! partial data; the next request is served from the remaining blocks and the head.

use std::path::Path;

use super::Shard;
use crate::error::Error;
use crate::storage::Storage;

impl<S: Storage> Shard<S> {
    /// If `e` is evidence of damage inside one of this shard's blocks (a checksum
    /// mismatch or an undecodable chunk in one of its files), sets that block aside
    /// and returns an error that names it; any other error is returned as it is.
    pub(crate) fn set_aside_damaged(&mut self, e: Error) -> Error {
        let path = match &e {
            Error::Corrupt { path, .. } | Error::ChecksumMismatch { path, .. } => path.clone(),
            _ => return e,
        };
        let Some(i) = self
            .blocks
            .iter()
            .position(|b| path.parent() == Some(b.dir()))
        else {
            return e;
        };
        let block = self.blocks.remove(i);
        let ulid = block.meta().ulid.clone();
        let dir = block.dir().to_path_buf();
        drop(block);
        let moved = super::open::set_aside(&self.storage, &dir, &e);
        let where_to = moved.as_deref().map_or_else(
            || "it could not be renamed and is skipped".to_string(),
            |p: &Path| format!("it was set aside as {}", p.display()),
        );
        Error::corrupt(
            dir,
            0,
            format!(
                "block {ulid} is damaged ({e}); {where_to}; later requests are served from the other blocks"
            ),
        )
    }
}
