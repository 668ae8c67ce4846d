//! The connection layer over raw TCP: event streams take the lean writer,
//! everything else hyper, and both speak correct HTTP/1.1.

mod common;

use std::time::Duration;

use rt_server::Config;
use rt_server::stats::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn connect(server: &rt_server::Server) -> TcpStream {
    TcpStream::connect(server.addr).await.unwrap()
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(tcp: &mut TcpStream, got: &mut Vec<u8>, needle: &str) {
    let found = |g: &[u8]| String::from_utf8_lossy(g).contains(needle);
    while !found(got) {
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {needle:?} within 5 s; got {:?}",
                    String::from_utf8_lossy(got)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// Reads to end of file, which must come within 5 s.
async fn read_to_close(tcp: &mut TcpStream, got: &mut Vec<u8>) {
    timeout(WAIT, tcp.read_to_end(got))
        .await
        .expect("closed within 5 s")
        .unwrap();
}

async fn wait_for_open(server: &rt_server::Server, app: App, want: i64) {
    timeout(WAIT, async {
        while server.state.stats.open(app) != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{want} open {app:?} streams"));
}

#[tokio::test]
async fn a_login_stream_is_chunked_and_ends_cleanly_at_shutdown() {
    let server = common::server().await;
    let mut tcp = connect(&server).await;
    tcp.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, "event: login").await;
    let text = String::from_utf8_lossy(&got).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("set-cookie: "), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    // The first chunk is the classic padding and retry hint.
    let (size, rest) = body.split_once("\r\n").unwrap();
    let size = usize::from_str_radix(size, 16).unwrap();
    assert!(rest[..size].starts_with(':'), "{rest}");
    wait_for_open(&server, App::Qa, 1).await;

    let shutdown = tokio::spawn(server.shutdown());
    read_to_close(&mut tcp, &mut got).await;
    assert!(
        got.ends_with(b"\r\n0\r\n\r\n"),
        "ends with the last chunk: {:?}",
        String::from_utf8_lossy(&got[got.len().saturating_sub(40)..])
    );
    shutdown.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_stream() {
    let server = common::server().await;
    let mut a = connect(&server).await;
    a.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut a, &mut got, "event: login").await;
    wait_for_open(&server, App::Qa, 1).await;
    // Bytes after the request (no body is expected) are ignored.
    a.write_all(b"garbage that is not a request\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.state.stats.open(App::Qa), 1);
    drop(a);
    wait_for_open(&server, App::Qa, 0).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_10_streams_are_close_delimited() {
    let server = common::server().await;
    let mut tcp = connect(&server).await;
    tcp.write_all(b"GET /login HTTP/1.0\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, "event: login").await;
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("connection: close"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(body.starts_with(':'), "no chunk sizes: {body:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_stream_keeps_the_connection_for_the_next_request() {
    let server = common::server().await;
    let mut tcp = connect(&server).await;
    // Pipelined: the second request was read with the first one's head.
    tcp.write_all(
        b"GET /ticker/stream HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, "\r\n\r\nok").await;
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    let (first, second) = text.split_once("HTTP/1.1 200 OK").expect("two answers");
    assert!(first.contains("no symbols"), "{first}");
    assert!(
        first.to_ascii_lowercase().contains("content-length: "),
        "{first}"
    );
    assert!(second.ends_with("\r\n\r\nok"), "{second}");

    // Once more on the same connection, after the pipelined pair.
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    read_to_close(&mut tcp, &mut rest).await;
    assert!(String::from_utf8_lossy(&rest).ends_with("\r\n\r\nok"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_request_with_a_long_head_is_served_all_the_same() {
    let server = common::server().await;
    let mut tcp = connect(&server).await;
    let long = "v".repeat(rt_server::serve::LEAN_HEAD_LIMIT);
    tcp.write_all(format!("GET /login HTTP/1.1\r\nHost: x\r\nX-Long: {long}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut tcp, &mut got, "event: login").await;
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // Live events reach it too (through the board's queue, not a sink).
    read_until(&mut tcp, &mut got, "\n\n").await;
    let text = String::from_utf8_lossy(&got).to_string();
    let login = text.split("event: login\n").nth(1).unwrap();
    let user: String = serde_json::from_str(
        login
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    let res = common::http()
        .post(format!("{}/askquestion/through-hyper", server.url()))
        .header(rt_protocol::qa::USER_HEADER, &user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    read_until(&mut tcp, &mut got, "through-hyper").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let mut config = Config::for_tests();
    config.header_timeout_ms = 200;
    let server = common::server_with(config).await;
    let mut silent = connect(&server).await;
    let mut partial = connect(&server).await;
    partial
        .write_all(b"GET /login HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut got = Vec::new();
    read_to_close(&mut silent, &mut got).await;
    read_to_close(&mut partial, &mut got).await;
    assert!(got.is_empty(), "{got:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_upgrades_and_keep_alive_still_go_through_hyper() {
    let server = common::server().await;
    let http = common::http();
    for _ in 0..3 {
        let res = http
            .get(format!("{}/healthz", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "ok");
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
        .await
        .expect("the ShareDB socket upgrades");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"a":"hs","id":null}"#,
    ))
    .await
    .unwrap();
    let first = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(
        first.to_text().unwrap().contains("\"a\":\"hs\""),
        "{first:?}"
    );
    server.shutdown().await.unwrap();
}
