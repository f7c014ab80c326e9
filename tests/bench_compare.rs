//! `tsdb-bench compare`, run small so the harness never rots: all four systems
//! (this build's tsdb, and Debian's Prometheus, VictoriaMetrics and InfluxDB, which
//! `.ci/run` installs), 2,000 series x 30 points, 2 timed runs a query.
//!
//! It lives in the root package because only the root package's tests know where
//! cargo put the tsdb binary (`CARGO_BIN_EXE_tsdb`, built for this test); the
//! comparison runs in-process through the `tsdb-bench` library, the same code the
//! command runs, and the JSON checked is the report the command writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: a failed step should fail the test loudly"
)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tsdb_bench::compare::{self, CompareConfig};
use tsdb_bench::peers::System;

const SERIES: usize = 2_000;
const POINTS: u64 = 30;

#[test]
fn four_systems_take_the_same_samples_and_tsdb_answers_as_prometheus() {
    // Every peer must be present: a missing one fails here rather than being skipped.
    for s in [
        System::Prometheus,
        System::VictoriaMetrics,
        System::Influxdb,
    ] {
        let bin = s.default_bin().unwrap();
        assert!(
            Path::new(bin).is_file(),
            "{bin} is missing: this test needs Debian's prometheus, victoria-metrics and \
             influxdb packages (.ci/run installs them: apt-get install prometheus \
             victoria-metrics influxdb)"
        );
    }
    let bins = [
        (
            System::Tsdb,
            Some(PathBuf::from(env!("CARGO_BIN_EXE_tsdb"))),
        ),
        (System::Prometheus, None),
        (System::VictoriaMetrics, None),
        (System::Influxdb, None),
    ];
    let all: Vec<String> = System::ALL.iter().map(|s| s.key().to_string()).collect();
    let (systems, skipped) = compare::pick_systems(Some(&all), &bins).unwrap();
    assert_eq!(systems.len(), 4);
    let cfg = CompareConfig {
        systems,
        skipped,
        series: SERIES,
        points: POINTS,
        interval_ms: 10_000,
        connections: 2,
        samples_per_request: 1_000,
        query_runs: 2,
        seed: 1,
        pre_encode_max_bytes: 256 << 20,
        command_line: "tests/bench_compare.rs".into(),
    };
    let report = compare::run(&cfg).unwrap();
    let markdown = report.markdown();
    assert!(report.failures().is_empty(), "{markdown}");

    let json: Value = serde_json::to_value(&report).unwrap();
    let expected = SERIES as u64 * POINTS;
    let systems = json["systems"].as_array().unwrap();
    let keys: Vec<&str> = systems
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["tsdb", "prometheus", "victoria-metrics", "influxdb"]);
    let positive = |s: &Value, path: &str| {
        let v = s.pointer(path).and_then(Value::as_f64);
        assert!(
            v.is_some_and(|v| v.is_finite() && v > 0.0),
            "{} {path} = {v:?}\n{markdown}",
            s["system"]
        );
    };
    for s in systems {
        let name = &s["system"];
        assert_eq!(s["ingest"]["samples_sent"], expected, "{name}");
        assert_eq!(s["ingest"]["samples_accepted"], expected, "{name}");
        assert_eq!(s["ingest"]["requests_failed"], 0, "{name}");
        for path in [
            "/ingest/accepted_samples_per_second",
            "/ingest/request_p50_ms",
            "/ingest/request_p99_ms",
            "/memory/rss_after_load_bytes",
            "/memory/peak_rss_load_bytes",
            "/memory/peak_rss_after_restart_bytes",
            "/memory/peak_rss_bytes",
            "/disk/allocated_bytes",
            "/disk/apparent_bytes",
            "/bytes_per_sample",
            "/replay/ready_seconds",
        ] {
            positive(s, path);
        }
        // VictoriaMetrics keeps the last seconds of writes in memory, so a kill -9
        // right after a load this short loses most or all of them (reported, not a
        // failure); the others log every acknowledged write before answering.
        if s["system"] != "victoria-metrics" {
            assert_eq!(s["replay"]["samples_after_restart"], expected, "{name}");
            positive(s, "/replay/samples_per_second");
        }
        // A tiny load may take less than one clock tick of server CPU.
        let cpu = s["ingest"]["cpu_seconds_per_million_samples"].as_f64();
        assert!(
            cpu.is_some_and(|c| c >= 0.0 && c.is_finite()),
            "{name} {cpu:?}"
        );
        assert!(
            s["disk"]["settled"].as_bool().unwrap(),
            "{name}\n{markdown}"
        );
        let promql = s["system"] != "influxdb";
        assert_eq!(s["queries_run"], if promql { 27 } else { 0 }, "{name}");
        assert_eq!(s["queries_failed"], 0, "{name}");
        assert_eq!(
            s["witness"]["answers_checksum"].is_string(),
            promql,
            "{name}"
        );
    }
    // tsdb keeps every acknowledged sample across kill -9, and says how long its WAL
    // replay took.
    let tsdb = &systems[0];
    assert_eq!(
        tsdb["witness"]["samples_after_restart"], expected,
        "{markdown}"
    );
    assert!(tsdb["replay"]["log_replay_ms"].is_u64(), "{markdown}");

    // tsdb answers every query exactly as Prometheus does; VictoriaMetrics is compared
    // (its differences are reported, not failures).
    let agreement = json["agreement"].as_array().unwrap();
    assert_eq!(agreement[0]["system"], "tsdb");
    assert_eq!(agreement[0]["compared"], 27, "{markdown}");
    assert_eq!(agreement[0]["equal"], 27, "{markdown}");
    assert_eq!(agreement[1]["system"], "victoria-metrics");
    assert_eq!(agreement[1]["compared"], 27, "{markdown}");
    for row in json["queries"].as_array().unwrap() {
        assert_eq!(row["cells"][0]["equal_to_prometheus"], true, "{row}");
        assert!(row["cells"][3]["measured"].is_null(), "{row}");
    }

    // A ratio for each peer and figure; queries only where both answered.
    let ratios = json["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 3);
    for r in ratios {
        for path in [
            "/ingest_samples_per_second",
            "/peak_rss",
            "/bytes_per_sample",
        ] {
            positive(r, path);
        }
        if r["peer"] != "victoria-metrics" {
            positive(r, "/replay_samples_per_second");
        }
        let compared = if r["peer"] == "influxdb" { 0 } else { 27 };
        assert_eq!(r["queries_compared"], compared, "{r}");
        assert_eq!(r["sum_of_query_medians"].is_number(), compared > 0, "{r}");
    }

    for needle in [
        "| | tsdb | Prometheus | VictoriaMetrics | InfluxDB |",
        "## tsdb relative to each peer",
        "| n/a |",
        "| tsdb = Prom | VictoriaMetrics = Prom |",
        "## How each figure was taken",
    ] {
        assert!(markdown.contains(needle), "{needle:?} not in\n{markdown}");
    }
}
