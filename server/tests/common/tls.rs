//! TLS for the tests: a throwaway CA and a certificate for `localhost` and
//! 127.0.0.1 made with rcgen, and a client that trusts only that CA.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rt_server::{Config, Server};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

pub const H2: &[u8] = b"h2";
pub const HTTP11: &[u8] = b"http/1.1";

/// A certificate on disk and the CA that signed it.
pub struct TestCert {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: CertificateDer<'static>,
}

/// A fresh CA and a leaf certificate for `localhost` and 127.0.0.1.
pub fn cert() -> TestCert {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rt test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    TestCert {
        ca: ca.der().clone(),
        _dir: dir,
        cert,
        key,
    }
}

/// The test config, serving TLS with `cert`.
pub fn config(cert: &TestCert) -> Config {
    let mut c = Config::for_tests();
    c.serve.tls_cert = Some(cert.cert.clone());
    c.serve.tls_key = Some(cert.key.clone());
    c
}

/// A rustls client config trusting only `ca`, offering `alpn`.
pub fn client_config(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `server` offering `alpn`.
pub async fn connect(
    server: &Server,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    TlsConnector::from(client_config(ca, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// The protocol the server chose.
pub fn alpn(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    stream.get_ref().1.alpn_protocol().map(|p| p.to_vec())
}

pub type Request = hyper::Request<Full<Bytes>>;

/// Requests over one connection, HTTP/1.1 or HTTP/2.
pub enum Client {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    /// hyper's client on `stream`, in the protocol it negotiated.
    pub async fn on(stream: TlsStream<TcpStream>) -> Client {
        let h2 = alpn(&stream).as_deref() == Some(H2);
        let io = TokioIo::new(stream);
        if h2 {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            Client::H2(send)
        } else {
            let (send, conn) = http1::handshake(io).await.unwrap();
            tokio::spawn(conn.with_upgrades());
            Client::H1(send)
        }
    }

    pub async fn send(&mut self, mut req: Request) -> hyper::Response<hyper::body::Incoming> {
        match self {
            Client::H1(s) => {
                // HTTP/1.1 sends the origin form; HTTP/2 needs the authority.
                let origin = req
                    .uri()
                    .path_and_query()
                    .unwrap()
                    .as_str()
                    .parse()
                    .unwrap();
                *req.uri_mut() = origin;
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
            Client::H2(s) => {
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
        }
    }

    /// A request for `path` with `method` and `body`; the whole answer.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, hyper::Version, String) {
        let res = self.send(request(method, path, body)).await;
        let status = res.status().as_u16();
        let version = res.version();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, version, String::from_utf8_lossy(&body).into_owned())
    }
}

/// `method path` for `localhost`, with `body`.
pub fn request(method: &str, path: &str, body: &str) -> Request {
    hyper::Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
