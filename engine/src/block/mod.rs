//! Blocks (being written).
