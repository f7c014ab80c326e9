//! One HTTP server per core: the accept loop on this core's SO_REUSEPORT listener,
//! hyper connections on monoio, and the per-request parse → route → answer.
//!
//! Connections beyond `server.max_connections` are answered 503 and closed; a request
//! head slower than `server.read_timeout` closes its connection; requests beyond
//! [`INFLIGHT_REQUESTS_PER_CORE_MAX`] are answered 503. Each is counted in
//! `tsdb_limit_hits_total`, as is every limit a handler reports in its error.
//!
//! With `--tls-cert`, each connection first completes a TLS handshake (bounded by
//! `server.read_timeout`) with the configuration current when it was accepted. Every
//! request then passes [`admit`] before it is routed: authentication and the role the
//! route needs (`--auth-file`), then the per-client rate limit. Admin actions and
//! refused credentials are logged here, centrally, as audit lines (`audit = true`).

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, IntoPollIo};
use monoio_compat::hyper::{MonoioIo, MonoioTimer};
use tsdb_engine::mesh::Mesh;
use tsdb_engine::promql::QueryOptions;

use crate::auth::{self, AuthFailure, Identity};
use crate::http::{ApiError, Body, error_response};
use crate::limits::{
    Charge, INFLIGHT_REQUESTS_PER_CORE_MAX, Limit, REFUSED_CONNECTION_LINGER,
    SHED_RETRY_AFTER_SECONDS,
};
use crate::metrics::{CoreMetrics, Metrics, QueryRoute};
use crate::ratelimit::Throttled;
use crate::render;
use crate::routes;
use crate::security::CoreSecurity;
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
    /// Every core's counters; this core adds only to its own block.
    pub metrics: Arc<Metrics>,
    /// Where the metrics are served; `None` when `metrics.enabled` is false.
    pub metrics_path: Option<String>,
    /// Open connections allowed across the process (`server.max_connections`).
    pub max_connections: u64,
    /// Request body bytes this core may hold at once (`limits.max_inflight_body_size`
    /// divided among the cores).
    pub inflight_body_bytes_max: u64,
    /// Series the heads may hold (`limits.max_series`); 0 means no bound.
    pub series_max: u64,
    /// The profilers of `/debug/pprof/*`; the same for every core.
    pub pprof: Arc<crate::pprof::Profilers>,
    /// TLS, credentials and the client rate limit: this core's view of them.
    pub security: CoreSecurity,
}

/// Facts about this server process for `/api/v1/status/*`, fixed at start but for
/// the retention, which `POST /api/v1/admin/retention` changes.
#[derive(Debug)]
pub struct ServerInfo {
    /// When the server started, unix milliseconds (also its `lastConfigTime`: the
    /// configuration is read once, at start).
    pub start_time_ms: i64,
    /// The working directory at start.
    pub cwd: String,
    /// Retention, live.
    pub retention: Retention,
    /// Every option of `tsdb start` by flag name (no dashes) and its effective value,
    /// whether it came from a flag, the environment, the file or the default.
    pub flags: Vec<(String, String)>,
    /// The same values by YAML key (`storage.retention`), for `/api/v1/status/config`;
    /// options that have no YAML key (`config`) are left out.
    pub config: Vec<(String, String)>,
}

/// The retention in force: the configured one until `POST /api/v1/admin/retention`
/// changes it (not persisted: a restart goes back to the configured value). Parsed and
/// printed by the configuration's own duration functions, handed in by the binary, so
/// the route takes exactly the syntax of `--retention`.
#[derive(Debug)]
pub struct Retention {
    ms: std::sync::atomic::AtomicU64,
    parse: fn(&str) -> Result<Duration, String>,
    format: fn(Duration) -> String,
}

impl Retention {
    pub fn new(
        initial: Duration,
        parse: fn(&str) -> Result<Duration, String>,
        format: fn(Duration) -> String,
    ) -> Retention {
        Retention {
            ms: u64::try_from(initial.as_millis())
                .unwrap_or(u64::MAX)
                .into(),
            parse,
            format,
        }
    }

    pub fn get(&self) -> Duration {
        Duration::from_millis(self.ms.load(Ordering::Acquire))
    }

    /// Sets a new retention; returns the one it replaced.
    pub fn swap(&self, new: Duration) -> Duration {
        let ms = u64::try_from(new.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.ms.swap(ms, Ordering::AcqRel))
    }

    pub fn parse(&self, s: &str) -> Result<Duration, String> {
        (self.parse)(s)
    }

    /// As Prometheus words it, e.g. `30d`.
    pub fn format(&self, d: Duration) -> String {
        (self.format)(d)
    }

    /// The retention in force, worded.
    pub fn current(&self) -> String {
        self.format(self.get())
    }
}

impl Ctx {
    pub fn ready(&self) -> bool {
        self.shards_ready.load(Ordering::Acquire) >= self.mesh.shards()
    }

    /// This core's counters.
    pub fn core_metrics(&self) -> &CoreMetrics {
        self.metrics.core(self.core)
    }

    /// A charge of nothing against this core's body byte budget, for one request.
    pub fn charge(&self) -> Charge<'_> {
        Charge::new(
            &self.core_metrics().inflight_bytes,
            self.inflight_body_bytes_max,
        )
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
        // The configuration current now serves this connection to its end; a reload
        // (SIGHUP) is seen by the connections accepted after it.
        let tls = ctx.security.tls();
        if !ctx.metrics.open_connection(ctx.max_connections) {
            ctx.core_metrics().limit_hit(Limit::Connections);
            // Over TLS a plain-text answer would be noise to the client, and a
            // handshake is the very work the limit sheds: the connection is closed.
            if tls.is_none() {
                monoio::spawn(refuse_connection(stream, ctx.clone()));
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let io = match stream.into_poll_io() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(core = ctx.core, error = %e, "connection setup failed");
                ctx.metrics.close_connection();
                continue;
            }
        };
        ctx.core_metrics()
            .connections
            .fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        monoio::spawn(async move {
            match tls {
                None => serve_connection(&ctx, MonoioIo::new(io), peer).await,
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    // Bounded like a request head: a client that opens connections
                    // and never finishes the handshake must not hold them (slowloris).
                    match monoio::time::timeout(ctx.read_timeout, acceptor.accept(io)).await {
                        Ok(Ok(stream)) => serve_connection(&ctx, MonoioIo::new(stream), peer).await,
                        Ok(Err(e)) => {
                            ctx.core_metrics().tls_handshake_error();
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            ctx.core_metrics().tls_handshake_error();
                            ctx.core_metrics().limit_hit(Limit::HeaderReadTimeout);
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            ctx.metrics.close_connection();
            ctx.core_metrics()
                .connections
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Serves HTTP/1.1 requests on one connection, plain or TLS, until it closes.
async fn serve_connection<I>(ctx: &Rc<Ctx>, io: I, peer: std::net::SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
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
        if e.is_timeout() {
            ctx.core_metrics().limit_hit(Limit::HeaderReadTimeout);
        }
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// Answers a connection over `server.max_connections` and closes it. The request
/// head is awaited briefly: `/-/healthy` and `/-/ready` are still answered (a probe
/// failing under client load would get a healthy server restarted); anything else,
/// or nothing, gets a 503. Then the socket lingers, reading what the client sends, so
/// that closing does not reset the connection before the client has read the answer.
async fn refuse_connection(mut stream: monoio::net::TcpStream, ctx: Rc<Ctx>) {
    let first =
        monoio::time::timeout(REFUSED_CONNECTION_LINGER, stream.read(vec![0u8; 1024])).await;
    let probe = match &first {
        Ok((Ok(n), buf)) => request_path(buf.get(..*n).unwrap_or_default())
            .and_then(|path| routes::probe(&ctx, path)),
        _ => None,
    };
    let answer = match probe {
        Some((status, body)) => format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => {
            let body = render::error_body(
                "unavailable",
                &format!(
                    "too many open connections: the limit is {} (server.max_connections); retry later",
                    ctx.max_connections
                ),
            );
            format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nretry-after: {SHED_RETRY_AFTER_SECONDS}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let (written, _) = stream.write_all(answer.into_bytes()).await;
    if written.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = vec![0u8; 4096];
        loop {
            let (read, b) = stream.read(buf).await;
            buf = b;
            if !matches!(read, Ok(n) if n > 0) {
                break;
            }
        }
    };
    let _ = monoio::time::timeout(REFUSED_CONNECTION_LINGER, drain).await;
}

/// The path of a `GET` request line at the start of `head`, if it is one.
fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.split('?').next().unwrap_or(target)),
        _ => None,
    }
}

/// Whether a path is exempt from the in-flight request bound: probes and scrapes
/// must answer while the server sheds load.
fn is_probe(ctx: &Ctx, path: &str) -> bool {
    path == "/-/healthy" || path == "/-/ready" || ctx.metrics_path.as_deref() == Some(path)
}

/// Counts a request in flight on this core until dropped.
struct InflightRequest<'a>(&'a CoreMetrics);

impl<'a> InflightRequest<'a> {
    fn begin(core: &'a CoreMetrics) -> Option<Self> {
        let n = core.inflight_requests.load(Ordering::Relaxed);
        if n >= INFLIGHT_REQUESTS_PER_CORE_MAX {
            return None;
        }
        core.inflight_requests.fetch_add(1, Ordering::Relaxed);
        Some(InflightRequest(core))
    }
}

impl Drop for InflightRequest<'_> {
    fn drop(&mut self) {
        self.0.inflight_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(
    ctx: Rc<Ctx>,
    mut req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let admin = auth::is_admin_path(&path);
    let query = if admin {
        req.uri().query().map(str::to_owned)
    } else {
        None
    };
    let admitted = admit(&ctx, &req, &path, peer);
    let who = match &admitted {
        Ok(Some(id)) | Err(Refusal::Throttled(Some(id), _) | Refusal::Auth(_, Some(id))) => {
            Some(id.name.clone())
        }
        _ => None,
    };
    let auth_failure = match &admitted {
        Err(Refusal::Auth(reason, _)) => Some(*reason),
        _ => None,
    };
    let resp = match admitted {
        Err(refusal) => refusal_response(&ctx, &method, &path, peer, refusal),
        Ok(identity) => {
            if let Some(identity) = identity {
                req.extensions_mut().insert(identity);
            }
            // `None`: shed; `Some(None)`: a probe or scrape, which takes no slot.
            let slot = if is_probe(&ctx, &path) {
                Some(None)
            } else {
                InflightRequest::begin(ctx.core_metrics()).map(Some)
            };
            // A shed request is answered (and timed, and counted) like any other.
            match slot {
                None => {
                    let e = ApiError::shed(
                        Limit::InflightRequests,
                        format!(
                            "too many requests in flight on this core (the limit is {INFLIGHT_REQUESTS_PER_CORE_MAX}); retry later"
                        ),
                    );
                    refused(&ctx, &method, &path, peer, &e)
                }
                Some(slot) => {
                    let writes = &ctx.core_metrics().inflight_writes;
                    let ingest = routes::is_ingest(&path);
                    if ingest {
                        writes.fetch_add(1, Ordering::Relaxed);
                    }
                    let resp = match routes::route(&ctx, req).await {
                        Ok(r) => r,
                        Err(e) => refused(&ctx, &method, &path, peer, &e),
                    };
                    drop(slot);
                    if ingest {
                        writes.fetch_sub(1, Ordering::Relaxed);
                    }
                    resp
                }
            }
        }
    };
    let took = started.elapsed();
    if routes::is_ingest(&path) {
        ctx.core_metrics().insert_done(took);
    } else if let Some(route) = QueryRoute::from_path(&path) {
        let failed = resp.status().is_client_error() || resp.status().is_server_error();
        ctx.core_metrics().query_done(route, took, failed);
    }
    if admin || auth_failure.is_some() {
        // The audit trail: who did (or tried) what, from where, and how it ended.
        tracing::info!(
            audit = true,
            user = who.as_deref().unwrap_or("anonymous"),
            method = %method,
            path = %path,
            query = query.as_deref().unwrap_or(""),
            peer = %peer,
            status = resp.status().as_u16(),
            auth_failure = auth_failure.map_or("", AuthFailure::as_str),
            "audit"
        );
    }
    // What the request did, for `jq 'select(.operation == "write")'` at debug level.
    let operation = if routes::is_ingest(&path) {
        "write"
    } else if QueryRoute::from_path(&path).is_some() {
        "query"
    } else if admin {
        "admin"
    } else {
        "read"
    };
    tracing::debug!(
        operation,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        duration_ms = took.as_millis() as u64,
        "request"
    );
    resp
}

/// Why [`admit`] refused a request.
enum Refusal {
    /// No, bad or insufficient credentials (401 or 403); the identity, for a 403.
    Auth(AuthFailure, Option<Identity>),
    /// Over the client rate limit (429); the identity, when auth is on.
    Throttled(Option<Identity>, Throttled),
}

/// The gate in front of every route but the probes: who the request comes from and
/// whether their role may use the route (`--auth-file`), then the client's rate limit
/// (`--rate-limit`), keyed by the identity, or by the peer IP without auth. `Ok(None)`:
/// auth is off or the route is a probe.
fn admit(
    ctx: &Ctx,
    req: &Request<Incoming>,
    path: &str,
    peer: std::net::SocketAddr,
) -> Result<Option<Identity>, Refusal> {
    let Some(needed) = auth::required_role(path, routes::is_ingest(path)) else {
        return Ok(None);
    };
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let identity = match ctx.security.with_auth(|a| a.authenticate(header)) {
        None => None,
        Some(Err(reason)) => return Err(Refusal::Auth(reason, None)),
        Some(Ok(id)) if !id.role.allows(needed) => {
            return Err(Refusal::Auth(AuthFailure::Forbidden, Some(id)));
        }
        Some(Ok(id)) => Some(id),
    };
    if let Some(limiter) = &ctx.security.shared.rate_limit {
        let checked = match &identity {
            Some(id) => limiter.check(&(id.scheme, id.name.as_str())),
            None => limiter.check(&peer.ip()),
        };
        if let Err(throttled) = checked {
            return Err(Refusal::Throttled(identity, throttled));
        }
    }
    Ok(identity)
}

/// The answer to a refused request: 401 with `WWW-Authenticate`, 403, or 429 with
/// `Retry-After`, each counted.
fn refusal_response(
    ctx: &Ctx,
    method: &hyper::Method,
    path: &str,
    peer: std::net::SocketAddr,
    refusal: Refusal,
) -> Response<Body> {
    use hyper::StatusCode;
    use hyper::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
    match refusal {
        Refusal::Auth(reason, _) => {
            ctx.core_metrics().auth_failure(reason);
            if reason == AuthFailure::Forbidden {
                return error_response(&ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("the credentials' role may not use {path}"),
                ));
            }
            let message = match reason {
                AuthFailure::Missing => {
                    "authentication required: send Authorization: Bearer <token> or Basic credentials"
                }
                _ => "invalid credentials",
            };
            let mut resp = error_response(&ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message,
            ));
            for challenge in ["Bearer realm=\"tsdb\"", "Basic realm=\"tsdb\""] {
                resp.headers_mut()
                    .append(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            resp
        }
        Refusal::Throttled(_, throttled) => {
            let seconds = throttled.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let e = ApiError {
                limit: Some(Limit::ClientRate.as_str()),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "unavailable",
                    format!(
                        "too many requests from this client (limits.rate_limit); retry in {seconds}s"
                    ),
                )
            };
            let mut resp = refused(ctx, method, path, peer, &e);
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            resp
        }
    }
}

/// Counts, logs and renders a refused request. Server errors are logged as errors,
/// except load shed (a limit, counted) and writes refused by a read-only shard (whose
/// cause the shard logged once): those would otherwise log once per request.
fn refused(
    ctx: &Ctx,
    method: &hyper::Method,
    path: &str,
    peer: std::net::SocketAddr,
    e: &ApiError,
) -> Response<Body> {
    let metrics = ctx.core_metrics();
    if let Some(name) = e.limit {
        match Limit::from_name(name) {
            Some(limit) => metrics.limit_hit(limit),
            None => tracing::error!(limit = name, "BUG: a limit missing from limits::Limit"),
        }
    }
    if routes::is_ingest(path) {
        metrics.insert_error(e.insert_error());
    }
    let status = e.status.as_u16();
    if e.status.is_server_error() && e.limit.is_none() && e.read_only.is_none() {
        tracing::error!(method = %method, path = %path, peer = %peer, status, error = %e.message, "request failed");
    } else if e.status.is_server_error() {
        tracing::debug!(method = %method, path = %path, peer = %peer, status, error = %e.message, "request refused");
    } else {
        tracing::info!(method = %method, path = %path, peer = %peer, status, error = %e.message, "request refused");
    }
    error_response(e)
}
