//! `tsdb inspect-wal <dir> [--json]`: renders the engine's read-only WAL report as
//! text or JSON and turns it into an exit status a script can trust.
//!
//! 0 = clean, 1 = damage found, 2 = usage or I/O error (clap's usage errors are 2 too).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};
use tsdb_engine::wal::inspect::{ShardReport, WalReport, inspect};

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
