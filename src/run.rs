//! `tsdb start`: one pinned monoio executor per shard, each with its own
//! SO_REUSEPORT listener, wired together by the mesh; signals handled on the main
//! thread.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use tsdb_engine::limits::SHARD_INBOX_CAPACITY;
use tsdb_engine::mesh::{Mesh, ShardRequest};
use tsdb_engine::promql::QueryOptions;
use tsdb_engine::shard::{Shard, ShardConfig, Shared, migrate_wal, prepare_data_dir};
use tsdb_engine::storage::{DiskStorage, Storage};
use tsdb_engine::wal::SyncMode;
use tsdb_net::metrics::Metrics;
use tsdb_net::security::CoreSecurity;
use tsdb_net::server::{Ctx, Retention, ServerInfo, serve};
use tsdb_net::wire::IngestLimits;

use crate::config::{Config, IoDriver, WalSync, format_duration};
use crate::security::Guards;

/// How long shutdown waits for shards to sync their WAL before giving up.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept for everything but client connections: listeners, WAL
/// segments, block files, the io_uring rings, the log.
const NON_CONNECTION_FDS: u64 = 1024;

/// What the main thread waits for.
enum Event {
    Signal(Signal),
    Fatal(String),
}

pub fn run(cfg: Config) -> ExitCode {
    match start(cfg) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %e, "tsdb failed to start");
            ExitCode::FAILURE
        }
    }
}

fn start(cfg: Config) -> Result<ExitCode, String> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen_addr = %cfg.listen,
        data_dir = %cfg.data_dir.display(),
        wal_dir = %cfg.wal_dir.display(),
        shards = cfg.shards,
        retention = %format_duration(cfg.retention),
        memtable_size = cfg.memtable_size_bytes,
        wal_enabled = cfg.wal_enabled,
        wal_sync = %cfg.wal_sync,
        wal_segment_size = cfg.wal_segment_size_bytes,
        compaction_enabled = cfg.compaction_enabled,
        compaction_interval = %format_duration(cfg.compaction_interval),
        "starting TSDB server"
    );
    let driver = choose_driver(cfg.io_driver)?;
    // Durably: a data dir the crash takes away takes everything synced into it.
    DiskStorage
        .create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("create data dir {}: {e}", cfg.data_dir.display()))?;
    let _lock = lock_data_dir(&cfg.data_dir).map_err(|e| e.to_string())?;
    prepare_data_dir(&cfg.data_dir).map_err(|e| e.to_string())?;
    if cfg.wal_enabled {
        let shards = u32::try_from(cfg.shards).unwrap_or(u32::MAX);
        migrate_wal(&cfg.data_dir, &cfg.wal_dir, shards).map_err(|e| e.to_string())?;
    }
    raise_open_files_limit(cfg.max_connections);
    // Before anything runs: a certificate or auth file that cannot be used refuses
    // the start, naming the file.
    let guards = Guards::load(&cfg)?;

    // Signals are blocked before any thread starts so every thread inherits the mask
    // and only the signal thread below ever receives them.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("block signals: {e}"))?;

    let listeners = bind_listeners(cfg.listen_addr, cfg.shards)?;
    let local = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .ok_or("no listener")?;

    let (events_tx, events_rx) = flume::unbounded::<Event>();
    {
        let tx = events_tx.clone();
        std::thread::Builder::new()
            .name("tsdb-signals".into())
            .spawn(move || {
                loop {
                    match signals.wait() {
                        Ok(sig) => {
                            if tx.send(Event::Signal(sig)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Event::Fatal(format!("waiting for signals: {e}")));
                            break;
                        }
                    }
                }
            })
            .map_err(|e| format!("spawn signal thread: {e}"))?;
    }

    let mut senders = Vec::with_capacity(cfg.shards);
    let mut inboxes = Vec::with_capacity(cfg.shards);
    for _ in 0..cfg.shards {
        let (tx, rx) = flume::bounded::<ShardRequest>(SHARD_INBOX_CAPACITY);
        senders.push(tx);
        inboxes.push(rx);
    }
    let mesh = Mesh::new(senders);
    let ready = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        head_series_max: cfg.max_series as u64,
        ..Shared::default()
    });
    let info = Arc::new(server_info(&cfg));
    let metrics = Arc::new(Metrics::with_process(
        cfg.shards,
        crate::process::source(info.start_time_ms as f64 / 1000.0),
    ));
    let pprof = Arc::new(crate::profile::profilers());
    let cpus = online_cpus();
    let mut threads = Vec::with_capacity(cfg.shards);
    for (i, (inbox, listener)) in inboxes.into_iter().zip(listeners).enumerate() {
        let shard_cfg = shard_config(&cfg, i);
        let ctx = Ctx {
            core: i,
            mesh: mesh.clone(),
            shards_ready: ready.clone(),
            limits: ingest_limits(&cfg),
            max_body_bytes: usize::try_from(cfg.max_body_bytes).unwrap_or(usize::MAX),
            read_timeout: cfg.read_timeout,
            write_timeout: cfg.write_timeout,
            query: QueryOptions {
                lookback_delta_ms: i64::try_from(cfg.query_lookback_delta.as_millis())
                    .unwrap_or(i64::MAX),
                max_samples: cfg.query_max_samples,
                max_regex_matchers: cfg.query_max_regex_matchers,
                timeout: cfg.query_timeout,
            },
            info: info.clone(),
            metrics: metrics.clone(),
            metrics_path: cfg.metrics_enabled.then(|| cfg.metrics_path.clone()),
            max_connections: cfg.max_connections as u64,
            inflight_body_bytes_max: cfg.max_inflight_body_bytes,
            series_max: cfg.max_series as u64,
            pprof: pprof.clone(),
            security: CoreSecurity::new(guards.security.clone()),
        };
        let shared = shared.clone();
        let ready = ready.clone();
        let events = events_tx.clone();
        let cpu = cpus.get(i % cpus.len().max(1)).copied();
        let t = std::thread::Builder::new()
            .name(format!("tsdb-shard-{i}"))
            .spawn(move || {
                shard_thread(
                    i, cpu, listener, ctx, shard_cfg, shared, inbox, ready, events, driver,
                )
            })
            .map_err(|e| format!("spawn shard thread {i}: {e}"))?;
        threads.push(t);
    }
    tracing::info!(address = %local, shards = cfg.shards, "listening");

    let code = loop {
        match events_rx.recv() {
            Ok(Event::Signal(Signal::SIGHUP)) => guards.reload(),
            Ok(Event::Signal(sig)) => {
                tracing::info!(signal = %sig, "shutting down: syncing WAL");
                break shutdown(&mesh, threads);
            }
            Ok(Event::Fatal(e)) => {
                tracing::error!(error = %e, "fatal error: exiting");
                break ExitCode::FAILURE;
            }
            Err(_) => break ExitCode::FAILURE,
        }
    };
    Ok(code)
}

/// Asks every shard to sync and stop, and waits (bounded) for their threads.
fn shutdown(mesh: &Mesh, threads: Vec<std::thread::JoinHandle<()>>) -> ExitCode {
    let mesh = mesh.clone();
    let (done_tx, done_rx) = flume::bounded(1);
    std::thread::spawn(move || {
        let results = mesh.shutdown_blocking();
        for t in threads {
            let _ = t.join();
        }
        let _ = done_tx.send(results);
    });
    match done_rx.recv_timeout(SHUTDOWN_TIMEOUT) {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count();
            if failed == 0 {
                tracing::info!("shutdown complete");
                ExitCode::SUCCESS
            } else {
                tracing::error!(
                    shards_failed = failed,
                    "shutdown: some shards failed to sync their WAL"
                );
                ExitCode::FAILURE
            }
        }
        Err(_) => {
            tracing::error!(timeout_s = SHUTDOWN_TIMEOUT.as_secs(), "shutdown timed out");
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the thread's whole world, moved in once"
)]
fn shard_thread(
    i: usize,
    cpu: Option<usize>,
    listener: std::net::TcpListener,
    ctx: Ctx,
    shard_cfg: ShardConfig,
    shared: Arc<Shared>,
    inbox: flume::Receiver<ShardRequest>,
    ready: Arc<AtomicUsize>,
    events: flume::Sender<Event>,
    driver: Driver,
) {
    if let Some(cpu) = cpu {
        pin_to_cpu(i, cpu);
    }
    let mut runtime = match build_runtime(driver) {
        Ok(r) => r,
        Err(e) => {
            let _ = events.send(Event::Fatal(format!("shard {i}: start runtime: {e}")));
            return;
        }
    };
    let driver = match &runtime {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    };
    tracing::debug!(shard = i, driver, "shard runtime started");
    runtime.block_on(async move {
        let listener = match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = events.send(Event::Fatal(format!("shard {i}: listener: {e}")));
                return;
            }
        };
        monoio::spawn(serve(listener, Rc::new(ctx)));
        match Shard::open(shard_cfg, shared).await {
            Ok(shard) => {
                ready.fetch_add(1, Ordering::AcqRel);
                shard.run(inbox).await;
            }
            Err(e) => {
                let _ = events.send(Event::Fatal(format!("shard {i}: open: {e}")));
            }
        }
    });
}

type ShardRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// The I/O driver every shard runs, chosen once before any starts.
#[derive(Clone, Copy, Debug)]
enum Driver {
    IoUring,
    Epoll,
}

/// Probes io_uring (`host::probe_io_uring`) and picks the driver `--io-driver` asks
/// for, logging one line that names it: `auto` falls back to epoll with a warning
/// giving the reason and the fix, `io-uring` refuses to start without it.
fn choose_driver(requested: IoDriver) -> Result<Driver, String> {
    if matches!(requested, IoDriver::Epoll) {
        tracing::info!(driver = "epoll", requested = %requested, "I/O driver");
        return Ok(Driver::Epoll);
    }
    match (crate::host::probe_io_uring(), requested) {
        (Ok(()), _) => {
            tracing::info!(driver = "io_uring", requested = %requested, "I/O driver");
            Ok(Driver::IoUring)
        }
        (Err(u), IoDriver::IoUring) => Err(format!(
            "io_uring is unavailable and --io-driver=io-uring requires it: {}; {} (or start with --io-driver=auto or epoll)",
            u.reason, u.advice
        )),
        (Err(u), _) => {
            tracing::warn!(
                driver = "epoll",
                requested = %requested,
                reason = %u.reason,
                advice = %u.advice,
                "io_uring unavailable: using the epoll fallback"
            );
            Ok(Driver::Epoll)
        }
    }
}

/// Builds a shard's executor with the driver [`choose_driver`] picked.
fn build_runtime(driver: Driver) -> Result<ShardRuntime, String> {
    match driver {
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .with_entries(crate::host::RING_ENTRIES)
            .build()
            .map(monoio::FusionRuntime::Uring)
            .map_err(|e| format!("io_uring: {e}")),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(monoio::FusionRuntime::Legacy)
            .map_err(|e| e.to_string()),
    }
}

/// Raises the soft limit on open files to the hard limit: every connection is a file
/// descriptor, and the usual soft limit (1024) would refuse connections long before
/// `max_connections`. Says so when even the hard limit is too low for it.
fn raise_open_files_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open files limit");
            return;
        }
    };
    let mut limit = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => limit = hard,
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open files limit"),
        }
    }
    let needed = (max_connections as u64).saturating_add(NON_CONNECTION_FDS);
    if limit < needed {
        tracing::warn!(
            open_files_limit = limit,
            max_connections,
            "the open files limit is below max_connections plus what storage needs; raise LimitNOFILE (ulimit -n) or lower --max-connections"
        );
    } else {
        tracing::info!(
            open_files_limit = limit,
            max_connections,
            "open files limit"
        );
    }
}

fn pin_to_cpu(shard: usize, cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    let pinned = set
        .set(cpu)
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    if let Err(e) = pinned {
        tracing::warn!(shard, cpu, error = %e, "could not pin shard thread to its CPU");
    }
}

/// The CPUs this process may run on, in order.
fn online_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Binds one SO_REUSEPORT listener per shard on the same address. The first binds the
/// configured address (port 0 picks a free port); the rest bind the address it got.
fn bind_listeners(addr: SocketAddr, n: usize) -> Result<Vec<std::net::TcpListener>, String> {
    let mut out = Vec::with_capacity(n);
    let mut target = addr;
    for i in 0..n {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(target),
            socket2::Type::STREAM,
            None,
        )
        .map_err(|e| format!("create socket: {e}"))?;
        socket
            .set_reuse_address(true)
            .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
        socket
            .set_reuse_port(true)
            .map_err(|e| format!("SO_REUSEPORT: {e}"))?;
        socket
            .bind(&target.into())
            .map_err(|e| format!("bind {target}: {e}"))?;
        socket
            .listen(1024)
            .map_err(|e| format!("listen on {target}: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("set nonblocking: {e}"))?;
        let l: std::net::TcpListener = socket.into();
        if i == 0 {
            target = l.local_addr().map_err(|e| format!("local address: {e}"))?;
        }
        out.push(l);
    }
    Ok(out)
}

/// Takes an exclusive lock on `<data-dir>/lock` so two servers (or a server and
/// `tsdb compact`) never share a data dir.
pub fn lock_data_dir(data_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, LockError> {
    let path = data_dir.join(tsdb_engine::layout::LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LockError::Io(format!("open {}: {e}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        LockError::InUse(format!(
            "data dir {} is in use by another tsdb process (lock {}: {e})",
            data_dir.display(),
            path.display()
        ))
    })
}

/// Why [`lock_data_dir`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock.
    InUse(String),
    /// The lock file could not be opened.
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::InUse(m) | LockError::Io(m) => f.write_str(m),
        }
    }
}

fn shard_config(cfg: &Config, i: usize) -> ShardConfig {
    ShardConfig {
        shard: u32::try_from(i).unwrap_or(u32::MAX),
        shards: u32::try_from(cfg.shards).unwrap_or(u32::MAX),
        data_dir: cfg.data_dir.clone(),
        wal_root: cfg.wal_dir.clone(),
        wal_enabled: cfg.wal_enabled,
        wal_sync: match cfg.wal_sync {
            WalSync::Always => SyncMode::Always,
            WalSync::Interval => SyncMode::Interval,
            WalSync::Never => SyncMode::Never,
        },
        wal_sync_interval: cfg.wal_sync_interval,
        wal_segment_bytes: cfg.wal_segment_size_bytes,
        memtable_bytes: (cfg.memtable_size_bytes / cfg.shards.max(1) as u64).max(1),
        retention_ms: i64::try_from(cfg.retention.as_millis()).unwrap_or(i64::MAX),
        compaction_enabled: cfg.compaction_enabled,
        compaction_interval: cfg.compaction_interval,
        compaction_concurrency: cfg.compaction_concurrency,
    }
}

fn ingest_limits(cfg: &Config) -> IngestLimits {
    IngestLimits {
        series_per_request_max: cfg.max_series_per_request,
        labels_per_series_max: cfg.max_labels_per_series,
        label_name_bytes_max: cfg.max_label_name_bytes,
        label_value_bytes_max: cfg.max_label_value_bytes,
        decoded_body_bytes_max: usize::try_from(cfg.max_body_bytes.saturating_mul(8))
            .unwrap_or(usize::MAX),
    }
}

/// What `/api/v1/status/*` report: start time, working directory, and every option's
/// effective value by flag name (`flags`) and by YAML key (`config`).
fn server_info(cfg: &Config) -> ServerInfo {
    let settings = cfg.effective_values();
    ServerInfo {
        start_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        retention: Retention::new(
            cfg.retention,
            crate::config::parse_duration,
            format_duration,
        ),
        flags: settings
            .iter()
            .map(|(flag, _, v)| ((*flag).to_string(), v.clone()))
            .collect(),
        config: settings
            .iter()
            .filter(|(_, key, _)| !key.is_empty())
            .map(|(_, key, v)| ((*key).to_string(), v.clone()))
            .collect(),
    }
}
