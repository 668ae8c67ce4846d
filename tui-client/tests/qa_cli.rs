//! `rt-tui qa …` against a real server: listen, ask, answer, vote, and a
//! listener that survives a server restart without losing or repeating events.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{closed_port, rt_tui};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(10);

async fn server_at(config_edit: impl FnOnce(&mut rt_server::Config)) -> rt_server::Server {
    let mut config = rt_server::Config::for_tests();
    config.qa.ping_ms = 60_000;
    config_edit(&mut config);
    rt_server::spawn(config).await.expect("test server starts")
}

struct Listener {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Listener {
    fn start(url: &str, extra: &[&str]) -> Listener {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rt-tui"))
            .args(["qa", "listen", "--url", url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("rt-tui runs");
        let stdout = child.stdout.take().expect("piped");
        Listener {
            _child: child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("readable")
            .expect("the listener is running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// The next event that is not a ping.
    async fn next_event(&mut self) -> Value {
        loop {
            let v = self.next().await;
            if v["event"] != "ping" {
                return v;
            }
        }
    }
}

fn question_keys(v: &Value) -> Vec<String> {
    v["data"]["questions"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_ask_answer_vote() {
    let server = server_at(|_| {}).await;
    let url = server.url();
    let mut l = Listener::start(&url, &[]);
    let login = l.next().await;
    assert_eq!(login["event"], "login");
    let me = login["data"]
        .as_str()
        .expect("the id is a JSON string")
        .to_string();
    let snapshot = l.next_event().await;
    assert_eq!(snapshot["data"]["type"], "questions");

    let out = rt_tui(&["qa", "ask", "Is the CLI wired up?", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let asked = l.next_event().await;
    assert_eq!(question_keys(&asked), ["Is the CLI wired up?"]);
    assert_ne!(
        asked["data"]["questions"]["Is the CLI wired up?"], me,
        "a handle, not an id"
    );

    // Answering as the listener's user makes it follow the question.
    let out = rt_tui(&[
        "qa",
        "answer",
        "--question",
        "Is the CLI wired up?",
        "It is.",
        "--url",
        &url,
        "--user",
        &me,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let selected = l.next_event().await;
    assert_eq!(selected["data"]["type"], "answers");
    let answered = l.next_event().await;
    assert_eq!(answered["data"]["answers"], serde_json::json!(["It is."]));
    assert_eq!(l.next_event().await["event"], "meta");

    let out = rt_tui(&["qa", "vote", "Is the CLI wired up?", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["votes"], 1);
    assert_eq!(reply["voted"], true);
    let meta = l.next_event().await;
    assert_eq!(meta["data"]["meta"]["votes"], 1);

    // Refusals exit 1 with the server's reason.
    let out = rt_tui(&["qa", "vote", "no such question", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such question"));
    let out = rt_tui(&[
        "qa",
        "answer",
        "--question",
        "x",
        "y",
        "--url",
        &url,
        "--user",
        "0123456789abcdef0123456789abcdef",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown user"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_fails_fast_when_nothing_answers() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = rt_tui(&["qa", "listen", "--url", &url, "--count", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
    let out = rt_tui(&["qa", "ask", "hello", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_resumes_across_a_server_restart_without_gaps_or_repeats() {
    let dir = std::env::temp_dir().join(format!("rt-qa-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("rt.db");
    let first = server_at(|c| c.data = Some(data.clone())).await;
    let addr = first.addr;
    let url = first.url();
    let mut l = Listener::start(&url, &[]);
    let login = l.next().await;
    let me = login["data"].as_str().unwrap().to_string();
    l.next_event().await;
    rt_tui(&["qa", "ask", "before", "--url", &url]).await;
    assert_eq!(question_keys(&l.next_event().await), ["before"]);
    first.shutdown().await.unwrap();

    let second = server_at(|c| {
        c.data = Some(data.clone());
        c.bind = addr;
    })
    .await;
    // Asked before the listener is back: it must be replayed, once.
    let out = rt_tui(&["qa", "ask", "while away", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let replayed = l.next_event().await;
    assert_eq!(question_keys(&replayed), ["before", "while away"]);
    let relogin = l.next_event().await;
    assert_eq!(relogin["event"], "login");
    assert_eq!(
        relogin["data"],
        me.as_str(),
        "same identity after the restart"
    );
    rt_tui(&["qa", "ask", "after", "--url", &url]).await;
    let after = l.next_event().await;
    assert_eq!(question_keys(&after).len(), 3);
    let ids: Vec<u64> = [&login, &replayed, &relogin, &after]
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    second.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_reconnects_after_the_servers_retry_delay() {
    use rt_tui::net::ConnState;
    use rt_tui::net::qa::{Position, StreamItem, follow};
    use tokio::sync::{mpsc, watch};

    // Far from the client's own 1 s default, so the test tells them apart.
    let server = server_at(|c| c.qa.retry_ms = 150).await;
    let url = server.url();
    let (sink, mut items) = mpsc::channel(64);
    let (identity, _) = watch::channel(None);
    let task = tokio::spawn(async move { follow(&url, Position::default(), sink, identity).await });
    let next = async |items: &mut mpsc::Receiver<StreamItem>| {
        tokio::time::timeout(WAIT, items.recv())
            .await
            .expect("an item within the wait")
            .expect("the stream is followed")
    };
    // Connecting, connected, login (which carries the retry), snapshot.
    loop {
        if let StreamItem::Event(e) = next(&mut items).await
            && e.event == "login"
        {
            break;
        }
    }
    server.shutdown().await.unwrap();
    let at = loop {
        if let StreamItem::State(ConnState::Retrying { at, .. }) = next(&mut items).await {
            break at;
        }
    };
    let wait = at.saturating_duration_since(std::time::Instant::now());
    assert!(
        wait <= Duration::from_millis(150),
        "the next attempt follows the server's retry (150 ms), not {wait:?}"
    );
    drop(items);
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_servers_error_text_reaches_the_terminal_inertly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A hostile server whose refusals carry terminal escape sequences.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fake = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await.unwrap();
        let body = r#"{"error":"bad \u001b[2J\u001b]0;owned\u0007news"}"#;
        let res = format!(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(res.as_bytes()).await.unwrap();
    });
    let out = rt_tui(&[
        "qa",
        "ask",
        "hello",
        "--url",
        &url,
        "--user",
        "0123456789abcdef0123456789abcdef",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad [2J]0;ownednews"), "{stderr:?}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{7}'));
    fake.await.unwrap();
}
