//! One HTTP server per core: the accept loop on this core's SO_REUSEPORT listener,
//! hyper connections on monoio, and the per-request parse → route → answer.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response};
use monoio::io::IntoPollIo;
use monoio_compat::hyper::{MonoioIo, MonoioTimer};
use tsdb_engine::mesh::Mesh;
use tsdb_engine::promql::QueryOptions;

use crate::http::{Body, error_response};
use crate::routes;
use crate::wire::IngestLimits;

/// What every request handler on a core can reach.
#[derive(Debug)]
pub struct Ctx {
    pub core: usize,
    pub mesh: Mesh,
    /// Shards that have finished WAL replay; the server is ready when all have.
    pub shards_ready: Arc<AtomicUsize>,
    pub limits: IngestLimits,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// Bounds of every PromQL query; a request's `timeout` can only shorten it.
    /// `max_samples` also bounds the samples of one remote read.
    pub query: QueryOptions,
    /// What the status routes report; the same for every core.
    pub info: Arc<ServerInfo>,
}

/// Facts about this server process for `/api/v1/status/*`, fixed at start.
#[derive(Debug, Default)]
pub struct ServerInfo {
    /// When the server started, unix milliseconds (also its `lastConfigTime`: the
    /// configuration is read once, at start).
    pub start_time_ms: i64,
    /// The working directory at start.
    pub cwd: String,
    /// Retention as Prometheus words it, e.g. `30d`.
    pub storage_retention: String,
    /// Every option of `tsdb start` by flag name (no dashes) and its effective value,
    /// whether it came from a flag, the environment, the file or the default.
    pub flags: Vec<(String, String)>,
    /// The same values by YAML key (`storage.retention`), for `/api/v1/status/config`;
    /// options that have no YAML key (`config`) are left out.
    pub config: Vec<(String, String)>,
}

impl Ctx {
    pub fn ready(&self) -> bool {
        self.shards_ready.load(Ordering::Acquire) >= self.mesh.shards()
    }
}

/// Accepts connections until the runtime stops; each connection is its own task on
/// this core.
pub async fn serve(listener: monoio::net::TcpListener, ctx: Rc<Ctx>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(core = ctx.core, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = match stream.into_poll_io() {
            Ok(s) => MonoioIo::new(s),
            Err(e) => {
                tracing::warn!(core = ctx.core, error = %e, "connection setup failed");
                continue;
            }
        };
        let ctx = ctx.clone();
        monoio::spawn(async move {
            let svc_ctx = ctx.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let ctx = svc_ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(ctx, req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(MonoioTimer)
                .header_read_timeout(ctx.read_timeout)
                .keep_alive(true)
                .serve_connection(io, service);
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn handle(
    ctx: Rc<Ctx>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match routes::route(&ctx, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(method = %method, path = %path, peer = %peer, status = e.status.as_u16(), error = %e.message, "request failed");
            } else {
                tracing::info!(method = %method, path = %path, peer = %peer, status = e.status.as_u16(), error = %e.message, "request refused");
            }
            error_response(&e)
        }
    };
    tracing::debug!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}
