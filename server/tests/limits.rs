//! The server's limits over real sockets: the connection caps (a `503`
//! written by the accept loop), the per-address Q&A rate limits (`429`),
//! the header timeout against a slow dribbled head, and the keep-alive
//! idle close.

mod common;

use std::time::{Duration, Instant};

use common::tls::{self, H2, HTTP11};
use http_body_util::BodyExt;
use rt_protocol::qa;
use rt_server::{Config, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Reads until the peer closes (or resets); everything read.
async fn read_to_close<S: AsyncRead + Unpin>(io: &mut S) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(WAIT, io.read(&mut buf)).await {
            Err(_) => panic!(
                "not closed within {WAIT:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends `GET /healthz` and reads its answer, leaving the connection open.
async fn health<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    io.write_all(HEALTH).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).ends_with("ok") {
        let n = timeout(WAIT, io.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
}

/// An admitted connection, proven by one answered request.
async fn held(server: &Server) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    health(&mut tcp).await;
    tcp
}

fn assert_refused(answer: &str, flag: &str) {
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\r\nretry-after: 5\r\n"), "{answer}");
    assert!(answer.contains(flag), "{answer}");
}

#[tokio::test]
async fn one_connection_over_max_connections_gets_503_and_a_freed_place_is_reused() {
    let mut config = Config::for_tests();
    config.serve.max_connections = 2;
    let server = common::server_with(config).await;
    let first = held(&server).await;
    let _second = held(&server).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert_refused(&read_to_close(&mut third).await, "max-connections");
    drop(first);
    // The place comes back once the server has seen the socket close.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = timeout(WAIT, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        if buf[..n].starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn max_connections_per_ip_applies_to_loopback_only_when_asked() {
    let mut exempt = Config::for_tests();
    exempt.serve.max_connections_per_ip = 1;
    let server = common::server_with(exempt).await;
    let _a = held(&server).await;
    let _b = held(&server).await;
    let _c = held(&server).await;
    server.shutdown().await.unwrap();

    let mut strict = Config::for_tests();
    strict.serve.max_connections_per_ip = 1;
    strict.serve.limit_loopback = true;
    let server = common::server_with(strict).await;
    let _a = held(&server).await;
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    assert_refused(&read_to_close(&mut b).await, "max-connections-per-ip");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refusal_over_tls_is_a_503_inside_tls() {
    let cert = tls::cert();
    let mut config = tls::config(&cert);
    config.serve.max_connections = 1;
    let server = common::server_with(config).await;
    let mut first = tls::connect(&server, &cert.ca, &[HTTP11]).await;
    health(&mut first).await;
    // Even a client that prefers h2 is answered in HTTP/1.1.
    let mut second = tls::connect(&server, &cert.ca, &[H2, HTTP11]).await;
    assert_eq!(tls::alpn(&second).as_deref(), Some(HTTP11));
    assert_refused(&read_to_close(&mut second).await, "max-connections");
    server.shutdown().await.unwrap();
}

async fn post(server: &Server, path: &str) -> reqwest::Response {
    common::http()
        .post(format!("{}{path}", server.url()))
        .header(qa::USER_HEADER, "nobody")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn qa_actions_over_the_burst_get_429_with_retry_after() {
    let mut config = Config::for_tests();
    config.serve.limit_loopback = true;
    config.serve.qa_action_burst = 2;
    config.serve.qa_action_rate = 0.01;
    let server = common::server_with(config).await;
    for _ in 0..2 {
        let res = post(&server, "/askquestion/hello").await;
        assert_ne!(res.status(), 429);
    }
    let res = post(&server, "/askquestion/hello").await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "100");
    let body: qa::ErrorBody = res.json().await.unwrap();
    assert!(
        body.error.contains("too many Q&A actions"),
        "{}",
        body.error
    );
    // Other routes are not counted.
    let res = common::http()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn qa_logins_over_the_burst_get_429_and_loopback_is_exempt_by_default() {
    let mut config = Config::for_tests();
    config.serve.limit_loopback = true;
    config.serve.qa_login_burst = 1;
    config.serve.qa_login_rate = 0.5;
    let server = common::server_with(config).await;
    let http = common::http();
    let url = format!("{}/login", server.url());
    let stream = http.get(&url).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "2");
    drop(stream);
    server.shutdown().await.unwrap();

    let mut exempt = Config::for_tests();
    exempt.serve.qa_login_burst = 1;
    exempt.serve.qa_action_burst = 1;
    let server = common::server_with(exempt).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let res = http
            .get(format!("{}/login", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        streams.push(res);
        assert_ne!(post(&server, "/askquestion/hello").await.status(), 429);
    }
    server.shutdown().await.unwrap();
}

/// Writes `head` one byte a second until the server closes; how many bytes
/// went out and how long it took.
async fn dribble<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, head: &[u8]) -> (usize, Duration) {
    let start = Instant::now();
    let mut sent = 0;
    let mut buf = [0u8; 1024];
    for &byte in head {
        if io.write_all(&[byte]).await.is_err() || io.flush().await.is_err() {
            break;
        }
        sent += 1;
        // A second's pause, or the close that ends it.
        match timeout(Duration::from_secs(1), io.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => panic!("answered: {:?}", String::from_utf8_lossy(&buf[..n])),
        }
    }
    (sent, start.elapsed())
}

const SLOW_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: yes\r\n\r\n";

fn assert_cut(sent: usize, took: Duration, timeout_ms: u64) {
    assert!(sent < SLOW_HEAD.len(), "the whole head went out");
    // Within the timeout (twice over for a plain first request: the
    // stream sniff and hyper each allow it), plus a second's pause.
    let most = Duration::from_millis(2 * timeout_ms + 1500);
    assert!(took < most, "closed after {took:?}");
}

#[tokio::test]
async fn a_head_dribbled_a_byte_a_second_is_closed_by_the_header_timeout() {
    let mut config = Config::for_tests();
    config.header_timeout_ms = 2000;
    let server = common::server_with(config).await;
    // The first request of a connection.
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let (sent, took) = dribble(&mut first, SLOW_HEAD).await;
    assert_cut(sent, took, 2000);
    // A later request on a keep-alive connection (hyper's own timeout).
    let mut later = held(&server).await;
    let (sent, took) = dribble(&mut later, SLOW_HEAD).await;
    assert_cut(sent, took, 2000);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_head_dribbled_over_tls_is_closed_by_the_header_timeout() {
    let cert = tls::cert();
    let mut config = tls::config(&cert);
    config.header_timeout_ms = 2000;
    let server = common::server_with(config).await;
    let mut stream = tls::connect(&server, &cert.ca, &[HTTP11]).await;
    let (sent, took) = dribble(&mut stream, SLOW_HEAD).await;
    assert_cut(sent, took, 2000);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let mut config = Config::for_tests();
    config.serve.keep_alive_idle_ms = 500;
    let server = common::server_with(config).await;
    let mut tcp = held(&server).await;
    let start = Instant::now();
    let rest = read_to_close(&mut tcp).await;
    assert!(rest.is_empty(), "{rest}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_h2_connection_is_closed_but_one_with_an_open_stream_is_not() {
    use hyper::client::conn::http2;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let cert = tls::cert();
    let mut config = tls::config(&cert);
    config.serve.keep_alive_idle_ms = 500;
    let server = common::server_with(config).await;

    let stream = tls::connect(&server, &cert.ca, &[H2]).await;
    let (mut idle, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    let idle_conn = tokio::spawn(conn);
    let res = idle
        .send_request(tls::request("GET", "/healthz", ""))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(res);
    timeout(WAIT, idle_conn)
        .await
        .expect("the idle h2 connection is closed")
        .unwrap()
        .unwrap();

    let stream = tls::connect(&server, &cert.ca, &[H2]).await;
    let (mut busy, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    let busy_conn = tokio::spawn(conn);
    let res = busy
        .send_request(tls::request("GET", "/login", ""))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let first = timeout(WAIT, body.frame()).await.unwrap().unwrap().unwrap();
    assert!(first.is_data());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!busy_conn.is_finished(), "closed with a stream open");
    let res = busy
        .send_request(tls::request("GET", "/healthz", ""))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.shutdown().await.unwrap();
}
