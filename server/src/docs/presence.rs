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
use crate::cluster::{BusEvent, Cluster, Subscription};

/// The bus topic of every presence channel (one per node, not one per
/// channel: presence is small and short-lived).
const PRESENCE_TOPIC: &str = "docs-presence";

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
    /// The channel's name and this node's queue to the bus (`--redis`):
    /// what is broadcast here goes to the other nodes' subscribers too.
    fan: Option<(String, mpsc::Sender<Vec<u8>>)>,
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
        if let Some((ch, fan)) = &self.fan {
            // Not durable: a lost message is a cursor that moves late.
            let _ = fan.try_send(
                serde_json::to_vec(&serde_json::json!({"ch": ch, "frame": frame})).expect("JSON"),
            );
        }
        self.local(except, frame);
    }

    /// Sends `frame` to this node's subscribers.
    fn local(&mut self, except: u64, frame: &str) {
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
    pub async fn start(cluster: &Cluster, shutdown: CancellationToken) -> Presence {
        let (tx, rx) = mpsc::channel(PRESENCE_QUEUE);
        let (feed, fan) = match &cluster.bus {
            Some(bus) => {
                let feed = match bus.subscribe(PRESENCE_TOPIC).await {
                    Ok(sub) => Some(sub),
                    Err(e) => {
                        tracing::warn!(error = %e, "presence stays on this node");
                        None
                    }
                };
                let (fan, mut queue) = mpsc::channel::<Vec<u8>>(PRESENCE_QUEUE);
                let bus = bus.clone();
                tokio::spawn(async move {
                    while let Some(payload) = queue.recv().await {
                        let _ = bus.publish(PRESENCE_TOPIC, &payload).await;
                    }
                });
                (feed, Some(fan))
            }
            None => (None, None),
        };
        tokio::spawn(run(rx, feed, fan, shutdown));
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

async fn run(
    mut rx: mpsc::Receiver<PresenceCmd>,
    mut feed: Option<Subscription>,
    fan: Option<mpsc::Sender<Vec<u8>>>,
    shutdown: CancellationToken,
) {
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let new_channel = |ch: &str| Channel {
        fan: fan.clone().map(|f| (ch.to_string(), f)),
        ..Channel::default()
    };
    // The latest subscription seq per (connection, channel).
    let mut seqs: HashMap<(u64, String), u64> = HashMap::new();
    loop {
        let cmd = tokio::select! {
            event = remote(&mut feed) => {
                if let Some((ch, frame)) = event
                    && let Some(channel) = channels.get_mut(&ch)
                {
                    channel.local(u64::MAX, &frame);
                }
                continue;
            }
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
                    let channel = channels
                        .entry(ch.clone())
                        .or_insert_with(|| new_channel(&ch));
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
                let channel = channels
                    .entry(update.ch.clone())
                    .or_insert_with(|| new_channel(&update.ch));
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

/// The next presence frame another node broadcast: (channel, frame).
async fn remote(feed: &mut Option<Subscription>) -> Option<(String, String)> {
    let Some(sub) = feed.as_mut() else {
        return std::future::pending().await;
    };
    match sub.recv().await {
        Some(BusEvent::Message {
            from_self: false,
            payload,
            ..
        }) => {
            let v: Value = serde_json::from_slice(&payload).ok()?;
            Some((
                v.get("ch")?.as_str()?.to_string(),
                v.get("frame")?.as_str()?.to_string(),
            ))
        }
        Some(_) => None,
        None => {
            *feed = None;
            None
        }
    }
}
