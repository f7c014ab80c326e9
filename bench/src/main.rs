//! `tsdb-bench`: load generator for tsdb (and anything else speaking Prometheus
//! remote_write or InfluxDB line protocol).
//!
//! `tsdb-bench load` sends deterministic node-exporter-like samples and reports what
//! was accepted, how fast, and request latencies: human-readable on stderr, and as JSON
//! with `--json FILE` (`-` for stdout). Exit code 1 if any request failed, 2 if the
//! run could not be set up.
//!
//! `tsdb-bench compare` starts tsdb, Prometheus, VictoriaMetrics and InfluxDB (those
//! present) on the same data, one after the other, and measures ingest, CPU, memory,
//! size on disk, recovery after kill -9 and a fixed set of dashboard queries on each:
//! a Markdown report on stderr (and `--markdown FILE`), JSON with `--json FILE`. Exit
//! code 1 if a sample was refused, a query failed, or tsdb answered differently from
//! Prometheus or lost an acknowledged sample; 2 if the comparison could not be set up.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use tsdb_bench::compare;
use tsdb_bench::r#gen::Protocol;
use tsdb_bench::load::{self, Encoding, LoadConfig, RunLength};
use tsdb_bench::peers::System;

#[derive(Parser)]
#[command(name = "tsdb-bench", version, about = "Load generator for tsdb")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send node-exporter-like samples in time order and report throughput and latency.
    Load(LoadArgs),
    /// Load the same data into tsdb and its peers, one after the other, and compare
    /// ingest, CPU, memory, disk, recovery after kill -9 and query latency.
    Compare(CompareArgs),
}

#[derive(clap::Args)]
struct CompareArgs {
    /// The tsdb binary to start [without it, tsdb is skipped].
    #[arg(long)]
    tsdb_bin: Option<PathBuf>,
    /// The Prometheus binary [default: /usr/bin/prometheus].
    #[arg(long)]
    prometheus_bin: Option<PathBuf>,
    /// The VictoriaMetrics binary [default: /usr/bin/victoria-metrics].
    #[arg(long)]
    victoria_metrics_bin: Option<PathBuf>,
    /// The InfluxDB 1.x binary [default: /usr/bin/influxd].
    #[arg(long)]
    influxd_bin: Option<PathBuf>,
    /// Which systems to run, comma-separated: tsdb, prometheus, victoria-metrics,
    /// influxdb [default: every one whose binary is present; the others are named on
    /// stderr]. A system named here whose binary is missing is an error.
    #[arg(long, value_delimiter = ',')]
    systems: Option<Vec<String>>,
    /// Number of series.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Samples per series; the data ends now.
    #[arg(long, default_value_t = 720)]
    points: u64,
    /// Scrape interval: the distance between a series' samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: Duration,
    /// Parallel remote_write connections while loading.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Samples (= series, one sample each) per remote_write request.
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Timed runs of each query per system, after one warm-up.
    #[arg(long, default_value_t = 10)]
    query_runs: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Memory budget for pre-encoded bodies, in MB; above it bodies are encoded live.
    #[arg(long, default_value_t = 4096)]
    pre_encode_max_mb: u64,
    /// Also write the report as JSON to this file (`-`: stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the Markdown report to this file (`-`: stdout).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Base URL of the server; a query string is appended to the write path (InfluxDB:
    /// `http://127.0.0.1:8086?db=NAME`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, value_enum, default_value_t = Protocol::RemoteWrite)]
    protocol: Protocol,
    /// Number of series.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Scrape interval: the distance between a series' samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: Duration,
    /// Samples per series [default: 60].
    #[arg(long, conflicts_with = "duration")]
    points: Option<u64>,
    /// Instead of --points: keep sending successive steps for this much wall-clock
    /// time (encoding is then live).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Samples (= series, one sample each) per request.
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Parallel keep-alive connections, one worker thread each.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Timestamp of the first step, ms since the epoch [default: now - points ×
    /// interval, so the data ends now; with --duration: now - 24h].
    #[arg(long, allow_hyphen_values = true)]
    start_ms: Option<i64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the report as JSON to this file (`-`: stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Encode only, send nothing: measures the generator.
    #[arg(long)]
    dry_run: bool,
    /// When to encode request bodies.
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    encoding: Encoding,
    /// Memory budget for pre-encoded bodies (auto encoding), in MB.
    #[arg(long, default_value_t = 1024)]
    pre_encode_max_mb: u64,
}

/// `500ms`, `10s`, `5m`, `1h`, `1d`; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 10s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => load_command(args),
        Command::Compare(args) => compare_command(args),
    }
}

/// Writes `text` to `path`, or to stdout for `-`.
fn write_output(path: &std::path::Path, text: &str) -> Result<(), String> {
    let written = if path.as_os_str() == "-" {
        write!(std::io::stdout().lock(), "{text}")
    } else {
        std::fs::write(path, text)
    };
    written.map_err(|e| format!("writing {}: {e}", path.display()))
}

fn compare_command(a: CompareArgs) -> ExitCode {
    let bins = [
        (System::Tsdb, a.tsdb_bin),
        (System::Prometheus, a.prometheus_bin),
        (System::VictoriaMetrics, a.victoria_metrics_bin),
        (System::Influxdb, a.influxd_bin),
    ];
    let (systems, skipped) = match compare::pick_systems(a.systems.as_deref(), &bins) {
        Ok(picked) => picked,
        Err(e) => {
            eprintln!("tsdb-bench: {e}");
            return ExitCode::from(2);
        }
    };
    for (s, why) in &skipped {
        eprintln!("tsdb-bench: skipping {}: {why}", s.name());
    }
    let cfg = compare::CompareConfig {
        systems,
        skipped,
        series: a.series,
        points: a.points,
        interval_ms: a.interval.as_millis().min(i64::MAX as u128) as i64,
        connections: a.connections,
        samples_per_request: a.samples_per_request,
        query_runs: a.query_runs,
        seed: a.seed,
        pre_encode_max_bytes: a.pre_encode_max_mb.saturating_mul(1 << 20),
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let report = match compare::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tsdb-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let markdown = report.markdown();
    eprint!("\n{markdown}");
    let json = match serde_json::to_string_pretty(&report) {
        Ok(j) => j + "\n",
        Err(e) => {
            eprintln!("tsdb-bench: encoding the JSON report: {e}");
            return ExitCode::from(2);
        }
    };
    for (path, text) in [(&a.markdown, &markdown), (&a.json, &json)] {
        if let Some(path) = path
            && let Err(e) = write_output(path, text)
        {
            eprintln!("tsdb-bench: {e}");
            return ExitCode::from(2);
        }
    }
    let failures = report.failures();
    for f in &failures {
        eprintln!("tsdb-bench: FAILED: {f}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load_command(a: LoadArgs) -> ExitCode {
    let interval_ms = a.interval.as_millis().min(i64::MAX as u128) as i64;
    let run = match a.duration {
        Some(d) => RunLength::Duration(d),
        None => RunLength::Points(a.points.unwrap_or(60)),
    };
    let start_ms = a.start_ms.unwrap_or_else(|| {
        let back = match run {
            RunLength::Points(n) => (n as i64).saturating_mul(interval_ms),
            RunLength::Duration(_) => 86_400_000,
        };
        // Aligned to the interval, so timestamps are round in a listing.
        let start = load::now_ms().saturating_sub(back);
        start - start.rem_euclid(interval_ms.max(1))
    });
    let cfg = LoadConfig {
        url: a.url,
        protocol: a.protocol,
        series: a.series,
        run,
        interval_ms,
        start_ms,
        samples_per_request: a.samples_per_request,
        connections: a.connections,
        seed: a.seed,
        encoding: a.encoding,
        pre_encode_max_bytes: a.pre_encode_max_mb.saturating_mul(1 << 20),
        dry_run: a.dry_run,
    };
    let report = match load::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tsdb-bench: {e}");
            return ExitCode::from(2);
        }
    };
    eprint!("{}", report.human());
    if let Some(path) = a.json {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("tsdb-bench: encoding the JSON report: {e}");
                return ExitCode::from(2);
            }
        };
        let written = if path.as_os_str() == "-" {
            writeln!(std::io::stdout().lock(), "{json}")
        } else {
            std::fs::write(&path, json + "\n")
        };
        if let Err(e) = written {
            eprintln!("tsdb-bench: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert!(
            Cli::try_parse_from(["tsdb-bench", "load", "--points", "3", "--duration", "5s"])
                .is_err()
        );
        // compare needs only the tsdb binary; the rest has the documented defaults.
        let Command::Compare(c) = Cli::try_parse_from(["tsdb-bench", "compare", "--tsdb-bin", "t"])
            .unwrap()
            .command
        else {
            panic!("compare did not parse as compare");
        };
        assert_eq!((c.series, c.points, c.query_runs), (100_000, 720, 10));
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.tsdb_bin, Some(PathBuf::from("t")));
        let Command::Compare(c) =
            Cli::try_parse_from(["tsdb-bench", "compare", "--systems", "prometheus,influxdb"])
                .unwrap()
                .command
        else {
            panic!("compare did not parse as compare");
        };
        assert_eq!(
            c.systems,
            Some(vec!["prometheus".to_string(), "influxdb".to_string()])
        );
    }
}
