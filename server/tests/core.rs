//! The server's core surface: health, pages, shutdown.

mod common;

use std::time::Duration;

#[tokio::test]
async fn healthz_answers_ok() {
    let server = common::server().await;
    let res = common::http()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn landing_page_and_favicon_are_served() {
    let server = common::server().await;
    let http = common::http();
    let res = http.get(format!("{}/", server.url())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let res = http
        .get(format!("{}/favicon.ico", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/x-icon");
    let res = http
        .get(format!("{}/no/such/page", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{}/%2e%2e/Cargo.toml", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown().await.unwrap();
}

/// An open streaming response: its body ends when the server closes it.
async fn open_stream(url: String) -> reqwest::Response {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    res
}

async fn stream_ends(mut res: reqwest::Response) {
    // Chunks already sent (the stream's first events) are read past.
    while let Ok(Some(_)) = res.chunk().await {}
}

#[tokio::test]
async fn shutdown_ends_every_kind_of_connection_without_waiting_for_the_grace() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let mut config = rt_server::Config::for_tests();
    // Far beyond the test's bound: the connections must end by themselves.
    config.shutdown_grace_ms = 120_000;
    let server = common::server_with(config).await;
    let url = server.url();
    let ws_url = url.replace("http://", "ws://");

    let ticker = open_stream(format!("{url}/ticker/stream?symbols=IBM")).await;
    let qa = open_stream(format!("{url}/login")).await;
    let stats = open_stream(format!("{url}/stats")).await;

    // socket.io over long-polling: connected, with a poll waiting.
    let http = common::http();
    let poll = format!("{url}/socket.io/?EIO=4&transport=polling");
    let open = http.get(&poll).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let poll = format!("{poll}&sid={sid}");
    let res = http.post(&poll).body("40").send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Polls until the server says the session is over: a close packet, a
    // disconnect, or an error for the gone session.
    let waiting_poll = tokio::spawn({
        let (http, poll) = (http.clone(), poll.clone());
        async move {
            for _ in 0..20 {
                let Ok(r) = http.get(&poll).send().await else {
                    return true;
                };
                if r.status() != 200 {
                    return true;
                }
                let body = r.text().await.unwrap_or_default();
                if body.split('\x1e').any(|p| p == "1" || p.starts_with("41")) {
                    return true;
                }
            }
            false
        }
    });

    // socket.io over a WebSocket, and the editor's ShareDB socket.
    let (mut sio, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/socket.io/?EIO=4&transport=websocket"))
            .await
            .unwrap();
    sio.send(Message::text("40")).await.unwrap();
    let (mut sharedb, _) = tokio_tungstenite::connect_async(format!("{ws_url}/"))
        .await
        .unwrap();
    // Let every connection settle before the shutdown.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let bound = Duration::from_secs(10);
    tokio::time::timeout(bound, server.shutdown())
        .await
        .expect("shutdown does not wait for open connections")
        .unwrap();
    for res in [ticker, qa, stats] {
        tokio::time::timeout(bound, stream_ends(res))
            .await
            .expect("the stream ends");
    }
    let closed = tokio::time::timeout(bound, async {
        while let Some(Ok(msg)) = sharedb.next().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| f.code);
            }
        }
        None
    })
    .await
    .expect("the editor socket closes");
    assert_eq!(closed, Some(CloseCode::Away));
    tokio::time::timeout(bound, async { while let Some(Ok(_)) = sio.next().await {} })
        .await
        .expect("the socket.io WebSocket closes");
    let ended = tokio::time::timeout(bound, waiting_poll)
        .await
        .expect("the waiting poll is answered")
        .unwrap();
    assert!(ended, "the long-polling session ends");
}

#[tokio::test]
async fn shutdown_gives_up_on_a_request_that_never_finishes_after_the_grace() {
    use tokio::io::AsyncWriteExt;

    let mut config = rt_server::Config::for_tests();
    config.shutdown_grace_ms = 200;
    let server = common::server_with(config).await;
    // Headers that never end: graceful shutdown alone would wait forever.
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"GET / HTTP/1.1\r\nHost: rt\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("shutdown ends after the grace period")
        .unwrap();
}

/// Runs the `rt-server` binary on `data` until it exits by itself (it must,
/// within 10 s); returns its exit code and stderr.
fn run_binary_on(data: &std::path::Path) -> (Option<i32>, String) {
    run_binary(&["--data".as_ref(), data.as_os_str()])
}

/// Runs the `rt-server` binary with `args` (on an ephemeral port) until it
/// exits by itself, within 10 s; returns its exit code and stderr.
fn run_binary(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rt-server"))
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("rt-server kept running with {args:?}");
}

#[test]
fn a_missing_static_dir_is_refused_at_startup() {
    let (code, err) = run_binary(&[
        "--data".as_ref(),
        ":memory:".as_ref(),
        "--static-dir".as_ref(),
        "/nonexistent/rt-pages".as_ref(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--static-dir /nonexistent/rt-pages is not a directory"),
        "{err}"
    );
}

#[test]
fn a_corrupt_or_newer_data_file_is_a_clear_error_and_exit_code() {
    let dir = std::env::temp_dir().join(format!("rt-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, b"not a database, just some text\n".repeat(200)).unwrap();
    let (code, corrupt) = run_binary_on(&garbage);
    assert_eq!(code, Some(1), "{corrupt}");
    assert!(
        corrupt.contains("is not an rt database or is corrupt"),
        "{corrupt}"
    );

    // A file from a later version: it knows a migration this build does not.
    let newer = dir.join("newer.db");
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute_batch(
        "CREATE TABLE rt_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO rt_migrations VALUES ('9999-from-the-future', 0);",
    )
    .unwrap();
    drop(conn);
    let (code, too_new) = run_binary_on(&newer);
    assert_eq!(code, Some(1), "{too_new}");
    assert!(too_new.contains("was written by a newer rt"), "{too_new}");
    assert!(too_new.contains("9999-from-the-future"), "{too_new}");

    // One line of error, no panic, no backtrace even with RUST_BACKTRACE=1.
    for err in [&corrupt, &too_new] {
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("backtrace"), "{err}");
        assert_eq!(
            err.lines().filter(|l| l.contains("error")).count(),
            1,
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
