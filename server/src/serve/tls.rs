//! TLS: the certificate and key from `--tls-cert` / `--tls-key`, rustls
//! with the ring provider, ALPN `h2` then `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use super::ServeConfig;

/// ALPN id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why TLS could not be set up; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain in {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("{path} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCert { path: String },
    #[error(
        "cannot read the private key in {path}: {reason} (expected PEM PKCS#8, PKCS#1 or SEC1)"
    )]
    Key { path: String, reason: String },
    #[error("the key in {key} does not fit the certificate in {cert}: {reason}")]
    Mismatch {
        cert: String,
        key: String,
        reason: String,
    },
}

/// The acceptors of a TLS listener.
#[derive(Clone)]
pub struct Tls {
    /// For admitted connections: ALPN h2 and http/1.1.
    pub accept: TlsAcceptor,
    /// For refused connections: ALPN http/1.1 only, so the refusal is one
    /// plain HTTP/1.1 response whatever the client prefers.
    pub refuse: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// The acceptors for `config`, or `None` without `--tls-cert`.
pub fn load(config: &ServeConfig) -> Result<Option<Tls>, TlsError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let build = |alpn: &[&[u8]]| -> Result<TlsAcceptor, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| mismatch(cert, key, &e))?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key_der.clone_key())
            .map_err(|e| mismatch(cert, key, &e))?;
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(server)))
    };
    Ok(Some(Tls {
        accept: build(&[ALPN_H2, ALPN_HTTP11])?,
        refuse: build(&[ALPN_HTTP11])?,
    }))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert { path: shown });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn mismatch(cert: &Path, key: &Path, e: &rustls::Error) -> TlsError {
    TlsError::Mismatch {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        reason: e.to_string(),
    }
}
