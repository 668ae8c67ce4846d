//! What the canvas tasks of several nodes tell each other, on the Bus topic
//! [`TOPIC`] (see "Several nodes" in the module docs of `draw`).
//!
//! Each node's canvas task publishes what it accepted, in the order it
//! accepted it: relays and the canvas changes they carry travel in one
//! message, so they cannot be reordered. Redis delivers one topic's
//! messages to every node in one order. A node ignores its own messages
//! (it applied them at once).

use bytes::Bytes;
use rt_protocol::draw::{MoveEffect, Peer, Point};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Bus;

/// The Bus topic of the drawing board.
pub const TOPIC: &str = "draw";
/// Messages waiting for Redis at most; beyond it they are dropped (the
/// other nodes resync from PostgreSQL when Redis comes back).
const OUTBOX: usize = 8192;

/// One message between canvas tasks.
#[derive(Debug, Serialize, Deserialize)]
pub enum Wire {
    /// A `mousemove` accepted: pen `pen` is at (`x`, `y`), down when
    /// `drawing`; `relay` is the `moving` payload; `stroke` is what it did
    /// to the canvas.
    Moved {
        pen: String,
        x: f64,
        y: f64,
        drawing: bool,
        relay: Box<RawValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stroke: Option<StrokeChange>,
    },
    /// Stroke `stroke` of `author` was undone by `by`.
    Undone {
        by: String,
        author: String,
        stroke: u64,
    },
    /// `by` cleared the canvas: the strokes `ids` are gone (a clear names
    /// what it removes, so a stroke another node started meanwhile
    /// survives on every node alike).
    Cleared { by: String, ids: Vec<u64> },
    /// A participant joined or said `hello`: its entry.
    Peer { peer: Peer },
    /// A participant left.
    Left { id: String },
    /// Everyone on the sending node; `ask`: the others answer with theirs
    /// (sent at start and after a resync).
    Roster { peers: Vec<Peer>, ask: bool },
    /// The sending node is up (every [`ALIVE_EVERY`]): a node not heard
    /// from for [`NODE_TIMEOUT`] has stopped, and its participants leave.
    Alive,
}

/// How often a node says it is up.
pub const ALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// A node not heard from for this long is taken for gone.
pub const NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7);

/// A move's effect on the canvas.
#[derive(Debug, Serialize, Deserialize)]
pub enum StrokeChange {
    Start {
        id: u64,
        author: String,
        colour: String,
        from: [f64; 2],
        to: [f64; 2],
    },
    /// Point number `seq` of stroke `id`.
    Extend { id: u64, seq: usize, to: [f64; 2] },
}

impl StrokeChange {
    /// The effect as the board reports it, with the point's index.
    pub fn effect(&self) -> (MoveEffect, usize) {
        let p = |[x, y]: [f64; 2]| Point { x, y };
        match self {
            StrokeChange::Start { id, from, to, .. } => (
                MoveEffect::Started {
                    stroke: *id,
                    from: p(*from),
                    to: p(*to),
                },
                1,
            ),
            StrokeChange::Extend { id, seq, to } => (
                MoveEffect::Extended {
                    stroke: *id,
                    from: p(*to),
                    to: p(*to),
                },
                *seq,
            ),
        }
    }
}

/// The publishing side: the canvas task hands messages over without
/// waiting; one task publishes them in order.
#[derive(Clone)]
pub struct Link {
    tx: mpsc::Sender<Bytes>,
}

impl Link {
    /// Starts the publisher on `bus`.
    pub fn start(bus: Bus, tasks: &TaskTracker, shutdown: CancellationToken) -> Link {
        let (tx, mut rx) = mpsc::channel::<Bytes>(OUTBOX);
        tasks.spawn(async move {
            let mut failing = false;
            loop {
                let msg = tokio::select! {
                    m = rx.recv() => m,
                    _ = shutdown.cancelled() => None,
                };
                let Some(msg) = msg else { break };
                match bus.publish(TOPIC, &msg).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("drawing messages reach Redis again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        // Lost messages are repaired by the resync every
                        // node does when its Redis connection comes back.
                        tracing::warn!(error = %e, "cannot publish drawing changes to other nodes");
                    }
                    Err(_) => {}
                }
            }
        });
        Link { tx }
    }

    /// Queues `wire` for the other nodes.
    pub fn send(&self, wire: &Wire) {
        let bytes = match serde_json::to_vec(wire) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a drawing message");
                return;
            }
        };
        if self.tx.try_send(bytes).is_err() {
            tracing::warn!("drawing outbox full; other nodes will resync");
        }
    }
}

/// `p` as it travels.
pub fn xy(p: Point) -> [f64; 2] {
    [p.x, p.y]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_their_relay_verbatim() {
        let relay =
            serde_json::value::to_raw_value(&serde_json::json!({"x": 1, "id": "s"})).unwrap();
        let wire = Wire::Moved {
            pen: "s".into(),
            x: 1.0,
            y: 2.0,
            drawing: true,
            relay,
            stroke: Some(StrokeChange::Extend {
                id: 2048,
                seq: 3,
                to: [1.0, 2.0],
            }),
        };
        let bytes = serde_json::to_vec(&wire).unwrap();
        let back: Wire = serde_json::from_slice(&bytes).unwrap();
        let Wire::Moved { relay, stroke, .. } = back else {
            panic!("{back:?}")
        };
        assert_eq!(relay.get(), r#"{"id":"s","x":1}"#);
        assert_eq!(stroke.unwrap().effect().1, 3);
    }
}
