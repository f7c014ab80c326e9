//! The profilers of `/debug/pprof/*`, handed to the server as
//! [`tsdb_net::pprof::Profilers`]: they need process-wide things the binary owns
//! (the SIGPROF handler, the allocator).
//!
//! - [`cpu`]: a CPU profile of every thread, sampled by SIGPROF (pprof-rs).
//! - [`heap`]: live heap allocations, from jemalloc's sampling profiler.
//! - [`proto`]: pprof's `profile.proto` and a builder for it.

mod cpu;
mod heap;
mod proto;

use tsdb_net::pprof::Profilers;

/// The profilers this process has: the heap profiler only while jemalloc samples
/// (see [`heap`]).
pub fn profilers() -> Profilers {
    let heap: Option<tsdb_net::pprof::HeapProfiler> = if heap::enabled() {
        Some(Box::new(heap::profile))
    } else {
        tracing::info!("heap profiling is off (_RJEM_MALLOC_CONF): /debug/pprof/heap answers 404");
        None
    };
    Profilers::new(Some(Box::new(cpu::profile)), heap)
}
