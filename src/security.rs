//! The server's guards read from their files: the TLS certificate and key
//! (`--tls-cert`, `--tls-key`) and the auth file (`--auth-file`), at start and again on
//! SIGHUP. A file that cannot be used refuses the start; on SIGHUP it is logged and the
//! previous one stays in force.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tsdb_net::auth::Auth;
use tsdb_net::ratelimit::RateLimiter;
use tsdb_net::security::{Reloadable, Security};
use tsdb_net::tls::{self, TlsError};

use crate::config::Config;

/// A certificate, key or auth file larger than this is surely not one; refusing it
/// bounds what a mistaken path can make us read.
const FILE_BYTES_MAX: u64 = 1 << 20;

/// The files the guards came from, to re-read on SIGHUP.
#[derive(Debug)]
pub struct Guards {
    pub security: Arc<Security>,
    tls: Option<(PathBuf, PathBuf)>,
    auth_file: Option<PathBuf>,
}

impl Guards {
    /// Reads every file the configuration names; the error names the file at fault.
    pub fn load(cfg: &Config) -> Result<Guards, String> {
        let tls_files = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err("--tls-cert is set but --tls-key is not: set both or neither".into());
            }
            (None, Some(_)) => {
                return Err("--tls-key is set but --tls-cert is not: set both or neither".into());
            }
        };
        let tls = tls_files
            .as_ref()
            .map(|(cert, key)| load_tls(cert, key).map(Reloadable::new))
            .transpose()?;
        let auth = cfg
            .auth_file
            .as_deref()
            .map(|p| load_auth(p).map(|a| Reloadable::new(Arc::new(a))))
            .transpose()?;
        if let Some((cert, _)) = &tls_files {
            tracing::info!(tls_cert = %cert.display(), "serving HTTPS");
        }
        if let (Some(path), Some(auth)) = (&cfg.auth_file, &auth) {
            let (tokens, users) = auth.load().counts();
            tracing::info!(auth_file = %path.display(), tokens, users, "authentication on");
        }
        Ok(Guards {
            security: Arc::new(Security {
                tls,
                auth,
                rate_limit: RateLimiter::new(
                    cfg.rate_limit,
                    if cfg.rate_limit_burst == 0 {
                        cfg.rate_limit
                    } else {
                        cfg.rate_limit_burst
                    },
                ),
            }),
            tls: tls_files,
            auth_file: cfg.auth_file.clone(),
        })
    }

    /// Re-reads the TLS files and the auth file (SIGHUP). What fails to load keeps its
    /// previous value and is logged as an error; new connections (TLS) and requests
    /// (auth) see what loaded.
    pub fn reload(&self) {
        if let (Some((cert, key)), Some(tls)) = (&self.tls, &self.security.tls) {
            match load_tls(cert, key) {
                Ok(config) => {
                    tls.store(config);
                    tracing::info!(
                        operation = "reload",
                        tls_cert = %cert.display(),
                        tls_key = %key.display(),
                        "TLS certificate reloaded"
                    );
                }
                Err(e) => tracing::error!(
                    operation = "reload",
                    error = %e,
                    "TLS certificate reload failed: keeping the previous certificate"
                ),
            }
        }
        if let (Some(path), Some(auth)) = (&self.auth_file, &self.security.auth) {
            match load_auth(path) {
                Ok(a) => {
                    let (tokens, users) = a.counts();
                    auth.store(Arc::new(a));
                    tracing::info!(
                        operation = "reload",
                        auth_file = %path.display(),
                        tokens,
                        users,
                        "auth file reloaded"
                    );
                }
                Err(e) => tracing::error!(
                    operation = "reload",
                    error = %e,
                    "auth file reload failed: keeping the previous credentials"
                ),
            }
        }
        if self.tls.is_none() && self.auth_file.is_none() {
            tracing::info!("SIGHUP received: nothing to reload");
        }
    }
}

fn load_tls(cert: &Path, key: &Path) -> Result<Arc<tls::ServerConfig>, String> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    tls::server_config(&cert_pem, &key_pem).map_err(|e| match e {
        TlsError::Cert(m) => format!("{}: {m}", cert.display()),
        TlsError::Key(m) => format!("{}: {m}", key.display()),
        TlsError::Pair(m) => format!("{} and {}: {m}", cert.display(), key.display()),
    })
}

fn load_auth(path: &Path) -> Result<Auth, String> {
    let bytes = read(path)?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    Auth::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_BYTES_MAX + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(format!(
            "{}: larger than {FILE_BYTES_MAX} bytes; is this the right file?",
            path.display()
        ));
    }
    Ok(bytes)
}
