//! Deterministic node-exporter-like data and the request bodies that carry it.
//!
//! A [`Dataset`] is a fleet of hosts, each exposing the series node_exporter would
//! (CPU seconds per core and mode, memory, network, disks, filesystems, load, …),
//! labelled the way a Prometheus scrape labels them (`instance`, `job`) plus the target
//! labels service discovery typically attaches (`env`, `region`, `zone`); together
//! they give label sets of the size real deployments have (about 120 bytes of names and
//! values, 140 as `name{…}` text; the report gives the means). Hosts are
//! added until the requested series count is reached; the last host may be cut short.
//!
//! Everything — the fleet, each series' start value and every step after it — follows
//! from the seed alone, and each series has its own random stream, so a body for
//! (step, series range) is the same bytes whichever thread encodes it and in whatever
//! order. The load loop relies on that to pre-encode or encode live interchangeably.
//!
//! Values are kept as integer "ticks" of a fixed unit (1/100 s, 1 byte, one 4 KiB
//! page, …) and turned into `f64` by one exact division, so a 2-decimal value prints
//! and compresses as a real exporter's would rather than as `0.30000000000000004`.
//!
//! Bodies are hand-encoded (each series' labels are encoded once, up front), because
//! building prost structs means cloning every label string of every request, which
//! would make the generator the bottleneck; a test checks the bytes equal prost's.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

/// Wire protocol of the generated bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Prometheus remote_write 1.0 (snappy block format around protobuf).
    RemoteWrite,
    /// InfluxDB line protocol, millisecond timestamps.
    Influx,
}

impl Protocol {
    /// The path (and query) the bodies are posted to.
    pub fn path(self) -> &'static str {
        match self {
            Protocol::RemoteWrite => "/api/v1/write",
            Protocol::Influx => "/write?precision=ms",
        }
    }

    /// The headers Prometheus (resp. an Influx client) sends with a body.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Protocol::RemoteWrite => &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            Protocol::Influx => &[("Content-Type", "text/plain; charset=utf-8")],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::RemoteWrite => "remote-write",
            Protocol::Influx => "influx",
        }
    }
}

/// SplitMix64: tiny, fast, and good enough for synthetic data; no dependency needed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    /// A stream for item `index` of stream family `salt`: streams for neighbouring
    /// indexes must not overlap, so the inputs are mixed rather than added.
    fn derived(seed: u64, salt: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ salt.wrapping_mul(0xA076_1D64_78BD_642F));
        let a = r.next_u64();
        Rng(a ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n) (n > 0), without modulo bias worth caring about.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi].
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn pick<T: Copy, const N: usize>(&mut self, items: &[T; N]) -> T {
        items[self.below(N as u64) as usize]
    }
}

/// How a series' value moves from one step to the next, in ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Adds about `rate` ticks per step (uniformly 50 %–150 % of it); a rate of 0 is
    /// the common idle counter (errors, steal time) that never moves.
    Counter { rate: f64 },
    /// Random walk of up to ±`step` ticks per step, reflected into [lo, hi].
    Gauge { step: f64, lo: i64, hi: i64 },
    /// Never changes (sizes, boot time, `*_info` series).
    Constant,
}

/// One series: its labels (sorted by name, as Prometheus sends them), how its value
/// moves, its start value and unit, and its host's scrape offset.
#[derive(Clone, Debug)]
pub struct SeriesDef {
    pub labels: Vec<(&'static str, Arc<str>)>,
    kind: Kind,
    start_ticks: i64,
    /// Value = ticks × mult / div, so 2-decimal values are exact decimal fractions.
    mult: i64,
    div: i64,
    /// Prometheus spreads targets over the scrape interval; every series of a host
    /// shares that host's offset.
    offset_ms: i64,
}

/// The fleet's series and its scrape schedule.
#[derive(Debug)]
pub struct Dataset {
    pub series: Vec<SeriesDef>,
    pub hosts: usize,
    pub start_ms: i64,
    pub interval_ms: i64,
    seed: u64,
}

/// Facts about a dataset worth reporting next to a benchmark result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatasetFacts {
    pub hosts: usize,
    pub metric_names: usize,
    /// Mean bytes of label names plus values per series, `__name__` included.
    pub mean_label_bytes: f64,
    /// Mean length of the series written as `name{a="b",…}`.
    pub mean_series_text_bytes: f64,
    pub mean_labels_per_series: f64,
}

// Scale factors from value to ticks.
const HUNDREDTHS: (i64, i64) = (1, 100);
const ONES: (i64, i64) = (1, 1);
const PAGES: (i64, i64) = (4096, 1);

const GIB: i64 = 1 << 30;

struct Fs {
    device: &'static str,
    fstype: &'static str,
    mountpoint: &'static str,
    size_bytes: i64,
}

/// One host's hardware and placement, drawn from the seed.
struct Host {
    instance: Arc<str>,
    nodename: Arc<str>,
    env: Arc<str>,
    region: Arc<str>,
    zone: Arc<str>,
    cpus: u32,
    nics: Vec<&'static str>,
    disks: Vec<&'static str>,
    fss: Vec<Fs>,
    mem_bytes: i64,
    release: &'static str,
    version: &'static str,
    boot_time_s: i64,
    offset_ms: i64,
}

impl Host {
    fn new(seed: u64, index: usize, interval_ms: i64) -> Host {
        let mut r = Rng::derived(seed, 1, index as u64);
        let cpus = r.pick(&[2, 4, 4, 8, 8, 16]);
        let mem_gib = i64::from(cpus) * r.pick(&[2, 4, 4, 8]);
        let (disks, root_dev, data_dev): (Vec<&'static str>, &'static str, &'static str) =
            match r.below(3) {
                0 => (vec!["nvme0n1", "nvme1n1"], "/dev/nvme0n1p1", "/dev/nvme1n1"),
                1 => (vec!["sda", "sdb"], "/dev/sda1", "/dev/sdb"),
                _ => (vec!["vda"], "/dev/vda1", "/dev/vda1"),
            };
        let mut fss = vec![
            Fs {
                device: root_dev,
                fstype: "ext4",
                mountpoint: "/",
                size_bytes: r.pick(&[50, 100, 200]) * GIB,
            },
            Fs {
                device: "tmpfs",
                fstype: "tmpfs",
                mountpoint: "/run",
                size_bytes: mem_gib * GIB / 10,
            },
        ];
        if data_dev != root_dev {
            fss.push(Fs {
                device: data_dev,
                fstype: r.pick(&["xfs", "ext4"]),
                mountpoint: r.pick(&["/var/lib/docker", "/data", "/var/lib/postgresql"]),
                size_bytes: r.pick(&[500, 1000, 2000]) * GIB,
            });
        }
        let mut nics = vec!["lo", r.pick(&["eth0", "ens5", "enp0s31f6"])];
        if r.below(2) == 0 {
            nics.push("docker0");
        }
        let (release, version) = r.pick(&[
            (
                "6.1.0-18-amd64",
                "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
            ),
            (
                "5.15.0-105-generic",
                "#115-Ubuntu SMP Mon Apr 15 09:52:04 UTC 2024",
            ),
            (
                "6.8.0-1012-aws",
                "#13-Ubuntu SMP Mon Jul 15 13:40:27 UTC 2024",
            ),
        ]);
        let region = r.pick(&["eu-central-1", "us-east-1", "ap-southeast-2"]);
        let zone = r.pick(&["a", "b", "c"]);
        Host {
            instance: format!("host-{index}:9100").into(),
            nodename: format!("host-{index}").into(),
            env: r.pick(&["production", "production", "staging"]).into(),
            region: region.into(),
            zone: format!("{region}{zone}").into(),
            cpus,
            nics,
            disks,
            fss,
            mem_bytes: mem_gib * GIB,
            release,
            version,
            boot_time_s: 1_700_000_000 + r.range(0, 30 * 86_400),
            offset_ms: r.range(0, interval_ms.max(1) - 1),
        }
    }
}

/// Collects one host's series.
struct HostSeries<'a> {
    host: &'a Host,
    out: &'a mut Vec<SeriesDef>,
    /// Start values and rates are drawn here; per-step noise comes from each series'
    /// own stream (see [`Cursor`]).
    r: Rng,
    interval_s: f64,
}

impl HostSeries<'_> {
    fn add(
        &mut self,
        name: &'static str,
        extra: &[(&'static str, Arc<str>)],
        kind: Kind,
        start_ticks: i64,
        (mult, div): (i64, i64),
    ) {
        let h = self.host;
        let mut labels: Vec<(&'static str, Arc<str>)> = Vec::with_capacity(extra.len() + 6);
        labels.push(("__name__", name.into()));
        labels.extend(extra.iter().cloned());
        labels.push(("instance", h.instance.clone()));
        labels.push(("job", "node".into()));
        labels.push(("env", h.env.clone()));
        labels.push(("region", h.region.clone()));
        labels.push(("zone", h.zone.clone()));
        labels.sort_by(|a, b| a.0.cmp(b.0));
        self.out.push(SeriesDef {
            labels,
            kind,
            start_ticks,
            mult,
            div,
            offset_ms: h.offset_ms,
        });
    }

    /// A counter growing by about `per_s` units per second, from a value that looks
    /// like `uptime_s` of history.
    fn counter(
        &mut self,
        name: &'static str,
        extra: &[(&'static str, Arc<str>)],
        per_s: f64,
        uptime_s: f64,
        unit: (i64, i64),
    ) {
        let ticks_per_s = per_s * unit.1 as f64 / unit.0 as f64;
        let start = (ticks_per_s * uptime_s * (0.8 + 0.4 * self.r.unit())) as i64;
        let rate = ticks_per_s * self.interval_s;
        self.add(name, extra, Kind::Counter { rate }, start, unit);
    }

    fn gauge(
        &mut self,
        name: &'static str,
        extra: &[(&'static str, Arc<str>)],
        (lo, hi): (i64, i64),
        step: f64,
        unit: (i64, i64),
    ) {
        let start = self.r.range(lo, hi.max(lo));
        let kind = Kind::Gauge { step, lo, hi };
        self.add(name, extra, kind, start, unit);
    }

    fn constant(
        &mut self,
        name: &'static str,
        extra: &[(&'static str, Arc<str>)],
        ticks: i64,
        unit: (i64, i64),
    ) {
        self.add(name, extra, Kind::Constant, ticks, unit);
    }

    /// Everything node_exporter would expose for this host that we model (24 metric
    /// names; the real exporter has hundreds, but these carry most of the series).
    fn all(&mut self) {
        let h = self.host;
        let uptime = 5.0 * 86_400.0 * (0.2 + self.r.unit());
        // Per core, the share of time in each mode; 0 means the counter never moves.
        const MODES: [(&str, f64); 8] = [
            ("idle", 0.78),
            ("iowait", 0.01),
            ("irq", 0.0),
            ("nice", 0.0),
            ("softirq", 0.005),
            ("steal", 0.0),
            ("system", 0.05),
            ("user", 0.15),
        ];
        for cpu in 0..h.cpus {
            let cpu: Arc<str> = cpu.to_string().into();
            for (mode, share) in MODES {
                let share = share * (0.5 + self.r.unit());
                let extra = [("cpu", cpu.clone()), ("mode", mode.into())];
                self.counter("node_cpu_seconds_total", &extra, share, uptime, HUNDREDTHS);
            }
        }

        let pages = h.mem_bytes / 4096;
        self.constant("node_memory_MemTotal_bytes", &[], pages, PAGES);
        self.gauge(
            "node_memory_MemAvailable_bytes",
            &[],
            (pages / 10, pages * 9 / 10),
            2000.0,
            PAGES,
        );
        self.gauge(
            "node_memory_MemFree_bytes",
            &[],
            (pages / 50, pages / 3),
            1500.0,
            PAGES,
        );
        self.gauge(
            "node_memory_Cached_bytes",
            &[],
            (pages / 10, pages / 2),
            800.0,
            PAGES,
        );

        for &nic in &h.nics {
            let dev = [("device", Arc::<str>::from(nic))];
            let scale = if nic == "lo" { 0.1 } else { 1.0 };
            let bytes_s = scale * 2e6 * (0.2 + self.r.unit());
            self.counter(
                "node_network_receive_bytes_total",
                &dev,
                bytes_s,
                uptime,
                ONES,
            );
            self.counter(
                "node_network_transmit_bytes_total",
                &dev,
                bytes_s * 0.6,
                uptime,
                ONES,
            );
            self.counter(
                "node_network_receive_packets_total",
                &dev,
                bytes_s / 900.0,
                uptime,
                ONES,
            );
            self.counter(
                "node_network_transmit_packets_total",
                &dev,
                bytes_s / 1100.0,
                uptime,
                ONES,
            );
            self.constant("node_network_up", &dev, i64::from(nic != "lo"), ONES);
        }

        for &disk in &h.disks {
            let dev = [("device", Arc::<str>::from(disk))];
            let busy = 0.02 + 0.1 * self.r.unit();
            self.counter(
                "node_disk_io_time_seconds_total",
                &dev,
                busy,
                uptime,
                HUNDREDTHS,
            );
            // Sectors are 512 bytes, so the byte counters move in multiples of 512.
            let unit = (512, 1);
            let read_s = 4e5 * self.r.unit();
            self.counter("node_disk_read_bytes_total", &dev, read_s, uptime, unit);
            let written_s = 1e6 * self.r.unit();
            let name = "node_disk_written_bytes_total";
            self.counter(name, &dev, written_s, uptime, unit);
        }

        for fs in &h.fss {
            let extra = [
                ("device", Arc::<str>::from(fs.device)),
                ("fstype", fs.fstype.into()),
                ("mountpoint", fs.mountpoint.into()),
            ];
            let blocks = fs.size_bytes / 4096;
            self.gauge(
                "node_filesystem_avail_bytes",
                &extra,
                (blocks / 20, blocks * 9 / 10),
                300.0,
                PAGES,
            );
            self.constant("node_filesystem_size_bytes", &extra, blocks, PAGES);
            let inodes = fs.size_bytes / 16384;
            self.gauge(
                "node_filesystem_files_free",
                &extra,
                (inodes / 2, inodes),
                40.0,
                ONES,
            );
        }

        let cpus = i64::from(h.cpus);
        self.gauge("node_load1", &[], (0, cpus * 150), 12.0, HUNDREDTHS);
        self.gauge("node_load5", &[], (0, cpus * 120), 5.0, HUNDREDTHS);
        self.gauge("node_load15", &[], (0, cpus * 100), 2.0, HUNDREDTHS);

        let switches = 3000.0 * cpus as f64 * (0.5 + self.r.unit());
        self.counter("node_context_switches_total", &[], switches, uptime, ONES);
        self.counter("node_intr_total", &[], switches * 0.7, uptime, ONES);
        self.gauge("node_procs_running", &[], (1, cpus * 2), 2.0, ONES);
        self.constant("node_boot_time_seconds", &[], h.boot_time_s, ONES);
        let uname = [
            ("domainname", Arc::<str>::from("(none)")),
            ("machine", "x86_64".into()),
            ("nodename", h.nodename.clone()),
            ("release", h.release.into()),
            ("sysname", "Linux".into()),
            ("version", h.version.into()),
        ];
        self.constant("node_uname_info", &uname, 1, ONES);
    }
}

impl Dataset {
    /// The first `series` series of the fleet drawn from `seed`, scraped every
    /// `interval_ms` from `start_ms` on.
    pub fn new(seed: u64, series: usize, start_ms: i64, interval_ms: i64) -> Dataset {
        let mut out = Vec::with_capacity(series);
        let mut hosts = 0;
        while out.len() < series {
            let host = Host::new(seed, hosts, interval_ms);
            let mut hs = HostSeries {
                host: &host,
                out: &mut out,
                r: Rng::derived(seed, 2, hosts as u64),
                interval_s: interval_ms as f64 / 1000.0,
            };
            hs.all();
            hosts += 1;
        }
        out.truncate(series);
        Dataset {
            series: out,
            hosts,
            start_ms,
            interval_ms,
            seed,
        }
    }

    pub fn facts(&self) -> DatasetFacts {
        let n = self.series.len().max(1) as f64;
        let mut names = std::collections::HashSet::new();
        let (mut label_bytes, mut text_bytes, mut labels) = (0usize, 0usize, 0usize);
        for s in &self.series {
            labels += s.labels.len();
            for (name, value) in &s.labels {
                label_bytes += name.len() + value.len();
                if *name == "__name__" {
                    names.insert(value.clone());
                    // `name{` … `}`
                    text_bytes += value.len() + 2;
                } else {
                    // `name="value",`
                    text_bytes += name.len() + value.len() + 4;
                }
            }
            // No comma after the last label.
            text_bytes -= 1;
        }
        DatasetFacts {
            hosts: self.hosts,
            metric_names: names.len(),
            mean_label_bytes: label_bytes as f64 / n,
            mean_series_text_bytes: text_bytes as f64 / n,
            mean_labels_per_series: labels as f64 / n,
        }
    }

    /// A cursor over `range` of the series, at step 0.
    pub fn cursor(&self, range: Range<usize>) -> Cursor {
        let defs = self.series.get(range.clone()).unwrap_or_default();
        let states = defs
            .iter()
            .zip(range.clone())
            .map(|(d, i)| State {
                ticks: d.start_ticks,
                rng: Rng::derived(self.seed, 3, i as u64),
            })
            .collect();
        Cursor {
            range,
            step: 0,
            states,
        }
    }

    fn timestamp(&self, def: &SeriesDef, step: u64) -> i64 {
        self.start_ms + step as i64 * self.interval_ms + def.offset_ms
    }
}

#[derive(Clone, Debug)]
struct State {
    ticks: i64,
    rng: Rng,
}

/// The values of a range of series at one step; [`Cursor::advance`] moves to the next.
/// Each series draws from its own stream, so how the series are split into cursors does
/// not change any value.
#[derive(Clone, Debug)]
pub struct Cursor {
    range: Range<usize>,
    step: u64,
    states: Vec<State>,
}

impl Cursor {
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn advance(&mut self, ds: &Dataset) {
        let defs = ds.series.get(self.range.clone()).unwrap_or_default();
        for (st, def) in self.states.iter_mut().zip(defs) {
            match def.kind {
                Kind::Counter { rate } => {
                    if rate > 0.0 {
                        let inc = (rate * (0.5 + st.rng.unit())).round() as i64;
                        st.ticks = st.ticks.saturating_add(inc);
                    }
                }
                Kind::Gauge { step, lo, hi } => {
                    // Triangular noise: small moves are more common than large ones.
                    let noise = st.rng.unit() + st.rng.unit() - 1.0;
                    let mut t = st.ticks + (step * noise).round() as i64;
                    if t < lo {
                        t = lo + (lo - t);
                    }
                    if t > hi {
                        t = hi - (t - hi);
                    }
                    st.ticks = t.clamp(lo, hi.max(lo));
                }
                Kind::Constant => {}
            }
        }
        self.step += 1;
    }

    /// Series index, timestamp and value of every series of the cursor.
    fn samples<'a>(&'a self, ds: &'a Dataset) -> impl Iterator<Item = (usize, i64, f64)> + 'a {
        let defs = ds.series.get(self.range.clone()).unwrap_or_default();
        self.states
            .iter()
            .zip(defs)
            .zip(self.range.clone())
            .map(move |((st, def), i)| {
                let value = (st.ticks as f64 * def.mult as f64) / def.div as f64;
                (i, ds.timestamp(def, self.step), value)
            })
    }
}

/// Each series' labels, encoded once in the chosen protocol.
#[derive(Debug)]
pub struct Wire {
    protocol: Protocol,
    /// remote_write: the series' `Label` messages as they appear inside `TimeSeries`;
    /// influx: `measurement,tag=value,… value=`.
    prefixes: Vec<Vec<u8>>,
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 7 bits per byte; 0 still takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Protobuf length-delimited field: key (wire type 2), length, bytes.
fn put_bytes_field(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(buf, u64::from((field << 3) | 2));
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Influx escapes for measurement names (`,` and space) and tag keys/values (also `=`).
fn influx_escape(out: &mut Vec<u8>, s: &str, with_equals: bool) {
    for b in s.bytes() {
        if b == b',' || b == b' ' || (with_equals && b == b'=') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

impl Wire {
    pub fn new(ds: &Dataset, protocol: Protocol) -> Wire {
        let prefixes = ds
            .series
            .iter()
            .map(|s| match protocol {
                Protocol::RemoteWrite => {
                    let mut out = Vec::new();
                    let mut label = Vec::new();
                    for (name, value) in &s.labels {
                        label.clear();
                        // proto3 omits empty strings; none of ours is empty, but keep
                        // the rule so the bytes stay prost's.
                        if !name.is_empty() {
                            put_bytes_field(&mut label, 1, name.as_bytes());
                        }
                        if !value.is_empty() {
                            put_bytes_field(&mut label, 2, value.as_bytes());
                        }
                        put_bytes_field(&mut out, 1, &label);
                    }
                    out
                }
                Protocol::Influx => {
                    let mut out = Vec::new();
                    let name = s
                        .labels
                        .iter()
                        .find(|(n, _)| *n == "__name__")
                        .map(|(_, v)| &**v)
                        .unwrap_or("unnamed");
                    influx_escape(&mut out, name, false);
                    for (n, v) in s.labels.iter().filter(|(n, _)| *n != "__name__") {
                        out.push(b',');
                        influx_escape(&mut out, n, true);
                        out.push(b'=');
                        influx_escape(&mut out, v, true);
                    }
                    out.extend_from_slice(b" value=");
                    out
                }
            })
            .collect();
        Wire { protocol, prefixes }
    }
}

/// Encodes request bodies, reusing its buffers from one request to the next.
pub struct BodyEncoder {
    raw: Vec<u8>,
    sample: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
    text: String,
}

impl std::fmt::Debug for BodyEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyEncoder").finish_non_exhaustive()
    }
}

impl Default for BodyEncoder {
    fn default() -> BodyEncoder {
        BodyEncoder::new()
    }
}

impl BodyEncoder {
    pub fn new() -> BodyEncoder {
        BodyEncoder {
            raw: Vec::new(),
            sample: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            text: String::new(),
        }
    }

    /// The body carrying one sample of every series of `cursor`, at its current step.
    pub fn encode(&mut self, wire: &Wire, ds: &Dataset, cursor: &Cursor) -> Result<&[u8], String> {
        self.raw.clear();
        match wire.protocol {
            Protocol::RemoteWrite => {
                for (i, ts, value) in cursor.samples(ds) {
                    let prefix = wire.prefixes.get(i).map(Vec::as_slice).unwrap_or_default();
                    // `Sample`: proto3 omits zero values, as prost does.
                    self.sample.clear();
                    if value != 0.0 {
                        self.sample.push((1 << 3) | 1);
                        self.sample.extend_from_slice(&value.to_le_bytes());
                    }
                    if ts != 0 {
                        self.sample.push(2 << 3);
                        put_varint(&mut self.sample, ts as u64);
                    }
                    let sample_len = self.sample.len() as u64;
                    let series_len =
                        prefix.len() as u64 + 1 + varint_len(sample_len) as u64 + sample_len;
                    // `WriteRequest.timeseries` (field 1) holding `TimeSeries`.
                    self.raw.push((1 << 3) | 2);
                    put_varint(&mut self.raw, series_len);
                    self.raw.extend_from_slice(prefix);
                    put_bytes_field(&mut self.raw, 2, &self.sample);
                }
                let max = snap::raw::max_compress_len(self.raw.len());
                if max == 0 && !self.raw.is_empty() {
                    return Err(format!(
                        "request of {} bytes is too large for snappy",
                        self.raw.len()
                    ));
                }
                self.compressed.resize(max, 0);
                let n = self
                    .snappy
                    .compress(&self.raw, &mut self.compressed)
                    .map_err(|e| format!("snappy: {e}"))?;
                Ok(self.compressed.get(..n).unwrap_or_default())
            }
            Protocol::Influx => {
                for (i, ts, value) in cursor.samples(ds) {
                    let prefix = wire.prefixes.get(i).map(Vec::as_slice).unwrap_or_default();
                    self.raw.extend_from_slice(prefix);
                    // Display prints the shortest text that reads back as the same f64
                    // (`12.34`, `4096`), as exporters print them.
                    self.text.clear();
                    let _ = writeln!(self.text, "{value} {ts}");
                    self.raw.extend_from_slice(self.text.as_bytes());
                }
                Ok(&self.raw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use tsdb_net::wire::IngestLimits;
    use tsdb_net::wire::line_protocol::{self, Precision};
    use tsdb_net::wire::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

    /// Every body of `steps` steps, `per_request` series per request.
    fn bodies(
        seed: u64,
        series: usize,
        steps: u64,
        per_request: usize,
        p: Protocol,
    ) -> Vec<Vec<u8>> {
        let ds = Dataset::new(seed, series, 1_700_000_000_000, 10_000);
        let wire = Wire::new(&ds, p);
        let mut enc = BodyEncoder::new();
        let mut cursors: Vec<Cursor> = (0..series)
            .step_by(per_request)
            .map(|lo| ds.cursor(lo..(lo + per_request).min(series)))
            .collect();
        let mut out = Vec::new();
        for step in 0..steps {
            for c in &mut cursors {
                if step > 0 {
                    c.advance(&ds);
                }
                out.push(enc.encode(&wire, &ds, c).unwrap().to_vec());
            }
        }
        out
    }

    #[test]
    fn same_seed_same_bytes_whatever_the_split() {
        for p in [Protocol::RemoteWrite, Protocol::Influx] {
            let a = bodies(7, 500, 4, 100, p);
            assert_eq!(a, bodies(7, 500, 4, 100, p), "{p:?}");
            assert_ne!(a, bodies(8, 500, 4, 100, p), "{p:?}: seed must matter");
            // One cursor per series gives the same samples as one per 100 series:
            // compare the decoded text form, since bodies differ in framing.
            if p == Protocol::Influx {
                let joined: Vec<u8> = a.concat();
                let single: Vec<u8> = bodies(7, 500, 4, 1, p).concat();
                let mut x: Vec<&[u8]> = joined.split(|&b| b == b'\n').collect();
                let mut y: Vec<&[u8]> = single.split(|&b| b == b'\n').collect();
                x.sort();
                y.sort();
                assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn label_sets_are_unique_and_realistic() {
        let ds = Dataset::new(1, 20_000, 0, 10_000);
        assert_eq!(ds.series.len(), 20_000);
        let mut seen = HashSet::new();
        for s in &ds.series {
            let names: Vec<&str> = s.labels.iter().map(|(n, _)| *n).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(names, sorted, "labels sorted and without duplicates");
            assert!(
                seen.insert(s.labels.clone()),
                "duplicate series {:?}",
                s.labels
            );
        }
        let f = ds.facts();
        assert!((18..=30).contains(&f.metric_names), "{f:?}");
        assert!(
            (110.0..=150.0).contains(&f.mean_label_bytes),
            "label bytes not realistic: {f:?}"
        );
    }

    #[test]
    fn remote_write_bytes_equal_prost_and_decode() {
        let ds = Dataset::new(3, 300, 1_700_000_000_000, 15_000);
        let wire = Wire::new(&ds, Protocol::RemoteWrite);
        let mut cursor = ds.cursor(0..300);
        cursor.advance(&ds);
        let body = BodyEncoder::new()
            .encode(&wire, &ds, &cursor)
            .unwrap()
            .to_vec();
        let req = WriteRequest {
            timeseries: cursor
                .samples(&ds)
                .map(|(i, timestamp, value)| TimeSeries {
                    labels: ds.series[i]
                        .labels
                        .iter()
                        .map(|(n, v)| Label {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                    samples: vec![Sample { value, timestamp }],
                })
                .collect(),
            metadata: vec![],
        };
        assert_eq!(body, remote_write::encode(&req));
        let batch = remote_write::decode(&body, &IngestLimits::default()).unwrap();
        assert_eq!(batch.len(), 300);
    }

    #[test]
    fn influx_bodies_parse_as_the_same_series() {
        let ds = Dataset::new(3, 300, 1_700_000_000_000, 15_000);
        let wire = Wire::new(&ds, Protocol::Influx);
        let cursor = ds.cursor(0..300);
        let body = BodyEncoder::new()
            .encode(&wire, &ds, &cursor)
            .unwrap()
            .to_vec();
        let batch =
            line_protocol::parse(&body, Precision::Ms, 0, &IngestLimits::default()).unwrap();
        assert_eq!(batch.len(), 300);
        // The uname series have spaces in a label value: check they survived escaping.
        let with_space = batch
            .iter()
            .filter(|s| format!("{:?}", s.labels).contains(" SMP "))
            .count();
        let uname = ds
            .series
            .iter()
            .filter(|s| s.labels.iter().any(|(n, _)| *n == "version"))
            .count();
        assert!(uname >= 1);
        assert_eq!(with_space, uname, "every node_uname_info kept its spaces");
    }

    #[test]
    fn values_look_like_an_exporter_s() {
        let ds = Dataset::new(5, 2_000, 0, 10_000);
        let mut cursor = ds.cursor(0..2_000);
        let mut prev: Vec<f64> = cursor.samples(&ds).map(|s| s.2).collect();
        for _ in 0..20 {
            cursor.advance(&ds);
            let now: Vec<f64> = cursor.samples(&ds).map(|s| s.2).collect();
            for ((i, a), b) in prev.iter().enumerate().zip(&now) {
                // At most 2 decimals.
                assert_eq!(
                    format!("{b}"),
                    format!("{:.2}", b)
                        .trim_end_matches('0')
                        .trim_end_matches('.'),
                    "{b}"
                );
                if matches!(ds.series[i].kind, Kind::Counter { .. }) {
                    assert!(b >= a, "counter went down: {a} -> {b}");
                }
            }
            prev = now;
        }
    }

    #[test]
    fn varint_len_matches_encoding() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
