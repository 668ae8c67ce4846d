//! Helpers for the fault tests: an `rt-server` process of its own (so it can
//! be killed, signalled and weighed), and minimal raw clients of the editor,
//! the drawing board and the Q&A board.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::qa;
use rt_protocol::sse::{ParsedEvent, Parser};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub const WAIT: Duration = Duration::from_secs(10);

/// An `rt-server` child process on 127.0.0.1, port chosen by the OS.
pub struct Proc {
    pub child: Child,
    pub addr: String,
}

impl Proc {
    /// Starts `rt-server --bind 127.0.0.1:0 ARGS` and waits for its
    /// "serving" line.
    pub async fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rt-server"))
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RT_FAULT_LOG").unwrap_or_else(|_| "rt_server=warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("rt-server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("rt-server says where it serves")
            .expect("stdout is readable")
            .expect("a line");
        let addr = line
            .strip_prefix("rt-server serving http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        // Keep draining stdout so the child never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Proc { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("the child runs") as i32
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status is readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS is listed")
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit; its status code.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("rt-server exits in time")
            .expect("wait works")
            .code()
    }
}

/// A raw ShareDB client (JSON text frames) of the `examples` collection.
pub struct Editor {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub src: String,
    seq: u64,
}

impl Editor {
    pub async fn connect(addr: &str) -> Editor {
        let (ws, _) = connect_async(format!("ws://{addr}/"))
            .await
            .expect("websocket connects");
        let mut e = Editor {
            ws,
            src: String::new(),
            seq: 0,
        };
        e.send(json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = e.recv().await;
        assert_eq!(hs["a"], "hs", "{hs}");
        e.src = hs["id"].as_str().expect("an id").to_string();
        e
    }

    pub async fn send(&mut self, msg: Value) {
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Creates `d` with `text`; the reply.
    pub async fn create(&mut self, d: &str, text: &str) -> Value {
        self.seq += 1;
        let seq = self.seq;
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": null, "seq": seq, "x": {},
            "create": {"type": "rich-text", "data": [{"insert": text}]}}),
        )
        .await;
        self.recv().await
    }

    /// Submits an insert at the start of `d` at version `v`; the reply.
    pub async fn insert(&mut self, d: &str, v: u64, text: &str) -> Value {
        self.seq += 1;
        let seq = self.seq;
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": v, "seq": seq, "x": {},
            "op": [{"insert": text}]}),
        )
        .await;
        self.recv().await
    }

    /// Submits an insert like [`Editor::insert`]; `None` when the socket
    /// failed or closed instead of answering.
    pub async fn insert_raw(&mut self, d: &str, v: u64, text: &str) -> Option<Value> {
        self.seq += 1;
        let seq = self.seq;
        let msg = json!({"a": "op", "c": "examples", "d": d, "v": v, "seq": seq, "x": {},
            "op": [{"insert": text}]});
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .ok()?;
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    let reply: Value = serde_json::from_str(t.as_str()).ok()?;
                    if reply["a"] == "op" && reply["seq"] == seq {
                        return Some(reply);
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Submits a delete of `n` units at the start of `d`; the reply.
    pub async fn delete(&mut self, d: &str, v: u64, n: usize) -> Value {
        self.seq += 1;
        let seq = self.seq;
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": v, "seq": seq, "x": {},
            "op": [{"delete": n}]}),
        )
        .await;
        self.recv().await
    }

    /// Reads whatever is queued until the server ends the socket; false if
    /// it is still open after `limit`.
    pub async fn drains_to_close(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// `(version, text)` of `d`.
    pub async fn fetch(&mut self, d: &str) -> (u64, String) {
        self.send(json!({"a": "f", "c": "examples", "d": d})).await;
        let reply = self.recv().await;
        assert_eq!(reply["a"], "f", "{reply}");
        let v = reply["data"]["v"].as_u64().expect("a version");
        let text = reply["data"]["data"]["ops"]
            .as_array()
            .map(|ops| {
                ops.iter()
                    .filter_map(|op| op["insert"].as_str())
                    .collect::<String>()
            })
            .unwrap_or_default();
        (v, text)
    }
}

/// Is `reply` the acknowledgement of an op?
pub fn is_ack(reply: &Value) -> bool {
    reply["a"] == "op" && reply.get("error").is_none() && reply.get("op").is_none()
}

/// A raw Socket.IO client over WebSocket.
pub struct Drawer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
}

impl Drawer {
    pub async fn connect(addr: &str) -> Drawer {
        let (ws, _) = connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"))
            .await
            .expect("socket.io websocket connects");
        let mut d = Drawer {
            ws,
            id: String::new(),
        };
        let open = d.next_text().await;
        assert!(open.starts_with('0'), "{open}");
        d.ws.send(Message::Text("40".into())).await.expect("send");
        let connect = d.next_text().await;
        let info: Value = serde_json::from_str(connect.strip_prefix("40").expect("40{sid}"))
            .expect("connect JSON");
        d.id = info["sid"].as_str().expect("sid").to_string();
        d
    }

    /// The next text frame, answering pings.
    pub async fn next_text(&mut self) -> String {
        self.next_text_within(WAIT).await.expect("a frame in time")
    }

    /// The next text frame within `limit`, answering pings; `None` when
    /// none came.
    pub async fn next_text_within(&mut self, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
                .expect("the socket is open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                if t.as_str() == "2" {
                    self.ws.send(Message::Text("3".into())).await.expect("pong");
                    continue;
                }
                return Some(t.to_string());
            }
        }
    }

    /// Frames that have already arrived (pings answered), without waiting.
    pub async fn ready(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::ZERO, self.ws.next()).await {
            if let Message::Text(t) = msg {
                if t.as_str() == "2" {
                    self.ws.send(Message::Text("3".into())).await.expect("pong");
                } else {
                    out.push(t.to_string());
                }
            }
        }
        out
    }

    /// The next event named `name`'s argument.
    pub async fn expect(&mut self, name: &str) -> Value {
        loop {
            let text = self.next_text().await;
            if let Some(body) = text.strip_prefix("42") {
                let v: Value = serde_json::from_str(body).expect("event JSON");
                if v[0] == name {
                    return v[1].clone();
                }
            }
        }
    }

    pub async fn emit(&mut self, name: &str, arg: Value) {
        let frame = format!("42{}", json!([name, arg]));
        self.ws
            .send(Message::Text(frame.into()))
            .await
            .expect("send");
    }

    pub async fn mv(&mut self, x: f64, y: f64, drawing: bool) {
        self.emit("mousemove", json!({"x": x, "y": y, "drawing": drawing}))
            .await;
    }
}

/// Opens a `/login` stream and reads it until `pick` takes an event; the
/// stream is closed again.
async fn first_login_event<T>(url: &str, mut pick: impl FnMut(&ParsedEvent) -> Option<T>) -> T {
    let mut res = reqwest::Client::new()
        .get(format!("{url}/login"))
        .send()
        .await
        .expect("login answers");
    let mut parser = Parser::new();
    loop {
        let chunk = tokio::time::timeout(WAIT, res.chunk())
            .await
            .expect("the event in time")
            .expect("the stream reads")
            .expect("the stream is open");
        if let Some(found) = parser.feed(&chunk).iter().find_map(&mut pick) {
            return found;
        }
    }
}

/// A Q&A identity: the id from a `/login` stream.
pub async fn qa_user(url: &str) -> String {
    first_login_event(url, |e| {
        (e.event == qa::LOGIN_EVENT).then(|| serde_json::from_str(&e.data).expect("a JSON string"))
    })
    .await
}

/// The questions on the board, from a fresh `/login` stream's snapshot.
pub async fn qa_questions(url: &str) -> Vec<String> {
    first_login_event(url, |e| match serde_json::from_str(&e.data) {
        Ok(qa::Message::Questions { questions, .. }) if e.event == "message" => {
            Some(questions.0.into_iter().map(|(q, _)| q).collect())
        }
        _ => None,
    })
    .await
}

/// `POST /askquestion/Q` as `user`: the status and body.
pub async fn ask(url: &str, user: &str, q: &str) -> (u16, String) {
    let path: String =
        percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).collect();
    let res = reqwest::Client::new()
        .post(format!("{url}/askquestion/{path}"))
        .header(qa::USER_HEADER, user)
        .timeout(WAIT)
        .send()
        .await
        .expect("ask answers");
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

/// Files in `dir` (for messages).
pub fn listing(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!("{} ({len} B)", e.file_name().to_string_lossy())
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
