//! Redis pub/sub between nodes.
//!
//! One task owns the subscriptions: apps subscribe to a topic and get a
//! [`Subscription`], a bounded queue of [`BusEvent`]s. Redis delivers the
//! messages of one channel to every subscriber in the order it received
//! them, so every node sees one topic's messages in the same order.
//!
//! Nothing here is durable. Whenever messages may have been lost (Redis
//! restarted and the node reconnected, or a queue overflowed) the
//! subscribers get [`BusEvent::Resync`] and read what they missed from
//! PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::{
    Builder, ClientLike, Config, EventInterface, PubsubInterface, ReconnectPolicy,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::redact_url;

/// Events queued for one subscriber at most; beyond it the subscriber gets
/// `Resync` instead of the messages it could not take.
pub const SUBSCRIBER_QUEUE: usize = 8192;
/// Messages fred buffers between the socket and the dispatcher at most.
const DISPATCH_BUFFER: usize = 1 << 16;
/// How long a publish may wait (for instance while Redis reconnects).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff, in milliseconds.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 2000;

/// What can go wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("--redis {url}: not a Redis URL ({detail})")]
    BadUrl { url: String, detail: String },
    #[error("cannot reach Redis at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("Redis: {0}")]
    Redis(String),
    #[error("the bus has shut down")]
    Closed,
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// A message on the topic, with the node that sent it.
    Message {
        from: Arc<str>,
        from_self: bool,
        payload: Bytes,
    },
    /// Messages may have been lost: read the state from PostgreSQL.
    Resync,
}

/// A subscription to one topic; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<BusEvent>,
    topic: String,
    id: u64,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    /// The next event, or `None` once the bus has shut down.
    pub async fn recv(&mut self) -> Option<BusEvent> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe {
            channel: std::mem::take(&mut self.topic),
            id: self.id,
        });
    }
}

enum Command {
    Subscribe {
        channel: String,
        id: u64,
        tx: mpsc::Sender<BusEvent>,
        done: oneshot::Sender<Result<(), BusError>>,
    },
    Unsubscribe {
        channel: String,
        id: u64,
    },
}

/// A cloneable handle to this node's Redis connections.
#[derive(Clone)]
pub struct Bus {
    publisher: fred::clients::Client,
    commands: mpsc::UnboundedSender<Command>,
    prefix: Arc<str>,
    node_id: Arc<str>,
    next_id: Arc<AtomicU64>,
}

impl Bus {
    /// Connects the publishing and the subscribing connection; both
    /// reconnect by themselves from then on.
    pub async fn connect(
        url: &str,
        cluster_id: &str,
        node_id: Arc<str>,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let shown = redact_url(url);
        let config = Config::from_url(url).map_err(|e| BusError::BadUrl {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(3);
                c.internal_command_timeout = Duration::from_secs(3);
            })
            .with_performance_config(|c| {
                c.broadcast_channel_capacity = DISPATCH_BUFFER;
                c.default_command_timeout = PUBLISH_TIMEOUT;
            });
        let unreachable = |e: fred::error::Error| BusError::Unreachable {
            url: shown.clone(),
            detail: e.to_string(),
        };
        let publisher = builder.build().map_err(unreachable)?;
        let subscriber = builder.build_subscriber_client().map_err(unreachable)?;
        // `init` waits for the first connection, so a wrong URL fails here.
        publisher.init().await.map_err(unreachable)?;
        subscriber.init().await.map_err(unreachable)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let messages = subscriber.message_rx();
        let reconnects = subscriber.reconnect_rx();
        tokio::spawn(dispatch(
            subscriber,
            publisher.clone(),
            node_id.clone(),
            rx,
            messages,
            reconnects,
            shutdown,
        ));
        tracing::info!(redis = %shown, "Redis ready");
        Ok(Bus {
            publisher,
            commands,
            prefix: format!("rt:{cluster_id}:").into(),
            node_id,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// This node's id, as other nodes see it in [`BusEvent::Message`].
    pub fn node_id(&self) -> &Arc<str> {
        &self.node_id
    }

    /// Sends `payload` to every subscriber of `topic` on every node,
    /// this one included.
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), BusError> {
        let mut framed = Vec::with_capacity(self.node_id.len() + 1 + payload.len());
        framed.extend_from_slice(self.node_id.as_bytes());
        framed.push(b'\n');
        framed.extend_from_slice(payload);
        self.publisher
            .publish::<i64, _, _>(format!("{}{topic}", self.prefix), Bytes::from(framed))
            .await
            .map(|_| ())
            .map_err(|e| BusError::Redis(e.to_string()))
    }

    /// Subscribes to `topic`; resolves once Redis has confirmed, so every
    /// message published after this returns is delivered.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let (done, confirmed) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let channel = format!("{}{topic}", self.prefix);
        self.commands
            .send(Command::Subscribe {
                channel: channel.clone(),
                id,
                tx,
                done,
            })
            .map_err(|_| BusError::Closed)?;
        confirmed.await.map_err(|_| BusError::Closed)??;
        Ok(Subscription {
            rx,
            topic: channel,
            id,
            commands: self.commands.clone(),
        })
    }
}

struct Subscriber {
    id: u64,
    tx: mpsc::Sender<BusEvent>,
    /// Messages were dropped: `Resync` is owed before the next message.
    lagged: bool,
}

impl Subscriber {
    fn deliver(&mut self, event: BusEvent) {
        if self.lagged {
            if self.tx.try_send(BusEvent::Resync).is_err() {
                return;
            }
            self.lagged = false;
        }
        if self.tx.try_send(event).is_err() {
            self.lagged = true;
        }
    }
}

/// The task that owns the subscriptions.
async fn dispatch(
    subscriber: SubscriberClient,
    publisher: fred::clients::Client,
    node_id: Arc<str>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut messages: broadcast::Receiver<fred::types::Message>,
    mut reconnects: broadcast::Receiver<fred::types::config::Server>,
    shutdown: CancellationToken,
) {
    let mut topics: HashMap<String, Vec<Subscriber>> = HashMap::new();
    let resync_all = |topics: &mut HashMap<String, Vec<Subscriber>>| {
        for s in topics.values_mut().flatten() {
            s.lagged = true;
            s.deliver_resync();
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            cmd = commands.recv() => match cmd {
                None => break,
                Some(Command::Subscribe { channel, id, tx, done }) => {
                    let entry = topics.entry(channel.clone()).or_default();
                    let result = if entry.is_empty() {
                        subscriber.subscribe(channel.clone()).await.map_err(|e| BusError::Redis(e.to_string()))
                    } else {
                        Ok(())
                    };
                    if result.is_ok() {
                        entry.push(Subscriber { id, tx, lagged: false });
                    } else if entry.is_empty() {
                        topics.remove(&channel);
                    }
                    let _ = done.send(result);
                }
                Some(Command::Unsubscribe { channel, id }) => {
                    if let Some(subs) = topics.get_mut(&channel) {
                        subs.retain(|s| s.id != id);
                        if subs.is_empty() {
                            topics.remove(&channel);
                            if let Err(e) = subscriber.unsubscribe(channel).await {
                                tracing::debug!(error = %e, "Redis unsubscribe failed");
                            }
                        }
                    }
                }
            },
            msg = messages.recv() => match msg {
                Ok(m) => {
                    let Some(subs) = topics.get_mut(&*m.channel) else { continue };
                    let Some(raw) = m.value.as_bytes() else { continue };
                    let Some(cut) = raw.iter().position(|&b| b == b'\n') else { continue };
                    let from = &raw[..cut];
                    let from_self = from == node_id.as_bytes();
                    let from: Arc<str> = if from_self {
                        node_id.clone()
                    } else {
                        String::from_utf8_lossy(from).into()
                    };
                    let payload = Bytes::copy_from_slice(&raw[cut + 1..]);
                    for s in subs.iter_mut() {
                        s.deliver(BusEvent::Message { from: from.clone(), from_self, payload: payload.clone() });
                    }
                    subs.retain(|s| !s.tx.is_closed());
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "Redis messages arrived faster than they were dispatched; resyncing");
                    resync_all(&mut topics);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            r = reconnects.recv() => match r {
                Ok(server) => {
                    // fred reconnected: subscribe again, then everyone
                    // repairs what may have been published meanwhile.
                    tracing::info!(server = %server, "reconnected to Redis");
                    if let Err(e) = subscriber.resubscribe_all().await {
                        tracing::warn!(error = %e, "Redis resubscribe failed");
                    }
                    resync_all(&mut topics);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => resync_all(&mut topics),
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = subscriber.quit().await;
    let _ = publisher.quit().await;
}

impl Subscriber {
    /// Owes a `Resync` (delivered now if there is room, else before the
    /// next message).
    fn deliver_resync(&mut self) {
        if self.tx.try_send(BusEvent::Resync).is_ok() {
            self.lagged = false;
        }
    }
}
