//! The profilers of `/debug/pprof/*`, handed to the server as
//! [`tsdb_net::pprof::Profilers`]: they need process-wide things the binary owns
//! (the SIGPROF handler, the allocator).
//!
//! - [`cpu`]: a CPU profile of every thread, sampled by SIGPROF (pprof-rs).
//! - [`proto`]: pprof's `profile.proto` and a builder for it.

mod cpu;
mod proto;

use tsdb_net::pprof::Profilers;

/// The profilers this build has.
pub fn profilers() -> Profilers {
    Profilers::new(Some(Box::new(cpu::profile)), None)
}
