//! WAL (being written).
