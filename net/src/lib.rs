//! tsdb-net: the HTTP side of tsdb. One hyper server per core, the routes, and the
//! wire formats (remote_write, remote read, Influx line protocol, JSON lines, text
//! exposition), and Prometheus' JSON rendering.
//!
//! **Architecture Invariant:** net never opens a file; everything on disk goes through
//! `tsdb-engine`.

pub mod auth;
pub mod fuzz;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod pprof;
pub mod ratelimit;
pub mod render;
pub mod routes;
pub mod security;
pub mod server;
pub mod tls;
pub mod wire;
