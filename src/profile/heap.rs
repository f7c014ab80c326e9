//! A heap profile from jemalloc's own sampling profiler: jemalloc is built with
//! profiling (`tikv-jemallocator`'s `profiling` feature) and started with it on
//! ([`MALLOC_CONF`]): about one allocation per 512 KiB allocated is sampled with its
//! stack. `/debug/pprof/heap` asks jemalloc to dump the live sampled allocations
//! (`prof.dump`, a text file in the temp dir, read and removed at once), scales them
//! back to estimates of the whole as jeprof does, symbolizes the stacks, and writes
//! pprof's `profile.proto`.
//!
//! Setting `_RJEM_MALLOC_CONF=prof:false` in the environment turns the sampling off
//! (jemalloc reads the environment after [`MALLOC_CONF`]); the route then answers 404.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::proto::{Builder, Frame};

/// jemalloc's start-up options, read once before the first allocation: profiling on
/// and active, one sample per 2^19 bytes (512 KiB) allocated on average. jemalloc
/// reads the C string behind the exported `malloc_conf` symbol (`_rjem_` is
/// tikv-jemalloc-sys' symbol prefix); a `&u8` is a thin pointer to its first byte.
#[expect(
    unsafe_code,
    reason = "jemalloc takes its start-up options only from this exported symbol or the environment"
)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &u8 = &b"prof:true,prof_active:true,lg_prof_sample:19\0"[0];

/// Whether jemalloc is sampling allocations (off when the environment says so).
pub fn enabled() -> bool {
    tikv_jemalloc_ctl::profiling::prof::read().unwrap_or(false)
}

/// Where jemalloc writes the dump: one path per process, made `'static` once since
/// jemalloc's control interface takes a `'static` C string (heap profiles run one at a
/// time, so one path serves them all).
fn dump_path() -> (&'static PathBuf, &'static [u8]) {
    static PATH: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    let (path, c) = PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("tsdb-heap-{}.prof", std::process::id()));
        let mut c = path.as_os_str().as_encoded_bytes().to_vec();
        c.push(0);
        (path, c)
    });
    (path, c.as_slice())
}

/// The live sampled allocations now, as a gzip-compressed pprof profile.
pub fn profile() -> Result<Vec<u8>, String> {
    let (path, c_path) = dump_path();
    tikv_jemalloc_ctl::raw::write_str(b"prof.dump\0", c_path)
        .map_err(|e| format!("jemalloc prof.dump to {}: {e}", path.display()))?;
    let text = std::fs::read_to_string(path);
    let _ = std::fs::remove_file(path);
    let text = text.map_err(|e| format!("reading jemalloc's dump {}: {e}", path.display()))?;
    let dump = parse(&text)?;
    let mut b = Builder::new(
        &[("inuse_objects", "count"), ("inuse_space", "bytes")],
        ("space", "bytes"),
        dump.sample_period as i64,
    );
    let mut symbols: HashMap<u64, Vec<Frame>> = HashMap::new();
    for s in &dump.stacks {
        if s.objects == 0 {
            continue;
        }
        let (objects, bytes) = unbias(s.objects, s.bytes, dump.sample_period);
        let mut stack = Vec::new();
        for &addr in &s.addresses {
            stack.extend(
                symbols
                    .entry(addr)
                    .or_insert_with(|| symbolize(addr))
                    .iter()
                    .cloned(),
            );
        }
        // The allocator's own frames (jemalloc taking the sample) say nothing about
        // who allocated: drop them, as Go's heap profiles drop the runtime's malloc.
        let inner = stack.iter().take_while(|f| is_allocator(f)).count();
        b.sample(
            stack.get(inner..).unwrap_or_default(),
            vec![objects, bytes],
            &[],
        );
    }
    b.comment(
        "tsdb heap profile: jemalloc's sampled live allocations, scaled as jeprof scales them",
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    b.finish(now, 0)
}

/// One stack of a jemalloc heap dump and its live sampled allocations.
#[derive(Debug, PartialEq)]
struct Stack {
    /// Return addresses, innermost first.
    addresses: Vec<u64>,
    objects: u64,
    bytes: u64,
}

#[derive(Debug, PartialEq)]
struct Dump {
    sample_period: u64,
    stacks: Vec<Stack>,
}

/// Parses jemalloc's `heap_v2` dump: a `heap_v2/<period>` header, then per stack an
/// `@ 0x… 0x…` line followed by `t*: <objects>: <bytes> [<accum>: <accum>]` (and
/// per-thread lines), then `MAPPED_LIBRARIES:`.
fn parse(text: &str) -> Result<Dump, String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let sample_period = header
        .strip_prefix("heap_v2/")
        .and_then(|p| p.trim().parse::<u64>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("not a jemalloc heap_v2 dump: {header:?}"))?;
    let mut stacks = Vec::new();
    let mut current: Option<Vec<u64>> = None;
    for line in lines {
        if line.starts_with("MAPPED_LIBRARIES") {
            break;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let addresses = rest
                .split_whitespace()
                .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad address in {line:?}: {e}"))?;
            current = Some(addresses);
        } else if let Some(rest) = line.trim_start().strip_prefix("t*:")
            && let Some(addresses) = current.take()
        {
            let mut nums = rest.split([':', '[']).map(str::trim);
            let mut num = || -> Result<u64, String> {
                nums.next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bad counts in {line:?}"))
            };
            let (objects, bytes) = (num()?, num()?);
            stacks.push(Stack {
                addresses,
                objects,
                bytes,
            });
        }
    }
    Ok(Dump {
        sample_period,
        stacks,
    })
}

/// Whether a frame is jemalloc's or its Rust wrapper's.
fn is_allocator(f: &Frame) -> bool {
    f.file.contains("jemalloc") || f.function.starts_with("_rjem_")
}

/// Estimates of every live allocation from the sampled ones: an allocation of size
/// `s` is sampled with probability `1 - exp(-s / period)`, so each sampled one stands
/// for `1 / that` (jeprof's `AdjustSamples`).
fn unbias(objects: u64, bytes: u64, period: u64) -> (i64, i64) {
    if objects == 0 || bytes == 0 {
        return (objects as i64, bytes as i64);
    }
    let mean = bytes as f64 / objects as f64;
    let scale = 1.0 / (1.0 - (-mean / period as f64).exp());
    (
        (objects as f64 * scale) as i64,
        (bytes as f64 * scale) as i64,
    )
}

/// The frames at a return address, innermost (inlined) first; the address itself when
/// it cannot be symbolized.
fn symbolize(addr: u64) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call: look up the call itself.
    let pc = addr.saturating_sub(1) as usize as *mut std::ffi::c_void;
    backtrace::resolve(pc, |sym| {
        frames.push(Frame {
            function: sym
                .name()
                .map_or_else(|| format!("{addr:#x}"), |n| n.to_string()),
            file: sym
                .filename()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            line: sym.lineno().map_or(0, i64::from),
            address: addr,
        });
    });
    if frames.is_empty() {
        frames.push(Frame {
            function: format!("{addr:#x}"),
            file: String::new(),
            line: 0,
            address: addr,
        });
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_heap_v2_dump() {
        let text = "heap_v2/524288\n  t*: 3: 1572864 [0: 0]\n  t0: 3: 1572864 [0: 0]\n\
                    @ 0x10 0x20\n  t*: 2: 1048576 [0: 0]\n  t0: 2: 1048576 [0: 0]\n\
                    @ 0x30\n  t*: 1: 512 [0: 0]\n\nMAPPED_LIBRARIES:\n@ 0x99\n  t*: 9: 9 [0: 0]\n";
        let dump = parse(text).unwrap();
        assert_eq!(dump.sample_period, 524288);
        assert_eq!(
            dump.stacks,
            vec![
                Stack {
                    addresses: vec![0x10, 0x20],
                    objects: 2,
                    bytes: 1048576
                },
                Stack {
                    addresses: vec![0x30],
                    objects: 1,
                    bytes: 512
                },
            ]
        );
        assert!(parse("heap_v1/x\n").is_err());
    }

    #[test]
    fn small_allocations_stand_for_many() {
        // One sampled 512-byte allocation at a 512 KiB period stands for ~1024 of them.
        let (objects, bytes) = unbias(1, 512, 524288);
        assert!((1020..=1030).contains(&objects), "{objects}");
        assert!((520_000..=530_000).contains(&bytes), "{bytes}");
        // A huge one is always sampled: it stands for itself.
        assert_eq!(unbias(1, 64 << 20, 524288), (1, 64 << 20));
    }
}
