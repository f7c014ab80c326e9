//! compact (being written).
