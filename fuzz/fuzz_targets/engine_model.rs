//! cargo-fuzz target: model-based fuzzing of the engine. The bytes decode to appends,
//! syncs, flushes, compactions, retention, faults and crashes run by a shard on the
//! simulated disk (`tsdb_engine::storage::sim`), checked against a model; a violation
//! panics. `engine/tests/sim.rs` runs the same entry point over seeded random bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tsdb_engine::storage::sim::run_ops(data);
});
