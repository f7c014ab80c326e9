//! The profilers behind `/debug/pprof/*`, which the binary hands to the server (they
//! need the allocator and signal handlers, which are the binary's), and the one-at-a-
//! time rule of each kind of profile.
//!
//! A CPU or heap profile runs on a thread of its own ([`Profilers::spawn`]), never on a
//! shard's executor: the route handler only awaits its result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A CPU profile of the whole process over a window: gzip-compressed `profile.proto`.
pub type CpuProfiler = Box<dyn Fn(Duration) -> Result<Vec<u8>, String> + Send + Sync>;

/// A heap profile of the allocations live now: gzip-compressed `profile.proto`.
pub type HeapProfiler = Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>;

/// The kinds of profile that run one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cpu,
    Heap,
    Trace,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cpu => "CPU profile",
            Kind::Heap => "heap profile",
            Kind::Trace => "trace",
        }
    }
}

/// What the server can profile, and which kinds are running now.
#[derive(Default)]
pub struct Profilers {
    pub cpu: Option<CpuProfiler>,
    pub heap: Option<HeapProfiler>,
    busy: [AtomicBool; 3],
}

impl std::fmt::Debug for Profilers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profilers")
            .field("cpu", &self.cpu.is_some())
            .field("heap", &self.heap.is_some())
            .finish()
    }
}

/// A running profile of one kind; the kind is free again when this is dropped.
#[derive(Debug)]
pub struct Running {
    profilers: Arc<Profilers>,
    kind: Kind,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.profilers
            .flag(self.kind)
            .store(false, Ordering::Release);
    }
}

impl Profilers {
    pub fn new(cpu: Option<CpuProfiler>, heap: Option<HeapProfiler>) -> Profilers {
        Profilers {
            cpu,
            heap,
            busy: Default::default(),
        }
    }

    fn flag(&self, kind: Kind) -> &AtomicBool {
        match kind {
            Kind::Cpu => &self.busy[0],
            Kind::Heap => &self.busy[1],
            Kind::Trace => &self.busy[2],
        }
    }

    /// Marks a profile of `kind` running, or `None` when one already is.
    pub fn begin(self: &Arc<Self>, kind: Kind) -> Option<Running> {
        self.flag(kind)
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(Running {
            profilers: self.clone(),
            kind,
        })
    }

    /// Runs `work` on a thread of its own, holding `running` until it ends (even if
    /// the client has gone), and returns its result.
    pub async fn spawn(
        running: Running,
        work: impl FnOnce(&Profilers) -> Result<Vec<u8>, String> + Send + 'static,
    ) -> Result<Vec<u8>, String> {
        let (tx, rx) = flume::bounded(1);
        std::thread::Builder::new()
            .name("tsdb-pprof".into())
            .spawn(move || {
                let result = work(&running.profilers);
                drop(running);
                let _ = tx.send(result);
            })
            .map_err(|e| format!("starting the profiler thread: {e}"))?;
        rx.recv_async()
            .await
            .map_err(|_| "the profiler thread ended without an answer".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_profile_of_a_kind_at_a_time() {
        let p = Arc::new(Profilers::default());
        let cpu = p.begin(Kind::Cpu);
        assert!(cpu.is_some());
        assert!(p.begin(Kind::Cpu).is_none());
        assert!(
            p.begin(Kind::Trace).is_some(),
            "other kinds are independent"
        );
        drop(cpu);
        assert!(p.begin(Kind::Cpu).is_some());
    }
}
