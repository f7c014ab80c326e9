//! Set-up shared by the engine's benchmarks: whether criterion is measuring, and a
//! node-exporter-like fleet's label sets.
#![allow(clippy::unwrap_used, reason = "a benchmark's set-up fails loudly")]

use tsdb_engine::{Label, Labels};

/// Whether `cargo bench` runs us (it passes `--bench`); `cargo test --benches` does
/// not, and criterion then runs each benchmark once, so the set-up is kept small.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Series `i`: 100 per host, ten metrics with a `cpu` or `device` label each.
pub fn node_labels(i: usize) -> Labels {
    const METRICS: [(&str, &str); 10] = [
        ("node_cpu_seconds_total", "cpu"),
        ("node_cpu_guest_seconds_total", "cpu"),
        ("node_network_receive_bytes_total", "device"),
        ("node_network_transmit_bytes_total", "device"),
        ("node_disk_read_bytes_total", "device"),
        ("node_disk_written_bytes_total", "device"),
        ("node_disk_io_time_seconds_total", "device"),
        ("node_filesystem_avail_bytes", "device"),
        ("node_filesystem_size_bytes", "device"),
        ("node_load1", "cpu"),
    ];
    let (host, k) = (i / 100, i % 100);
    let (name, extra) = METRICS[k % METRICS.len()];
    Labels::new(vec![
        Label::new("__name__", name),
        Label::new(extra, format!("{}", k / METRICS.len())),
        Label::new("instance", format!("host-{host}:9100")),
        Label::new("job", "node"),
    ])
    .unwrap()
}
