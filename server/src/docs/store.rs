//! The editor's tables: the op log (`doc_ops`, every committed op with its
//! src and seq) and periodic snapshots (`doc_snapshots`).
//!
//! Functions here run on the store's writer thread (inside `store.call`).

use rt_protocol::delta::Delta;
use rt_protocol::sharedb::OpBody;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{Store, StoreError};

/// src recorded for ops the server itself makes (the seed).
pub const SERVER_SRC: &str = "rt-server";

/// One committed op as stored.
#[derive(Debug, Clone)]
pub struct StoredOp {
    pub v: u64,
    pub src: String,
    pub seq: u64,
    pub body: OpBody,
}

/// A stored snapshot: the doc at version `v` (`None`: it did not exist).
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub v: u64,
    pub data: Option<Delta>,
}

/// Everything needed to bring a document into memory.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The latest snapshot, if any was stored.
    pub snapshot: Option<StoredSnapshot>,
    /// The ops after that snapshot (or all ops), in version order.
    pub ops: Vec<StoredOp>,
    /// The latest create op: (src, seq, v).
    pub create: Option<(String, u64, u64)>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn corrupt(detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, detail.into())
}

pub(crate) fn parse_delta(text: &str) -> rusqlite::Result<Delta> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(format!("stored delta: {e}")))?;
    Delta::from_value(&value).map_err(|e| corrupt(format!("stored delta: {e}")))
}

/// A Delta's stored text: `{"ops": [...]}`.
pub(crate) fn delta_text(delta: &Delta) -> String {
    serde_json::to_string(delta).expect("a Delta always serializes")
}

pub(crate) fn body_columns(body: &OpBody) -> (&'static str, Option<String>) {
    match body {
        OpBody::Edit(op) => ("op", Some(delta_text(op))),
        OpBody::Create(data) => ("create", Some(delta_text(data))),
        OpBody::Delete => ("del", None),
    }
}

fn row_to_op(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOp> {
    let v: i64 = row.get(0)?;
    let src: String = row.get(1)?;
    let seq: i64 = row.get(2)?;
    let kind: String = row.get(3)?;
    let data: Option<String> = row.get(4)?;
    let body = match (kind.as_str(), data) {
        ("op", Some(d)) => OpBody::Edit(parse_delta(&d)?),
        ("create", Some(d)) => OpBody::Create(parse_delta(&d)?),
        ("del", _) => OpBody::Delete,
        (k, _) => return Err(corrupt(format!("stored op of unknown kind {k:?}"))),
    };
    Ok(StoredOp {
        v: v as u64,
        src,
        seq: seq as u64,
        body,
    })
}

/// Reads the latest snapshot and the ops after it.
pub fn load(conn: &Connection, c: &str, d: &str) -> rusqlite::Result<Loaded> {
    let snapshot = latest_snapshot_at_or_before(conn, c, d, i64::MAX as u64)?;
    let from = snapshot.as_ref().map(|s| s.v).unwrap_or(0);
    let ops = ops_range(conn, c, d, from, u64::MAX)?;
    let create = conn
        .query_row(
            "SELECT src, seq, v FROM doc_ops WHERE collection = ?1 AND doc_id = ?2 AND kind = 'create'
             ORDER BY v DESC LIMIT 1",
            params![c, d],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            },
        )
        .optional()?;
    Ok(Loaded {
        snapshot,
        ops,
        create,
    })
}

/// The latest stored snapshot with version ≤ `v`.
pub fn latest_snapshot_at_or_before(
    conn: &Connection,
    c: &str,
    d: &str,
    v: u64,
) -> rusqlite::Result<Option<StoredSnapshot>> {
    let row = conn
        .query_row(
            "SELECT v, data FROM doc_snapshots WHERE collection = ?1 AND doc_id = ?2 AND v <= ?3
             ORDER BY v DESC LIMIT 1",
            params![c, d, v.min(i64::MAX as u64) as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?;
    row.map(|(v, data)| {
        Ok(StoredSnapshot {
            v: v as u64,
            data: data.as_deref().map(parse_delta).transpose()?,
        })
    })
    .transpose()
}

/// Ops with `from ≤ v < to`, in order.
pub fn ops_range(
    conn: &Connection,
    c: &str,
    d: &str,
    from: u64,
    to: u64,
) -> rusqlite::Result<Vec<StoredOp>> {
    let mut stmt = conn.prepare_cached(
        "SELECT v, src, seq, kind, data FROM doc_ops
         WHERE collection = ?1 AND doc_id = ?2 AND v >= ?3 AND v < ?4 ORDER BY v",
    )?;
    let to = to.min(i64::MAX as u64) as i64;
    stmt.query_map(params![c, d, from as i64, to], row_to_op)?
        .collect()
}

/// One op row, encoded for the store.
#[derive(Debug)]
struct OpRow {
    v: u64,
    src: String,
    seq: u64,
    kind: &'static str,
    data: Option<String>,
}

/// Ops (and snapshots) of one document to append in one transaction. The
/// rows are encoded when pushed, so the store's thread only writes them.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<OpRow>,
    snapshots: Vec<(u64, Option<String>)>,
}

impl Batch {
    /// Adds an op (ops must be pushed in version order).
    pub fn push_op(&mut self, op: &StoredOp) {
        let (kind, data) = body_columns(&op.body);
        self.ops.push(OpRow {
            v: op.v,
            src: op.src.clone(),
            seq: op.seq,
            kind,
            data,
        });
    }

    /// Adds a snapshot.
    pub fn push_snapshot(&mut self, snapshot: &StoredSnapshot) {
        self.snapshots
            .push((snapshot.v, snapshot.data.as_ref().map(delta_text)));
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.snapshots.is_empty()
    }
}

/// Appends a batch of ops and snapshots.
pub fn append_batch(conn: &Connection, c: &str, d: &str, batch: &Batch) -> rusqlite::Result<()> {
    let ts = now_ms();
    if !batch.ops.is_empty() {
        let mut insert = conn.prepare_cached(
            "INSERT INTO doc_ops (collection, doc_id, v, src, seq, kind, data, ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for op in &batch.ops {
            insert.execute(params![
                c,
                d,
                op.v as i64,
                op.src,
                op.seq as i64,
                op.kind,
                op.data,
                ts
            ])?;
        }
    }
    if !batch.snapshots.is_empty() {
        let mut insert = conn.prepare_cached(
            "INSERT OR REPLACE INTO doc_snapshots (collection, doc_id, v, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (v, data) in &batch.snapshots {
            insert.execute(params![c, d, *v as i64, data])?;
        }
    }
    Ok(())
}

/// Appends one op (and, when given, the snapshot after it).
pub fn append(
    conn: &Connection,
    c: &str,
    d: &str,
    op: &StoredOp,
    snapshot: Option<&StoredSnapshot>,
) -> rusqlite::Result<()> {
    let mut batch = Batch::default();
    batch.push_op(op);
    if let Some(s) = snapshot {
        batch.push_snapshot(s);
    }
    append_batch(conn, c, d, &batch)
}

/// Creates `c/d` with `text` unless the store has any op for it.
pub async fn seed(store: &Store, c: &str, d: &str, text: &str) -> Result<(), StoreError> {
    let data = serde_json::json!({"ops": [{"insert": text}]});
    let create = Delta::from_value(&data).map_err(|e| StoreError::Commit(e.to_string()))?;
    let (c, d) = (c.to_string(), d.to_string());
    store
        .call(move |conn| {
            let exists: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM doc_ops WHERE collection = ?1 AND doc_id = ?2)",
                params![c, d],
                |r| r.get(0),
            )?;
            if !exists {
                let op = StoredOp {
                    v: 0,
                    src: SERVER_SRC.into(),
                    seq: 1,
                    body: OpBody::Create(create),
                };
                append(conn, &c, &d, &op, None)?;
            }
            Ok(())
        })
        .await
}
