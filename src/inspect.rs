//! `tsdb inspect-wal <dir> [--json]` and `tsdb inspect <BLOCK_DIR> [--json]`: render
//! the engine's read-only WAL and block reports as text or JSON and turn them into an
//! exit status a script can trust.
//!
//! 0 = clean, 1 = damage found, 2 = usage or I/O error (clap's usage errors are 2 too).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};
use tsdb_engine::block::{BlockReport, inspect_block};
use tsdb_engine::storage::DiskStorage;
use tsdb_engine::wal::inspect::{ShardReport, WalReport, inspect};
use tsdb_net::render::rfc3339_ms;

pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_DAMAGE: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Runs the subcommand: report on stdout, errors on stderr.
pub fn inspect_wal(dir: &Path, as_json: bool) -> ExitCode {
    let report = match inspect(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tsdb inspect-wal: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = if as_json {
        let mut s = to_json(&report).to_string();
        s.push('\n');
        s
    } else {
        to_text(&report)
    };
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        eprintln!("tsdb inspect-wal: write report: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    if report.damage_count() == 0 {
        ExitCode::from(EXIT_CLEAN)
    } else {
        ExitCode::from(EXIT_DAMAGE)
    }
}

/// Runs `tsdb inspect <BLOCK_DIR>`: report on stdout, errors on stderr.
pub fn inspect_block_dir(dir: &Path, as_json: bool) -> ExitCode {
    let report = match inspect_block(&DiskStorage, dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tsdb inspect: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = if as_json {
        let mut s = block_json(&report).to_string();
        s.push('\n');
        s
    } else {
        block_text(&report)
    };
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        eprintln!("tsdb inspect: write report: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    if report.is_intact() {
        ExitCode::from(EXIT_CLEAN)
    } else {
        ExitCode::from(EXIT_DAMAGE)
    }
}

/// A timestamp as RFC 3339 and ms, `-` for the bounds of a block without samples.
fn time_text(t_ms: i64) -> String {
    if t_ms == i64::MAX || t_ms == i64::MIN {
        "-".to_owned()
    } else {
        format!("{} ({t_ms})", rfc3339_ms(t_ms))
    }
}

fn block_json(r: &BlockReport) -> Value {
    let meta = r.meta.as_ref().map(|m| {
        json!({
            "ulid": m.ulid,
            "shard": m.shard,
            "version": m.version,
            "level": m.compaction.level,
            "sources": m.compaction.sources,
            "parents": m.compaction.parents,
            "min_time_ms": m.min_time,
            "max_time_ms": m.max_time,
            "min_time": (m.stats.num_samples > 0).then(|| rfc3339_ms(m.min_time)),
            "max_time": (m.stats.num_samples > 0).then(|| rfc3339_ms(m.max_time)),
            "num_series": m.stats.num_series,
            "num_samples": m.stats.num_samples,
            "num_chunks": m.stats.num_chunks,
        })
    });
    json!({
        "dir": r.dir.display().to_string(),
        "intact": r.is_intact(),
        "meta": meta,
        "files": r.files.iter().map(|(name, len)| json!({"name": name, "bytes": len})).collect::<Vec<_>>(),
        "verified": r.counted.as_ref().map(|c| json!({
            "num_series": c.num_series,
            "num_samples": c.num_samples,
            "num_chunks": c.num_chunks,
        })),
        "top_label_names": r.top_label_names.iter().map(|(n, c)| json!({"name": n, "series": c})).collect::<Vec<_>>(),
        "damage": r.damage,
    })
}

fn block_text(r: &BlockReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "block {}", r.dir.display());
    match &r.meta {
        Some(m) => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.join(",")
                }
            };
            let _ = writeln!(
                out,
                "  ulid: {}  shard: {}  level: {}",
                m.ulid, m.shard, m.compaction.level
            );
            let _ = writeln!(out, "  sources: {}", list(&m.compaction.sources));
            let _ = writeln!(out, "  parents: {}", list(&m.compaction.parents));
            let _ = writeln!(out, "  min_time: {}", time_text(m.min_time));
            let _ = writeln!(out, "  max_time: {}", time_text(m.max_time));
            let _ = writeln!(
                out,
                "  series: {}  samples: {}  chunks: {}",
                m.stats.num_series, m.stats.num_samples, m.stats.num_chunks
            );
        }
        None => {
            let _ = writeln!(out, "  meta: unreadable");
        }
    }
    let _ = writeln!(out, "  files:");
    for (name, len) in &r.files {
        match len {
            Some(l) => {
                let _ = writeln!(out, "    {name}  {l} bytes");
            }
            None => {
                let _ = writeln!(out, "    {name}  MISSING");
            }
        }
    }
    if !r.top_label_names.is_empty() {
        let _ = writeln!(out, "  label names by series:");
        for (name, count) in &r.top_label_names {
            let _ = writeln!(out, "    {name}  {count}");
        }
    }
    match &r.damage {
        None => {
            let _ = writeln!(out, "intact: every chunk and the index verified");
        }
        Some(d) => {
            let _ = writeln!(out, "DAMAGE {d}");
            let _ = writeln!(out, "damaged");
        }
    }
    out
}

fn to_json(r: &WalReport) -> Value {
    json!({
        "recorded_shards": r.recorded_shards,
        "damage_count": r.damage_count(),
        "shards": r.shards.iter().map(shard_json).collect::<Vec<_>>(),
    })
}

fn shard_json(s: &ShardReport) -> Value {
    json!({
        "shard": s.shard,
        "dir": s.dir.display().to_string(),
        "checkpoint": s.checkpoint,
        "series": s.series,
        "samples": s.samples,
        "orphan_samples": s.orphan_samples,
        "min_time_ms": s.min_time_ms,
        "max_time_ms": s.max_time_ms,
        "segments": s.segments.iter().map(|g| json!({
            "name": g.name,
            "bytes": g.bytes,
            "records": g.records,
            "obsolete": g.obsolete,
        })).collect::<Vec<_>>(),
        "damage": s.damage.iter().map(|d| json!({
            "shard": s.shard,
            "segment": d.segment,
            "offset": d.offset,
            "bytes_dropped": d.bytes_dropped,
            "reason": d.reason,
        })).collect::<Vec<_>>(),
    })
}

fn to_text(r: &WalReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(n) = r.recorded_shards {
        let _ = writeln!(out, "written with {n} shards");
    }
    for s in &r.shards {
        let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let _ = writeln!(out, "shard {} ({})", s.shard, s.dir.display());
        let _ = writeln!(
            out,
            "  checkpoint: {}",
            s.checkpoint
                .map_or_else(|| "none".to_string(), |c| format!("{c:08}"))
        );
        let _ = writeln!(
            out,
            "  series: {}  samples: {}  orphan samples: {}  min_time_ms: {}  max_time_ms: {}",
            s.series,
            s.samples,
            s.orphan_samples,
            opt(s.min_time_ms),
            opt(s.max_time_ms)
        );
        let _ = writeln!(out, "  segments:");
        for g in &s.segments {
            let note = if g.obsolete {
                "  (below the checkpoint: deleted on start)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {}  {} bytes  {} records{note}",
                g.name, g.bytes, g.records
            );
        }
        for d in &s.damage {
            let _ = writeln!(
                out,
                "  DAMAGE shard={} segment={} offset={} bytes_dropped={} reason={}",
                s.shard, d.segment, d.offset, d.bytes_dropped, d.reason
            );
        }
    }
    let n = r.damage_count();
    if n == 0 {
        let _ = writeln!(out, "clean");
    } else {
        let _ = writeln!(out, "{n} damage(s) found");
    }
    out
}
