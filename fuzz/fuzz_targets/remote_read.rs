//! cargo-fuzz target: `tsdb_net::fuzz::remote_read`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tsdb_net::fuzz::remote_read(data));
