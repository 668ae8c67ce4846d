//! The sending side of one editor connection, as held by the owner tasks.
//!
//! Owners never wait on a connection: they `try_send` into its bounded queue,
//! and a connection whose queue is full is cut (its client reconnects and
//! catches up with a versioned subscribe) rather than slowing everyone down.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the writer task sends: one frame, or several in order.
#[derive(Debug)]
pub enum Outbound {
    One(Utf8Bytes),
    Many(Vec<Utf8Bytes>),
    /// Send a close frame (code, reason) and stop.
    Close(u16, &'static str),
}

/// A cloneable handle to one connection's send queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// Unique per connection (not the ShareDB src, which a client may reuse).
    pub id: u64,
    tx: mpsc::Sender<Outbound>,
    /// Cancelled to cut a connection that cannot keep up.
    kick: CancellationToken,
    src: Arc<str>,
}

impl Outbox {
    /// A queue of `capacity` messages; the receiver goes to the writer task.
    pub fn new(
        id: u64,
        capacity: usize,
        kick: CancellationToken,
        src: Arc<str>,
    ) -> (Outbox, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Outbox { id, tx, kick, src }, rx)
    }

    /// The same queue with another src (after a handshake adopted one).
    pub fn with_src(&self, src: Arc<str>) -> Outbox {
        Outbox {
            src,
            ..self.clone()
        }
    }

    /// The connection's ShareDB src (client id).
    pub fn src(&self) -> &str {
        &self.src
    }

    /// Queues `msg` without waiting. Returns false when the connection is
    /// gone or was cut for being too slow.
    pub fn push(&self, msg: Outbound) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(conn = self.id, "editor client too slow; disconnecting it");
                crate::metrics::slow_consumer(crate::stats::App::Editor);
                crate::metrics::refused("doc_send_queue");
                self.kick.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues one frame.
    pub fn frame(&self, frame: impl Into<Utf8Bytes>) -> bool {
        self.push(Outbound::One(frame.into()))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.kick.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_cuts_the_connection() {
        let kick = CancellationToken::new();
        let (out, mut rx) = Outbox::new(7, 2, kick.clone(), "src".into());
        assert!(out.frame("a"));
        assert!(out.frame("b"));
        assert!(!kick.is_cancelled());
        assert!(!out.frame("c"), "the third message does not fit");
        assert!(kick.is_cancelled(), "the connection is told to close");
        assert!(out.is_closed());
        assert!(matches!(rx.recv().await, Some(Outbound::One(f)) if f.as_str() == "a"));
    }

    #[tokio::test]
    async fn a_gone_connection_is_closed() {
        let (out, rx) = Outbox::new(1, 4, CancellationToken::new(), "s".into());
        drop(rx);
        assert!(!out.frame("x"));
        assert!(out.is_closed());
        assert_eq!(out.with_src("other".into()).src(), "other");
    }
}
