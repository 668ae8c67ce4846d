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
use std::collections::{HashMap, VecDeque};

use rt_protocol::delta::{Delta, DeltaError, Document, transform_presence};
use rt_protocol::sharedb::RICH_TEXT_URI;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::backoff::Backoff;
use super::{ConnState, Endpoint, NetEvent, Transport};

/// Messages the UI may queue for the socket at most.
const SEND_QUEUE: usize = 256;
/// Committed ops remembered to bring late remote presence up to date.
const HISTORY: usize = 200;

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
    /// Other users' selections changed.
    Presence,
}

#[derive(Debug, Clone)]
struct InFlight {
    op: Delta,
    seq: u64,
    src: String,
}

/// Another user's selection, in server coordinates at version `v`.
#[derive(Debug, Clone, PartialEq)]
struct RemotePresence {
    p: Value,
    v: u64,
    pv: u64,
    src: String,
}

/// Another user's selection in local coordinates (UTF-16 units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCursor {
    pub id: String,
    pub name: String,
    pub index: usize,
    pub length: usize,
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
    /// Local edits in the op in flight and in the pending op.
    inflight_edits: usize,
    pending_edits: usize,
    open: bool,
    /// Our presence: id, next pv, the range to publish and whether it is
    /// still to be sent.
    presence_id: String,
    pv: u64,
    local: Value,
    presence_dirty: bool,
    remote: HashMap<String, RemotePresence>,
    /// Committed ops (version, op, src), for late remote presence.
    history: VecDeque<(u64, Delta, String)>,
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
            inflight_edits: 0,
            pending_edits: 0,
            open: false,
            presence_id: format!("tui-{:016x}", rand_id()),
            pv: 0,
            local: Value::Null,
            presence_dirty: false,
            remote: HashMap::new(),
            history: VecDeque::new(),
        }
    }

    fn channel(&self) -> String {
        format!("{}.{}", self.collection, self.id)
    }

    /// Publishes our selection (UTF-16 units of the local copy) with `name`.
    /// It goes out when no edit is in flight, as ShareDB clients do.
    pub fn set_presence(&mut self, index: usize, length: usize, name: &str) -> Vec<Value> {
        let p = json!({"index": index, "length": length, "name": name});
        if p != self.local {
            self.local = p;
            self.presence_dirty = true;
        }
        self.flush_presence()
    }

    fn flush_presence(&mut self) -> Vec<Value> {
        if !self.presence_dirty || self.has_pending() || !self.is_live() {
            return Vec::new();
        }
        self.presence_dirty = false;
        let pv = self.pv;
        self.pv += 1;
        vec![json!({
            "a": "p", "ch": self.channel(), "id": self.presence_id, "p": self.local, "pv": pv,
            "c": self.collection, "d": self.id, "v": self.version, "t": RICH_TEXT_URI,
        })]
    }

    /// Other users' selections, moved into local coordinates.
    pub fn remote_cursors(&self) -> Vec<RemoteCursor> {
        let mut out: Vec<RemoteCursor> = self
            .remote
            .iter()
            .filter(|(_, r)| Some(r.v) == self.version)
            .filter_map(|(id, r)| {
                let mut p = r.p.clone();
                for op in self
                    .inflight
                    .iter()
                    .map(|f| &f.op)
                    .chain(self.pending.iter())
                {
                    p = transform_presence(&p, op, false).ok()?;
                }
                Some(RemoteCursor {
                    id: id.clone(),
                    name: p["name"].as_str().unwrap_or("someone").to_string(),
                    index: p["index"].as_u64()? as usize,
                    length: p["length"].as_u64().unwrap_or(0) as usize,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
        out
    }

    /// Everyone else with a selection in the document (any version), as
    /// (presence id, name), sorted by name.
    pub fn online(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .remote
            .iter()
            .filter(|(_, r)| !r.p.is_null())
            .map(|(id, r)| {
                let name = r.p["name"].as_str().unwrap_or("someone").to_string();
                (id.clone(), name)
            })
            .collect();
        out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        out
    }

    /// Remembers a committed op and moves remote presence over it.
    fn record(&mut self, v: u64, op: &Delta, src: &str) {
        self.history.push_back((v, op.clone(), src.to_string()));
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        for r in self.remote.values_mut() {
            if r.v == v {
                r.p = transform_presence(&r.p, op, r.src == src).unwrap_or(Value::Null);
                r.v = v + 1;
            }
        }
    }

    fn on_presence(&mut self, msg: &Value) -> bool {
        let (Some(id), Some(pv)) = (msg["id"].as_str(), msg["pv"].as_u64()) else {
            return false;
        };
        if msg["ch"] != self.channel().as_str() || id == self.presence_id {
            return false;
        }
        if self.remote.get(id).is_some_and(|r| r.pv > pv) {
            return false;
        }
        if msg["p"].is_null() {
            return self.remote.remove(id).is_some();
        }
        let mut r = RemotePresence {
            p: msg["p"].clone(),
            v: msg["v"].as_u64().unwrap_or(0),
            pv,
            src: msg["src"].as_str().unwrap_or("").to_string(),
        };
        for (v, op, src) in &self.history {
            if *v == r.v {
                r.p = transform_presence(&r.p, op, *src == r.src).unwrap_or(Value::Null);
                r.v += 1;
            }
        }
        self.remote.insert(id.to_string(), r);
        true
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

    /// How many local edits the server has not acknowledged yet.
    pub fn pending_edits(&self) -> usize {
        self.inflight_edits + self.pending_edits
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
        self.remote.clear();
        self.presence_dirty = !self.local.is_null();
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
        self.pending_edits += 1;
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
        self.inflight_edits = std::mem::take(&mut self.pending_edits);
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
        self.inflight_edits = 0;
        self.pending_edits = 0;
        Ok(())
    }

    /// A server message: what to send back, and what changed.
    pub fn on_message(&mut self, msg: &Value) -> (Vec<Value>, Option<DocChange>) {
        let mine = msg["d"] == self.id.as_str() && msg["c"] == self.collection.as_str();
        match msg["a"].as_str() {
            Some("hs") => {
                self.src = msg["id"].as_str().map(str::to_string);
                let sub = json!({"a": "s", "c": self.collection, "d": self.id, "v": self.version});
                let presence = json!({"a": "ps", "ch": self.channel(), "seq": 1});
                (vec![sub, presence], None)
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
                let mut out = if msg["a"] == "s" && self.inflight.is_some() {
                    self.send_inflight()
                } else {
                    self.flush()
                };
                out.extend(self.flush_presence());
                (out, reset)
            }
            Some("op") if mine => self.on_op(msg),
            Some("p") if msg.get("error").is_none() => {
                let changed = self.on_presence(msg);
                (Vec::new(), changed.then_some(DocChange::Presence))
            }
            Some("pr") if msg["ch"] == self.channel().as_str() => {
                self.presence_dirty = !self.local.is_null();
                (self.flush_presence(), None)
            }
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
        // Our own selection, not yet sent or not, follows the text.
        if !self.local.is_null() {
            self.local = transform_presence(&self.local, &remote, false).unwrap_or(Value::Null);
        }
        if let Ok(server_op) = ops_of(op) {
            let src = msg["src"].as_str().unwrap_or("").to_string();
            self.record(version, &server_op, &src);
        }
        self.version = Some(version + 1);
        match applied {
            Some(Ok(())) => (Vec::new(), Some(DocChange::Remote(remote))),
            _ => (self.refetch(), None),
        }
    }

    fn acked(&mut self) -> (Vec<Value>, Option<DocChange>) {
        if let (Some(v), Some(f)) = (self.version, self.inflight.take()) {
            self.record(v, &f.op, &f.src);
        }
        self.inflight_edits = 0;
        self.version = self.version.map(|v| v + 1);
        let mut out = self.flush();
        out.extend(self.flush_presence());
        (out, Some(DocChange::Acked))
    }
}

/// A random id for our presence (no shared state: clock and address bits).
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
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
    /// The server (`http://host:port`, with its token if it has one).
    pub base_url: Endpoint,
    /// Other nodes of the same cluster, tried in turn when the current one
    /// cannot be reached or its connection ends (empty: always `base_url`).
    /// The session resends its unacknowledged edits to whichever answers,
    /// under their original src and seq, so none is lost or doubled.
    pub fallbacks: Vec<Endpoint>,
}

impl DocClientConfig {
    /// One server, no failover.
    pub fn single(base_url: Endpoint) -> DocClientConfig {
        DocClientConfig {
            base_url,
            fallbacks: Vec::new(),
        }
    }
}

/// The WebSocket URL of the editor's endpoint for an `http://` (`ws://`)
/// or `https://` (`wss://`) base URL.
pub fn ws_url(base: &str) -> String {
    match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{}/", rest.trim_end_matches('/')),
        None => {
            let rest = base.strip_prefix("http://").unwrap_or(base);
            format!("ws://{}/", rest.trim_end_matches('/'))
        }
    }
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
    let endpoints: Vec<Endpoint> = std::iter::once(config.base_url)
        .chain(config.fallbacks)
        .collect();
    let mut at = 0;
    let mut backoff = Backoff::default();
    loop {
        let endpoint = &endpoints[at];
        let url = ws_url(endpoint.base());
        // Whatever happens to this connection, the next attempt goes to the
        // next node.
        at = (at + 1) % endpoints.len();
        let _ = events
            .send(NetEvent::State(Transport::Doc, ConnState::Connecting))
            .await;
        match endpoint.ws_connect(&url, None).await {
            Ok(ws) => {
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
    fn a_remote_op_is_transformed_against_the_op_in_flight_and_the_pending_one() {
        let mut s = live("abcd\n", 1);
        // In flight: X after a. Pending: Y after c (in local coordinates).
        s.submit(delta(json!([{"retain": 1}, {"insert": "X"}])))
            .unwrap();
        assert!(
            s.submit(delta(json!([{"retain": 4}, {"insert": "Y"}])))
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.pending_edits(), 2);
        assert_eq!(s.text(), "aXbcYd\n");
        // Someone deleted b and inserted R before d, against v1.
        let (_, change) = s.on_message(&json!({"a": "op", "c": "examples", "d": "t",
            "src": "other", "seq": 1, "v": 1,
            "op": {"ops": [{"retain": 1}, {"delete": 1}, {"retain": 1}, {"insert": "R"}]}}));
        assert_eq!(
            change,
            Some(DocChange::Remote(delta(
                json!([{"retain": 2}, {"delete": 1}, {"retain": 1}, {"insert": "R"}])
            )))
        );
        assert_eq!(s.text(), "aXcRYd\n");
        // The ack of X lets the transformed pending op go, against v3.
        let (out, _) = s.on_message(
            &json!({"a": "op", "c": "examples", "d": "t", "src": "me", "seq": 1, "v": 2}),
        );
        assert_eq!(s.pending_edits(), 1);
        assert_eq!(out[0]["v"], 3);
        assert_eq!(out[0]["seq"], 2);
        assert_eq!(
            out[0]["op"],
            json!({"ops": [{"retain": 4}, {"insert": "Y"}]})
        );
        s.on_message(&json!({"a": "op", "c": "examples", "d": "t", "src": "me", "seq": 2, "v": 3}));
        assert_eq!(s.pending_edits(), 0);
        assert_eq!(s.version(), Some(4));
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
        assert_eq!(ws_url("https://h:1"), "wss://h:1/");
    }
}
