//! The deterministic simulation of a shard on a simulated disk (see
//! `tsdb_engine::storage::sim`): seeded runs of appends, syncs, flushes, compactions,
//! retention, clock moves, crashes and restarts under injected EIO, ENOSPC, torn and
//! lost writes, each checked against a model of what was acknowledged.
//!
//! - `TSDB_SIM_SEEDS=N` runs N seeds instead of the CI-sized default, from
//!   `TSDB_SIM_FIRST_SEED` (0); `TSDB_SEED=S` runs seed S alone. A failing seed
//!   panics with the command that reproduces it.
//! - `TSDB_SIM_FUZZ=N` feeds N random byte strings to `run_ops`, the entry point of
//!   the cargo-fuzz target, instead of the default.
//! - Each seed that once found a bug is kept below as a named regression test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on what it did not expect"
)]

use std::cell::Cell;
use std::sync::Once;

use tsdb_engine::storage::sim::{Rng, Summary, check_ops, run_ops, seed_input};

/// Seeds `cargo test` runs.
const CI_SEEDS: u64 = 300;
/// Bytes of input per seed: about 300 operations.
const SEED_BYTES: usize = 2048;
/// Random byte strings the fuzz loop runs under `cargo test`.
const CI_FUZZ_INPUTS: u64 = 10_000;

thread_local! {
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn repro(seed: u64) -> String {
    format!("TSDB_SEED={seed} cargo test -p tsdb-engine --test sim")
}

/// Makes any panic inside a seed (an engine `BUG:` assertion, say) name the seed.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(seed) = CURRENT.with(Cell::get) {
                eprintln!(
                    "simulation seed {seed} panicked; reproduce with: {}",
                    repro(seed)
                );
            }
            default(info);
        }));
    });
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Runs one seed, panicking with the reproduction command if a rule broke.
fn run_seed(seed: u64) -> Summary {
    install_panic_hook();
    CURRENT.with(|c| c.set(Some(seed)));
    let result = check_ops(&seed_input(seed, SEED_BYTES));
    CURRENT.with(|c| c.set(None));
    match result {
        Ok(s) => s,
        Err(v) => panic!(
            "simulation seed {seed} failed: {v}\nreproduce: {}",
            repro(seed)
        ),
    }
}

#[test]
fn sim_seeds() {
    let seeds = match env_u64("TSDB_SEED") {
        Some(s) => s..s + 1,
        None => {
            let first = env_u64("TSDB_SIM_FIRST_SEED").unwrap_or(0);
            first..first + env_u64("TSDB_SIM_SEEDS").unwrap_or(CI_SEEDS)
        }
    };
    let mut total = Summary::default();
    for seed in seeds.clone() {
        total.add(&run_seed(seed));
    }
    eprintln!("sim: {}", total.line());
    if seeds.end - seeds.start >= CI_SEEDS {
        // The workload must exercise what it claims to, or a pass means nothing.
        assert!(total.crashes > total.runs, "{total:?}");
        assert!(total.clean_restarts > 0, "{total:?}");
        assert!(total.faults > 0 && total.wal_faults > 0, "{total:?}");
        assert!(total.read_only_refusals > 0, "{total:?}");
        assert!(total.reopen_failures > 0, "{total:?}");
        assert!(total.torn_writes > 0 && total.lost_writes > 0, "{total:?}");
        assert!(total.samples_checked > 10 * total.runs, "{total:?}");
        assert!(total.interval_runs > 0 && total.interval_runs < total.runs);
    }
}

#[test]
fn sim_same_seed_same_run() {
    for seed in [1, 7, 42] {
        assert_eq!(run_seed(seed), run_seed(seed), "seed {seed}");
    }
}

#[test]
fn sim_fuzz_run_ops_on_random_bytes() {
    let n = env_u64("TSDB_SIM_FUZZ").unwrap_or(CI_FUZZ_INPUTS);
    let mut rng = Rng::new(0xf022);
    let mut total = Summary::default();
    for i in 0..n {
        let len = rng.below(160) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        match check_ops(&bytes) {
            Ok(s) => total.add(&s),
            Err(v) => panic!("fuzz input {i} failed: {v}\ninput: {bytes:02x?}"),
        }
    }
    // The fuzz target's entry point itself, on the empty input and a short one.
    run_ops(&[]);
    run_ops(&[
        1, 200, 255, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 2, 3, 26, 4,
    ]);
    eprintln!("sim fuzz: {n} inputs: {}", total.line());
    assert_eq!(total.runs, n);
    assert!(total.crashes >= n, "every run ends with a crash");
}

// Seeds that found bugs, each fixed in the engine. Every one of them fails with its fix
// reverted; `engine/src/storage/sim/scenarios.rs` shows each bug in a few lines.

/// `create_dir_all` did not sync parents: a crash could take `wal/` and all of it.
#[test]
fn sim_regression_seed_0_wal_dir_creation_was_not_durable() {
    run_seed(0);
}

/// Overlapping blocks were merged by first timestamp (and same-millisecond ULIDs sort
/// at random), so an older block could win a duplicate timestamp.
#[test]
fn sim_regression_seed_1_older_block_won_a_duplicate_timestamp() {
    run_seed(1);
}

/// A WAL sync failing while a flush cut the segment left the shard looking writable.
#[test]
fn sim_regression_seed_3_failed_segment_cut_left_the_shard_writable() {
    run_seed(3);
}

/// A series logged under two refs replayed as two head series; the flush panicked.
#[test]
fn sim_regression_seed_6_series_logged_twice_made_flush_panic() {
    run_seed(6);
}

/// New samples referred to a series record replayed from bytes whose fdatasync had
/// failed; a crash took the record and the acknowledged samples with it.
#[test]
fn sim_regression_seed_1060_samples_depended_on_an_unsynced_series_record() {
    run_seed(1060);
}

/// A start deleted compacted parents before the merged block's rename was durable.
#[test]
fn sim_regression_seed_7616_parents_deleted_before_their_merge_was_durable() {
    run_seed(7616);
}
