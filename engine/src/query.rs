//! query (being written).
