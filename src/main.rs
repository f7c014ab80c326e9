//! The `tsdb` binary.
fn main() {}
