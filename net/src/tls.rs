//! TLS for the HTTP server: the rustls server configuration read from a PEM
//! certificate chain and private key (`--tls-cert`, `--tls-key`).
//!
//! rustls runs with its `ring` provider, TLS 1.2 and 1.3, and offers ALPN `http/1.1`
//! only (the server speaks HTTP/1.1). The handshake itself is driven by `tokio-rustls`
//! over monoio's poll-based stream (`monoio::io::poll_io` is tokio's I/O traits), then
//! hyper reads the decrypted stream through `MonoioIo`: see `server::serve`. The
//! files are read by the binary (net opens no file), which hands their bytes here.

use std::sync::Arc;

pub use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The rustls server configuration of `cert_pem` (a PEM chain, leaf first) and
/// `key_pem` (a PEM PKCS#8, PKCS#1 RSA or SEC1 EC key), as read from their files by
/// the caller (net opens no file). The error says which of the two is wrong and how,
/// in one line, for the caller to prefix with the file's name.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Cert(
            "no certificate in the file (expected PEM \"BEGIN CERTIFICATE\" blocks)".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        TlsError::Key(format!(
            "no PEM private key (PKCS#8, RSA or EC) in the file: {e}"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Pair(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            TlsError::Pair(format!(
                "the certificate and key do not make a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why a certificate and key were refused, by the file at fault.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate file.
    Cert(String),
    /// The key file.
    Key(String),
    /// Both files parse, but do not go together.
    Pair(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_naming_the_file_at_fault() {
        let err = server_config(b"not a pem file\n", b"").unwrap_err();
        assert!(
            matches!(&err, TlsError::Cert(m) if m.contains("no certificate")),
            "{err:?}"
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let err = server_config(cert.pem().as_bytes(), b"junk").unwrap_err();
        assert!(matches!(err, TlsError::Key(_)), "{err:?}");
    }

    #[test]
    fn a_generated_pair_loads_and_offers_http11() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = server_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

        // A key that is not the certificate's is refused.
        let other = rcgen::KeyPair::generate().unwrap();
        let err =
            server_config(cert.pem().as_bytes(), other.serialize_pem().as_bytes()).unwrap_err();
        assert!(
            matches!(&err, TlsError::Pair(m) if m.contains("do not make a usable pair")),
            "{err:?}"
        );
    }
}
