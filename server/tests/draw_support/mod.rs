//! A Socket.IO client on the WebSocket transport for the drawing board's
//! tests (raw Engine.IO v4 / Socket.IO v5 through `rt_protocol::engineio`).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::draw::CanvasPart;
use rt_protocol::engineio::{EnginePacket, SocketKind, SocketPacket, event_frame};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(400);

/// A Socket.IO client on the WebSocket transport.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub id: String,
    /// Events read while looking for another one.
    pub seen: VecDeque<(String, Vec<Value>)>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let ws_url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            url.replace("http://", "ws://")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("websocket connects");
        let open = next_text(&mut ws).await;
        assert!(
            matches!(EnginePacket::decode(&open), Ok(EnginePacket::Open(_))),
            "first frame {open}"
        );
        ws.send(Message::text("40")).await.unwrap();
        let m = loop {
            let frame = next_text(&mut ws).await;
            match EnginePacket::decode(&frame).unwrap() {
                EnginePacket::Message(m) => break m,
                EnginePacket::Ping(d) => ws
                    .send(Message::text(EnginePacket::Pong(d).encode()))
                    .await
                    .unwrap(),
                other => panic!("expected CONNECT, got {other:?}"),
            }
        };
        let p = SocketPacket::decode(&m).unwrap();
        assert_eq!(p.kind, SocketKind::Connect);
        let id = p.data.unwrap()["sid"].as_str().unwrap().to_string();
        Client {
            ws,
            id,
            seen: VecDeque::new(),
        }
    }

    pub async fn emit(&mut self, name: &str, args: Vec<Value>) {
        self.ws
            .send(Message::text(event_frame(name, args)))
            .await
            .unwrap();
    }

    pub async fn mv(&mut self, x: f64, y: f64, drawing: bool) {
        self.emit(
            "mousemove",
            vec![json!({"x": x, "y": y, "drawing": drawing})],
        )
        .await;
    }

    /// The next event from the server (answering pings on the way), or None
    /// after `timeout`.
    pub async fn read_event(&mut self, timeout: Duration) -> Option<(String, Vec<Value>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            let Message::Text(text) = frame.expect("websocket frame") else {
                continue;
            };
            match EnginePacket::decode(&text).expect("engine.io packet") {
                EnginePacket::Ping(d) => {
                    self.ws
                        .send(Message::text(EnginePacket::Pong(d).encode()))
                        .await
                        .unwrap();
                }
                EnginePacket::Message(m) => {
                    let p = SocketPacket::decode(&m).expect("socket.io packet");
                    if let Some((name, args)) = p.as_event() {
                        return Some((name.to_string(), args.to_vec()));
                    }
                }
                EnginePacket::Close => return None,
                _ => {}
            }
        }
    }

    /// Waits for event `name` (others are kept for later) and returns its
    /// first argument.
    pub async fn expect(&mut self, name: &str) -> Value {
        if let Some(i) = self.seen.iter().position(|(n, _)| n == name) {
            let (_, args) = self.seen.remove(i).unwrap();
            return args.into_iter().next().unwrap_or(Value::Null);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some((n, args)) = self.read_event(left).await else {
                panic!("no {name:?} event; saw {:?}", self.seen)
            };
            if n == name {
                return args.into_iter().next().unwrap_or(Value::Null);
            }
            self.seen.push_back((n, args));
        }
    }

    /// Asserts no `name` event arrives within [`QUIET`].
    pub async fn expect_none(&mut self, name: &str) {
        assert!(
            !self.seen.iter().any(|(n, _)| n == name),
            "unexpected {name}: {:?}",
            self.seen
        );
        let deadline = tokio::time::Instant::now() + QUIET;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_event(left).await {
                None => return,
                Some((n, args)) if n == name => panic!("unexpected {name}: {args:?}"),
                Some(other) => self.seen.push_back(other),
            }
        }
    }

    /// Waits for the server's Socket.IO DISCONNECT (`41`).
    pub async fn expect_disconnect(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a DISCONNECT in time")
                .expect("open websocket")
                .expect("websocket frame");
            if let Message::Text(text) = frame
                && let Ok(EnginePacket::Message(m)) = EnginePacket::decode(&text)
                && SocketPacket::decode(&m).unwrap().kind == SocketKind::Disconnect
            {
                return;
            }
        }
    }

    /// Reads every `canvas` part of the snapshot.
    pub async fn canvas(&mut self) -> Vec<CanvasPart> {
        let first: CanvasPart = serde_json::from_value(self.expect("canvas").await).unwrap();
        let mut parts = vec![first];
        while parts.len() < parts[0].parts {
            parts.push(serde_json::from_value(self.expect("canvas").await).unwrap());
        }
        parts
    }

    pub async fn close(mut self) {
        let _ = self.ws.send(Message::text("41")).await;
        let _ = self.ws.close(None).await;
    }
}

pub async fn next_text(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open websocket")
            .expect("websocket frame");
        if let Message::Text(t) = msg {
            return t.to_string();
        }
    }
}

/// A connected client that has read its snapshot and its `peers` list.
pub async fn joined(url: &str) -> Client {
    let mut c = Client::connect(url).await;
    c.canvas().await;
    c.expect("peers").await;
    c
}
