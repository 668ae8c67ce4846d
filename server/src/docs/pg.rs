//! This app's tables in PostgreSQL (`--database`): the op log and snapshots,
//! as in the embedded store, shared by every node.
//!
//! The op log's primary key (collection, doc_id, v) is what orders commits
//! between nodes: a node commits its op at the version it believes is next,
//! and a unique violation tells it another node got there first (ShareDB's
//! optimistic commit).

use rt_protocol::delta::Delta;
use rt_protocol::sharedb::OpBody;
use tokio_postgres::error::SqlState;

use super::store::{Loaded, StoredOp, StoredSnapshot, body_columns, delta_text, parse_delta};
use crate::cluster::schema::Migration;
use crate::cluster::{Pg, PgError};

/// This app's migrations, oldest first (names prefixed with the app's).
pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "docs-0001-ops",
    sql: "CREATE TABLE doc_ops (
              collection TEXT NOT NULL,
              doc_id TEXT NOT NULL,
              v BIGINT NOT NULL,
              src TEXT NOT NULL,
              seq BIGINT NOT NULL,
              kind TEXT NOT NULL,
              data TEXT,
              ts BIGINT NOT NULL,
              PRIMARY KEY (collection, doc_id, v)
          );
          -- Resends are matched by (src, seq) across nodes.
          CREATE INDEX doc_ops_src_seq ON doc_ops (collection, doc_id, src, seq);
          CREATE TABLE doc_snapshots (
              collection TEXT NOT NULL,
              doc_id TEXT NOT NULL,
              v BIGINT NOT NULL,
              data TEXT,
              PRIMARY KEY (collection, doc_id, v)
          );",
}];

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another node committed an op at this version first.
    #[error("version {0} is taken")]
    Conflict(u64),
    #[error(transparent)]
    Pg(#[from] PgError),
}

fn corrupt(e: impl std::fmt::Display) -> PgError {
    PgError::Unavailable(format!("stored op: {e}"))
}

fn row_to_op(row: &tokio_postgres::Row) -> Result<StoredOp, PgError> {
    let v: i64 = row.get(0);
    let src: String = row.get(1);
    let seq: i64 = row.get(2);
    let kind: String = row.get(3);
    let data: Option<String> = row.get(4);
    let body = match (kind.as_str(), data) {
        ("op", Some(d)) => OpBody::Edit(parse_delta(&d).map_err(corrupt)?),
        ("create", Some(d)) => OpBody::Create(parse_delta(&d).map_err(corrupt)?),
        ("del", _) => OpBody::Delete,
        (k, _) => return Err(corrupt(format!("unknown kind {k:?}"))),
    };
    Ok(StoredOp {
        v: v as u64,
        src,
        seq: seq as u64,
        body,
    })
}

fn clamp(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Ops with `from ≤ v < to`, in order.
pub async fn ops_range(
    pg: &Pg,
    c: &str,
    d: &str,
    from: u64,
    to: u64,
) -> Result<Vec<StoredOp>, PgError> {
    let client = pg.get().await?;
    let rows = pg
        .with_timeout(client.query(
            "SELECT v, src, seq, kind, data FROM doc_ops
             WHERE collection = $1 AND doc_id = $2 AND v >= $3 AND v < $4 ORDER BY v",
            &[&c, &d, &clamp(from), &clamp(to)],
        ))
        .await??;
    rows.iter().map(row_to_op).collect()
}

/// The latest stored snapshot with version ≤ `v`.
pub async fn latest_snapshot_at_or_before(
    pg: &Pg,
    c: &str,
    d: &str,
    v: u64,
) -> Result<Option<StoredSnapshot>, PgError> {
    let client = pg.get().await?;
    let row = pg
        .with_timeout(client.query_opt(
            "SELECT v, data FROM doc_snapshots WHERE collection = $1 AND doc_id = $2 AND v <= $3
             ORDER BY v DESC LIMIT 1",
            &[&c, &d, &clamp(v)],
        ))
        .await??;
    row.map(|r| {
        let v: i64 = r.get(0);
        let data: Option<String> = r.get(1);
        Ok(StoredSnapshot {
            v: v as u64,
            data: data
                .as_deref()
                .map(parse_delta)
                .transpose()
                .map_err(corrupt)?,
        })
    })
    .transpose()
}

/// The latest snapshot, the ops after it and the latest create.
pub async fn load(pg: &Pg, c: &str, d: &str) -> Result<Loaded, PgError> {
    let snapshot = latest_snapshot_at_or_before(pg, c, d, u64::MAX).await?;
    let from = snapshot.as_ref().map(|s| s.v).unwrap_or(0);
    let ops = ops_range(pg, c, d, from, u64::MAX).await?;
    let client = pg.get().await?;
    let create = pg
        .with_timeout(client.query_opt(
            "SELECT src, seq, v FROM doc_ops WHERE collection = $1 AND doc_id = $2 AND kind = 'create'
             ORDER BY v DESC LIMIT 1",
            &[&c, &d],
        ))
        .await??
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
            )
        });
    Ok(Loaded {
        snapshot,
        ops,
        create,
    })
}

/// Inserts `op` and, when given, the snapshot after it, on `client` (a
/// transaction of the caller's).
async fn insert_op(
    client: &impl deadpool_postgres::GenericClient,
    c: &str,
    d: &str,
    op: &StoredOp,
    snapshot: Option<&StoredSnapshot>,
) -> Result<(), tokio_postgres::Error> {
    let (kind, data) = body_columns(&op.body);
    client
        .execute(
            "INSERT INTO doc_ops (collection, doc_id, v, src, seq, kind, data, ts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, (extract(epoch from now()) * 1000)::bigint)",
            &[&c, &d, &clamp(op.v), &op.src, &clamp(op.seq), &kind, &data],
        )
        .await?;
    if let Some(s) = snapshot {
        client
            .execute(
                "INSERT INTO doc_snapshots (collection, doc_id, v, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (collection, doc_id, v) DO UPDATE SET data = EXCLUDED.data",
                &[&c, &d, &clamp(s.v), &s.data.as_ref().map(delta_text)],
            )
            .await?;
    }
    Ok(())
}

/// Commits `op` at `op.v` (and the snapshot after it, when given) in one
/// transaction. `Conflict` when another node holds that version.
pub async fn commit(
    pg: &Pg,
    c: &str,
    d: &str,
    op: &StoredOp,
    snapshot: Option<&StoredSnapshot>,
) -> Result<(), CommitError> {
    let mut client = pg.get().await?;
    let work = async {
        let tx = client.transaction().await?;
        insert_op(&tx, c, d, op, snapshot).await?;
        tx.commit().await
    };
    match pg.with_timeout(work).await? {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(CommitError::Conflict(op.v)),
        Err(e) => Err(CommitError::Pg(e.into())),
    }
}

/// Key of a document's advisory lock: a hash of (collection, id).
fn doc_lock_key(c: &str, d: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"rt-doc\0");
    h.update(c.as_bytes());
    h.update(b"\0");
    h.update(d.as_bytes());
    let bytes = h.finalize();
    i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// A transaction holding a document's advisory lock, for the retry after a
/// lost race: the node reads what it missed and commits inside it, so no
/// other retrying node commits in between and it does not lose again (a
/// first, optimistic attempt elsewhere still can, rarely). Ended by
/// [`Locked::commit`] or [`Locked::rollback`]; dropped otherwise, its
/// connection is closed rather than returned to the pool.
pub struct Locked {
    client: Option<deadpool_postgres::Object>,
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Mid-transaction: closing the connection rolls it back.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Locked {
    pub async fn begin(pg: &Pg, c: &str, d: &str) -> Result<Locked, PgError> {
        let locked = Locked {
            client: Some(pg.get().await?),
        };
        let conn = locked.conn();
        pg.with_timeout(conn.batch_execute("BEGIN")).await??;
        pg.with_timeout(conn.execute("SELECT pg_advisory_xact_lock($1)", &[&doc_lock_key(c, d)]))
            .await??;
        Ok(locked)
    }

    fn conn(&self) -> &deadpool_postgres::Object {
        self.client.as_ref().expect("open until commit or rollback")
    }

    /// Ops from version `from` on, in order.
    pub async fn ops_from(
        &self,
        pg: &Pg,
        c: &str,
        d: &str,
        from: u64,
    ) -> Result<Vec<StoredOp>, PgError> {
        let rows = pg
            .with_timeout(self.conn().query(
                "SELECT v, src, seq, kind, data FROM doc_ops
                 WHERE collection = $1 AND doc_id = $2 AND v >= $3 ORDER BY v",
                &[&c, &d, &clamp(from)],
            ))
            .await??;
        rows.iter().map(row_to_op).collect()
    }

    /// Inserts `op` (and `snapshot`) and commits.
    pub async fn commit(
        mut self,
        pg: &Pg,
        c: &str,
        d: &str,
        op: &StoredOp,
        snapshot: Option<&StoredSnapshot>,
    ) -> Result<(), CommitError> {
        let conn = self.conn();
        let work = async {
            insert_op(conn, c, d, op, snapshot).await?;
            conn.batch_execute("COMMIT").await
        };
        match pg.with_timeout(work).await {
            Ok(Ok(())) => {
                // Committed: the connection goes back to the pool.
                drop(self.client.take());
                Ok(())
            }
            Ok(Err(e)) => {
                let conflict = e.code() == Some(&SqlState::UNIQUE_VIOLATION);
                self.rollback(pg).await;
                if conflict {
                    Err(CommitError::Conflict(op.v))
                } else {
                    Err(CommitError::Pg(e.into()))
                }
            }
            // Dropped: the connection closes, which rolls back.
            Err(e) => Err(CommitError::Pg(e)),
        }
    }

    /// Ends the transaction without writing, releasing the lock.
    pub async fn rollback(mut self, pg: &Pg) {
        let Some(client) = self.client.take() else {
            return;
        };
        let ok = matches!(
            pg.with_timeout(client.batch_execute("ROLLBACK")).await,
            Ok(Ok(()))
        );
        if !ok {
            // State unknown: close it rather than return it to the pool.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// Creates `c/d` with `text` unless the log has any op for it.
pub async fn seed(pg: &Pg, c: &str, d: &str, text: &str) -> Result<(), PgError> {
    let data = serde_json::json!({"ops": [{"insert": text}]});
    let create = Delta::from_value(&data).map_err(corrupt)?;
    let op = StoredOp {
        v: 0,
        src: super::store::SERVER_SRC.into(),
        seq: 1,
        body: OpBody::Create(create),
    };
    match commit(pg, c, d, &op, None).await {
        Ok(()) | Err(CommitError::Conflict(_)) => Ok(()),
        Err(CommitError::Pg(e)) => Err(e),
    }
}

/// An op as it travels on the bus (`doc:{collection}/{id}`): the same
/// columns as the log.
pub fn encode(op: &StoredOp) -> Vec<u8> {
    let (kind, data) = body_columns(&op.body);
    serde_json::to_vec(&serde_json::json!({
        "v": op.v, "src": op.src, "seq": op.seq, "kind": kind, "data": data,
    }))
    .expect("an op always serializes")
}

/// The op in a bus message, or `None` when it is not one.
pub fn decode(bytes: &[u8]) -> Option<StoredOp> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let data = v.get("data").and_then(|d| d.as_str());
    let body = match (v.get("kind")?.as_str()?, data) {
        ("op", Some(d)) => OpBody::Edit(parse_delta(d).ok()?),
        ("create", Some(d)) => OpBody::Create(parse_delta(d).ok()?),
        ("del", _) => OpBody::Delete,
        _ => return None,
    };
    Some(StoredOp {
        v: v.get("v")?.as_u64()?,
        src: v.get("src")?.as_str()?.to_string(),
        seq: v.get("seq")?.as_u64()?,
        body,
    })
}

/// The bus topic of one document.
pub fn topic(c: &str, d: &str) -> String {
    format!("doc:{c}/{d}")
}
