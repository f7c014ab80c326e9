//! A recording HTTP/1.1 proxy for remote read, between a Prometheus and tsdb: it
//! decodes each `ReadRequest` to note the `accepted_response_types` the client sent,
//! optionally rewrites them, and forwards the request. Only what Prometheus' remote
//! read client sends is understood: `POST` with `Content-Length`, keep-alive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: a failed step should fail the test loudly"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use prost::Message;

/// `prometheus.ReadRequest`, with each query kept as its encoded bytes so a rewrite
/// changes nothing else.
#[derive(Clone, PartialEq, prost::Message)]
struct ReadRequest {
    #[prost(bytes = "vec", repeated, tag = "1")]
    queries: Vec<Vec<u8>>,
    #[prost(int32, repeated, tag = "2")]
    accepted_response_types: Vec<i32>,
}

/// `ReadRequest.ResponseType.SAMPLES`.
pub const SAMPLES: i32 = 0;

/// What the proxy does to `accepted_response_types`.
#[derive(Clone, Copy, Debug)]
pub enum Rewrite {
    /// Forward as received.
    None,
    /// Replace with `[SAMPLES]`.
    SamplesOnly,
}

pub struct ReadProxy {
    pub addr: String,
    requests: Arc<Mutex<Vec<Vec<i32>>>>,
}

impl ReadProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream` (`host:port`). The accept
    /// thread lives as long as the test process; it holds no child process.
    pub fn start(upstream: &str, rewrite: Rewrite) -> ReadProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let upstream = format!("http://{upstream}/api/v1/read");
        {
            let requests = requests.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().map_while(Result::ok) {
                    let requests = requests.clone();
                    let upstream = upstream.clone();
                    std::thread::spawn(move || serve(conn, &upstream, rewrite, &requests));
                }
            });
        }
        ReadProxy { addr, requests }
    }

    /// `accepted_response_types` of every request so far, as received.
    pub fn requests(&self) -> Vec<Vec<i32>> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, upstream: &str, rewrite: Rewrite, requests: &Mutex<Vec<Vec<i32>>>) {
    let agent = crate::common::agent();
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut headers = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return; // the client closed the connection
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            headers.push(l.to_string());
        }
        let header = |name: &str| {
            headers.iter().skip(1).find_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let mut req = ReadRequest::decode(raw.as_slice()).unwrap();
        requests
            .lock()
            .unwrap()
            .push(req.accepted_response_types.clone());
        if let Rewrite::SamplesOnly = rewrite {
            req.accepted_response_types = vec![SAMPLES];
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let mut r = agent
            .post(upstream)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .send(&body[..])
            .expect("forward remote read");
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let encoding = r
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("Content-Encoding: {v}\r\n"))
            .unwrap_or_default();
        let resp = r
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("OK"),
            resp.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&resp).is_err() {
            return;
        }
    }
}
