//! A document's feed between nodes: ops committed here go out on the bus
//! topic `doc:{collection}/{id}`, and the owner subscribes to the same
//! topic while the document is open on this node.

use tokio::sync::mpsc;

use super::doc::DocKey;
use crate::cluster::{Cluster, Subscription};

/// Ops waiting for the bus at most, per document.
const PUBLISH_QUEUE: usize = 1024;

/// Subscribes to the document's topic (none without `--redis`, or when
/// Redis cannot be reached: the document then learns of other nodes' ops
/// only when a commit of its own loses the race).
pub async fn subscribe(cluster: &Cluster, key: &DocKey) -> Option<Subscription> {
    let bus = cluster.bus.as_ref()?;
    match bus.subscribe(&super::pg::topic(&key.0, &key.1)).await {
        Ok(sub) => Some(sub),
        Err(e) => {
            tracing::warn!(c = %key.0, d = %key.1, error = %e, "cannot subscribe to the document's topic");
            None
        }
    }
}

/// A queue whose task publishes the document's ops in order; it ends when
/// the sender drops (the document closed).
pub fn publisher(cluster: &Cluster, key: &DocKey) -> Option<mpsc::Sender<Vec<u8>>> {
    let bus = cluster.bus.clone()?;
    let topic = super::pg::topic(&key.0, &key.1);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PUBLISH_QUEUE);
    tokio::spawn(async move {
        while let Some(payload) = rx.recv().await {
            if let Err(e) = bus.publish(&topic, &payload).await {
                // Subscribers see the gap (or a Resync) and read the log.
                tracing::debug!(error = %e, "cannot publish an op");
            }
        }
    });
    Some(tx)
}
