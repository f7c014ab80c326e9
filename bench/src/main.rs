//! tsdb-bench.
fn main() {}
