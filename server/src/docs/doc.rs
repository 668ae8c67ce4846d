//! One task owns each open document: its current snapshot, a window of
//! recent ops, and its subscribers. It is the only writer of the document's
//! op log, so submits need no retry loop: each is transformed against the ops
//! committed since the client's version, applied, committed, and only then
//! acknowledged.

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
use super::store::{self as docstore, StoredOp, StoredSnapshot};
use crate::store::Store;

/// Commands queued for one document at most.
pub const DOC_QUEUE: usize = 256;
/// Committed ops kept in memory for transforms and catch-up; older ones are
/// read from the store.
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

/// A committed op in memory, with its wire form encoded once.
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
    registry: Registry,
    shutdown: CancellationToken,
) -> DocHandle {
    let (tx, rx) = mpsc::channel(DOC_QUEUE);
    tokio::spawn(run(key, generation, config, store, registry, rx, shutdown));
    DocHandle { tx, generation }
}

struct DocState {
    key: DocKey,
    config: DocsConfig,
    store: Store,
    /// Current version: the number of committed ops.
    v: u64,
    /// The current content; `None` when never created or deleted.
    doc: Option<Document>,
    /// The latest create op: (src, seq, v), for resent creates.
    create: Option<(String, u64, u64)>,
    /// Ops with versions `v - recent.len() .. v`.
    recent: VecDeque<Arc<Committed>>,
    subscribers: HashMap<u64, Outbox>,
}

async fn run(
    key: DocKey,
    generation: u64,
    config: DocsConfig,
    store: Store,
    registry: Registry,
    mut rx: mpsc::Receiver<DocCmd>,
    shutdown: CancellationToken,
) {
    let idle = config.idle_unload();
    let mut state = match DocState::load(key.clone(), config, store).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(c = %key.0, d = %key.1, error = %e, "cannot load document");
            None
        }
    };
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = tokio::time::sleep(idle) => {
                let busy = state.as_mut().is_some_and(|s| s.has_subscribers());
                if busy {
                    continue;
                }
                if registry.unload(key.clone(), generation).await {
                    break;
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
        };
        let Some(cmd) = cmd else { break };
        match state.as_mut() {
            Some(s) => s.handle(cmd).await,
            None => refuse(cmd),
        }
    }
    // Commands already queued are dropped unanswered: their senders see the
    // closed reply channel and ask the registry again (which loads anew).
    rx.close();
    while rx.recv().await.is_some() {}
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
    async fn load(key: DocKey, config: DocsConfig, store: Store) -> Result<DocState, ShareDbError> {
        let (c, d) = key.clone();
        let loaded = store
            .call(move |conn| docstore::load(conn, &c, &d))
            .await
            .map_err(store_error)?;
        let mut state = DocState {
            key,
            config,
            store,
            v: 0,
            doc: None,
            create: loaded.create,
            recent: VecDeque::new(),
            subscribers: HashMap::new(),
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
            state.remember(op);
        }
        Ok(state)
    }

    fn has_subscribers(&mut self) -> bool {
        self.subscribers.retain(|_, out| !out.is_closed());
        !self.subscribers.is_empty()
    }

    fn remember(&mut self, op: StoredOp) -> Arc<Committed> {
        let wire = self.wire(&op);
        let committed = Arc::new(Committed { op, wire });
        self.recent.push_back(committed.clone());
        while self.recent.len() > RECENT_OPS {
            self.recent.pop_front();
        }
        committed
    }

    fn wire(&self, op: &StoredOp) -> Utf8Bytes {
        sharedb::op_message(&self.key.0, &self.key.1, op.v, &op.src, op.seq, &op.body).into()
    }

    /// Committed ops with `from ≤ v < self.v`.
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
        let (c, d) = self.key.clone();
        let to = oldest;
        let older = self
            .store
            .call(move |conn| docstore::ops_range(conn, &c, &d, from, to))
            .await
            .map_err(store_error)?;
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

    async fn handle(&mut self, cmd: DocCmd) {
        match cmd {
            DocCmd::Read { v, how, out, done } => {
                let r = self.read(v, how, &out).await;
                let _ = done.send(r);
            }
            DocCmd::Unsubscribe { conn, done } => {
                self.subscribers.remove(&conn);
                let _ = done.send(());
            }
            DocCmd::Submit {
                submit,
                src,
                out,
                done,
            } => {
                let r = self.submit(*submit, src, &out).await;
                let _ = done.send(r);
            }
            DocCmd::SnapshotAt { v, done } => {
                let _ = done.send(self.snapshot_at(v).await);
            }
            DocCmd::TransformPresence {
                p,
                v,
                src,
                has_type,
                done,
            } => {
                let _ = done.send(self.transform_presence(p, v, &src, has_type).await);
            }
        }
    }

    fn snapshot_value(&self) -> Value {
        sharedb::snapshot_value(self.v, self.doc.as_ref().map(Document::to_delta).as_ref())
    }

    async fn read(
        &mut self,
        v: Option<u64>,
        how: ReadReply,
        out: &Outbox,
    ) -> Result<Option<Value>, ShareDbError> {
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
            self.subscribers.insert(out.id, out.clone());
        }
        match how {
            ReadReply::Direct { .. } => {
                frames.push(sharedb::read_reply(action, c, d, snapshot).into());
                out.push(Outbound::Many(frames));
                Ok(None)
            }
            ReadReply::Collect { .. } => {
                if !frames.is_empty() {
                    out.push(Outbound::Many(frames));
                }
                Ok(snapshot)
            }
        }
    }

    async fn submit(
        &mut self,
        submit: Submit,
        src: String,
        out: &Outbox,
    ) -> Result<(), ShareDbError> {
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
                        out.frame(sharedb::ack(&c, &d, &src, seq, *cv));
                        return Ok(());
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
                out.push(Outbound::Many(frames));
                return Ok(());
            }
            body = transform(&cop.body, body)?;
            v += 1;
        }
        let new_doc = self.apply(&body)?;
        let op = StoredOp { v, src, seq, body };
        let snapshot = ((v + 1) % self.config.snapshot_every.max(1) == 0).then(|| StoredSnapshot {
            v: v + 1,
            data: match &new_doc {
                Applied::Keep => self.doc.as_ref().map(Document::to_delta),
                Applied::Replace(doc) => doc.as_ref().map(Document::to_delta),
            },
        });
        let (sc, sd) = self.key.clone();
        let stored = op.clone();
        let committed = self
            .store
            .call(move |conn| docstore::append(conn, &sc, &sd, &stored, snapshot.as_ref()))
            .await;
        if let Err(e) = committed {
            // The in-memory copy may be ahead of the store now: start over
            // from what is durable.
            let err = store_error(&e);
            self.reload().await;
            return Err(err);
        }
        if let Applied::Replace(doc) = new_doc {
            self.doc = doc;
        }
        if let OpBody::Create(_) = &op.body {
            self.create = Some((op.src.clone(), op.seq, op.v));
        }
        self.v = v + 1;
        let ack = sharedb::ack(&c, &d, &op.src, op.seq, op.v);
        let committed = self.remember(op);
        let mut frames: Vec<Utf8Bytes> = missed.iter().map(|m| m.wire.clone()).collect();
        frames.push(ack.into());
        out.push(Outbound::Many(frames));
        self.subscribers.retain(|id, sub| {
            if *id == out.id {
                return true;
            }
            sub.frame(committed.wire.clone())
        });
        Ok(())
    }

    /// Applies `body` to the current document. Edits mutate it in place (the
    /// document validates before it changes anything); creates and deletes
    /// return the replacement, installed once the op is durable.
    fn apply(&mut self, body: &OpBody) -> Result<Applied, ShareDbError> {
        let max = self.config.max_doc_len;
        let too_big = |len: usize| {
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
                Ok(Applied::Replace(Some(doc)))
            }
            OpBody::Delete => {
                if self.doc.is_none() {
                    return Err(ShareDbError::new(
                        ErrorCode::DocDoesNotExist,
                        "Document does not exist",
                    ));
                }
                Ok(Applied::Replace(None))
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
                Ok(Applied::Keep)
            }
        }
    }

    async fn reload(&mut self) {
        match DocState::load(self.key.clone(), self.config.clone(), self.store.clone()).await {
            Ok(fresh) => {
                self.v = fresh.v;
                self.doc = fresh.doc;
                self.create = fresh.create;
                self.recent = fresh.recent;
            }
            Err(e) => tracing::error!(error = %e, "cannot reload document"),
        }
    }

    async fn snapshot_at(&self, v: Option<u64>) -> Result<(u64, Option<Delta>), ShareDbError> {
        let target = match v {
            Some(v) if v < self.v => v,
            _ => return Ok((self.v, self.doc.as_ref().map(Document::to_delta))),
        };
        let (c, d) = self.key.clone();
        let (snapshot, ops) = self
            .store
            .call(move |conn| {
                let snap = docstore::latest_snapshot_at_or_before(conn, &c, &d, target)?;
                let from = snap.as_ref().map(|s| s.v).unwrap_or(0);
                let ops = docstore::ops_range(conn, &c, &d, from, target)?;
                Ok((snap, ops))
            })
            .await
            .map_err(store_error)?;
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

/// The outcome of applying an op before it is committed.
enum Applied {
    /// The document was edited in place.
    Keep,
    /// The document is replaced (create) or removed (delete).
    Replace(Option<Document>),
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
