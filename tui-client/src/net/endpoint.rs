//! Where a server is and how to reach it: its base URL (`http://` or
//! `https://`), the access token every request carries, and the TLS roots
//! (the system's, plus a `--ca-cert` for a self-signed server). Every client
//! (plain HTTP, event streams, WebSockets) builds its connection from here.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// The environment variable (and `--token`) holding the access token.
pub const TOKEN_ENV: &str = "RT_TOKEN";

/// A connector for `http://` and `https://` URLs.
pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A WebSocket as the clients hold it.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why `--ca-cert` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read --ca-cert {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("--ca-cert {0} holds no PEM certificate")]
    Empty(String),
    #[error("--ca-cert {path}: {reason}")]
    Bad { path: String, reason: String },
}

/// A server to talk to. Cloning is cheap.
#[derive(Clone)]
pub struct Endpoint {
    base: String,
    token: Option<Arc<str>>,
    /// `None`: the system's roots (built once per process, on first use).
    tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("custom_ca", &self.tls.is_some())
            .finish()
    }
}

impl From<String> for Endpoint {
    fn from(base: String) -> Endpoint {
        Endpoint::new(base)
    }
}

impl From<&String> for Endpoint {
    fn from(base: &String) -> Endpoint {
        Endpoint::new(base.clone())
    }
}

impl From<&str> for Endpoint {
    fn from(base: &str) -> Endpoint {
        Endpoint::new(base)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(e: &Endpoint) -> Endpoint {
        e.clone()
    }
}

impl Endpoint {
    /// `base` is `http(s)://host[:port]`; a trailing `/` is dropped.
    pub fn new(base: impl Into<String>) -> Endpoint {
        let base: String = base.into();
        Endpoint {
            base: base.trim_end_matches('/').to_string(),
            token: None,
            tls: None,
        }
    }

    /// Sends `token` with every request (an empty one counts as none).
    pub fn with_token(mut self, token: Option<String>) -> Endpoint {
        self.token = token.filter(|t| !t.is_empty()).map(Arc::from);
        self
    }

    /// Trusts the certificates in the PEM file `path` as well as the
    /// system's (a self-signed server's certificate, or its own CA).
    pub fn with_ca_cert(mut self, path: &Path) -> Result<Endpoint, TlsError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| TlsError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut roots = system_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| TlsError::Bad {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| TlsError::Bad {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::Empty(shown));
        }
        self.tls = Some(Arc::new(client_config(roots)));
        Ok(self)
    }

    /// `http(s)://host[:port]`, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The access token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `Bearer TOKEN`, marked sensitive so that it is never logged.
    pub fn authorization(&self) -> Option<HeaderValue> {
        let t = self.token.as_deref()?;
        let mut v = HeaderValue::from_str(&format!("Bearer {t}")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// The page to open in a browser: with `?token=` when there is one (the
    /// server answers with a cookie and drops it from the address bar).
    pub fn browser_url(&self) -> String {
        match self.token() {
            Some(t) => format!(
                "{}/?token={}",
                self.base,
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => format!("{}/", self.base),
        }
    }

    /// The TLS settings (no ALPN: each client sets its own).
    pub fn tls_config(&self) -> Arc<ClientConfig> {
        match &self.tls {
            Some(c) => c.clone(),
            None => default_config(),
        }
    }

    /// A connector for plain and TLS connections, offering HTTP/2 and
    /// HTTP/1.1 over TLS.
    pub fn connector(&self, connect_timeout: Duration) -> HttpsConnector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls_config()).clone())
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http)
    }

    /// The transport for `eventsource-client` streams.
    pub fn sse_transport(
        &self,
        connect_timeout: Duration,
        read_timeout: Option<Duration>,
    ) -> std::io::Result<impl launchdarkly_sdk_transport::HttpTransport> {
        let mut b =
            launchdarkly_sdk_transport::HyperTransport::builder().connect_timeout(connect_timeout);
        if let Some(t) = read_timeout {
            b = b.read_timeout(t);
        }
        b.build_with_connector(self.connector(connect_timeout))
    }

    /// An event stream's client builder for `url`, carrying the token.
    pub fn sse_builder(
        &self,
        url: &str,
    ) -> Result<eventsource_client::ClientBuilder, eventsource_client::Error> {
        let b = eventsource_client::ClientBuilder::for_url(url)?;
        match self.token() {
            Some(t) => b.header("Authorization", &format!("Bearer {t}")),
            None => Ok(b),
        }
    }

    /// Opens a WebSocket to `url` (`ws://` or `wss://`), carrying the token.
    pub async fn ws_connect(
        &self,
        url: &str,
        config: Option<WebSocketConfig>,
    ) -> Result<Socket, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(v) = self.authorization() {
            req.headers_mut().insert("authorization", v);
        }
        let connector = url
            .starts_with("wss:")
            .then(|| Connector::Rustls(self.tls_config()));
        let (ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(req, config, true, connector).await?;
        Ok(ws)
    }
}

/// The system's trusted roots; certificates it cannot parse are skipped.
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "skipping a system certificate");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

fn client_config(roots: rustls::RootCertStore) -> ClientConfig {
    // An explicit provider: nothing depends on a process-wide default.
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn default_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(client_config(system_roots())))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_carried_but_never_shown() {
        let e = Endpoint::new("http://127.0.0.1:8080/").with_token(Some("s3 cret".into()));
        assert_eq!(e.base(), "http://127.0.0.1:8080");
        assert_eq!(e.authorization().unwrap(), "Bearer s3 cret");
        assert!(e.authorization().unwrap().is_sensitive());
        assert_eq!(e.browser_url(), "http://127.0.0.1:8080/?token=s3%20cret");
        assert!(!format!("{e:?}").contains("s3"));
        let plain = Endpoint::new("http://h:1").with_token(Some(String::new()));
        assert!(plain.token().is_none());
        assert_eq!(plain.browser_url(), "http://h:1/");
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = Endpoint::new("https://h")
            .with_ca_cert(&missing)
            .unwrap_err();
        assert!(e.to_string().contains("cannot read --ca-cert"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Endpoint::new("https://h").with_ca_cert(&empty).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    }
}
