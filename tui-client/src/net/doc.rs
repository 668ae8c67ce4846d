//! The collaborative document over ShareDB (protocol 1.2, rich-text).
//!
//! [`DocSession`] is the client's OT state machine, pure and synchronous: it
//! turns server messages and local edits into messages to send, with the same
//! rules as `sharedb/lib/client` (one op in flight, later edits composed into
//! one pending op, remote ops transformed against both, the op in flight
//! resent under the same src and seq after a reconnect). The pane owns it, so
//! local edits and remote ops are ordered by the UI loop alone.
//!
//! [`DocClient`] is the network task: it owns the WebSocket, reconnects with
//! backoff, forwards every received message to the UI and writes what the UI
//! sends.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::delta::{Delta, DeltaError, Document};
use rt_protocol::sharedb::RICH_TEXT_URI;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::backoff::Backoff;
use super::{ConnState, NetEvent, Transport};

/// Messages the UI may queue for the socket at most.
const SEND_QUEUE: usize = 256;

/// What the document's network task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DocEvent {
    /// A new WebSocket is open: the session must handshake.
    Open,
    /// The WebSocket ended.
    Closed,
    /// A message from the server.
    Message(Value),
}

/// What changed in the document after a server message.
#[derive(Debug, Clone, PartialEq)]
pub enum DocChange {
    /// A whole new snapshot (first subscribe, or after a rollback).
    Reset,
    /// A remote op, already transformed to and applied on the local copy.
    Remote(Delta),
    /// The server accepted our op in flight.
    Acked,
    /// The server refused something (the session refetches by itself).
    Error(String),
}

#[derive(Debug, Clone)]
struct InFlight {
    op: Delta,
    seq: u64,
    src: String,
}

/// One subscribed document: the client side of ShareDB's OT.
#[derive(Debug, Clone)]
pub struct DocSession {
    pub collection: String,
    pub id: String,
    src: Option<String>,
    seq: u64,
    version: Option<u64>,
    /// The server's document plus the op in flight and the pending op.
    doc: Option<Document>,
    inflight: Option<InFlight>,
    pending: Option<Delta>,
    open: bool,
}

fn ops_of(v: &Value) -> Result<Delta, DeltaError> {
    Delta::from_value(v)
}

impl DocSession {
    /// A session for `collection/id`, not yet connected.
    pub fn new(collection: impl Into<String>, id: impl Into<String>) -> DocSession {
        DocSession {
            collection: collection.into(),
            id: id.into(),
            src: None,
            seq: 0,
            version: None,
            doc: None,
            inflight: None,
            pending: None,
            open: false,
        }
    }

    /// The server version the local copy builds on.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The local copy (`None` before the first snapshot, or if the document
    /// does not exist).
    pub fn document(&self) -> Option<&Document> {
        self.doc.as_ref()
    }

    /// The local text (embeds as U+FFFC).
    pub fn text(&self) -> String {
        self.doc.as_ref().map(Document::text).unwrap_or_default()
    }

    /// True while local edits wait for the server.
    pub fn has_pending(&self) -> bool {
        self.inflight.is_some() || self.pending.is_some()
    }

    /// True once subscribed on the current connection.
    pub fn is_live(&self) -> bool {
        self.open && self.version.is_some()
    }

    /// A new socket: handshake (keeping our id, so resends keep their src).
    pub fn on_open(&mut self) -> Vec<Value> {
        self.open = true;
        vec![json!({"a": "hs", "id": self.src, "protocol": 1, "protocolMinor": 2})]
    }

    /// The socket ended.
    pub fn on_close(&mut self) {
        self.open = false;
    }

    /// A local edit, in the coordinates of [`DocSession::document`]. It is
    /// applied locally at once and sent when nothing else is in flight.
    pub fn submit(&mut self, op: Delta) -> Result<Vec<Value>, DeltaError> {
        let Some(doc) = self.doc.as_mut() else {
            return Ok(Vec::new());
        };
        if op.is_empty() {
            return Ok(Vec::new());
        }
        doc.apply(&op)?;
        self.pending = Some(match self.pending.take() {
            Some(p) => p.compose(&op),
            None => op,
        });
        Ok(self.flush())
    }

    fn flush(&mut self) -> Vec<Value> {
        if self.inflight.is_some() || !self.is_live() {
            return Vec::new();
        }
        let (Some(op), Some(src)) = (self.pending.take(), self.src.clone()) else {
            return Vec::new();
        };
        self.seq += 1;
        self.inflight = Some(InFlight {
            op,
            seq: self.seq,
            src,
        });
        self.send_inflight()
    }

    fn send_inflight(&self) -> Vec<Value> {
        match &self.inflight {
            Some(f) => vec![json!({
                "a": "op", "c": self.collection, "d": self.id, "v": self.version,
                "src": f.src, "seq": f.seq, "op": f.op.to_value(),
            })],
            None => Vec::new(),
        }
    }

    fn refetch(&self) -> Vec<Value> {
        vec![json!({"a": "f", "c": self.collection, "d": self.id})]
    }

    fn snapshot(&mut self, s: &Value) -> Result<(), DeltaError> {
        self.version = s["v"].as_u64();
        self.doc = match s.get("type") {
            Some(Value::String(t)) if t == RICH_TEXT_URI || t == "rich-text" => {
                Some(Document::from_delta(&ops_of(&s["data"])?)?)
            }
            _ => None,
        };
        self.inflight = None;
        self.pending = None;
        Ok(())
    }

    /// A server message: what to send back, and what changed.
    pub fn on_message(&mut self, msg: &Value) -> (Vec<Value>, Option<DocChange>) {
        let mine = msg["d"] == self.id.as_str() && msg["c"] == self.collection.as_str();
        match msg["a"].as_str() {
            Some("hs") => {
                self.src = msg["id"].as_str().map(str::to_string);
                let sub = json!({"a": "s", "c": self.collection, "d": self.id, "v": self.version});
                (vec![sub], None)
            }
            Some("s") | Some("f") if mine => {
                if let Some(e) = msg.get("error") {
                    return (Vec::new(), Some(DocChange::Error(describe(e))));
                }
                let reset = match msg.get("data") {
                    Some(s) => match self.snapshot(s) {
                        Ok(()) => Some(DocChange::Reset),
                        Err(e) => Some(DocChange::Error(e.to_string())),
                    },
                    None => None,
                };
                // After a (re)subscribe the op in flight goes again.
                let out = if msg["a"] == "s" && self.inflight.is_some() {
                    self.send_inflight()
                } else {
                    self.flush()
                };
                (out, reset)
            }
            Some("op") if mine => self.on_op(msg),
            _ => match msg.get("error") {
                Some(e) => (Vec::new(), Some(DocChange::Error(describe(e)))),
                None => (Vec::new(), None),
            },
        }
    }

    fn on_op(&mut self, msg: &Value) -> (Vec<Value>, Option<DocChange>) {
        if let Some(e) = msg.get("error") {
            // rich-text cannot invert: start over from the server's copy.
            return (self.refetch(), Some(DocChange::Error(describe(e))));
        }
        let Some(version) = self.version else {
            return (Vec::new(), None);
        };
        let v = msg["v"].as_u64().unwrap_or(u64::MAX);
        let own = self
            .inflight
            .as_ref()
            .is_some_and(|f| msg["src"] == f.src.as_str() && msg["seq"].as_u64() == Some(f.seq));
        let bare =
            msg.get("op").is_none() && msg.get("create").is_none() && msg.get("del").is_none();
        if own && bare {
            if v != version {
                return (self.refetch(), None);
            }
            return self.acked();
        }
        if v < version {
            return (Vec::new(), None);
        }
        if v > version {
            let catch_up = json!({"a": "f", "c": self.collection, "d": self.id, "v": version});
            return (vec![catch_up], None);
        }
        if own {
            return self.acked();
        }
        let Some(op) = msg.get("op") else {
            // A create or delete by someone else: take the server's copy.
            return (self.refetch(), None);
        };
        let Ok(mut remote) = ops_of(op) else {
            return (self.refetch(), None);
        };
        if let Some(f) = self.inflight.as_mut() {
            let mine = remote.transform(&f.op, true);
            remote = f.op.transform(&remote, false);
            f.op = mine;
        }
        if let Some(p) = self.pending.take() {
            let mine = remote.transform(&p, true);
            remote = p.transform(&remote, false);
            self.pending = Some(mine);
        }
        let applied = self.doc.as_mut().map(|d| d.apply(&remote));
        self.version = Some(version + 1);
        match applied {
            Some(Ok(())) => (Vec::new(), Some(DocChange::Remote(remote))),
            _ => (self.refetch(), None),
        }
    }

    fn acked(&mut self) -> (Vec<Value>, Option<DocChange>) {
        self.version = self.version.map(|v| v + 1);
        self.inflight = None;
        (self.flush(), Some(DocChange::Acked))
    }
}

fn describe(e: &Value) -> String {
    format!(
        "{}: {}",
        e["code"].as_str().unwrap_or("error"),
        e["message"].as_str().unwrap_or("")
    )
}

/// Where the document client connects.
#[derive(Debug, Clone)]
pub struct DocClientConfig {
    /// Server base URL, `http://host:port`.
    pub base_url: String,
}

/// The WebSocket URL of the editor's endpoint for an `http://` base URL.
pub fn ws_url(base: &str) -> String {
    let rest = base.strip_prefix("http://").unwrap_or(base);
    format!("ws://{}/", rest.trim_end_matches('/'))
}

/// Handle to the document's network task; dropping it stops the task.
pub struct DocClient {
    tx: mpsc::Sender<Value>,
    task: JoinHandle<()>,
}

impl DocClient {
    /// Starts the task; it reports to `events` as [`Transport::Doc`].
    pub fn spawn(config: DocClientConfig, events: mpsc::Sender<NetEvent>) -> DocClient {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let task = tokio::spawn(run(config, rx, events));
        DocClient { tx, task }
    }

    /// Queues messages for the server (dropped while disconnected: the
    /// session resends what matters after the next handshake).
    pub fn send(&self, msgs: Vec<Value>) {
        for m in msgs {
            if self.tx.try_send(m).is_err() {
                tracing::warn!("document send queue full; message dropped");
            }
        }
    }
}

impl Drop for DocClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    config: DocClientConfig,
    mut rx: mpsc::Receiver<Value>,
    events: mpsc::Sender<NetEvent>,
) {
    let url = ws_url(&config.base_url);
    let mut backoff = Backoff::default();
    loop {
        let _ = events
            .send(NetEvent::State(Transport::Doc, ConnState::Connecting))
            .await;
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => {
                backoff.reset();
                // Anything queued for the previous socket is stale.
                while rx.try_recv().is_ok() {}
                let _ = events
                    .send(NetEvent::State(Transport::Doc, ConnState::Connected))
                    .await;
                let _ = events.send(NetEvent::Doc(DocEvent::Open)).await;
                let (mut sink, mut stream) = ws.split();
                loop {
                    tokio::select! {
                        msg = stream.next() => match msg {
                            Some(Ok(Message::Text(t))) => {
                                if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                                    let _ = events.send(NetEvent::Doc(DocEvent::Message(v))).await;
                                }
                            }
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                            Some(Ok(_)) => {}
                        },
                        out = rx.recv() => match out {
                            Some(v) => {
                                if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                                    break;
                                }
                            }
                            None => return,
                        },
                    }
                }
                let _ = events.send(NetEvent::Doc(DocEvent::Closed)).await;
            }
            Err(e) => tracing::debug!(error = %e, "document connection failed"),
        }
        let delay = backoff.next_delay();
        let _ = events
            .send(NetEvent::State(
                Transport::Doc,
                ConnState::Retrying {
                    at: Instant::now() + delay,
                    error: format!("cannot reach {url}"),
                },
            ))
            .await;
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(v: Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    /// A session subscribed to a doc holding `text` at version `v`.
    fn live(text: &str, v: u64) -> DocSession {
        let mut s = DocSession::new("examples", "t");
        assert_eq!(s.on_open()[0]["a"], "hs");
        let (out, _) = s.on_message(&json!({"a": "hs", "id": "me", "protocol": 1}));
        assert_eq!(
            out[0],
            json!({"a": "s", "c": "examples", "d": "t", "v": null})
        );
        let (out, change) = s.on_message(&json!({"a": "s", "c": "examples", "d": "t",
            "data": {"v": v, "type": RICH_TEXT_URI, "data": {"ops": [{"insert": text}]}}}));
        assert!(out.is_empty());
        assert_eq!(change, Some(DocChange::Reset));
        s
    }

    #[test]
    fn one_op_in_flight_and_later_edits_composed() {
        let mut s = live("ab\n", 3);
        let out = s.submit(delta(json!([{"insert": "x"}]))).unwrap();
        assert_eq!(out[0]["seq"], 1);
        assert_eq!(out[0]["v"], 3);
        assert_eq!(out[0]["src"], "me");
        assert!(
            s.submit(delta(json!([{"insert": "y"}])))
                .unwrap()
                .is_empty()
        );
        assert!(
            s.submit(delta(json!([{"insert": "z"}])))
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.text(), "zyxab\n");
        let (out, change) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "me", "seq": 1, "v": 3}),
        );
        assert_eq!(change, Some(DocChange::Acked));
        assert_eq!(out[0]["seq"], 2);
        assert_eq!(out[0]["v"], 4);
        assert_eq!(out[0]["op"], json!({"ops": [{"insert": "zy"}]}));
        assert_eq!(s.version(), Some(4));
    }

    #[test]
    fn remote_ops_are_transformed_against_local_ones() {
        let mut s = live("ab\n", 1);
        s.submit(delta(json!([{"retain": 1}, {"insert": "L"}])))
            .unwrap();
        // Someone else's insert at the same place, committed first.
        let (_, change) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "other",
            "seq": 7, "v": 1, "op": {"ops": [{"retain": 1}, {"insert": "R"}]}}),
        );
        assert_eq!(
            change,
            Some(DocChange::Remote(delta(
                json!([{"retain": 1}, {"insert": "R"}])
            )))
        );
        assert_eq!(s.text(), "aRLb\n");
        // Our ack arrives at the next version.
        let (_, change) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "me", "seq": 1, "v": 2}),
        );
        assert_eq!(change, Some(DocChange::Acked));
        assert_eq!(s.version(), Some(3));
        // Duplicates are ignored, gaps ask for the missing ops.
        let (out, change) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "x", "seq": 1, "v": 1, "op": []}),
        );
        assert!(out.is_empty() && change.is_none());
        let (out, _) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "x", "seq": 1, "v": 9, "op": []}),
        );
        assert_eq!(out[0], json!({"a": "f", "c": "examples", "d": "t", "v": 3}));
    }

    #[test]
    fn a_reconnect_resends_the_op_in_flight_with_the_same_src_and_seq() {
        let mut s = live("\n", 1);
        let first = s.submit(delta(json!([{"insert": "q"}]))).unwrap();
        s.on_close();
        assert!(!s.is_live() || !s.open);
        let hs = s.on_open();
        assert_eq!(hs[0]["id"], "me");
        let (out, _) = s.on_message(&json!({"a": "hs", "id": "me"}));
        assert_eq!(out[0]["v"], 1, "resubscribe from the known version");
        let (out, change) = s.on_message(&json!({"a": "s", "c": "examples", "d": "t"}));
        assert!(change.is_none());
        assert_eq!(out, first);
    }

    #[test]
    fn an_op_error_refetches_and_resets() {
        let mut s = live("\n", 1);
        s.submit(delta(json!([{"insert": "q"}]))).unwrap();
        let (out, change) = s.on_message(&json!({"a": "op", "c": "examples", "d": "t", "seq": 1,
            "error": {"code": "ERR_OT_OP_NOT_APPLIED", "message": "no"}}));
        assert!(
            matches!(change, Some(DocChange::Error(e)) if e.starts_with("ERR_OT_OP_NOT_APPLIED"))
        );
        assert_eq!(out[0], json!({"a": "f", "c": "examples", "d": "t"}));
        let (_, change) = s.on_message(&json!({"a": "f", "c": "examples", "d": "t",
            "data": {"v": 1, "type": RICH_TEXT_URI, "data": {"ops": [{"insert": "\n"}]}}}));
        assert_eq!(change, Some(DocChange::Reset));
        assert_eq!(s.text(), "\n");
        assert!(!s.has_pending());
    }

    #[test]
    fn ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/");
        assert_eq!(ws_url("http://h:1/"), "ws://h:1/");
    }
}
