//! One task owns each open document: its current snapshot, a window of
//! recent ops, and its subscribers. With the embedded store it is the only
//! writer of the document's op log, so submits need no retry loop: each is
//! transformed against the ops since the client's version and applied in
//! memory at once.
//!
//! With `--database` (PostgreSQL) other nodes write the same log. Each submit
//! then commits on its own before it is answered (`submit_pg`): an insert at
//! the next version that loses the race on the log's unique version reads the
//! ops it missed, applies and delivers them, transforms the op over them and
//! tries again. Ops committed here go out on the bus (`docs::cluster`); ops
//! from other nodes arrive there and are applied in version order, a gap or a
//! `Resync` being filled from PostgreSQL (`catch_up`). The pipelined batches
//! below are the embedded store's path.
//!
//! Commits are pipelined. Applied ops gather into one batch for the store
//! while the previous batch commits, so the ops of many editors share one
//! transaction. Whatever an op makes visible waits until its batch has
//! committed: its ack, its broadcast to the other subscribers, and every
//! reply computed from the in-memory document after it (reads, snapshots,
//! presence transforms, errors). Replies are released in the order the owner
//! took the requests, and each connection's share of a release goes out as
//! one message. A failed commit fails every held reply and reloads the
//! document from the store, so memory is never ahead of what is durable.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use rt_protocol::delta::{self, Delta, Document};
use rt_protocol::sharedb::{self, ErrorCode, OpBody, ShareDbError, Submit};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::DocsConfig;
use super::outbox::{Outbound, Outbox};
use super::registry::Registry;
use super::store::{self as docstore, Batch, StoredOp, StoredSnapshot};
use crate::cluster::{BusEvent, Cluster, PgError, Subscription};
use crate::store::{Commit, Store, StoreError};

/// Commands queued for one document at most. The owner takes at most this
/// many queued commands before it hands their ops to the store.
pub const DOC_QUEUE: usize = 256;
/// Committed ops kept in memory for transforms and catch-up; older ones are
/// read from the store. Ops not yet committed are always kept.
pub const RECENT_OPS: usize = 1000;

/// Identifies an open document: (collection, id).
pub type DocKey = (String, String);

/// What a read request wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadReply {
    /// The document writes the `f`/`s` reply itself (single-doc requests:
    /// keeps the reply ordered before the ops that follow a subscribe).
    Direct { subscribe: bool },
    /// Return the snapshot to the caller (bulk requests assemble one reply).
    Collect { subscribe: bool },
}

impl ReadReply {
    fn subscribe(self) -> bool {
        match self {
            ReadReply::Direct { subscribe } | ReadReply::Collect { subscribe } => subscribe,
        }
    }
}

/// A request for the document's owner.
#[derive(Debug)]
pub enum DocCmd {
    /// `f`/`s` (and the bulk forms): snapshot, or the ops since `v`.
    Read {
        v: Option<u64>,
        how: ReadReply,
        out: Outbox,
        done: oneshot::Sender<Result<Option<Value>, ShareDbError>>,
    },
    /// `u`: stop sending ops to this connection.
    Unsubscribe {
        conn: u64,
        done: oneshot::Sender<()>,
    },
    /// `op`: `src` is the effective src (the request's, or the connection's).
    /// `done` resolves once the op is durable and its ack is queued.
    Submit {
        submit: Box<Submit>,
        src: String,
        out: Outbox,
        done: oneshot::Sender<Result<(), ShareDbError>>,
    },
    /// `nf`: the document at version `v` (latest when `None`).
    SnapshotAt {
        v: Option<u64>,
        done: oneshot::Sender<Result<(u64, Option<Delta>), ShareDbError>>,
    },
    /// Brings a presence at version `v` up to date.
    TransformPresence {
        p: Value,
        v: u64,
        src: String,
        has_type: bool,
        done: oneshot::Sender<Result<(Value, u64), ShareDbError>>,
    },
}

/// An op in memory (committed, or applied and waiting for its commit), with
/// its wire form encoded once.
#[derive(Debug)]
struct Committed {
    op: StoredOp,
    wire: Utf8Bytes,
}

/// Cloneable handle to a document's owner.
#[derive(Clone, Debug)]
pub struct DocHandle {
    pub tx: mpsc::Sender<DocCmd>,
    /// Distinguishes successive owners of the same key.
    pub generation: u64,
}

/// Starts the owner of `key`. It loads the document from the store first.
pub fn spawn(
    key: DocKey,
    generation: u64,
    config: DocsConfig,
    store: Store,
    cluster: Cluster,
    registry: Registry,
    shutdown: CancellationToken,
) -> DocHandle {
    let (tx, rx) = mpsc::channel(DOC_QUEUE);
    tokio::spawn(run(
        key, generation, config, store, cluster, registry, rx, shutdown,
    ));
    DocHandle { tx, generation }
}

/// A subscribed connection and the first version it has not seen (its
/// snapshot or catch-up covered everything before).
struct Subscriber {
    out: Outbox,
    from: u64,
}

/// The batch the store is committing: the document's version once it has.
struct InFlight {
    to: u64,
    commit: Commit<()>,
}

/// What an accepted submit sends its connection (missed ops, then the ack)
/// and the op to broadcast to the others (none for a resend).
struct Accepted {
    frames: Vec<Utf8Bytes>,
    broadcast: Option<Arc<Committed>>,
}

/// What a read sends its connection, and the snapshot it returns.
struct ReadOut {
    frames: Vec<Utf8Bytes>,
    snapshot: Option<Value>,
}

/// A reply held until every op applied before its request is durable.
enum Held {
    Submit {
        out: Outbox,
        result: Result<Accepted, ShareDbError>,
        done: oneshot::Sender<Result<(), ShareDbError>>,
    },
    Read {
        out: Outbox,
        subscribe: bool,
        result: Result<ReadOut, ShareDbError>,
        done: oneshot::Sender<Result<Option<Value>, ShareDbError>>,
    },
    Unsubscribe {
        done: oneshot::Sender<()>,
    },
    SnapshotAt {
        result: Result<(u64, Option<Delta>), ShareDbError>,
        done: oneshot::Sender<Result<(u64, Option<Delta>), ShareDbError>>,
    },
    Presence {
        result: Result<(Value, u64), ShareDbError>,
        done: oneshot::Sender<Result<(Value, u64), ShareDbError>>,
    },
}

impl Held {
    /// Answers the requester (its frames, if any, are already queued).
    fn answer(self) {
        match self {
            Held::Submit { result, done, .. } => {
                let _ = done.send(result.map(|_| ()));
            }
            Held::Read { result, done, .. } => {
                let _ = done.send(result.map(|r| r.snapshot));
            }
            Held::Unsubscribe { done } => {
                let _ = done.send(());
            }
            Held::SnapshotAt { result, done } => {
                let _ = done.send(result);
            }
            Held::Presence { result, done } => {
                let _ = done.send(result);
            }
        }
    }

    /// Answers with `err`: what this reply was computed from never became
    /// durable.
    fn fail(self, err: &ShareDbError, subscribers: &mut HashMap<u64, Subscriber>) {
        match self {
            Held::Submit { done, .. } => {
                let _ = done.send(Err(err.clone()));
            }
            Held::Read {
                out,
                subscribe,
                result,
                done,
            } => {
                if subscribe && result.is_ok() {
                    subscribers.remove(&out.id);
                }
                let _ = done.send(Err(err.clone()));
            }
            Held::Unsubscribe { done } => {
                let _ = done.send(());
            }
            Held::SnapshotAt { done, .. } => {
                let _ = done.send(Err(err.clone()));
            }
            Held::Presence { done, .. } => {
                let _ = done.send(Err(err.clone()));
            }
        }
    }
}

/// Frames gathered per connection during one release, pushed as one message
/// each (one wake-up and one write per connection).
#[derive(Default)]
struct Sends {
    slots: HashMap<u64, usize>,
    queues: Vec<(Outbox, Vec<Utf8Bytes>)>,
}

impl Sends {
    fn add(&mut self, out: &Outbox, frames: impl IntoIterator<Item = Utf8Bytes>) {
        let queues = &mut self.queues;
        let slot = *self.slots.entry(out.id).or_insert_with(|| {
            queues.push((out.clone(), Vec::new()));
            queues.len() - 1
        });
        self.queues[slot].1.extend(frames);
    }

    /// Queues everything; returns the connections that are gone or were cut.
    fn flush(self) -> Vec<u64> {
        let mut gone = Vec::new();
        for (out, mut frames) in self.queues {
            let pushed = match frames.len() {
                0 => continue,
                1 => out.push(Outbound::One(frames.pop().expect("one frame"))),
                _ => out.push(Outbound::Many(frames)),
            };
            if !pushed {
                gone.push(out.id);
            }
        }
        gone
    }
}

struct DocState {
    key: DocKey,
    config: DocsConfig,
    store: Store,
    /// With `--database`: the op log is in PostgreSQL and each submit
    /// commits there before it is answered (see `cluster.rs`).
    cluster: Cluster,
    /// Ops this node committed, for the bus (in order, by a task of their
    /// own so a slow Redis never stalls the document).
    publish: Option<mpsc::Sender<Vec<u8>>>,
    /// A PostgreSQL write failed in a way that may have committed: read
    /// the log before the next request.
    stale: bool,
    /// Current version in memory: the number of ops applied.
    v: u64,
    /// The version the store has committed (`committed ≤ v`).
    committed: u64,
    /// The current content; `None` when never created or deleted.
    doc: Option<Document>,
    /// The latest create op: (src, seq, v), for resent creates.
    create: Option<(String, u64, u64)>,
    /// Ops with versions `v - recent.len() .. v`.
    recent: VecDeque<Arc<Committed>>,
    subscribers: HashMap<u64, Subscriber>,
    /// Ops applied since the batch in flight was sent, for the next batch.
    unsent: Batch,
    in_flight: Option<InFlight>,
    /// Replies waiting for the version they need to be committed, in the
    /// order their requests were taken.
    held: VecDeque<(u64, Held)>,
    /// The store could not be read after a failed commit: the owner must go.
    broken: bool,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    key: DocKey,
    generation: u64,
    config: DocsConfig,
    store: Store,
    cluster: Cluster,
    registry: Registry,
    mut rx: mpsc::Receiver<DocCmd>,
    shutdown: CancellationToken,
) {
    let idle = config.idle_unload();
    // Subscribed before loading, so no op committed after the load is missed.
    let mut feed = super::cluster::subscribe(&cluster, &key).await;
    let publish = super::cluster::publisher(&cluster, &key);
    let mut state = match DocState::load(key.clone(), config, store, cluster).await {
        Ok(mut s) => {
            s.publish = publish;
            Some(s)
        }
        Err(e) => {
            tracing::error!(c = %key.0, d = %key.1, error = %e, "cannot load document");
            None
        }
    };
    loop {
        let cmd = tokio::select! {
            committed = committing(&mut state) => {
                if let Some(s) = state.as_mut() {
                    s.batch_done(committed).await;
                }
                None
            }
            event = feed_event(&mut feed) => {
                if let Some(s) = state.as_mut() {
                    s.remote(event).await;
                }
                None
            }
            cmd = rx.recv() => match cmd {
                Some(cmd) => Some(cmd),
                None => break,
            },
            _ = tokio::time::sleep(idle) => {
                let busy = state.as_mut().is_some_and(|s| s.has_subscribers() || s.is_pending());
                if !busy && registry.unload(key.clone(), generation).await {
                    break;
                }
                None
            }
            _ = shutdown.cancelled() => {
                // Ops already applied are committed and answered first.
                if let Some(s) = state.as_mut() {
                    s.settle().await;
                }
                break;
            }
        };
        match (state.as_mut(), cmd) {
            (Some(s), Some(cmd)) => {
                if s.stale {
                    // Still unreachable: a submit then fails as well, and
                    // reads answer from memory.
                    let _ = s.catch_up(None).await;
                }
                s.handle(cmd).await;
                // Whatever else is queued shares the next commit.
                take_queued(s, &mut rx).await;
                if s.ready_to_send() {
                    // Connections readable at the same moment as the one
                    // that sent this command are about to queue theirs: let
                    // them run first, so that their ops share the batch.
                    s.release();
                    tokio::task::yield_now().await;
                    take_queued(s, &mut rx).await;
                }
                s.release();
                s.send_batch().await;
            }
            (None, Some(cmd)) => refuse(cmd),
            (_, None) => {}
        }
        if state.as_ref().is_some_and(|s| s.broken) {
            // Memory may be ahead of the store and the store cannot be read:
            // stop, so the next request loads the document anew.
            state = None;
            registry.unload(key.clone(), generation).await;
            break;
        }
    }
    // Commands already queued are dropped unanswered: their senders see the
    // closed reply channel and ask the registry again (which loads anew).
    rx.close();
    while rx.recv().await.is_some() {}
    drop(state);
}

/// Handles the commands already queued (at most a queue's worth).
async fn take_queued(s: &mut DocState, rx: &mut mpsc::Receiver<DocCmd>) {
    for _ in 0..DOC_QUEUE {
        match rx.try_recv() {
            Ok(cmd) => s.handle(cmd).await,
            Err(_) => break,
        }
    }
}

/// Resolves when the batch in flight has committed (never when none is).
async fn committing(state: &mut Option<DocState>) -> Result<(), StoreError> {
    match state.as_mut().and_then(|s| s.in_flight.as_mut()) {
        Some(f) => (&mut f.commit).await,
        None => std::future::pending().await,
    }
}

/// The next event from the bus (never when there is no feed). A feed that
/// ended (the bus shut down) is dropped.
async fn feed_event(feed: &mut Option<Subscription>) -> BusEvent {
    match feed.as_mut() {
        Some(sub) => match sub.recv().await {
            Some(event) => event,
            None => {
                *feed = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Answers a command when the document could not be loaded.
fn refuse(cmd: DocCmd) {
    let err = || {
        ShareDbError::new(
            ErrorCode::UnknownError,
            "the document could not be loaded from the store",
        )
    };
    match cmd {
        DocCmd::Read { done, .. } => {
            let _ = done.send(Err(err()));
        }
        DocCmd::Unsubscribe { done, .. } => {
            let _ = done.send(());
        }
        DocCmd::Submit { done, .. } => {
            let _ = done.send(Err(err()));
        }
        DocCmd::SnapshotAt { done, .. } => {
            let _ = done.send(Err(err()));
        }
        DocCmd::TransformPresence { done, .. } => {
            let _ = done.send(Err(err()));
        }
    }
}

fn store_error(e: impl std::fmt::Display) -> ShareDbError {
    tracing::error!(error = %e, "editor store error");
    ShareDbError::new(ErrorCode::UnknownError, format!("store error: {e}"))
}

impl DocState {
    async fn load(
        key: DocKey,
        config: DocsConfig,
        store: Store,
        cluster: Cluster,
    ) -> Result<DocState, ShareDbError> {
        let (c, d) = key.clone();
        let loaded = match &cluster.pg {
            Some(pg) => super::pg::load(pg, &c, &d).await.map_err(store_error)?,
            None => store
                .call(move |conn| docstore::load(conn, &c, &d))
                .await
                .map_err(store_error)?,
        };
        let mut state = DocState {
            key,
            config,
            store,
            cluster,
            publish: None,
            stale: false,
            v: 0,
            committed: 0,
            doc: None,
            create: loaded.create,
            recent: VecDeque::new(),
            subscribers: HashMap::new(),
            unsent: Batch::default(),
            in_flight: None,
            held: VecDeque::new(),
            broken: false,
        };
        if let Some(snap) = loaded.snapshot {
            state.v = snap.v;
            state.doc = match snap.data {
                Some(data) => Some(Document::from_delta(&data).map_err(store_error)?),
                None => None,
            };
        }
        for op in loaded.ops {
            if op.v != state.v {
                return Err(store_error(format!(
                    "op log gap: expected v{} found v{}",
                    state.v, op.v
                )));
            }
            state.doc = apply_stored(state.doc.take(), &op.body).map_err(store_error)?;
            state.v += 1;
            state.committed = state.v;
            state.remember(op);
        }
        state.committed = state.v;
        Ok(state)
    }

    fn has_subscribers(&mut self) -> bool {
        self.subscribers.retain(|_, s| !s.out.is_closed());
        !self.subscribers.is_empty()
    }

    /// Ops applied but not yet committed, or replies not yet released.
    fn is_pending(&self) -> bool {
        self.in_flight.is_some() || !self.unsent.is_empty() || !self.held.is_empty()
    }

    fn remember(&mut self, op: StoredOp) -> Arc<Committed> {
        let wire = self.wire(&op);
        let committed = Arc::new(Committed { op, wire });
        self.recent.push_back(committed.clone());
        self.trim_recent();
        committed
    }

    /// Drops the oldest ops beyond the window, but never one that is not
    /// committed yet (older ops are read back from the store).
    fn trim_recent(&mut self) {
        while self.recent.len() > RECENT_OPS
            && self
                .recent
                .front()
                .is_some_and(|op| op.op.v < self.committed)
        {
            self.recent.pop_front();
        }
    }

    fn wire(&self, op: &StoredOp) -> Utf8Bytes {
        sharedb::op_message(&self.key.0, &self.key.1, op.v, &op.src, op.seq, &op.body).into()
    }

    /// Ops with `from ≤ v < self.v` (including ops not yet committed: callers
    /// hold their replies until those are).
    async fn ops_since(&self, from: u64) -> Result<Vec<Arc<Committed>>, ShareDbError> {
        if from >= self.v {
            return Ok(Vec::new());
        }
        let oldest = self.v - self.recent.len() as u64;
        if from >= oldest {
            return Ok(self
                .recent
                .iter()
                .skip((from - oldest) as usize)
                .cloned()
                .collect());
        }
        // Everything before `oldest` is committed (see `trim_recent`).
        let (c, d) = self.key.clone();
        let to = oldest;
        let older = match &self.cluster.pg {
            Some(pg) => super::pg::ops_range(pg, &c, &d, from, to)
                .await
                .map_err(store_error)?,
            None => self
                .store
                .call(move |conn| docstore::ops_range(conn, &c, &d, from, to))
                .await
                .map_err(store_error)?,
        };
        if older.len() as u64 != to - from {
            return Err(ShareDbError::new(
                ErrorCode::SubmitTransformOpsNotFound,
                format!("ops {from}..{to} are missing from the op log"),
            ));
        }
        let mut all: Vec<Arc<Committed>> = older
            .into_iter()
            .map(|op| {
                let wire = self.wire(&op);
                Arc::new(Committed { op, wire })
            })
            .collect();
        all.extend(self.recent.iter().cloned());
        Ok(all)
    }

    /// Holds a reply until everything applied so far is committed.
    fn hold(&mut self, held: Held) {
        self.held.push_back((self.v, held));
    }

    async fn handle(&mut self, cmd: DocCmd) {
        match cmd {
            DocCmd::Read { v, how, out, done } => {
                let result = self.read(v, how, &out).await;
                self.hold(Held::Read {
                    out,
                    subscribe: how.subscribe(),
                    result,
                    done,
                });
            }
            DocCmd::Unsubscribe { conn, done } => {
                self.subscribers.remove(&conn);
                self.hold(Held::Unsubscribe { done });
            }
            DocCmd::Submit {
                submit,
                src,
                out,
                done,
            } => {
                let result = self.submit(*submit, src, out.id).await;
                self.hold(Held::Submit { out, result, done });
            }
            DocCmd::SnapshotAt { v, done } => {
                let result = self.snapshot_at(v).await;
                self.hold(Held::SnapshotAt { result, done });
            }
            DocCmd::TransformPresence {
                p,
                v,
                src,
                has_type,
                done,
            } => {
                let result = self.transform_presence(p, v, &src, has_type).await;
                self.hold(Held::Presence { result, done });
            }
        }
    }

    /// Whether `send_batch` would hand a batch to the store now.
    fn ready_to_send(&self) -> bool {
        self.in_flight.is_none() && !self.unsent.is_empty() && !self.broken
    }

    /// Hands the ops applied since the last batch to the store, unless a
    /// batch is in flight (they go when it has committed).
    async fn send_batch(&mut self) {
        if !self.ready_to_send() {
            return;
        }
        let batch = std::mem::take(&mut self.unsent);
        let (c, d) = self.key.clone();
        let queued = self
            .store
            .queue(move |conn| docstore::append_batch(conn, &c, &d, &batch))
            .await;
        match queued {
            Ok(commit) => self.in_flight = Some(InFlight { to: self.v, commit }),
            Err(e) => self.fail(store_error(&e)).await,
        }
    }

    /// The batch in flight has committed (or failed).
    async fn batch_done(&mut self, result: Result<(), StoreError>) {
        let Some(batch) = self.in_flight.take() else {
            return;
        };
        match result {
            Ok(()) => {
                self.committed = batch.to;
                self.trim_recent();
                self.release();
                self.send_batch().await;
            }
            Err(e) => self.fail(store_error(&e)).await,
        }
    }

    /// Commits everything applied so far and releases the replies held for
    /// it (before reads of the store, and at shutdown).
    async fn settle(&mut self) {
        loop {
            self.send_batch().await;
            let Some(batch) = self.in_flight.as_mut() else {
                break;
            };
            let result = (&mut batch.commit).await;
            self.batch_done(result).await;
            if self.broken {
                return;
            }
        }
        self.release();
    }

    /// Sends the replies whose ops are committed, in order: every
    /// connection's frames of this release as one message, then the answers.
    fn release(&mut self) {
        let mut sends = Sends::default();
        let mut released = Vec::new();
        while self
            .held
            .front()
            .is_some_and(|(need, _)| *need <= self.committed)
        {
            let (_, mut held) = self.held.pop_front().expect("a held reply");
            match &mut held {
                Held::Submit {
                    out,
                    result: Ok(accepted),
                    ..
                } => {
                    sends.add(out, std::mem::take(&mut accepted.frames));
                    if let Some(op) = &accepted.broadcast {
                        for (id, sub) in &self.subscribers {
                            if *id != out.id && sub.from <= op.op.v {
                                sends.add(&sub.out, [op.wire.clone()]);
                            }
                        }
                    }
                }
                Held::Read {
                    out,
                    result: Ok(read),
                    ..
                } => sends.add(out, std::mem::take(&mut read.frames)),
                _ => {}
            }
            released.push(held);
        }
        for id in sends.flush() {
            self.subscribers.remove(&id);
        }
        for held in released {
            held.answer();
        }
    }

    /// A commit failed: everything not yet committed is dropped and every
    /// held reply fails; the document is reloaded from the store.
    async fn fail(&mut self, err: ShareDbError) {
        self.unsent = Batch::default();
        self.in_flight = None;
        for (_, held) in std::mem::take(&mut self.held) {
            held.fail(&err, &mut self.subscribers);
        }
        self.reload().await;
    }

    fn snapshot_value(&self) -> Value {
        sharedb::snapshot_value(self.v, self.doc.as_ref().map(Document::to_delta).as_ref())
    }

    async fn read(
        &mut self,
        v: Option<u64>,
        how: ReadReply,
        out: &Outbox,
    ) -> Result<ReadOut, ShareDbError> {
        let (c, d) = (&self.key.0, &self.key.1);
        let action = if how.subscribe() { "s" } else { "f" };
        let mut frames: Vec<Utf8Bytes> = Vec::new();
        let snapshot = match v {
            None => Some(self.snapshot_value()),
            Some(from) => {
                frames.extend(self.ops_since(from).await?.iter().map(|op| op.wire.clone()));
                None
            }
        };
        if how.subscribe() {
            let sub = Subscriber {
                out: out.clone(),
                from: self.v,
            };
            self.subscribers.insert(out.id, sub);
        }
        match how {
            ReadReply::Direct { .. } => {
                frames.push(sharedb::read_reply(action, c, d, snapshot).into());
                Ok(ReadOut {
                    frames,
                    snapshot: None,
                })
            }
            ReadReply::Collect { .. } => Ok(ReadOut { frames, snapshot }),
        }
    }

    async fn submit(
        &mut self,
        submit: Submit,
        src: String,
        out_id: u64,
    ) -> Result<Accepted, ShareDbError> {
        let Submit {
            c,
            d,
            v,
            seq,
            body,
            op_bytes,
            ..
        } = submit;
        if op_bytes > self.config.max_op_bytes {
            crate::metrics::refused("doc_max_op_bytes");
            return Err(ShareDbError::new(
                ErrorCode::OtOpBadlyFormed,
                format!(
                    "the op is {op_bytes} bytes, more than the limit of {} (--doc-max-op-bytes)",
                    self.config.max_op_bytes
                ),
            ));
        }
        let mut v = match v {
            Some(v) => v,
            None => {
                if matches!(body, OpBody::Create(_)) && self.doc.is_some() {
                    if let Some((csrc, cseq, cv)) = &self.create
                        && *csrc == src
                        && *cseq == seq
                    {
                        return Ok(Accepted {
                            frames: vec![sharedb::ack(&c, &d, &src, seq, *cv).into()],
                            broadcast: None,
                        });
                    }
                    return Err(ShareDbError::new(
                        ErrorCode::DocAlreadyCreated,
                        "Document already created",
                    ));
                }
                self.v
            }
        };
        if v > self.v {
            return Err(ShareDbError::new(
                ErrorCode::OpVersionNewerThanCurrentSnapshot,
                format!(
                    "Cannot submit op at version {v}: the document is at version {}",
                    self.v
                ),
            ));
        }
        let missed = self.ops_since(v).await?;
        let mut body = body;
        for (i, committed) in missed.iter().enumerate() {
            let cop = &committed.op;
            if cop.src == src && cop.seq == seq {
                // A resend of an op we already have: ack it, apply nothing.
                // The ops before it come first, as for a fresh submit, so the
                // client reaches the original's version instead of refetching.
                let mut frames: Vec<Utf8Bytes> =
                    missed[..i].iter().map(|m| m.wire.clone()).collect();
                frames.push(sharedb::ack(&c, &d, &src, seq, cop.v).into());
                return Ok(Accepted {
                    frames,
                    broadcast: None,
                });
            }
            body = transform(&cop.body, body)?;
            v += 1;
        }
        if self.cluster.pg.is_some() {
            return self
                .submit_pg(c, d, v, src, seq, body, missed, out_id)
                .await;
        }
        self.apply(&body)?;
        let op = StoredOp { v, src, seq, body };
        self.unsent.push_op(&op);
        if (v + 1) % self.config.snapshot_every.max(1) == 0 {
            self.unsent.push_snapshot(&StoredSnapshot {
                v: v + 1,
                data: self.doc.as_ref().map(Document::to_delta),
            });
        }
        if let OpBody::Create(_) = &op.body {
            self.create = Some((op.src.clone(), op.seq, op.v));
        }
        self.v = v + 1;
        let ack = sharedb::ack(&c, &d, &op.src, op.seq, op.v);
        let committed = self.remember(op);
        let mut frames: Vec<Utf8Bytes> = missed.iter().map(|m| m.wire.clone()).collect();
        frames.push(ack.into());
        Ok(Accepted {
            frames,
            broadcast: Some(committed),
        })
    }

    /// The PostgreSQL commit of a submit already transformed up to this
    /// node's version: optimistic, as ShareDB's. When another node has
    /// committed at `v` first, the op is tried again inside a transaction
    /// that holds the document's advisory lock ([`super::pg::Locked`]): the
    /// ops it missed are read there, applied and delivered, the op is
    /// transformed over them and committed, and no other retrying node can
    /// commit in between, so a node on a busy document does not lose the
    /// race over and over. Answered only after the commit.
    #[allow(clippy::too_many_arguments)]
    async fn submit_pg(
        &mut self,
        c: String,
        d: String,
        mut v: u64,
        src: String,
        seq: u64,
        mut body: OpBody,
        missed: Vec<Arc<Committed>>,
        out_id: u64,
    ) -> Result<Accepted, ShareDbError> {
        let pg = self.cluster.pg.clone().expect("PostgreSQL configured");
        let mut frames: Vec<Utf8Bytes> = missed.iter().map(|m| m.wire.clone()).collect();
        let mut lost = false;
        loop {
            let mut locked = None;
            if lost {
                let l = super::pg::Locked::begin(&pg, &c, &d)
                    .await
                    .map_err(|e| self.pg_failed(e))?;
                let newer = match l.ops_from(&pg, &c, &d, self.v).await {
                    Ok(ops) => ops,
                    Err(e) => {
                        l.rollback(&pg).await;
                        return Err(self.pg_failed(e));
                    }
                };
                let mut applied = Vec::new();
                for op in newer {
                    if op.v != self.v {
                        break;
                    }
                    match self.absorb(op) {
                        Ok(committed) => applied.push(committed),
                        Err(e) => {
                            l.rollback(&pg).await;
                            return Err(e);
                        }
                    }
                }
                self.deliver(&applied, Some(out_id));
                for committed in &applied {
                    let cop = &committed.op;
                    if cop.src == src && cop.seq == seq {
                        l.rollback(&pg).await;
                        frames.push(sharedb::ack(&c, &d, &src, seq, cop.v).into());
                        return Ok(Accepted {
                            frames,
                            broadcast: None,
                        });
                    }
                    body = match transform(&cop.body, body) {
                        Ok(b) => b,
                        Err(e) => {
                            l.rollback(&pg).await;
                            return Err(e);
                        }
                    };
                    v += 1;
                    frames.push(committed.wire.clone());
                }
                locked = Some(l);
            }
            let before = self.doc.clone();
            if let Err(e) = self.apply(&body) {
                if let Some(l) = locked {
                    l.rollback(&pg).await;
                }
                return Err(e);
            }
            let snapshot = (v + 1)
                .is_multiple_of(self.config.snapshot_every.max(1))
                .then(|| StoredSnapshot {
                    v: v + 1,
                    data: self.doc.as_ref().map(Document::to_delta),
                });
            let op = StoredOp {
                v,
                src: src.clone(),
                seq,
                body,
            };
            let result = match locked {
                Some(l) => l.commit(&pg, &c, &d, &op, snapshot.as_ref()).await,
                None => super::pg::commit(&pg, &c, &d, &op, snapshot.as_ref()).await,
            };
            match result {
                Ok(()) => {
                    if let OpBody::Create(_) = &op.body {
                        self.create = Some((op.src.clone(), op.seq, op.v));
                    }
                    self.v = v + 1;
                    self.committed = self.v;
                    frames.push(sharedb::ack(&c, &d, &op.src, op.seq, op.v).into());
                    if let Some(tx) = &self.publish {
                        // A full queue loses the message; the other nodes
                        // see the gap at the next one and read the log.
                        let _ = tx.try_send(super::pg::encode(&op));
                    }
                    let committed = self.remember(op);
                    return Ok(Accepted {
                        frames,
                        broadcast: Some(committed),
                    });
                }
                Err(super::pg::CommitError::Conflict(_)) => {
                    self.doc = before;
                    body = op.body;
                    lost = true;
                }
                Err(super::pg::CommitError::Pg(e)) => {
                    // It may have committed nonetheless (the answer was
                    // lost): read the log before the next request.
                    self.doc = before;
                    return Err(self.pg_failed(e));
                }
            }
        }
    }

    /// A PostgreSQL failure during a submit: the log is read again before
    /// the next request.
    fn pg_failed(&mut self, e: PgError) -> ShareDbError {
        self.stale = true;
        store_error(e)
    }

    /// Reads the ops other nodes committed after this node's version from
    /// PostgreSQL, applies them and sends them to the subscribers (but
    /// `except`, which gets them with its ack). Returns them.
    async fn catch_up(&mut self, except: Option<u64>) -> Result<Vec<Arc<Committed>>, ShareDbError> {
        let Some(pg) = self.cluster.pg.clone() else {
            return Ok(Vec::new());
        };
        let (c, d) = self.key.clone();
        let ops = match super::pg::ops_range(&pg, &c, &d, self.v, u64::MAX).await {
            Ok(ops) => ops,
            Err(e) => {
                self.stale = true;
                return Err(store_error(e));
            }
        };
        self.stale = false;
        let mut applied = Vec::new();
        for op in ops {
            if op.v != self.v {
                break;
            }
            applied.push(self.absorb(op)?);
        }
        self.deliver(&applied, except);
        Ok(applied)
    }

    /// Applies an op another node committed at this node's version.
    fn absorb(&mut self, op: StoredOp) -> Result<Arc<Committed>, ShareDbError> {
        match apply_stored(self.doc.take(), &op.body) {
            Ok(doc) => self.doc = doc,
            Err(e) => {
                self.broken = true;
                return Err(store_error(e));
            }
        }
        if let OpBody::Create(_) = &op.body {
            self.create = Some((op.src.clone(), op.seq, op.v));
        }
        self.v += 1;
        self.committed = self.v;
        Ok(self.remember(op))
    }

    /// Sends other nodes' ops to this node's subscribers, after every reply
    /// held so far (a subscriber's snapshot goes before the ops after it).
    fn deliver(&mut self, ops: &[Arc<Committed>], except: Option<u64>) {
        if ops.is_empty() {
            return;
        }
        self.release();
        let mut sends = Sends::default();
        for op in ops {
            for (id, sub) in &self.subscribers {
                if Some(*id) != except && sub.from <= op.op.v {
                    sends.add(&sub.out, [op.wire.clone()]);
                }
            }
        }
        for id in sends.flush() {
            self.subscribers.remove(&id);
        }
    }

    /// An event from the bus: the next op is applied at once; a gap, or
    /// messages lost, is filled from PostgreSQL.
    async fn remote(&mut self, event: BusEvent) {
        let op = match event {
            BusEvent::Resync => None,
            // Committed by this node: already applied.
            BusEvent::Message {
                from_self: true, ..
            } => return,
            BusEvent::Message { payload, .. } => match super::pg::decode(&payload) {
                Some(op) if op.v < self.v => return,
                Some(op) => Some(op),
                None => {
                    tracing::warn!("unreadable op on the bus");
                    None
                }
            },
        };
        match op {
            Some(op) if op.v == self.v => {
                if let Ok(committed) = self.absorb(op) {
                    self.deliver(&[committed], None);
                }
            }
            _ => {
                if let Err(e) = self.catch_up(None).await {
                    tracing::warn!(error = %e.message, "cannot catch up from PostgreSQL");
                }
            }
        }
    }

    /// Applies `body` to the document in memory. An edit that fails leaves
    /// the document unchanged (the document validates before it changes
    /// anything).
    fn apply(&mut self, body: &OpBody) -> Result<(), ShareDbError> {
        let max = self.config.max_doc_len;
        let too_big = |len: usize| {
            crate::metrics::refused("doc_max_len");
            ShareDbError::new(
                ErrorCode::OtOpNotApplied,
                format!(
                    "the document would be {len} UTF-16 units long, more than the limit of {max} (--doc-max-len)"
                ),
            )
        };
        match body {
            OpBody::Create(data) => {
                if self.doc.is_some() {
                    return Err(ShareDbError::new(
                        ErrorCode::DocAlreadyCreated,
                        "Document already created",
                    ));
                }
                let len = data.len();
                if len > max {
                    return Err(too_big(len));
                }
                let doc = Document::from_delta(data)
                    .map_err(|e| ShareDbError::new(ErrorCode::OtOpBadlyFormed, e.to_string()))?;
                self.doc = Some(doc);
            }
            OpBody::Delete => {
                if self.doc.is_none() {
                    return Err(ShareDbError::new(
                        ErrorCode::DocDoesNotExist,
                        "Document does not exist",
                    ));
                }
                self.doc = None;
            }
            OpBody::Edit(op) => {
                let Some(doc) = self.doc.as_mut() else {
                    return Err(ShareDbError::new(
                        ErrorCode::DocDoesNotExist,
                        "Document does not exist",
                    ));
                };
                let len = doc.len_utf16() as i64 + op.change_len() as i64;
                if len > max as i64 {
                    return Err(too_big(len as usize));
                }
                doc.apply(op)
                    .map_err(|e| ShareDbError::new(ErrorCode::OtOpNotApplied, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Replaces the in-memory document with what the store holds. When the
    /// store cannot be read the owner is marked broken and stops.
    async fn reload(&mut self) {
        match DocState::load(
            self.key.clone(),
            self.config.clone(),
            self.store.clone(),
            self.cluster.clone(),
        )
        .await
        {
            Ok(fresh) => {
                self.v = fresh.v;
                self.committed = fresh.committed;
                self.doc = fresh.doc;
                self.create = fresh.create;
                self.recent = fresh.recent;
                let v = self.v;
                self.subscribers.retain(|_, s| s.from <= v);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reload document");
                self.broken = true;
            }
        }
    }

    async fn snapshot_at(&mut self, v: Option<u64>) -> Result<(u64, Option<Delta>), ShareDbError> {
        if v.is_some_and(|v| v > self.committed && v < self.v) {
            // The store is about to be read for ops it may not have yet.
            self.settle().await;
            if self.broken {
                return Err(ShareDbError::new(
                    ErrorCode::UnknownError,
                    "the document could not be reloaded from the store",
                ));
            }
        }
        let target = match v {
            Some(v) if v < self.v => v,
            _ => return Ok((self.v, self.doc.as_ref().map(Document::to_delta))),
        };
        let (c, d) = self.key.clone();
        let (snapshot, ops) = match &self.cluster.pg {
            Some(pg) => {
                let snap = super::pg::latest_snapshot_at_or_before(pg, &c, &d, target)
                    .await
                    .map_err(store_error)?;
                let from = snap.as_ref().map(|s| s.v).unwrap_or(0);
                let ops = super::pg::ops_range(pg, &c, &d, from, target)
                    .await
                    .map_err(store_error)?;
                (snap, ops)
            }
            None => self
                .store
                .call(move |conn| {
                    let snap = docstore::latest_snapshot_at_or_before(conn, &c, &d, target)?;
                    let from = snap.as_ref().map(|s| s.v).unwrap_or(0);
                    let ops = docstore::ops_range(conn, &c, &d, from, target)?;
                    Ok((snap, ops))
                })
                .await
                .map_err(store_error)?,
        };
        let (mut at, mut doc) = match snapshot {
            Some(s) => (
                s.v,
                s.data
                    .as_ref()
                    .map(Document::from_delta)
                    .transpose()
                    .map_err(store_error)?,
            ),
            None => (0, None),
        };
        for op in ops {
            doc = apply_stored(doc, &op.body).map_err(store_error)?;
            at += 1;
        }
        Ok((at, doc.as_ref().map(Document::to_delta)))
    }

    async fn transform_presence(
        &self,
        mut p: Value,
        v: u64,
        src: &str,
        has_type: bool,
    ) -> Result<(Value, u64), ShareDbError> {
        if v >= self.v {
            return Ok((p, v));
        }
        if !has_type {
            return Err(ShareDbError::new(
                ErrorCode::DocTypeNotRecognized,
                "Unknown type",
            ));
        }
        let mut v = v;
        for committed in self.ops_since(v).await? {
            let op = &committed.op;
            p = match &op.body {
                OpBody::Create(_) | OpBody::Delete => Value::Null,
                OpBody::Edit(_) if p.is_null() => Value::Null,
                OpBody::Edit(delta) => delta::transform_presence(&p, delta, op.src == src)
                    .map_err(|e| {
                        ShareDbError::new(ErrorCode::PresenceTransformFailed, e.to_string())
                    })?,
            };
            v += 1;
        }
        Ok((p, v))
    }
}

/// Applies a stored op while loading (the store holds only ops that were
/// valid when committed).
fn apply_stored(doc: Option<Document>, body: &OpBody) -> Result<Option<Document>, String> {
    match (doc, body) {
        (_, OpBody::Create(data)) => Document::from_delta(data)
            .map(Some)
            .map_err(|e| e.to_string()),
        (_, OpBody::Delete) => Ok(None),
        (Some(mut doc), OpBody::Edit(op)) => {
            doc.apply(op).map_err(|e| e.to_string())?;
            Ok(Some(doc))
        }
        (None, OpBody::Edit(_)) => Err("stored edit of a document that does not exist".into()),
    }
}

/// ShareDB's `ot.transform(incoming, committed)` for rich-text: rebases the
/// incoming op over one committed op.
fn transform(committed: &OpBody, incoming: OpBody) -> Result<OpBody, ShareDbError> {
    match (committed, incoming) {
        (OpBody::Delete, OpBody::Edit(_) | OpBody::Create(_)) => Err(ShareDbError::new(
            ErrorCode::DocWasDeleted,
            "Document was deleted",
        )),
        (OpBody::Create(_), _) | (OpBody::Edit(_), OpBody::Create(_)) => Err(ShareDbError::new(
            ErrorCode::DocAlreadyCreated,
            "Document already created",
        )),
        (OpBody::Edit(c), OpBody::Edit(i)) => Ok(OpBody::Edit(c.transform(&i, true))),
        (_, incoming @ OpBody::Delete) => Ok(incoming),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(v: Value) -> OpBody {
        OpBody::Edit(Delta::from_value(&v).unwrap())
    }

    fn create() -> OpBody {
        OpBody::Create(Delta::from_value(&json!([{"insert": "x\n"}])).unwrap())
    }

    fn code(r: Result<OpBody, ShareDbError>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn transform_follows_sharedb_rules() {
        // Edit over edit: the committed op wins the insert tie.
        let rebased = transform(
            &edit(json!([{"insert": "A"}])),
            edit(json!([{"insert": "B"}])),
        );
        assert_eq!(
            rebased.unwrap(),
            edit(json!([{"retain": 1}, {"insert": "B"}]))
        );
        // Over a delete: edits and creates fail, a delete passes.
        assert_eq!(
            code(transform(&OpBody::Delete, edit(json!([{"insert": "B"}])))),
            ErrorCode::DocWasDeleted
        );
        assert_eq!(
            code(transform(&OpBody::Delete, create())),
            ErrorCode::DocWasDeleted
        );
        assert_eq!(
            transform(&OpBody::Delete, OpBody::Delete).unwrap(),
            OpBody::Delete
        );
        // Over a create anything fails, and a create over an edit too.
        for incoming in [edit(json!([{"insert": "B"}])), create(), OpBody::Delete] {
            assert_eq!(
                code(transform(&create(), incoming)),
                ErrorCode::DocAlreadyCreated
            );
        }
        assert_eq!(
            code(transform(&edit(json!([{"insert": "A"}])), create())),
            ErrorCode::DocAlreadyCreated
        );
        // A delete passes over an edit.
        assert_eq!(
            transform(&edit(json!([{"insert": "A"}])), OpBody::Delete).unwrap(),
            OpBody::Delete
        );
    }

    #[test]
    fn stored_ops_replay_into_documents() {
        let doc = apply_stored(None, &create()).unwrap();
        let doc = apply_stored(doc, &edit(json!([{"insert": "a"}]))).unwrap();
        assert_eq!(doc.as_ref().unwrap().text(), "ax\n");
        assert_eq!(apply_stored(doc, &OpBody::Delete).unwrap(), None);
        assert!(apply_stored(None, &edit(json!([{"insert": "a"}]))).is_err());
    }
}
