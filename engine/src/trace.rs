//! A shard's record of what it did during a trace window (`/debug/pprof/trace`):
//! complete events (name, start, duration, a few numbers) in a buffer the shard owns.
//!
//! Nothing is shared between cores: each shard records into its own [`Recorder`] on
//! its own thread, started and collected through the mesh (`ShardRequest::TraceStart`
//! and `TraceStop`). When no trace is active, recording is one check of an `Option`
//! on the shard, so the hot path pays nothing. The buffer is bounded
//! ([`TRACE_EVENTS_PER_SHARD_MAX`]); events past the bound are counted, not kept. A
//! trace also ends by itself at its deadline, so a client that goes away mid-window
//! leaves no recording behind.

use std::time::Duration;

use crate::limits::TRACE_EVENTS_PER_SHARD_MAX;

/// Numbers attached to an event: up to four named values (unused slots are `("", 0)`).
pub type TraceArgs = [(&'static str, u64); 4];

/// No numbers.
pub const NO_ARGS: TraceArgs = [("", 0); 4];

/// One thing a shard did, as a Chrome trace-event "complete" event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    pub name: &'static str,
    /// Microseconds since the shard received the trace's start.
    pub start_us: u64,
    pub dur_us: u64,
    pub args: TraceArgs,
}

/// What one shard recorded during a trace window.
#[derive(Clone, Debug, Default)]
pub struct ShardTrace {
    pub shard: u32,
    pub events: Vec<TraceEvent>,
    /// Events not kept because the buffer held [`TRACE_EVENTS_PER_SHARD_MAX`].
    pub dropped: u64,
}

/// An active trace: the time it started (the shard's monotonic clock), its deadline,
/// and the events so far.
#[derive(Debug)]
struct Active {
    origin: Duration,
    deadline: Duration,
    events: Vec<TraceEvent>,
    dropped: u64,
}

/// A shard's trace recorder; inactive unless a trace window is open.
#[derive(Debug, Default)]
pub struct Recorder {
    active: Option<Active>,
}

impl Recorder {
    /// Opens a window at `now` (the shard's monotonic clock) lasting at most `window`;
    /// a window already open is discarded.
    pub fn start(&mut self, now: Duration, window: Duration) {
        self.active = Some(Active {
            origin: now,
            deadline: now.saturating_add(window),
            events: Vec::new(),
            dropped: 0,
        });
    }

    /// Closes the window and hands over what was recorded (nothing when no window was
    /// open).
    pub fn stop(&mut self, shard: u32) -> ShardTrace {
        match self.active.take() {
            Some(a) => ShardTrace {
                shard,
                events: a.events,
                dropped: a.dropped,
            },
            None => ShardTrace {
                shard,
                ..ShardTrace::default()
            },
        }
    }

    /// Whether a window is open: the caller reads the clock only then.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Records an event that began at `started` and ended at `now` (both the shard's
    /// monotonic clock). Events after the deadline end the window's recording.
    pub fn record(
        &mut self,
        name: &'static str,
        started: Duration,
        now: Duration,
        args: TraceArgs,
    ) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if started > a.deadline {
            return;
        }
        if a.events.len() >= TRACE_EVENTS_PER_SHARD_MAX {
            a.dropped += 1;
            return;
        }
        a.events.push(TraceEvent {
            name,
            start_us: started.saturating_sub(a.origin).as_micros() as u64,
            dur_us: now.saturating_sub(started).as_micros() as u64,
            args,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn records_only_inside_a_window_and_within_the_bound() {
        let mut r = Recorder::default();
        r.record("before", ms(1), ms(2), NO_ARGS);
        assert!(!r.is_active());
        r.start(ms(10), ms(100));
        r.record(
            "write group",
            ms(12),
            ms(15),
            [("samples", 7), ("", 0), ("", 0), ("", 0)],
        );
        r.record("late", ms(111), ms(112), NO_ARGS);
        let t = r.stop(3);
        assert_eq!(t.shard, 3);
        assert_eq!(
            t.events,
            vec![TraceEvent {
                name: "write group",
                start_us: 2000,
                dur_us: 3000,
                args: [("samples", 7), ("", 0), ("", 0), ("", 0)],
            }]
        );
        assert!(!r.is_active());
        assert!(r.stop(3).events.is_empty());

        r.start(ms(0), ms(1_000_000));
        for i in 0..TRACE_EVENTS_PER_SHARD_MAX as u64 + 5 {
            r.record("e", ms(i), ms(i), NO_ARGS);
        }
        let t = r.stop(0);
        assert_eq!(t.events.len(), TRACE_EVENTS_PER_SHARD_MAX);
        assert_eq!(t.dropped, 5);
    }
}
