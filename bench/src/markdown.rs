//! The Markdown form of a `compare` report: parameters, host, one table of systems
//! with every figure (a column a system), the ratios of tsdb to each peer, the query
//! table (a median/p99 column pair a system) and the differences in words. Compact
//! enough to paste into BENCHMARKS.md.

use std::fmt::Write as _;

use crate::peers::System;
use crate::query::Measured;
use crate::report::{Report, SystemResult};

/// A number with `digits` decimals, or `-` for a missing one.
fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".into(),
    }
}

/// A cell's text with the characters that would break a Markdown table escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// One row of the systems table: a label and one value a system.
fn row(s: &mut String, label: &str, systems: &[SystemResult], f: impl Fn(&SystemResult) -> String) {
    let values: Vec<String> = systems.iter().map(|r| cell(&f(r))).collect();
    let _ = writeln!(s, "| {label} | {} |", values.join(" | "));
}

impl Report {
    pub fn markdown(&self) -> String {
        let p = &self.params;
        let h = &self.host;
        let names: Vec<&str> = self.systems.iter().map(|r| r.system.name()).collect();
        let mut s = String::new();
        let _ = writeln!(s, "# {} on the same data\n", names.join(" vs "));
        let _ = writeln!(s, "Command: `{}`\n", p.command_line);
        let _ = writeln!(s, "## Parameters\n");
        let _ = writeln!(
            s,
            "- {} series x {} points, interval {} ms ({} samples per system); {} connections, {} samples per request, seed {}",
            p.series,
            p.points,
            p.interval_ms,
            p.series as u64 * p.points,
            p.connections,
            p.samples_per_request,
            p.seed
        );
        let _ = writeln!(
            s,
            "- data from {} to {} ms; queries evaluated at (or ending at) {} ms; 1 warm-up + {} timed runs each (client-side; p99 nearest-rank = max below 100 runs); per-instance panels select `{}`",
            p.start_ms,
            p.start_ms + p.points as i64 * p.interval_ms,
            p.eval_time_ms,
            p.query_runs,
            cell(p.instance_subset)
        );
        for sp in &p.systems {
            let _ = writeln!(s, "- {}: `{}`", sp.system.name(), sp.bin);
        }
        for sk in &p.skipped {
            let _ = writeln!(s, "- {} not run: {}", sk.system.name(), sk.reason);
        }
        if let Some(d) = &self.data {
            let _ = writeln!(
                s,
                "- data: {} hosts, {} metric names, {:.1} labels per series, {:.1} bytes as text per series",
                d.hosts, d.metric_names, d.mean_labels_per_series, d.mean_series_text_bytes
            );
        }
        let _ = writeln!(
            s,
            "- host: {} CPUs ({}), {:.1} GiB RAM, kernel {}; loadavg `{}` at start, `{}` at end",
            h.facts.nproc,
            h.facts.cpu_model,
            h.mem_total_bytes as f64 / f64::from(1u32 << 30),
            h.facts.kernel,
            h.loadavg_start,
            h.loadavg_end
        );
        self.systems_table(&mut s);
        self.ratios_table(&mut s);
        self.query_table(&mut s);
        self.notes(&mut s);
        let _ = writeln!(s, "\nTotal wall time {:.1}s.", self.wall_seconds);
        s
    }

    fn systems_table(&self, s: &mut String) {
        let sys = &self.systems;
        let names: Vec<&str> = sys.iter().map(|r| r.system.name()).collect();
        let _ = writeln!(s, "\n## Systems\n");
        let _ = writeln!(s, "| | {} |", names.join(" | "));
        let _ = writeln!(s, "|---|{}", "---:|".repeat(sys.len()));
        row(s, "version", sys, |r| r.version.clone());
        row(s, "samples accepted (of sent)", sys, |r| {
            format!("{} ({})", r.ingest.samples_accepted, r.ingest.samples_sent)
        });
        row(s, "failed write requests", sys, |r| {
            r.ingest.requests_failed.to_string()
        });
        row(s, "**ingest samples/s**", sys, |r| {
            format!("**{:.0}**", r.ingest.accepted_samples_per_second)
        });
        row(s, "write p50 / p99 ms", sys, |r| {
            format!(
                "{:.2} / {:.2}",
                r.ingest.request_p50_ms, r.ingest.request_p99_ms
            )
        });
        row(s, "**server CPU-s per M samples**", sys, |r| {
            format!("**{:.2}**", r.ingest.cpu_seconds_per_million_samples)
        });
        row(s, "RSS after load MB", sys, |r| {
            mb(r.memory.rss_after_load_bytes)
        });
        row(s, "**peak RSS MB** (load / after restart)", sys, |r| {
            format!(
                "**{}** ({} / {})",
                mb(r.memory.peak_rss_bytes),
                mb(r.memory.peak_rss_load_bytes),
                mb(r.memory.peak_rss_after_restart_bytes)
            )
        });
        row(s, "on disk MB after flush + compaction", sys, |r| {
            format!(
                "{}{}",
                mb(r.disk.usage.allocated_bytes),
                if r.disk.settled { "" } else { " (unsettled)" }
            )
        });
        row(
            s,
            "kept for a live backup MB: WAL / compacted parents",
            sys,
            |r| match (r.disk.kept_wal, r.disk.kept_parents) {
                (Some(w), Some(p)) => {
                    format!("{} / {}", mb(w.allocated_bytes), mb(p.allocated_bytes))
                }
                _ => "-".to_string(),
            },
        );
        row(s, "**bytes/sample**", sys, |r| {
            format!("**{:.3}**", r.bytes_per_sample)
        });
        row(s, "flush + compaction + settling s", sys, |r| {
            format!("{:.1}", r.disk.seconds)
        });
        row(s, "kill -9: ready after s", sys, |r| {
            format!("{:.2}", r.replay.ready_seconds)
        });
        row(s, "kill -9: samples back (after s)", sys, |r| {
            format!(
                "{} ({:.2})",
                r.replay.samples_after_restart, r.replay.witness_seconds
            )
        });
        row(s, "**replay samples/s**", sys, |r| {
            format!("**{:.0}**", r.replay.samples_per_second)
        });
        row(
            s,
            "WAL replay logged: samples in ms, slowest shard samples/s",
            sys,
            |r| {
                let p = &r.replay;
                match (p.log_replay_samples, p.log_replay_ms) {
                    (Some(n), Some(ms)) => format!(
                        "{n} in {ms}, {:.0}",
                        p.log_replay_slowest_shard_samples_per_second
                            .unwrap_or_default()
                    ),
                    _ => "-".into(),
                }
            },
        );
        row(s, "queries failed (of run)", sys, |r| {
            if r.system.speaks_promql() {
                format!("{} ({})", r.queries_failed, r.queries_run)
            } else {
                "n/a".into()
            }
        });
        row(s, "sum of query medians ms", sys, |r| {
            if r.system.speaks_promql() {
                format!("{:.2}", r.sum_of_medians_ms)
            } else {
                "n/a".into()
            }
        });
        row(s, "answers equal to Prometheus'", sys, |r| {
            self.agreement
                .iter()
                .find(|a| a.system == r.system)
                .map_or("-".into(), |a| format!("{} of {}", a.equal, a.compared))
        });
        row(s, "answers checksum", sys, |r| {
            r.witness
                .answers_checksum
                .as_ref()
                .map_or("n/a".into(), |c| format!("`{c}`"))
        });
        for r in sys {
            if let Some(e) = &r.ingest.first_error {
                let _ = writeln!(s, "\n{} first write error: {}", r.system.name(), cell(e));
            }
            if r.ingest.generator == "live" {
                let _ = writeln!(
                    s,
                    "\n{}: bodies were encoded live, so the generator shared the CPU with the server.",
                    r.system.name()
                );
            }
        }
    }

    fn ratios_table(&self, s: &mut String) {
        if self.ratios.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## tsdb relative to each peer\n");
        let _ = writeln!(
            s,
            "tsdb's figure divided by the peer's: for ingest and replay speed above 1 is better for tsdb, for the costs below 1 is.\n"
        );
        let _ = writeln!(
            s,
            "| peer | ingest samples/s | CPU-s per M samples | peak RSS | bytes/sample | sum of query medians (queries) | replay samples/s |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for r in &self.ratios {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} ({}) | {} |",
                r.peer.name(),
                num(r.ingest_samples_per_second, 2),
                num(r.cpu_seconds_per_million_samples, 2),
                num(r.peak_rss, 2),
                num(r.bytes_per_sample, 2),
                num(r.sum_of_query_medians, 2),
                r.queries_compared,
                num(r.replay_samples_per_second, 2),
            );
        }
    }

    fn query_table(&self, s: &mut String) {
        let sys: Vec<System> = self.systems.iter().map(|r| r.system).collect();
        let compared: Vec<System> = self.agreement.iter().map(|a| a.system).collect();
        let _ = writeln!(s, "\n## Queries (median / p99 ms)\n");
        let mut head = String::from("| # | query | shape |");
        let mut rule = String::from("|---:|---|---|");
        for x in &sys {
            let _ = write!(head, " {} |", x.name());
            rule += "---:|";
        }
        for x in &compared {
            let _ = write!(head, " {} = Prom |", x.name());
            rule += "---|";
        }
        let _ = writeln!(s, "{head}\n{rule}");
        let pair = |m: Option<&Measured>, system: System| match m {
            _ if !system.speaks_promql() => "n/a".to_string(),
            Some(m) if m.error.is_some() => "error".into(),
            Some(m) => format!("{:.2} / {:.2}", m.median_ms, m.p99_ms),
            None => "-".into(),
        };
        for (i, r) in self.queries.iter().enumerate() {
            let mut line = format!(
                "| {} | {}: `{}` | {} |",
                i + 1,
                cell(r.query.name),
                cell(&r.query.expr),
                r.query.shape.describe()
            );
            for x in &sys {
                let m = r.cells.iter().find(|c| c.system == *x);
                let _ = write!(line, " {} |", pair(m.and_then(|c| c.measured.as_ref()), *x));
            }
            for x in &compared {
                let eq = r
                    .cells
                    .iter()
                    .find(|c| c.system == *x)
                    .and_then(|c| c.equal_to_prometheus);
                let _ = write!(
                    line,
                    " {} |",
                    match eq {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "-",
                    }
                );
            }
            let _ = writeln!(s, "{line}");
        }
        let mut total = String::from("| | **sum of medians of the queries answered** | |");
        for r in &self.systems {
            if r.system.speaks_promql() {
                let _ = write!(total, " **{:.2}** |", r.sum_of_medians_ms);
            } else {
                total += " n/a |";
            }
        }
        for a in &self.agreement {
            let _ = write!(total, " {} of {} |", a.equal, a.compared);
        }
        let _ = writeln!(s, "{total}");
    }

    fn notes(&self, s: &mut String) {
        let differing: Vec<String> = self
            .queries
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.cells.iter().filter_map(move |c| {
                    let d = c.difference.as_ref()?;
                    Some(format!(
                        "- #{} {} on {}: {}",
                        i + 1,
                        r.query.name,
                        c.system.name(),
                        cell(d)
                    ))
                })
            })
            .collect();
        if !differing.is_empty() {
            let _ = writeln!(
                s,
                "\n## Answers differing from Prometheus' (first difference)\n"
            );
            for d in differing {
                let _ = writeln!(s, "{d}");
            }
        }
        let errors: Vec<String> = self
            .queries
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.cells.iter().filter_map(move |c| {
                    let e = c.measured.as_ref()?.error.as_ref()?;
                    Some(format!("- #{} on {}: {}", i + 1, c.system.name(), cell(e)))
                })
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\n## Failed queries\n");
            for e in errors {
                let _ = writeln!(s, "{e}");
            }
        }
        let _ = writeln!(s, "\n## How each figure was taken\n");
        let _ = writeln!(
            s,
            "- CPU: the server's utime + stime (all threads, `/proc/<pid>/stat`) over the load. Peak RSS: `VmHWM` of the loading process before the kill, and of the restarted one at the end.\n\
             - kill -9 right after the load; samples back = the witness, `sum(count_over_time(NAME[{}])) or vector(0)` summed over the metric names (InfluxDB: `{}`, summed), at the fixed time; replay samples/s = samples back / seconds from the restart until they were counted.\n\
             - On disk (allocated blocks; bytes/sample = that / samples accepted): {}.",
            self.params
                .witness_promql
                .split_once('[')
                .and_then(|(_, w)| w.split_once(']'))
                .map_or("", |(w, _)| w),
            self.params.witness_influxql,
            self.systems
                .iter()
                .map(|r| format!("{}: {}", r.system.name(), r.disk.method))
                .collect::<Vec<_>>()
                .join("; ")
        );
        for r in &self.systems {
            let w = &r.witness;
            if w.samples_after_restart < w.samples_accepted {
                let _ = writeln!(
                    s,
                    "- **{}: {} of {} acknowledged samples were gone after the kill -9**; its size on disk, bytes/sample and query figures describe what remained.",
                    r.system.name(),
                    w.samples_accepted - w.samples_after_restart,
                    w.samples_accepted
                );
            }
        }
        for r in self.systems.iter().filter(|r| r.replay.flushed_before_kill) {
            let _ = writeln!(
                s,
                "- {} was asked to flush what it held in memory (`/internal/force_flush`) just before the kill -9, so that it is queried on as much of the data as it can keep: it acknowledges writes before they are on disk, and a kill -9 loses what it has not yet written. Any samples it still lost are counted above.",
                r.system.name()
            );
        }
        if self.system(System::VictoriaMetrics).is_some() {
            let _ = writeln!(
                s,
                "- VictoriaMetrics runs with its default caches, including its rollup result cache, so repeated range queries may be answered from it."
            );
        }
        if self.system(System::Influxdb).is_some() {
            let _ = writeln!(
                s,
                "- InfluxDB speaks no PromQL: its query cells are n/a, and its witness is the samples accepted and the InfluxQL count after the restart."
            );
        }
        let failures = self.failures();
        if !failures.is_empty() {
            let _ = writeln!(s, "\n## Failures\n");
            for f in failures {
                let _ = writeln!(s, "- {}", cell(&f));
            }
        }
    }
}
