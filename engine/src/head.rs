//! head (being written).
