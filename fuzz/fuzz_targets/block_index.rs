//! cargo-fuzz target: `tsdb_engine::fuzz::block_index`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_engine::fuzz::block_index(data));
