//! cargo-fuzz target: `tsdb_net::fuzz::line_protocol`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_net::fuzz::line_protocol(data));
