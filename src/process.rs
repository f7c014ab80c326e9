//! The process' own figures for `/metrics` (`process_*`, `tsdb_memory_alloc_bytes`):
//! read here, at each scrape, and handed to net as a [`ProcessSource`], because net
//! never opens a file and neither net nor the engine knows the allocator.

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
use tsdb_net::metrics::{ProcessSource, ProcessStats};

/// The source the server's metrics read. `start_time_seconds` is the server's start
/// (`ServerInfo::start_time_ms`, as `/api/v1/status/runtimeinfo` reports it), a few
/// milliseconds after `exec`.
pub fn source(start_time_seconds: f64) -> ProcessSource {
    ProcessSource(Box::new(move || ProcessStats {
        cpu_seconds: cpu_seconds(),
        resident_bytes: resident_bytes(),
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft),
        start_time_seconds,
        alloc_bytes: alloc_bytes(),
    }))
}

/// User plus system CPU time of every thread.
fn cpu_seconds() -> f64 {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            secs(u.user_time()) + secs(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// `VmRSS` of `/proc/self/status` (kB there).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// jemalloc's `stats.allocated`, refreshed by advancing its epoch (the statistics are
/// a snapshot taken at the last advance).
fn alloc_bytes() -> u64 {
    if tikv_jemalloc_ctl::epoch::advance().is_err() {
        return 0;
    }
    tikv_jemalloc_ctl::stats::allocated::read().map_or(0, |b| b as u64)
}
