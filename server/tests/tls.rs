//! HTTPS: HTTP/1.1 and HTTP/2 (ALPN) over rustls, event streams over h2,
//! the editor's and Socket.IO's WebSockets over TLS, and clear errors for
//! bad certificate files.

mod common;

use std::time::Duration;

use common::tls::{self, Client, H2, HTTP11};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use rt_protocol::qa;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn alpn_picks_h2_when_offered_and_http11_otherwise() {
    let cert = tls::cert();
    let server = common::server_with(tls::config(&cert)).await;
    assert!(server.url().starts_with("https://"), "{}", server.url());
    let both = tls::connect(&server, &cert.ca, &[H2, HTTP11]).await;
    assert_eq!(tls::alpn(&both).as_deref(), Some(H2));
    let old = tls::connect(&server, &cert.ca, &[HTTP11]).await;
    assert_eq!(tls::alpn(&old).as_deref(), Some(HTTP11));
    // A client without ALPN speaks HTTP/1.1.
    let none = tls::connect(&server, &cert.ca, &[]).await;
    assert_eq!(tls::alpn(&none), None);
    let (status, version, body) = Client::on(none).await.call("GET", "/healthz", "").await;
    assert_eq!(
        (status, version, body.as_str()),
        (200, hyper::Version::HTTP_11, "ok")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pages_and_actions_round_trip_over_http11_and_h2() {
    let cert = tls::cert();
    let server = common::server_with(tls::config(&cert)).await;
    for (alpn, want) in [
        (&[HTTP11][..], hyper::Version::HTTP_11),
        (&[H2, HTTP11][..], hyper::Version::HTTP_2),
    ] {
        let mut client = Client::on(tls::connect(&server, &cert.ca, alpn).await).await;
        // Several requests on one connection.
        for _ in 0..3 {
            let (status, version, body) = client.call("GET", "/healthz", "").await;
            assert_eq!((status, version, body.as_str()), (200, want, "ok"));
        }
        let (status, _, page) = client.call("GET", "/qa/", "").await;
        assert_eq!(status, 200);
        assert!(page.contains("<html"), "{page}");
        // A Q&A action goes through the router: no user is a clear 401.
        let (status, _, body) = client.call("POST", "/askquestion/hello", "").await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains(qa::USER_HEADER), "{body}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_event_stream_over_h2_delivers_events_and_ends_at_shutdown() {
    let cert = tls::cert();
    let server = common::server_with(tls::config(&cert)).await;
    let mut client = Client::on(tls::connect(&server, &cert.ca, &[H2]).await).await;
    let res = client.send(tls::request("GET", "/login", "")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    let mut got = String::new();
    while !got.contains("event: login") {
        let frame = timeout(WAIT, body.frame()).await.unwrap().unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            got.push_str(&String::from_utf8_lossy(&data));
        }
    }
    // A second stream shares the connection (no six-per-origin limit).
    let second = client.send(tls::request("GET", "/login", "")).await;
    assert_eq!(second.status(), 200);
    let stopping = tokio::spawn(server.shutdown());
    // The stream ends (no hang), and the server stops.
    timeout(WAIT, async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await
    .expect("the stream ends at shutdown");
    timeout(WAIT, stopping).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn the_editor_websocket_works_over_tls() {
    let cert = tls::cert();
    let server = common::server_with(tls::config(&cert)).await;
    // Browsers open WebSockets over HTTP/1.1 (rt offers no RFC 8441).
    let stream = tls::connect(&server, &cert.ca, &[HTTP11]).await;
    let (mut ws, res) =
        tokio_tungstenite::client_async(format!("wss://localhost:{}/", server.addr.port()), stream)
            .await
            .expect("the ShareDB socket upgrades over TLS");
    assert_eq!(res.status(), 101);
    ws.send(Message::text(r#"{"a":"hs","id":null}"#))
        .await
        .unwrap();
    let first = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(
        first.to_text().unwrap().contains("\"a\":\"hs\""),
        "{first:?}"
    );
    let stopping = tokio::spawn(server.shutdown());
    // The server says goodbye with a close frame (1001), over TLS too.
    let mut code = None;
    while let Ok(Some(Ok(msg))) = timeout(WAIT, ws.next()).await {
        if let Message::Close(frame) = msg {
            code = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1001));
    timeout(WAIT, stopping).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn socketio_polls_over_h2_and_upgrades_to_a_websocket_over_tls() {
    let cert = tls::cert();
    let server = common::server_with(tls::config(&cert)).await;
    // The long-polling handshake, as a browser on an h2 page sends it.
    let mut client = Client::on(tls::connect(&server, &cert.ca, &[H2, HTTP11]).await).await;
    let (status, version, open) = client
        .call("GET", "/socket.io/?EIO=4&transport=polling", "")
        .await;
    assert_eq!((status, version), (200, hyper::Version::HTTP_2), "{open}");
    assert!(open.starts_with("0{") && open.contains("\"sid\""), "{open}");
    // The WebSocket transport over TLS.
    let stream = tls::connect(&server, &cert.ca, &[HTTP11]).await;
    let url = format!(
        "wss://localhost:{}/socket.io/?EIO=4&transport=websocket",
        server.addr.port()
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("upgrades");
    let open = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"), "{open:?}");
    ws.send(Message::text("40")).await.unwrap();
    let connected = loop {
        let msg = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        let text = msg.to_text().unwrap().to_string();
        if text.starts_with("40") {
            break text;
        }
    };
    assert!(connected.contains("\"sid\""), "{connected}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_certificate_files_are_clear_errors() {
    let cert = tls::cert();
    let mut missing = tls::config(&cert);
    missing.serve.tls_cert = Some("/nonexistent/cert.pem".into());
    let err = rt_server::spawn(missing)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");

    let other = tls::cert();
    let mut mismatched = tls::config(&cert);
    mismatched.serve.tls_key = Some(other.key.clone());
    let err = rt_server::spawn(mismatched)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not fit"), "{err}");

    let mut not_a_key = tls::config(&cert);
    not_a_key.serve.tls_key = Some(cert.cert.clone());
    let err = rt_server::spawn(not_a_key)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("private key"), "{err}");
}

#[tokio::test]
async fn a_handshake_that_never_comes_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncReadExt;
    let cert = tls::cert();
    let mut config = tls::config(&cert);
    config.header_timeout_ms = 300;
    let server = common::server_with(config).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut got = Vec::new();
    timeout(WAIT, tcp.read_to_end(&mut got))
        .await
        .expect("closed")
        .unwrap();
    assert!(got.is_empty());
    server.shutdown().await.unwrap();
}
