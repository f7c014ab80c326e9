//! cargo-fuzz target: `tsdb_engine::fuzz::wal_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_engine::fuzz::wal_record(data));
