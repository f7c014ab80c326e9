//! tsdb-net: the HTTP side of tsdb. One hyper server per core, the routes, and the
//! wire formats (remote_write, Influx line protocol, JSON lines, text exposition).
//!
//! **Architecture Invariant:** net never opens a file; everything on disk goes through
//! `tsdb-engine`.

pub mod http;
pub mod params;
pub mod routes;
pub mod server;
pub mod wire;
