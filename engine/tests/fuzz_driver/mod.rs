//! The seeded fuzz loop that `cargo test` runs over every harness of
//! `tsdb_engine::fuzz` and `tsdb_net::fuzz`: a small PRNG mutates a corpus of valid
//! inputs (bit flips, interesting bytes, truncation, insertion, deletion, splicing two
//! inputs, duplicated spans, numbers written as varints and length prefixes, tokens of
//! the format) and adds purely random inputs; each input runs under a counting
//! allocator and a clock.
//!
//! Shared by `engine/tests/fuzz.rs` and, through `#[path]`, `net/tests/fuzz.rs`; each
//! binary installs [`CountingAlloc`] as its global allocator.
//!
//! - `TSDB_FUZZ_ITERS`: inputs per target (default 100,000).
//! - `TSDB_FUZZ_SEED`: the seed (decimal or `0x…`); each target mixes in its name.
//! - `TSDB_FUZZ_ITER`: run only that input of the seed, printing it (to reproduce).
//!
//! A panic, an input that allocates past its target's bound or runs past
//! [`INPUT_TIME_MAX`] fails the test with the seed, the input's number and its bytes
//! in hex. A hang past [`HANG_TIME`] or an allocation past [`HARD_ALLOC_BYTES`] aborts
//! the process after printing the seed and the input's number.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The seed when `TSDB_FUZZ_SEED` is not set: fixed, so CI runs the same inputs.
pub const DEFAULT_SEED: u64 = 0x7453_4442_f022_0005;
/// Inputs per target when `TSDB_FUZZ_ITERS` is not set.
pub const DEFAULT_ITERS: u64 = 100_000;
/// The longest input generated: parsers must be linear, so long inputs only cost time.
pub const INPUT_BYTES_MAX: usize = 64 << 10;
/// An input running longer fails its test: every parser here is linear in its input,
/// and 64 KiB take milliseconds; the margin absorbs a loaded 2-core machine.
pub const INPUT_TIME_MAX: Duration = Duration::from_secs(2);
/// An input running this long is a hang: the watchdog prints it and aborts.
pub const HANG_TIME: Duration = Duration::from_secs(30);
/// One input may not hold more than this at once; past it, the allocator fails the
/// allocation (which aborts) instead of letting the machine swap.
pub const HARD_ALLOC_BYTES: usize = 1 << 30;

thread_local! {
    /// Bytes this thread holds, counted by [`CountingAlloc`].
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// The most `LIVE` has been since [`arm`].
    static PEAK: Cell<usize> = const { Cell::new(0) };
    /// `LIVE` may not pass this while an input runs (0: no limit).
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    /// What an aborting allocation prints: target, seed, input number.
    static CURRENT: Cell<(&'static str, u64, u64)> = const { Cell::new(("", 0, 0)) };
}

/// The system allocator, counting the live bytes of each thread (tests run in
/// parallel threads, so a global count would mix targets).
pub struct CountingAlloc;

fn grow(size: usize) -> bool {
    let live = LIVE.try_with(Cell::get).unwrap_or(0).saturating_add(size);
    let limit = LIMIT.try_with(Cell::get).unwrap_or(0);
    if limit != 0 && live > limit {
        report_hard_limit(size);
        return false;
    }
    let _ = LIVE.try_with(|l| l.set(live));
    let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    true
}

fn shrink(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

/// Prints which input asked for too much without allocating (the allocator is what
/// failed), before Rust's allocation-failure handler aborts.
fn report_hard_limit(size: usize) {
    struct Buf([u8; 512], usize);
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for &b in s.as_bytes() {
                if let Some(slot) = self.0.get_mut(self.1) {
                    *slot = b;
                    self.1 += 1;
                }
            }
            Ok(())
        }
    }
    let (name, seed, iter) = CURRENT.try_with(Cell::get).unwrap_or(("?", 0, 0));
    let krate = env!("CARGO_PKG_NAME");
    let mut buf = Buf([0; 512], 0);
    let _ = write!(
        buf,
        "\nfuzz target {name}: input {iter} of seed {seed:#x} asked for {size} bytes past \
         the hard limit of {HARD_ALLOC_BYTES}; reproduce with TSDB_FUZZ_SEED={seed:#x} \
         TSDB_FUZZ_ITER={iter} cargo test -p {krate} --test fuzz {name}\n"
    );
    let _ = std::io::stderr().write_all(buf.0.get(..buf.1).unwrap_or_default());
}

#[expect(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; counting needs one"
)]
// SAFETY: every call goes to `System` with the caller's arguments unchanged; the
// counting only reads and writes thread-locals without destructors, which neither
// allocate nor unwind, and a refused allocation returns null as the trait allows.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            shrink(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            shrink(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: forwarded as is; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !grow(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                shrink(new_size - old);
            }
        } else if new_size < old {
            shrink(old - new_size);
        }
        p
    }
}

/// Starts measuring one input on this thread.
fn arm(name: &'static str, seed: u64, iter: u64) {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    LIMIT.with(|l| l.set(live.saturating_add(HARD_ALLOC_BYTES)));
    CURRENT.with(|c| c.set((name, seed, iter)));
}

/// Stops measuring; returns the most the input held at once beyond what was live
/// before it.
fn disarm(before: usize) -> usize {
    LIMIT.with(|l| l.set(0));
    PEAK.with(Cell::get).saturating_sub(before)
}

/// The most `f` holds at once beyond what was live before it, on this thread.
pub fn peak_bytes(f: impl FnOnce()) -> usize {
    let before = LIVE.with(Cell::get);
    arm("peak_bytes", 0, 0);
    f();
    disarm(before)
}

pub use tsdb_engine::rng::Rng;

/// How much one input may allocate at once: `base_bytes + per_input_byte × len`.
#[derive(Clone, Copy, Debug)]
pub struct AllocBound {
    pub base_bytes: usize,
    pub per_input_byte: usize,
}

impl AllocBound {
    fn for_len(self, len: usize) -> usize {
        self.base_bytes
            .saturating_add(self.per_input_byte.saturating_mul(len))
    }
}

/// One harness and what to feed it.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Valid inputs that mutations start from (at least one).
    pub corpus: Vec<Vec<u8>>,
    /// Tokens of the format (keywords, delimiters, special numbers) that mutations
    /// insert; empty for binary formats.
    pub dict: &'static [&'static str],
    pub alloc: AllocBound,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) => Some(n),
        Err(e) => panic!("{name}={v:?}: {e}"),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The worst input seen on one measure.
#[derive(Default)]
struct Worst {
    value: u128,
    iter: u64,
    len: usize,
}

impl Worst {
    fn see(&mut self, value: u128, iter: u64, len: usize) {
        if value > self.value {
            *self = Worst { value, iter, len };
        }
    }
}

impl Target {
    /// Runs the seeded loop; panics (failing the test) on the first bad input.
    pub fn fuzz(self) {
        assert!(!self.corpus.is_empty(), "{}: empty corpus", self.name);
        let seed = env_u64("TSDB_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
        let target_seed = self.name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let iters: Vec<u64> = match env_u64("TSDB_FUZZ_ITER") {
            Some(i) => vec![i],
            None => (0..env_u64("TSDB_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS)).collect(),
        };
        let single = iters.len() == 1;
        let watch = Watchdog::start(self.name, seed);
        let started = Instant::now();
        let (mut slowest, mut hungriest) = (Worst::default(), Worst::default());
        for &iter in &iters {
            let input = self.generate(&mut Rng::new(
                target_seed.wrapping_add(iter.wrapping_mul(0xd1b5_4a32_d192_ed03)),
            ));
            if single {
                eprintln!(
                    "{}: input {iter} ({} bytes): {}",
                    self.name,
                    input.len(),
                    hex(&input)
                );
            }
            watch.begin(iter);
            let before = LIVE.with(Cell::get);
            arm(self.name, seed, iter);
            let t0 = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| (self.run)(&input)));
            let elapsed = t0.elapsed();
            let peak = disarm(before);
            watch.end();
            let fail = |why: &str| -> ! {
                panic!(
                    "fuzz target {name}: input {iter} of seed {seed:#x} {why}\n\
                     input ({len} bytes): {hex}\n\
                     reproduce: TSDB_FUZZ_SEED={seed:#x} TSDB_FUZZ_ITER={iter} cargo test -p {krate} --test fuzz {name}",
                    krate = env!("CARGO_PKG_NAME"),
                    name = self.name,
                    len = input.len(),
                    hex = hex(&input),
                )
            };
            if outcome.is_err() {
                fail("panicked (the message is above)");
            }
            let bound = self.alloc.for_len(input.len());
            if peak > bound {
                fail(&format!(
                    "held {peak} bytes at once, more than its bound of {bound}"
                ));
            }
            if elapsed > INPUT_TIME_MAX {
                fail(&format!("took {elapsed:?}, more than {INPUT_TIME_MAX:?}"));
            }
            slowest.see(elapsed.as_micros(), iter, input.len());
            hungriest.see(peak as u128, iter, input.len());
        }
        let took = started.elapsed();
        drop(watch);
        eprintln!(
            "fuzz {}: {} inputs of seed {seed:#x} in {took:.2?}; slowest {} µs (input {}, {} bytes); \
             largest allocation {} bytes (input {}, {} bytes, bound {})",
            self.name,
            iters.len(),
            slowest.value,
            slowest.iter,
            slowest.len,
            hungriest.value,
            hungriest.iter,
            hungriest.len,
            self.alloc.for_len(hungriest.len),
        );
    }

    /// One input: mostly a mutated corpus entry, one in sixteen purely random.
    fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        if rng.index(16) == 0 {
            let len = if rng.index(8) == 0 {
                rng.index(4096)
            } else {
                rng.index(256)
            };
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                match self.dict.get(rng.index(self.dict.len() * 2)) {
                    Some(token) => out.extend_from_slice(token.as_bytes()),
                    None => out.push(rng.byte()),
                }
            }
            return out;
        }
        let mut out = self.pick(rng).to_vec();
        // Few mutations usually, sometimes many.
        let rounds = match rng.index(4) {
            0 | 1 => 1,
            2 => 2 + rng.index(4),
            _ => 1 + rng.index(24),
        };
        for _ in 0..rounds {
            self.mutate(rng, &mut out);
        }
        out.truncate(INPUT_BYTES_MAX);
        out
    }

    fn pick(&self, rng: &mut Rng) -> &[u8] {
        self.corpus
            .get(rng.index(self.corpus.len()))
            .map_or(&[][..], Vec::as_slice)
    }

    fn mutate(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        const INTERESTING: [u8; 12] = [
            0, 1, 2, 0x0a, 0x20, 0x22, 0x5c, 0x7f, 0x80, 0xc3, 0xfe, 0xff,
        ];
        let len = out.len();
        let at = rng.index(len + 1);
        match rng.index(12) {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << rng.index(8);
                }
            }
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b = INTERESTING[rng.index(INTERESTING.len())];
                }
            }
            2 => {
                if let Some(b) = out.get_mut(at) {
                    *b = rng.byte();
                }
            }
            3 => out.truncate(at),
            4 => {
                let n = 1 + rng.index(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                out.splice(at..at, bytes);
            }
            5 => {
                let end = (at + 1 + rng.index(16)).min(len);
                if at < end {
                    out.drain(at..end);
                }
            }
            6 => {
                // Splice: this input's head, another's tail.
                let other = self.pick(rng);
                let from = rng.index(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(other.get(from..).unwrap_or_default());
            }
            7 => {
                // Duplicate a span, once or several times: repeated structure.
                let end = (at + 1 + rng.index(64)).min(len);
                let span = out.get(at..end).unwrap_or_default().to_vec();
                let to = rng.index(len + 1);
                for _ in 0..1 + rng.index(4) * usize::from(rng.index(4) == 0) * 4 {
                    out.splice(to..to, span.iter().copied());
                }
            }
            8 | 9 => {
                let v = interesting_number(rng, len, at);
                let bytes = encode_number(rng, v);
                if rng.index(2) == 0 {
                    out.splice(at..at, bytes);
                } else {
                    let end = (at + bytes.len()).min(len);
                    out.splice(at..end, bytes);
                }
            }
            _ => match self.dict.get(rng.index(self.dict.len())) {
                Some(token) if rng.index(2) == 0 => {
                    out.splice(at..at, token.bytes());
                }
                Some(token) => {
                    let end = (at + token.len()).min(len);
                    out.splice(at..end, token.bytes());
                }
                None => out.insert(at, INTERESTING[rng.index(INTERESTING.len())]),
            },
        }
    }
}

/// A number likely to sit on a boundary: small, a power of two (±1), the input's
/// length or what is left of it (a plausible length prefix), or anything.
fn interesting_number(rng: &mut Rng, len: usize, at: usize) -> u64 {
    let v = match rng.index(6) {
        0 => rng.index(4) as u64,
        1 => 1u64 << rng.index(64),
        2 => len as u64,
        3 => (len - at.min(len)) as u64,
        4 => rng.index(300) as u64,
        _ => rng.next_u64(),
    };
    match rng.index(4) {
        0 => v.wrapping_sub(1),
        1 => v.wrapping_add(1),
        _ => v,
    }
}

/// `v` as a LEB128 varint, a zig-zag varint, or a fixed-width integer of either byte
/// order: the encodings of lengths and counts in the formats under test.
fn encode_number(rng: &mut Rng, v: u64) -> Vec<u8> {
    let leb = |mut v: u64| {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    };
    match rng.index(7) {
        0 => leb(v),
        1 => leb((v << 1) ^ ((v as i64 >> 63) as u64)),
        2 => (v as u16).to_le_bytes().to_vec(),
        3 => (v as u32).to_le_bytes().to_vec(),
        4 => v.to_le_bytes().to_vec(),
        5 => (v as u32).to_be_bytes().to_vec(),
        _ => v.to_be_bytes().to_vec(),
    }
}

/// Aborts the process, naming the input, when one input runs past [`HANG_TIME`]:
/// a hung parser would otherwise hang the test run without saying which input.
struct Watchdog {
    state: Arc<WatchState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct WatchState {
    epoch: Instant,
    /// Milliseconds since `epoch` when the running input began; `u64::MAX` when idle.
    began_ms: AtomicU64,
    iter: AtomicU64,
    done: AtomicBool,
}

impl Watchdog {
    fn start(name: &'static str, seed: u64) -> Watchdog {
        let state = Arc::new(WatchState {
            epoch: Instant::now(),
            began_ms: AtomicU64::new(u64::MAX),
            iter: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let s = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            while !s.done.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(200));
                let began = s.began_ms.load(Ordering::Relaxed);
                let now = s.epoch.elapsed().as_millis() as u64;
                if began != u64::MAX && now.saturating_sub(began) > HANG_TIME.as_millis() as u64 {
                    let iter = s.iter.load(Ordering::Relaxed);
                    eprintln!(
                        "fuzz target {name}: input {iter} of seed {seed:#x} has run for more than \
                         {HANG_TIME:?}: a hang. Reproduce with TSDB_FUZZ_SEED={seed:#x} \
                         TSDB_FUZZ_ITER={iter} cargo test -p {krate} --test fuzz {name}",
                        krate = env!("CARGO_PKG_NAME")
                    );
                    std::process::abort();
                }
            }
        });
        Watchdog {
            state,
            thread: Some(thread),
        }
    }

    fn begin(&self, iter: u64) {
        self.state.iter.store(iter, Ordering::Relaxed);
        let now = self.state.epoch.elapsed().as_millis() as u64;
        self.state.began_ms.store(now, Ordering::Relaxed);
    }

    fn end(&self) {
        self.state.began_ms.store(u64::MAX, Ordering::Relaxed);
    }
}

/// Stops the watchdog however the loop ends, a failed input included.
impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
