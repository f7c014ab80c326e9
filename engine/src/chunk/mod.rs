//! Chunks (being written).
