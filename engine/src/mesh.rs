//! mesh (being written).
