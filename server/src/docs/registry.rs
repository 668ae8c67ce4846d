//! One task maps `(collection, id)` to the owner of each open document. It
//! starts an owner on first use; an owner that has been idle asks to be
//! unloaded, and the registry forgets it only if no newer owner replaced it.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::DocsConfig;
use super::doc::{self, DocCmd, DocHandle, DocKey};
use crate::cluster::Cluster;
use crate::store::Store;
use rt_protocol::sharedb::{ErrorCode, ShareDbError};

/// Registry requests queued at most.
const REGISTRY_QUEUE: usize = 1024;
/// How many times a request is retried when it reaches an owner that is
/// unloading (each retry asks the registry for a fresh owner).
const DOC_ATTEMPTS: usize = 3;
/// Owners remembered per connection at most (forgotten all at once beyond).
const ROUTES_MAX: usize = 64;

enum RegCmd {
    Get {
        key: DocKey,
        reply: oneshot::Sender<DocHandle>,
    },
    Unload {
        key: DocKey,
        generation: u64,
        reply: oneshot::Sender<bool>,
    },
    Count {
        reply: oneshot::Sender<usize>,
    },
}

/// Cloneable handle to the registry task.
#[derive(Clone)]
pub struct Registry {
    tx: mpsc::Sender<RegCmd>,
}

impl Registry {
    /// Starts the registry task.
    pub fn start(
        config: DocsConfig,
        store: Store,
        cluster: Cluster,
        shutdown: CancellationToken,
    ) -> Registry {
        let (tx, rx) = mpsc::channel(REGISTRY_QUEUE);
        let registry = Registry { tx };
        tokio::spawn(run(
            rx,
            registry.clone(),
            config,
            store,
            cluster,
            shutdown.clone(),
        ));
        registry
    }

    /// The owner of `key`, started if needed.
    pub async fn get(&self, key: DocKey) -> Option<DocHandle> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(RegCmd::Get { key, reply }).await.ok()?;
        rx.await.ok()
    }

    /// Called by an idle owner: true when it has been forgotten and must stop.
    pub async fn unload(&self, key: DocKey, generation: u64) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(RegCmd::Unload {
                key,
                generation,
                reply,
            })
            .await
            .is_err()
        {
            return true;
        }
        rx.await.unwrap_or(true)
    }

    /// How many documents are loaded.
    pub async fn loaded(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(RegCmd::Count { reply }).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Sends the command built by `make` to the owner of `key` and waits for
    /// its answer, retrying with a fresh owner if the one reached was
    /// unloading. `routes` remembers the owners this caller reached, so
    /// that its next requests go to them directly.
    pub async fn call<T>(
        &self,
        routes: &mut Routes,
        key: &DocKey,
        mut make: impl FnMut(oneshot::Sender<T>) -> DocCmd,
    ) -> Result<T, ShareDbError> {
        let mut attempts = 0;
        let mut cached = routes
            .handles
            .get(key)
            .filter(|h| !h.tx.is_closed())
            .cloned();
        while attempts < DOC_ATTEMPTS {
            let handle = match cached.take() {
                Some(handle) => handle,
                None => {
                    attempts += 1;
                    routes.handles.remove(key);
                    let Some(handle) = self.get(key.clone()).await else {
                        break;
                    };
                    routes.remember(key, &handle);
                    handle
                }
            };
            let (done, rx) = oneshot::channel();
            if handle.tx.send(make(done)).await.is_err() {
                continue;
            }
            if let Ok(v) = rx.await {
                return Ok(v);
            }
        }
        Err(ShareDbError::new(
            ErrorCode::UnknownError,
            "the document is unavailable (the server may be shutting down)",
        ))
    }
}

/// Document owners one connection has reached, by key. A stale entry (its
/// owner unloaded) is noticed on use and replaced through the registry.
#[derive(Default)]
pub struct Routes {
    handles: HashMap<DocKey, DocHandle>,
}

impl Routes {
    fn remember(&mut self, key: &DocKey, handle: &DocHandle) {
        if self.handles.len() >= ROUTES_MAX {
            self.handles.clear();
        }
        self.handles.insert(key.clone(), handle.clone());
    }
}

async fn run(
    mut rx: mpsc::Receiver<RegCmd>,
    me: Registry,
    config: DocsConfig,
    store: Store,
    cluster: Cluster,
    shutdown: CancellationToken,
) {
    let mut docs: HashMap<DocKey, DocHandle> = HashMap::new();
    let mut next_generation = 0u64;
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = shutdown.cancelled() => break,
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            RegCmd::Get { key, reply } => {
                let handle = match docs.get(&key) {
                    Some(h) if !h.tx.is_closed() => h.clone(),
                    _ => {
                        next_generation += 1;
                        let h = doc::spawn(
                            key.clone(),
                            next_generation,
                            config.clone(),
                            store.clone(),
                            cluster.clone(),
                            me.clone(),
                            shutdown.clone(),
                        );
                        docs.insert(key, h.clone());
                        h
                    }
                };
                let _ = reply.send(handle);
            }
            RegCmd::Unload {
                key,
                generation,
                reply,
            } => {
                if docs.get(&key).is_some_and(|h| h.generation == generation) {
                    docs.remove(&key);
                }
                // An owner no longer in the map (forgotten now, or replaced
                // earlier) must stop.
                let _ = reply.send(docs.get(&key).is_none_or(|h| h.generation != generation));
            }
            RegCmd::Count { reply } => {
                docs.retain(|_, h| !h.tx.is_closed());
                let _ = reply.send(docs.len());
            }
        }
        crate::metrics::documents_open(docs.len());
    }
}
