//! cargo-fuzz target: `tsdb_engine::fuzz::chunk_round_trip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_engine::fuzz::chunk_round_trip(data));
