//! Ingest decoding micro-benchmarks: a remote_write body of 2,000 node-exporter-like
//! series with one sample each (built with [`remote_write::encode`], snappy and
//! protobuf as Prometheus sends it) through [`remote_write::decode`], and an InfluxDB
//! line-protocol body of the same 2,000 samples (400 Telegraf-like lines of five
//! fields) through [`line_protocol::parse`]. Both with the default ingest limits, so
//! every label is validated as the routes validate it. Throughput is in samples; the
//! bodies' sizes are printed to stderr, for bytes per second.
//!
//! Only the decoders' public entry points are called, so a rewritten decoder is
//! measured by the same code. `cargo test --benches` runs each once, after checking
//! both bodies decode to the 2,000 samples they carry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark's set-up fails loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsdb_net::wire::IngestLimits;
use tsdb_net::wire::line_protocol::{self, Precision};
use tsdb_net::wire::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

/// Samples in one request (the bench harness' and the targets' size).
const REQUEST_SAMPLES: usize = 2_000;
const SCRAPE_MS: i64 = 1_700_000_000_000;

/// Series `i` of a node-exporter-like fleet, labels sorted as Prometheus sends them:
/// 100 series per host, ten metrics with a `cpu` or `device` label each.
fn node_series(i: usize) -> TimeSeries {
    const METRICS: [(&str, &str); 10] = [
        ("node_cpu_seconds_total", "cpu"),
        ("node_cpu_guest_seconds_total", "cpu"),
        ("node_disk_io_time_seconds_total", "device"),
        ("node_disk_read_bytes_total", "device"),
        ("node_disk_written_bytes_total", "device"),
        ("node_filesystem_avail_bytes", "device"),
        ("node_filesystem_size_bytes", "device"),
        ("node_network_receive_bytes_total", "device"),
        ("node_network_transmit_bytes_total", "device"),
        ("node_softnet_processed_total", "cpu"),
    ];
    let (host, k) = (i / 100, i % 100);
    let (name, extra) = METRICS[k % METRICS.len()];
    let label = |name: &str, value: String| Label {
        name: name.to_string(),
        value,
    };
    TimeSeries {
        labels: vec![
            label("__name__", name.to_string()),
            label(extra, format!("{}", k / METRICS.len())),
            label(
                "instance",
                format!("10.0.{}.{}:9100", host / 256, host % 256),
            ),
            label("job", "node".to_string()),
        ],
        samples: vec![Sample {
            value: (i as f64 * 1_337.25).floor(),
            timestamp: SCRAPE_MS,
        }],
    }
}

fn remote_write_body() -> Vec<u8> {
    remote_write::encode(&WriteRequest {
        timeseries: (0..REQUEST_SAMPLES).map(node_series).collect(),
        metadata: vec![],
    })
}

/// 400 lines as Telegraf writes them: four measurements of five fields per host.
fn line_protocol_body() -> Vec<u8> {
    const MEASUREMENTS: [(&str, [&str; 5]); 4] = [
        (
            "cpu,cpu=cpu-total",
            [
                "usage_user",
                "usage_system",
                "usage_idle",
                "usage_iowait",
                "usage_steal",
            ],
        ),
        ("mem", ["total", "available", "used", "free", "cached"]),
        (
            "disk,device=sda1,fstype=ext4,path=/",
            ["total", "free", "used", "inodes_free", "used_percent"],
        ),
        (
            "net,interface=eth0",
            [
                "bytes_recv",
                "bytes_sent",
                "packets_recv",
                "packets_sent",
                "err_in",
            ],
        ),
    ];
    let mut body = String::new();
    for line in 0..REQUEST_SAMPLES / 5 {
        let (measurement, fields) = MEASUREMENTS[line % MEASUREMENTS.len()];
        let host = line / MEASUREMENTS.len();
        body.push_str(&format!("{measurement},host=host-{host} "));
        for (f, field) in fields.iter().enumerate() {
            let sep = if f == 0 { "" } else { "," };
            let value = (line * 5 + f) as f64 * 12.25;
            body.push_str(&format!("{sep}{field}={value}"));
        }
        body.push_str(&format!(" {}\n", SCRAPE_MS * 1_000_000));
    }
    body.into_bytes()
}

fn decoders(c: &mut Criterion) {
    let limits = IngestLimits::default();
    let rw = remote_write_body();
    let lp = line_protocol_body();
    // remote_write decodes in place (labels borrowed from the body); its owned form
    // is compared with the line-protocol parser's.
    for decoded in [
        remote_write::decode(&rw, &limits).unwrap().to_series(),
        line_protocol::parse(&lp, Precision::Ns, 0, &limits).unwrap(),
    ] {
        assert_eq!(decoded.len(), REQUEST_SAMPLES, "one series per sample");
        assert!(
            decoded
                .iter()
                .all(|s| s.samples.len() == 1 && s.samples[0].timestamp_ms == SCRAPE_MS)
        );
    }

    eprintln!(
        "remote_write body: {} bytes ({} decompressed); line protocol body: {} bytes",
        rw.len(),
        remote_write::decoded_len(&rw).unwrap_or_default(),
        lp.len()
    );

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(REQUEST_SAMPLES as u64));
    group.bench_function("remote_write_decode", |b| {
        b.iter(|| remote_write::decode(black_box(&rw), &limits).unwrap());
    });
    group.bench_function("line_protocol_parse", |b| {
        b.iter(|| line_protocol::parse(black_box(&lp), Precision::Ns, 0, &limits).unwrap());
    });
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
