//! The HTTP client of the commands that talk to a running server (`tsdb snapshot`,
//! `export`, `import`): where the server is (`--url`, `TSDB_URL`), how to trust it
//! (`--ca-cert` for a private CA on `https://`), and who we are (a bearer token from
//! `--token-file` or `TSDB_TOKEN`, never from the command line, where `ps` shows it).
//!
//! Built on ureq (blocking, rustls): a command makes a handful of sequential requests,
//! so the server's runtime has nothing to offer here.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::config::tools::{DEFAULT_URL, ServerArgs, TOKEN_ENV, URL_ENV};

/// How long to wait for the TCP (and TLS) connection; the requests themselves may run
/// as long as the server streams.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error answer read to show it.
const ERROR_BODY_BYTES_MAX: u64 = 1 << 20;

/// Why a request did not succeed; each maps to an exit status.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error status; its Prometheus error text (exit 1).
    Refused { status: u16, message: String },
    /// No answer: connection, TLS or protocol failure (exit 2).
    Transport(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Refused { status, message } => {
                write!(f, "the server answered {status}: {message}")
            }
            ClientError::Transport(m) => f.write_str(m),
        }
    }
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused { .. } => crate::EXIT_BAD,
            ClientError::Transport(_) => crate::EXIT_ERROR,
        }
    }
}

/// A configured connection to one server.
pub struct Client {
    agent: ureq::Agent,
    /// The URL without a trailing slash; paths are appended to it.
    base: String,
    token: Option<String>,
}

impl Client {
    /// Reads the flags and `TSDB_URL`/`TSDB_TOKEN`; an error is a usage error (exit 2).
    pub fn new(args: &ServerArgs) -> Result<Client, String> {
        let url = match &args.url {
            Some(u) => u.clone(),
            None => std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned()),
        };
        let base = url.trim_end_matches('/').to_owned();
        let https = base.starts_with("https://");
        if !https && !base.starts_with("http://") {
            return Err(format!(
                "--url {url:?}: must start with http:// or https://"
            ));
        }
        let token = match &args.token_file {
            Some(path) => Some(read_token(path)?),
            None => match std::env::var(TOKEN_ENV) {
                Ok(t) if t.trim().is_empty() => return Err(format!("{TOKEN_ENV} is empty")),
                Ok(t) => Some(t.trim().to_owned()),
                Err(_) => None,
            },
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT));
        if let Some(ca) = &args.ca_cert {
            if !https {
                return Err(format!("--ca-cert needs an https:// URL, not {url:?}"));
            }
            let certs = read_ca(ca)?;
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Client {
            agent: config.build().into(),
            base,
            token,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// POSTs `body` to `path_query` and returns the success answer's body.
    pub fn post(
        &self,
        path_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path_query}", self.base);
        let mut req = self.agent.post(&url).header("Content-Type", content_type);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req
            .send(body)
            .map_err(|e| ClientError::Transport(format!("POST {url}: {e}")))?;
        let mut reader = checked(resp)?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|e| ClientError::Transport(format!("POST {url}: reading the answer: {e}")))?;
        Ok(out)
    }

    /// GETs `path_query` and returns the success answer's body as a stream.
    pub fn get(&self, path_query: &str) -> Result<impl Read + use<>, ClientError> {
        let url = format!("{}{path_query}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req
            .call()
            .map_err(|e| ClientError::Transport(format!("GET {url}: {e}")))?;
        checked(resp)
    }

    /// GETs a JSON API route and returns its `data`.
    pub fn get_data(&self, path_query: &str) -> Result<serde_json::Value, ClientError> {
        let mut body = Vec::new();
        self.get(path_query)?
            .take(ERROR_BODY_BYTES_MAX)
            .read_to_end(&mut body)
            .map_err(|e| ClientError::Transport(format!("GET {path_query}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ClientError::Transport(format!("GET {path_query}: not a JSON answer: {e}"))
        })?;
        Ok(v["data"].clone())
    }
}

/// The body of a 2xx answer, or the server's error.
fn checked(
    resp: ureq::http::Response<ureq::Body>,
) -> Result<ureq::BodyReader<'static>, ClientError> {
    let status = resp.status().as_u16();
    let mut reader = resp.into_body().into_reader();
    if (200..300).contains(&status) {
        return Ok(reader);
    }
    let mut body = Vec::new();
    let _ = (&mut reader)
        .take(ERROR_BODY_BYTES_MAX)
        .read_to_end(&mut body);
    Err(ClientError::Refused {
        status,
        message: error_message(&body),
    })
}

/// Prometheus' `{"status":"error","errorType":…,"error":…}` as `errorType: error`, or
/// the body's text when it is not that shape.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(e) = v["error"].as_str()
    {
        return match v["errorType"].as_str() {
            Some(t) => format!("{t}: {e}"),
            None => e.to_owned(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.to_owned()
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "--token-file {}: the file is empty",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

fn read_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("--ca-cert {}: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_reads_prometheus_errors_and_plain_text() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"no such route"}"#;
        assert_eq!(error_message(body), "bad_data: no such route");
        assert_eq!(error_message(b"  Not Found\n"), "Not Found");
        assert_eq!(error_message(b""), "(no message)");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value(r#"up{job="a b"}"#),
            "up%7Bjob%3D%22a%20b%22%7D"
        );
    }
}
