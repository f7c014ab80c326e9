//! tsdb-engine: the storage and query engine of tsdb.
//!
//! It owns the data model ([`model`]), the write-ahead log ([`wal`]), the in-memory
//! head ([`head`]), the compressed chunk encoding ([`chunk`]), immutable on-disk
//! blocks ([`block`]), compaction and retention ([`compact`]), and the per-core shard
//! with the mesh of bounded channels between shards ([`shard`], [`mesh`]). Every file
//! and clock it touches goes through [`storage`]. [`fuzz`] holds the fuzz entry points
//! of its decoders of on-disk bytes.
//!
//! **Architecture Invariant:** this crate knows nothing about HTTP, JSON wire formats
//! or protobuf; `tsdb-net` depends on it, never the reverse.

pub mod block;
pub mod cardinality;
pub mod chunk;
pub mod compact;
pub mod compact_offline;
pub mod error;
pub mod fuzz;
pub mod head;
pub mod histogram;
pub mod ingest;
pub mod layout;
pub mod limits;
pub mod mesh;
pub mod model;
pub mod offline_read;
pub mod promql;
pub mod rng;
pub mod select;
pub mod shard;
pub mod storage;
pub mod tombstones;
pub mod trace;
pub mod wal;

pub use error::{Error, ReadOnlyCause, Result};
pub use model::{Label, Labels, MatchOp, Matcher, Sample, SeriesSamples};
