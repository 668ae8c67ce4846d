//! rt-tui's document client fails over between two rt-server processes
//! (nodes of one cluster on PostgreSQL and Redis): the node in use is killed
//! with SIGKILL mid-edit; the client goes on with the other one, resending
//! what was not acknowledged under its original src and seq. No acknowledged
//! edit is lost, no unsent edit is lost, none is applied twice.
//!
//! Needs PostgreSQL and Redis (fails, does not skip, without them) and the
//! rt-server binary (`cargo build -p rt-server`, or RT_SERVER_BIN).

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::delta::Delta;
use rt_server::cluster::testing::{TestDb, redis_url};
use rt_tui::net::doc::{DocClient, DocClientConfig, DocEvent, DocSession};
use rt_tui::net::{EVENT_CHANNEL_CAPACITY, NetEvent};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

fn server_bin() -> String {
    std::env::var("RT_SERVER_BIN")
        .unwrap_or_else(|_| format!("{}/../target/debug/rt-server", env!("CARGO_MANIFEST_DIR")))
}

/// `rt-server` on PostgreSQL and Redis; its base URL.
async fn start_node(db: &str, node: &str) -> (Child, String) {
    let bin = server_bin();
    let mut child = Command::new(&bin)
        .args(["--bind", "127.0.0.1:0", "--database", db])
        .args(["--redis", &redis_url(), "--node-id", node])
        .env("RUST_LOG", "rt_server=warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} starts (cargo build -p rt-server): {e}"));
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("rt-server says where it serves")
        .expect("readable")
        .expect("a line");
    let url = line
        .strip_prefix("rt-server serving ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// The session driven by the client's events, as the text pane drives it.
struct Editor {
    session: DocSession,
    client: DocClient,
    rx: mpsc::Receiver<NetEvent>,
}

impl Editor {
    fn step(&mut self, event: NetEvent) {
        let out = match event {
            NetEvent::Doc(DocEvent::Open) => self.session.on_open(),
            NetEvent::Doc(DocEvent::Message(v)) => self.session.on_message(&v).0,
            NetEvent::Doc(DocEvent::Closed) => {
                self.session.on_close();
                Vec::new()
            }
            _ => Vec::new(),
        };
        self.client.send(out);
    }

    async fn until(&mut self, what: &str, done: impl Fn(&DocSession) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.session) {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("the client runs");
            self.step(event);
        }
    }

    /// Takes whatever events are already there.
    fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.step(event);
        }
    }

    fn type_at_start(&mut self, text: &str) {
        let op = Delta::from_value(&json!([{"insert": text}])).expect("a delta");
        let out = self.session.submit(op).expect("the edit applies");
        self.client.send(out);
    }
}

async fn fetch_text(base: &str) -> (u64, String) {
    let ws_url = format!("{}/", base.replacen("http", "ws", 1));
    let (mut ws, _) = connect_async(ws_url).await.expect("connects");
    for msg in [
        json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}),
        json!({"a": "f", "c": "examples", "d": "richtext"}),
    ] {
        ws.send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
    }
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no fetch reply");
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["a"] == "f" {
            let ops = v["data"]["data"]["ops"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let text = ops.iter().filter_map(|o| o["insert"].as_str()).collect();
            return (v["data"]["v"].as_u64().unwrap(), text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_node_in_use_fails_over_without_losing_edits() {
    let db = TestDb::create().await;
    let (mut a, a_url) = start_node(&db.url, "a").await;
    let (_b, b_url) = start_node(&db.url, "b").await;
    let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let client = DocClient::spawn(
        DocClientConfig {
            base_url: a_url.clone().into(),
            fallbacks: vec![b_url.clone().into()],
        },
        tx,
    );
    let mut editor = Editor {
        session: DocSession::new("examples", "richtext"),
        client,
        rx,
    };
    editor.until("the document", DocSession::is_live).await;
    for _ in 0..20 {
        editor.type_at_start("x");
        editor.drain();
    }
    editor
        .until("20 acknowledged edits", |s| !s.has_pending())
        .await;
    let (v, text) = fetch_text(&b_url).await;
    assert_eq!(text, format!("{}Hi!\n", "x".repeat(20)));
    let acked_before = v;

    // Ten more edits, then SIGKILL before they are all acknowledged.
    for _ in 0..10 {
        editor.type_at_start("y");
    }
    editor.drain();
    assert!(
        editor.session.has_pending(),
        "edits are unacknowledged at the kill"
    );
    a.start_kill().expect("SIGKILL");
    a.wait().await.expect("killed");
    for _ in 0..5 {
        editor.type_at_start("z");
    }
    editor
        .until("the other node to take every edit", |s| {
            s.is_live() && !s.has_pending()
        })
        .await;
    let (v, text) = fetch_text(&b_url).await;
    assert!(v > acked_before);
    let count = |c: char| text.chars().filter(|&x| x == c).count();
    assert_eq!(count('x'), 20, "no acknowledged edit lost: {text:?}");
    assert_eq!(
        count('y'),
        10,
        "edits in flight at the kill arrive once: {text:?}"
    );
    assert_eq!(
        count('z'),
        5,
        "edits typed while failing over arrive: {text:?}"
    );
    assert_eq!(
        text,
        editor.session.text(),
        "the client agrees with the server"
    );

    // The script subcommands take several URLs too: the dead node first.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rt-tui"))
        .args(["doc", "insert", "examples/richtext", "--at", "0", "Q"])
        .args(["--url", &format!("{a_url},{b_url}")])
        .output()
        .expect("rt-tui runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let (v_after, text_after) = fetch_text(&b_url).await;
    assert_eq!(printed["v"], v_after);
    assert_eq!(text_after, format!("Q{text}"));
}
