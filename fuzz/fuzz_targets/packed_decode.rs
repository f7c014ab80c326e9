//! cargo-fuzz target: `tsdb_engine::fuzz::packed_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_engine::fuzz::packed_decode(data));
