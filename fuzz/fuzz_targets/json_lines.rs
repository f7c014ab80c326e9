//! cargo-fuzz target: `tsdb_net::fuzz::json_lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_net::fuzz::json_lines(data));
