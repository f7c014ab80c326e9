//! `tsdb-bench` as a library: the load generator, the query harness and the
//! side-by-side comparison of tsdb with Prometheus, VictoriaMetrics and InfluxDB. The
//! binary (main.rs) is its command line; the root package's `tests/bench_compare.rs`
//! runs a small comparison through [`compare::run`] so the harness cannot rot.

pub mod compare;
pub mod disk;
pub mod r#gen;
pub mod load;
pub mod markdown;
pub mod peers;
pub mod query;
pub mod report;
