//! cargo-fuzz target: `tsdb_net::fuzz::remote_write`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_net::fuzz::remote_write(data));
