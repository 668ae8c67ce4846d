//! One task owns every presence channel: who is subscribed, and the latest
//! presence each connection published on it (so that a connection that
//! leaves can be announced as `p: null`).
//!
//! Doc presence arrives here already transformed to the document's current
//! version by the document's owner.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rt_protocol::sharedb::{self, PresenceUpdate};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;

/// Presence requests queued at most.
const PRESENCE_QUEUE: usize = 4096;

enum PresenceCmd {
    Subscribe {
        ch: String,
        seq: Option<u64>,
        out: Outbox,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        ch: String,
        seq: Option<u64>,
        out: Outbox,
        done: oneshot::Sender<()>,
    },
    Publish {
        update: PresenceUpdate,
        out: Outbox,
        done: oneshot::Sender<()>,
    },
    Request {
        ch: String,
        out: Outbox,
        done: oneshot::Sender<()>,
    },
    Left {
        conn: u64,
    },
}

/// Cloneable handle to the presence task.
#[derive(Clone)]
pub struct Presence {
    tx: mpsc::Sender<PresenceCmd>,
}

#[derive(Default)]
struct Channel {
    subscribers: HashMap<u64, Outbox>,
    /// The latest presence per connection and presence id, with its sender.
    published: HashMap<u64, (String, HashMap<String, PresenceUpdate>)>,
}

impl Channel {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.published.is_empty()
    }

    /// Sends `frame` to every subscriber but `except`.
    fn broadcast(&mut self, except: u64, frame: &str) {
        let frame: axum::extract::ws::Utf8Bytes = frame.to_string().into();
        self.subscribers.retain(|id, sub| {
            if *id == except {
                return true;
            }
            sub.frame(frame.clone())
        });
    }

    /// Announces that every presence `conn` published here is gone.
    fn clear(&mut self, conn: u64) {
        if let Some((src, ids)) = self.published.remove(&conn) {
            for (_, mut update) in ids {
                update.p = Value::Null;
                self.broadcast(conn, &sharedb::presence_message(&src, &update));
            }
        }
    }
}

impl Presence {
    /// Starts the presence task.
    pub fn start(shutdown: CancellationToken) -> Presence {
        let (tx, rx) = mpsc::channel(PRESENCE_QUEUE);
        tokio::spawn(run(rx, shutdown));
        Presence { tx }
    }

    async fn ask(&self, make: impl FnOnce(oneshot::Sender<()>) -> PresenceCmd) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(make(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// `ps`: subscribes, asks the others to resend, replies.
    pub async fn subscribe(&self, ch: String, seq: Option<u64>, out: Outbox) {
        self.ask(|done| PresenceCmd::Subscribe { ch, seq, out, done })
            .await
    }

    /// `pu`: unsubscribes (announcing this connection's presence as gone),
    /// replies.
    pub async fn unsubscribe(&self, ch: String, seq: Option<u64>, out: Outbox) {
        self.ask(|done| PresenceCmd::Unsubscribe { ch, seq, out, done })
            .await
    }

    /// `p`: remembers, broadcasts to the others and acks the sender.
    pub async fn publish(&self, update: PresenceUpdate, out: Outbox) {
        self.ask(|done| PresenceCmd::Publish { update, out, done })
            .await
    }

    /// `pr`: asks the others to resend, replies.
    pub async fn request(&self, ch: String, out: Outbox) {
        self.ask(|done| PresenceCmd::Request { ch, out, done })
            .await
    }

    /// A connection ended: its presence becomes `null` everywhere.
    pub async fn left(&self, conn: u64) {
        let _ = self.tx.send(PresenceCmd::Left { conn }).await;
    }
}

async fn run(mut rx: mpsc::Receiver<PresenceCmd>, shutdown: CancellationToken) {
    let mut channels: HashMap<String, Channel> = HashMap::new();
    // The latest subscription seq per (connection, channel).
    let mut seqs: HashMap<(u64, String), u64> = HashMap::new();
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = shutdown.cancelled() => break,
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            PresenceCmd::Subscribe { ch, seq, out, done } => {
                let key = (out.id, ch.clone());
                let stale = match (seq, seqs.get(&key)) {
                    (Some(s), Some(last)) => s < *last,
                    _ => false,
                };
                if !stale {
                    if let Some(s) = seq {
                        seqs.insert(key, s);
                    }
                    let channel = channels.entry(ch.clone()).or_default();
                    if let Entry::Vacant(e) = channel.subscribers.entry(out.id) {
                        e.insert(out.clone());
                        channel.broadcast(out.id, &sharedb::presence_request(&ch));
                    }
                }
                out.frame(sharedb::presence_subscription_reply("ps", &ch, seq));
                let _ = done.send(());
            }
            PresenceCmd::Unsubscribe { ch, seq, out, done } => {
                if let Some(s) = seq {
                    seqs.insert((out.id, ch.clone()), s);
                }
                if let Some(channel) = channels.get_mut(&ch) {
                    channel.subscribers.remove(&out.id);
                    channel.clear(out.id);
                    if channel.is_empty() {
                        channels.remove(&ch);
                    }
                }
                out.frame(sharedb::presence_subscription_reply("pu", &ch, seq));
                let _ = done.send(());
            }
            PresenceCmd::Publish { update, out, done } => {
                let frame = sharedb::presence_message(out.src(), &update);
                let channel = channels.entry(update.ch.clone()).or_default();
                let (src, ids) = channel
                    .published
                    .entry(out.id)
                    .or_insert_with(|| (out.src().to_string(), HashMap::new()));
                *src = out.src().to_string();
                let newer = ids.get(&update.id).is_none_or(|prev| prev.pv < update.pv);
                if newer {
                    ids.insert(update.id.clone(), update);
                }
                channel.broadcast(out.id, &frame);
                out.frame(frame);
                let _ = done.send(());
            }
            PresenceCmd::Request { ch, out, done } => {
                if let Some(channel) = channels.get_mut(&ch) {
                    channel.broadcast(out.id, &sharedb::presence_request(&ch));
                }
                out.frame(sharedb::presence_request_reply());
                let _ = done.send(());
            }
            PresenceCmd::Left { conn } => {
                channels.retain(|_, channel| {
                    channel.subscribers.remove(&conn);
                    channel.clear(conn);
                    !channel.is_empty()
                });
                seqs.retain(|(c, _), _| *c != conn);
            }
        }
    }
}
