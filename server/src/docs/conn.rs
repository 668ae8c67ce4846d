//! One editor WebSocket connection: a reader that serves the client's
//! requests in order, and a writer that drains the connection's queue,
//! joined by `select!`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rt_protocol::sharedb::{self, Bulk, ErrorCode, Frame, Request, ShareDbError};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::doc::{DocCmd, DocKey, ReadReply};
use super::outbox::{Outbound, Outbox};
use super::registry::Routes;
use crate::state::AppState;
use crate::stats::{App, Stats};

/// Close code for a client cut for falling behind (RFC 6455 "try again later").
const CLOSE_TOO_SLOW: u16 = 1013;
/// Close code when the server shuts down ("going away").
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a frame beyond the hard size cap ("message too big").
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a text frame that is not UTF-8 ("invalid frame payload").
const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code for other WebSocket protocol errors.
const CLOSE_PROTOCOL: u16 = 1002;
/// How long a close frame may take to go out after a failed read.
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);
/// Queued messages written together (one flush) at most.
const WRITE_BATCH: usize = 64;
/// Fields kept when echoing a frame that is too large to echo whole.
const ECHO_FIELDS: &[&str] = &["a", "c", "d", "v", "seq", "src", "ch", "id", "pv"];

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A fresh ShareDB client id: 32 hex characters, like ShareDB's.
fn fresh_src() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Serves one upgraded editor WebSocket until either side ends it or the
/// server shuts down (close 1001).
pub async fn serve_socket(socket: WebSocket, state: AppState) {
    let _open = state.stats.connect(App::Editor);
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let kick = CancellationToken::new();
    let (outbox, rx) = Outbox::new(
        id,
        state.config.docs.send_queue,
        kick.clone(),
        fresh_src().into(),
    );
    let (sink, stream) = socket.split();
    let mut conn = Conn {
        state: state.clone(),
        out: outbox,
        subscribed: HashSet::new(),
        routes: Routes::default(),
    };
    let writer = write_loop(sink, rx, kick, state.shutdown.clone(), state.stats.clone());
    tokio::pin!(writer);
    let failed = tokio::select! {
        _ = &mut writer => None,
        failure = conn.read_loop(stream) => failure,
    };
    if let Some((code, reason)) = failed {
        // Tell the client why before hanging up (bounded: it may not read).
        conn.out.push(Outbound::Close(code, reason));
        let _ = tokio::time::timeout(CLOSE_FLUSH, &mut writer).await;
    }
    conn.cleanup().await;
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    kick: CancellationToken,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }))
    };
    loop {
        let msg = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = sink.send(close(CLOSE_GOING_AWAY, "server shutting down")).await;
                return;
            }
            _ = kick.cancelled() => {
                let _ = sink.send(close(CLOSE_TOO_SLOW, "client too slow; reconnect")).await;
                return;
            }
            msg = rx.recv() => msg,
        };
        let send = async {
            // Everything already queued goes out in one write.
            let mut msg = msg;
            let mut frames = 0u64;
            let mut taken = 0;
            loop {
                taken += 1;
                match msg {
                    None => return Err(()),
                    Some(Outbound::Close(code, reason)) => {
                        stats.delivered(App::Editor, frames);
                        let _ = sink.send(close(code, reason)).await;
                        return Err(());
                    }
                    Some(Outbound::One(frame)) => {
                        frames += 1;
                        sink.feed(Message::Text(frame)).await.map_err(|_| ())?;
                    }
                    Some(Outbound::Many(many)) => {
                        frames += many.len() as u64;
                        for frame in many {
                            sink.feed(Message::Text(frame)).await.map_err(|_| ())?;
                        }
                    }
                }
                if taken == WRITE_BATCH {
                    break;
                }
                match rx.try_recv() {
                    Ok(next) => msg = Some(next),
                    Err(_) => break,
                }
            }
            stats.delivered(App::Editor, frames);
            sink.flush().await.map_err(|_| ())
        };
        // A send blocked on a client that does not read must not outlive a
        // cut or a shutdown: the close frame gets a moment, then the
        // connection is dropped.
        let interrupted = tokio::select! {
            r = send => match r {
                Ok(()) => continue,
                Err(()) => return,
            },
            _ = kick.cancelled() => close(CLOSE_TOO_SLOW, "client too slow; reconnect"),
            _ = shutdown.cancelled() => close(CLOSE_GOING_AWAY, "server shutting down"),
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, sink.send(interrupted)).await;
        return;
    }
}

/// The close code for a failed read. The WebSocket layer's errors are only
/// visible as text here, so they are told apart by their messages. Public
/// for the conformance echo endpoint (`server/examples/ws_echo.rs`).
pub fn read_failure(error: &str) -> (u16, &'static str) {
    tracing::debug!(error, "editor websocket read failed");
    if error.contains("too long") || error.contains("Space limit") {
        crate::metrics::refused("doc_max_frame_bytes");
        (CLOSE_TOO_BIG, "message too big (--doc-max-frame-bytes)")
    } else if error.contains("UTF-8") {
        (CLOSE_INVALID_DATA, "text frame is not valid UTF-8")
    } else {
        (CLOSE_PROTOCOL, "websocket protocol error")
    }
}

struct Conn {
    state: AppState,
    out: Outbox,
    subscribed: HashSet<DocKey>,
    routes: Routes,
}

impl Conn {
    /// Serves requests until the client closes (`None`) or the WebSocket
    /// layer fails (the close code and reason to send).
    async fn read_loop(
        &mut self,
        mut stream: SplitStream<WebSocket>,
    ) -> Option<(u16, &'static str)> {
        let max = self.state.config.docs.max_frame_bytes;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Text(text)) if text.len() > max => self.too_large(&text, max),
                Ok(Message::Text(text)) => self.handle_text(&text).await,
                Ok(Message::Binary(_)) => {
                    let err = ShareDbError::badly_formed(
                        "binary frames are not supported: send each message as JSON text",
                    );
                    self.out
                        .frame(serde_json::json!({"error": err.to_value()}).to_string());
                }
                // The reply to the client's close frame goes out on the
                // next read, which then ends the stream: returning now would
                // drop it unsent (and the client sees 1006, not a clean close).
                Ok(Message::Close(_)) => continue,
                Err(e) => return Some(read_failure(&e.to_string())),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
            }
        }
        None
    }

    fn too_large(&self, text: &str, max: usize) {
        crate::metrics::events_in(App::Editor, 1);
        crate::metrics::refused("doc_max_frame_bytes");
        let err = ShareDbError::badly_formed(format!(
            "the message is {} bytes, more than the limit of {max} (--doc-max-frame-bytes)",
            text.len()
        ));
        let reply = match sharedb::parse_frame(text) {
            Ok(frame) => {
                let trimmed: Map<String, Value> = frame
                    .raw
                    .into_iter()
                    .filter(|(k, _)| ECHO_FIELDS.contains(&k.as_str()))
                    .collect();
                sharedb::error_echo(&trimmed, &err)
            }
            Err(_) => serde_json::json!({"error": err.to_value()}).to_string(),
        };
        self.out.frame(reply);
    }

    fn reply_error(&self, frame: &Frame, err: &ShareDbError) {
        tracing::debug!(conn = self.out.id, error = %err, "editor request failed");
        self.out.frame(sharedb::error_echo(&frame.raw, err));
    }

    async fn handle_text(&mut self, text: &str) {
        crate::metrics::events_in(App::Editor, 1);
        let frame = match sharedb::parse_frame(text) {
            Ok(f) => f,
            Err(e) => {
                self.out.frame(sharedb::frame_error_reply(&e));
                return;
            }
        };
        let request = match sharedb::parse_request(&frame) {
            Ok(r) => r,
            Err(e) => return self.reply_error(&frame, &e),
        };
        if let Err(e) = self.handle(&frame, request).await {
            self.reply_error(&frame, &e);
        }
    }

    async fn handle(&mut self, frame: &Frame, request: Request) -> Result<(), ShareDbError> {
        let registry = self.state.docs.registry.clone();
        match request {
            Request::Handshake { id } => {
                if let Some(id) = id {
                    self.out = self.out.with_src(id.into());
                }
                self.out.frame(sharedb::handshake_reply(self.out.src()));
            }
            Request::Ping => {
                self.out.frame(sharedb::pong());
            }
            Request::Fetch { c, d, v } | Request::Subscribe { c, d, v } => {
                let subscribe = frame.raw.get("a").and_then(Value::as_str) == Some("s");
                let key = (c, d);
                let out = self.out.clone();
                registry
                    .call(&mut self.routes, &key, |done| DocCmd::Read {
                        v,
                        how: ReadReply::Direct { subscribe },
                        out: out.clone(),
                        done,
                    })
                    .await??;
                if subscribe {
                    self.subscribed.insert(key);
                }
            }
            Request::Unsubscribe { c, d } => {
                let key = (c, d);
                self.unsubscribe(&key).await?;
                self.out.frame(sharedb::unsubscribe_reply(&key.0, &key.1));
            }
            Request::BulkFetch { c, b } => self.bulk_read(frame, c, b, false).await?,
            Request::BulkSubscribe { c, b } => self.bulk_read(frame, c, b, true).await?,
            Request::BulkUnsubscribe { c, ids } => {
                for id in ids {
                    self.unsubscribe(&(c.clone(), id)).await?;
                }
                let b = frame.raw.get("b").cloned().unwrap_or(Value::Null);
                self.out.frame(sharedb::bulk_reply("bu", &c, None, &b));
            }
            Request::Op(submit) => {
                let src = submit
                    .src
                    .clone()
                    .unwrap_or_else(|| self.out.src().to_string());
                let key = (submit.c.clone(), submit.d.clone());
                let out = self.out.clone();
                registry
                    .call(&mut self.routes, &key, |done| DocCmd::Submit {
                        submit: Box::new(submit.clone()),
                        src: src.clone(),
                        out: out.clone(),
                        done,
                    })
                    .await??;
            }
            Request::SnapshotFetch { c, d, v } => {
                let key = (c, d);
                let (at, data) = registry
                    .call(&mut self.routes, &key, |done| DocCmd::SnapshotAt {
                        v,
                        done,
                    })
                    .await??;
                self.out.frame(sharedb::snapshot_fetch_reply(
                    &frame.raw,
                    &key.0,
                    &key.1,
                    at,
                    data.as_ref(),
                ));
            }
            Request::Presence(mut update) => {
                if let Some(t) = &update.t
                    && !sharedb::is_rich_text(t)
                {
                    return Err(ShareDbError::new(
                        ErrorCode::TypeDoesNotSupportPresence,
                        format!("Type does not support presence: {t}"),
                    ));
                }
                if let (Some(c), Some(d), Some(v)) = (&update.c, &update.d, update.v)
                    && !update.p.is_null()
                {
                    let key = (c.clone(), d.clone());
                    let src = self.out.src().to_string();
                    let has_type = update.t.is_some();
                    let p = update.p.clone();
                    let (p, v) = registry
                        .call(&mut self.routes, &key, |done| DocCmd::TransformPresence {
                            p: p.clone(),
                            v,
                            src: src.clone(),
                            has_type,
                            done,
                        })
                        .await??;
                    update.p = p;
                    update.v = Some(v);
                }
                self.state
                    .docs
                    .presence
                    .publish(update, self.out.clone())
                    .await;
            }
            Request::PresenceSubscribe { ch, seq } => {
                self.state
                    .docs
                    .presence
                    .subscribe(ch, seq, self.out.clone())
                    .await;
            }
            Request::PresenceUnsubscribe { ch, seq } => {
                self.state
                    .docs
                    .presence
                    .unsubscribe(ch, seq, self.out.clone())
                    .await;
            }
            Request::PresenceRequest { ch } => {
                self.state.docs.presence.request(ch, self.out.clone()).await;
            }
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, key: &DocKey) -> Result<(), ShareDbError> {
        if self.subscribed.remove(key) {
            let conn = self.out.id;
            self.state
                .docs
                .registry
                .call(&mut self.routes, key, |done| DocCmd::Unsubscribe {
                    conn,
                    done,
                })
                .await?;
        }
        Ok(())
    }

    /// `bf`/`bs`: snapshots for a list of ids (one reply with `data`), or the
    /// ops since each version (then an echo of `b`).
    async fn bulk_read(
        &mut self,
        frame: &Frame,
        c: String,
        b: Bulk,
        subscribe: bool,
    ) -> Result<(), ShareDbError> {
        let action = if subscribe { "bs" } else { "bf" };
        let registry = self.state.docs.registry.clone();
        match b {
            Bulk::Ids(ids) => {
                let mut data = Map::new();
                for id in ids {
                    let key = (c.clone(), id);
                    let out = self.out.clone();
                    let result = registry
                        .call(&mut self.routes, &key, |done| DocCmd::Read {
                            v: None,
                            how: ReadReply::Collect { subscribe },
                            out: out.clone(),
                            done,
                        })
                        .await
                        .and_then(|r| r);
                    let entry = match result {
                        Ok(snapshot) => snapshot.unwrap_or(Value::Null),
                        Err(e) => serde_json::json!({"error": e.to_value()}),
                    };
                    if subscribe && entry.get("error").is_none_or(Value::is_null) {
                        self.subscribed.insert(key.clone());
                    }
                    data.insert(key.1, entry);
                }
                self.out
                    .frame(sharedb::bulk_reply(action, &c, Some(data), &Value::Null));
            }
            Bulk::Versions(versions) => {
                let mut first_error = None;
                for (id, v) in versions {
                    let key = (c.clone(), id);
                    let out = self.out.clone();
                    let result = registry
                        .call(&mut self.routes, &key, |done| DocCmd::Read {
                            v: Some(v.unwrap_or(0)),
                            how: ReadReply::Collect { subscribe },
                            out: out.clone(),
                            done,
                        })
                        .await
                        .and_then(|r| r);
                    match result {
                        Ok(_) if subscribe => {
                            self.subscribed.insert(key);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                if let Some(e) = first_error {
                    return Err(e);
                }
                let b = frame.raw.get("b").cloned().unwrap_or(Value::Null);
                self.out.frame(sharedb::bulk_reply(action, &c, None, &b));
            }
        }
        Ok(())
    }

    /// The connection is gone: announce its presence as `null`. Documents
    /// drop it from their subscribers when they notice its queue is closed.
    async fn cleanup(&mut self) {
        self.state.docs.presence.left(self.out.id).await;
    }
}
