//! A CPU profile of the whole process: pprof-rs arms `setitimer(ITIMER_PROF)`, whose
//! SIGPROF lands on whichever thread is on a CPU (every shard thread alike), and its
//! handler records that thread's stack. The samples are then symbolized and written
//! as pprof's `profile.proto`.
//!
//! This runs on a thread of its own, which sleeps through the window: no shard's
//! executor waits on it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::proto::{Builder, Frame};

/// Samples per second per CPU-busy thread: Go's rate (100 Hz) made odd, as pprof-rs
/// advises, so the sampling does not beat in step with periodic work.
const SAMPLES_PER_SECOND: i32 = 99;

/// Stack frames of these libraries are not unwound through (unwinding them from a
/// signal handler can deadlock, as pprof-rs documents).
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// Profiles the process for `window` and returns the gzip-compressed profile.
pub fn profile(window: Duration) -> Result<Vec<u8>, String> {
    let started = SystemTime::now();
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(SAMPLES_PER_SECOND)
        .blocklist(&BLOCKLIST)
        .build()
        .map_err(|e| format!("starting the CPU profiler: {e}"))?;
    std::thread::sleep(window);
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("collecting the CPU profile: {e}"))?;
    drop(guard);
    let period_ns = 1_000_000_000 / i64::from(SAMPLES_PER_SECOND);
    let mut b = Builder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds"),
        period_ns,
    );
    for (frames, &count) in &report.data {
        let count = count as i64;
        // Leaf first, as pprof lists a sample's locations; inlined functions first
        // within their frame.
        let stack: Vec<Frame> = frames
            .frames
            .iter()
            .flatten()
            .map(|s| Frame {
                function: s.name(),
                file: s.filename().into_owned(),
                line: i64::from(s.lineno()),
                address: s.addr.map_or(0, |a| a as u64),
            })
            .collect();
        b.sample(
            &stack,
            vec![count, count * period_ns],
            &[("thread", frames.thread_name.as_str())],
        );
    }
    b.comment("tsdb CPU profile: SIGPROF sampling of every thread (pprof-rs)");
    let time_nanos = started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    b.finish(time_nanos, window.as_nanos() as i64)
}
