//! The ShareDB client side the editor scenarios need: handshake, create,
//! subscribe, fetch, and one op in flight with the rich-text transform
//! rules of ShareDB's client (protocols.md §4.4), on the small WebSocket
//! client.

use std::time::Instant;

use rt_protocol::delta::{self, Delta, Document};
use serde_json::{Map, Value, json};

use super::net::Connector;
use super::ws::{Message, WsConn};

/// Collection of the bench's documents.
pub const COLLECTION: &str = "bench";

/// What one incoming message did to the client.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The in-flight op was acknowledged after this long.
    Acked(std::time::Duration),
    /// Another client's op was applied.
    Remote,
    /// Anything else (replies, presence, duplicates).
    Other,
}

/// A ShareDB connection editing one rich-text document.
#[derive(Debug)]
pub struct DocClient {
    pub conn: WsConn,
    /// This connection's `src` (from the handshake).
    pub src: String,
    pub doc_id: String,
    /// The document version the client is at.
    pub v: u64,
    /// The local copy, in-flight op included.
    pub doc: Document,
    inflight: Option<(u64, Delta, Instant)>,
    seq: u64,
}

impl DocClient {
    /// Connects to `/` and completes the handshake.
    pub async fn connect(connector: &Connector, doc_id: &str) -> Result<DocClient, String> {
        let mut conn = WsConn::connect(connector, "/")
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let hs = json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2});
        conn.send_text(hs.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let src = loop {
            let m = next_json(&mut conn).await?;
            if m.get("a").and_then(Value::as_str) == Some("hs") {
                check_error(&m)?;
                break m
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or("handshake without an id")?
                    .to_string();
            }
        };
        Ok(DocClient {
            conn,
            src,
            doc_id: doc_id.to_string(),
            v: 0,
            doc: Document::new(),
            inflight: None,
            seq: 0,
        })
    }

    /// Creates the document with `text` and waits for the ack.
    pub async fn create(&mut self, text: &str) -> Result<(), String> {
        self.seq += 1;
        let mut data = Delta::new();
        data.insert(text, None);
        let msg = json!({
            "a": "op", "c": COLLECTION, "d": self.doc_id, "v": null, "seq": self.seq, "x": {},
            "create": {"type": delta::TYPE_URI, "data": data.to_value()},
        });
        self.send(&msg).await?;
        loop {
            let m = next_json(&mut self.conn).await?;
            if m.get("a").and_then(Value::as_str) == Some("op") {
                check_error(&m)?;
                if m.get("seq").and_then(Value::as_u64) == Some(self.seq) {
                    return Ok(());
                }
            }
        }
    }

    /// Subscribes and takes the snapshot (`s`) or only fetches it (`f`).
    pub async fn load(&mut self, action: &str) -> Result<(), String> {
        let msg = json!({"a": action, "c": COLLECTION, "d": self.doc_id, "v": null});
        self.send(&msg).await?;
        loop {
            let m = next_json(&mut self.conn).await?;
            if m.get("a").and_then(Value::as_str) != Some(action) {
                continue;
            }
            check_error(&m)?;
            let data = m.get("data").ok_or("snapshot without data")?;
            self.v = data
                .get("v")
                .and_then(Value::as_u64)
                .ok_or("snapshot without v")?;
            let content = data.get("data").ok_or("the document does not exist")?;
            let delta = Delta::from_value(content).map_err(|e| format!("snapshot: {e}"))?;
            self.doc = Document::from_delta(&delta).map_err(|e| format!("snapshot: {e}"))?;
            return Ok(());
        }
    }

    /// Whether an op is waiting for its ack.
    pub fn in_flight(&self) -> bool {
        self.inflight.is_some()
    }

    /// Applies `op` locally and submits it; one op in flight at most.
    pub fn queue_submit(&mut self, op: Delta) -> Result<(), String> {
        if self.inflight.is_some() {
            return Err("an op is already in flight".into());
        }
        self.doc
            .apply(&op)
            .map_err(|e| format!("local apply: {e}"))?;
        self.seq += 1;
        let msg = json!({
            "a": "op", "c": COLLECTION, "d": self.doc_id, "v": self.v, "seq": self.seq,
            "x": {}, "op": op.ops_value(),
        });
        self.conn.queue_text(msg.to_string().as_bytes());
        self.inflight = Some((self.seq, op, Instant::now()));
        Ok(())
    }

    /// Handles one server message (already read).
    pub fn handle(&mut self, text: &[u8]) -> Result<Event, String> {
        let m: Map<String, Value> =
            serde_json::from_slice(text).map_err(|e| format!("bad JSON from the server: {e}"))?;
        check_error(&m)?;
        if m.get("a").and_then(Value::as_str) != Some("op") {
            return Ok(Event::Other);
        }
        let v = m.get("v").and_then(Value::as_u64).ok_or("op without v")?;
        let src = m.get("src").and_then(Value::as_str).unwrap_or("");
        let seq = m.get("seq").and_then(Value::as_u64);
        match m.get("op") {
            None if src == self.src => {
                let Some((want, _, sent)) = &self.inflight else {
                    return Ok(Event::Other);
                };
                if seq != Some(*want) {
                    return Err(format!("ack of seq {seq:?}, expected {want}"));
                }
                if v != self.v {
                    return Err(format!("ack at version {v}, client at {}", self.v));
                }
                let took = sent.elapsed();
                self.inflight = None;
                self.v += 1;
                Ok(Event::Acked(took))
            }
            None => Ok(Event::Other),
            Some(body) => {
                if v < self.v || src == self.src {
                    return Ok(Event::Other);
                }
                if v > self.v {
                    return Err(format!("op at version {v} skips ahead of {}", self.v));
                }
                let remote = Delta::from_value(body).map_err(|e| format!("remote op: {e}"))?;
                // ShareDB's transformX: the committed op goes first.
                let remote = match self.inflight.take() {
                    Some((seq, mine, sent)) => {
                        let rebased = remote.transform(&mine, true);
                        let theirs = mine.transform(&remote, false);
                        self.inflight = Some((seq, rebased, sent));
                        theirs
                    }
                    None => remote,
                };
                self.doc
                    .apply(&remote)
                    .map_err(|e| format!("remote apply: {e}"))?;
                self.v += 1;
                Ok(Event::Remote)
            }
        }
    }

    /// Reads until one message is handled.
    pub async fn next_event(&mut self) -> Result<Event, String> {
        let text = match self.conn.next().await.map_err(|e| e.to_string())? {
            Message::Text(t) => t,
            other => return Err(format!("unexpected {other:?}")),
        };
        self.handle(&text)
    }

    async fn send(&mut self, msg: &Value) -> Result<(), String> {
        self.conn
            .send_text(msg.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())
    }
}

/// The next text message as a JSON object.
async fn next_json(conn: &mut WsConn) -> Result<Map<String, Value>, String> {
    match conn.next().await.map_err(|e| e.to_string())? {
        Message::Text(t) => serde_json::from_slice(&t).map_err(|e| format!("bad JSON: {e}")),
        other => Err(format!("unexpected {other:?}")),
    }
}

fn check_error(m: &Map<String, Value>) -> Result<(), String> {
    match m.get("error") {
        Some(e) => Err(format!("server error: {e}")),
        None => Ok(()),
    }
}

/// A small xorshift generator: reproducible edits without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 { 0 } else { self.0 % n }
    }
}

/// A random keystroke on a document of `len` units that keeps its final
/// newline: an insert (60%) or a one-unit delete.
pub fn keystroke(rng: &mut Rng, len: usize) -> Delta {
    let body = len.saturating_sub(1) as u64;
    let mut d = Delta::new();
    if body == 0 || rng.below(10) < 6 {
        let at = rng.below(body + 1) as usize;
        let ch = (b'a' + rng.below(26) as u8) as char;
        d.retain(at, None).insert(ch.to_string(), None);
    } else {
        let at = rng.below(body) as usize;
        d.retain(at, None).delete(1);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystrokes_keep_the_final_newline() {
        let mut rng = Rng::new(7);
        let mut doc = Document::new();
        doc.apply(Delta::new().insert("\n", None)).unwrap();
        for _ in 0..5000 {
            let op = keystroke(&mut rng, doc.len_utf16());
            doc.apply(&op).unwrap();
            assert!(doc.text().ends_with('\n'));
        }
        assert!(doc.len_utf16() > 1);
    }
}
