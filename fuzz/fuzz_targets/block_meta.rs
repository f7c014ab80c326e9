//! cargo-fuzz target: `tsdb_engine::fuzz::block_meta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_engine::fuzz::block_meta(data));
