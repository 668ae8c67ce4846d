//! rt-tui over TLS with an access token: every subcommand against an
//! `https://` URL, through a TLS-terminating proxy in front of a real rt
//! server, trusting the proxy's self-signed certificate with `--ca-cert`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use support::rt_tui;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const TOKEN: &str = "tls-test-token";

/// A TLS listener on 127.0.0.1 that forwards each connection's plaintext
/// to `upstream`, with a fresh self-signed certificate for 127.0.0.1.
struct TlsProxy {
    addr: SocketAddr,
    cert_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    async fn start(upstream: SocketAddr) -> TlsProxy {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("a certificate");
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsProxy {
            addr,
            cert_pem: certified.cert.pem(),
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

async fn token_server() -> rt_server::Server {
    let mut config = rt_server::Config::for_tests();
    config.ticker.poll_ms = 200;
    config.ticker.tick_ms = 100;
    config.guard.token = Some(TOKEN.into());
    rt_server::spawn(config).await.expect("test server starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_works_over_https_with_the_token() {
    let server = token_server().await;
    let proxy = TlsProxy::start(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &proxy.cert_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let url = proxy.url();
    let common = ["--url", &url, "--ca-cert", ca, "--token", TOKEN];

    // Plain HTTP polls and the SSE stream.
    for transport in ["poll", "sse"] {
        let mut args = vec!["ticker", "IBM", "--count", "1", "--transport", transport];
        args.extend(common);
        let out = rt_tui(&args).await;
        assert!(out.status.success(), "{transport}: {out:?}");
        assert_eq!(json_lines(&out)[0]["symbol"], "IBM", "{transport}");
    }

    // The Q&A stream (login) and an action.
    let mut args = vec!["qa", "ask", "asked over TLS"];
    args.extend(common);
    let out = rt_tui(&args).await;
    assert!(out.status.success(), "{out:?}");

    // The editor over wss://.
    let mut args = vec!["doc", "get"];
    args.extend(common);
    let out = rt_tui(&args).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_lines(&out)[0]["text"], "Hi!\n");

    // The drawing board over wss://.
    let mut args = vec!["draw", "clear"];
    args.extend(common);
    let out = rt_tui(&args).await;
    assert!(out.status.success(), "{out:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_and_a_missing_token_are_clear_errors() {
    let server = token_server().await;
    let proxy = TlsProxy::start(server.addr).await;
    let url = proxy.url();

    // Without --ca-cert the self-signed certificate is refused.
    let out = rt_tui(&[
        "ticker", "IBM", "--count", "1", "--url", &url, "--token", TOKEN,
    ])
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");

    // Trusted, but without the token: the server's 401.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &proxy.cert_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let out = tokio::time::timeout(
        support::PROCESS_TIMEOUT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rt-tui"))
            .args(["doc", "get", "--url", &url, "--ca-cert", ca])
            .env_remove("RT_TOKEN")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");

    // A file that is not a certificate.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "nothing here\n").unwrap();
    let out = rt_tui(&[
        "ticker",
        "IBM",
        "--url",
        &url,
        "--ca-cert",
        bad.to_str().unwrap(),
    ])
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no PEM certificate"), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_works_against_rt_servers_own_tls() {
    // rt-server terminating TLS itself (ALPN h2 and http/1.1): plain requests
    // and streams may take h2, WebSockets take HTTP/1.1.
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut config = rt_server::Config::for_tests();
    config.ticker.poll_ms = 200;
    config.ticker.tick_ms = 100;
    config.guard.token = Some(TOKEN.into());
    config.serve.tls_cert = Some(cert.clone());
    config.serve.tls_key = Some(key);
    let server = rt_server::spawn(config).await.expect("TLS server starts");
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");
    let ca = cert.to_str().unwrap();
    let common = ["--url", &url, "--ca-cert", ca, "--token", TOKEN];
    for args in [
        vec!["ticker", "IBM", "--count", "1"],
        vec!["ticker", "IBM", "--count", "1", "--transport", "sse"],
        vec!["qa", "ask", "asked over rt's TLS"],
        vec!["doc", "get"],
        vec!["draw", "clear"],
    ] {
        let mut all = args.clone();
        all.extend(common);
        let out = rt_tui(&all).await;
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    server.shutdown().await.unwrap();
}
