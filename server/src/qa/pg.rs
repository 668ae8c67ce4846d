//! The board's tables in PostgreSQL (`--database`), shared by every node.
//!
//! PostgreSQL decides the order of the board's changes. An action runs in
//! one transaction that holds the advisory lock [`QA_LOCK`]: it first reads
//! the changes other nodes committed since this node's position ([`Locked::changes`]),
//! then writes its rows, its logged events and one `qa_changes` row (the
//! same [`Write`]s, so replicating a change is replaying them), with event
//! ids following `qa_state.last_id`. Ids are allocated and committed under
//! the lock, so the committed changes always form a gapless prefix: a node
//! that reads `id > position` never skips one.
//!
//! Users are created and touched outside the lock: they need no order, and
//! every anonymous login creates one.

use bytes::Bytes;
use deadpool_postgres::Object;
use serde::{Deserialize, Serialize};

use super::db::{Audience, Loaded, UserRow, Write};
use crate::cluster::schema::Migration;
use crate::cluster::{Pg, PgError};

/// Key of the advisory lock that orders the board's changes ("rtqa").
const QA_LOCK: i64 = 0x7274_7161;
/// Changes read in one catch-up query at most (the caller loops).
const CATCH_UP_BATCH: i64 = 1000;

/// This app's migrations, oldest first (names prefixed with the app's).
pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "qa-0001-board",
    sql: "
CREATE TABLE qa_users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    selected TEXT,
    seen_ms BIGINT NOT NULL
);
CREATE INDEX qa_users_selected ON qa_users(selected) WHERE selected IS NOT NULL;
CREATE TABLE qa_questions (
    seq BIGSERIAL PRIMARY KEY,
    text TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    asked_ms BIGINT NOT NULL
);
CREATE TABLE qa_answers (
    seq BIGSERIAL PRIMARY KEY,
    question TEXT NOT NULL REFERENCES qa_questions(text),
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    answered_ms BIGINT NOT NULL
);
CREATE INDEX qa_answers_question ON qa_answers(question, seq);
CREATE TABLE qa_votes (
    question TEXT NOT NULL REFERENCES qa_questions(text),
    user_id TEXT NOT NULL,
    PRIMARY KEY (question, user_id)
);
CREATE TABLE qa_events (
    id BIGINT PRIMARY KEY,
    everyone BOOLEAN NOT NULL,
    frame BYTEA NOT NULL
);
CREATE TABLE qa_event_targets (
    event_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
-- One row per committed change: its last event id, its first, and its
-- writes (JSON), which other nodes replay.
CREATE TABLE qa_changes (
    id BIGINT PRIMARY KEY,
    first_id BIGINT NOT NULL,
    body BYTEA NOT NULL
);
-- last_id: the highest event id handed out (under the lock); log_floor: the
-- highest id pruned from the log (resumes from before it are reset).
CREATE TABLE qa_state (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last_id BIGINT NOT NULL,
    log_floor BIGINT NOT NULL
);
INSERT INTO qa_state (last_id, log_floor) VALUES (0, 0);
",
}];

/// A committed change as stored and as published on the bus: event ids
/// `first..=last` and the writes that made them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Change {
    pub first: u64,
    pub last: u64,
    pub writes: Vec<Write>,
}

impl Change {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a change serializes")
    }

    pub fn decode(bytes: &[u8]) -> Option<Change> {
        serde_json::from_slice(bytes).ok()
    }
}

/// What a catch-up read: the changes after the position, or that the log no
/// longer reaches back to it.
pub(super) enum Missed {
    Changes(Vec<Change>),
    /// The changes right after the position were pruned: reload the board.
    Gone,
}

/// A connection in a transaction that holds the board's lock. Dropping it
/// without [`Locked::commit`] closes the connection, which rolls back and
/// releases the lock.
pub(super) struct Locked {
    client: Option<Object>,
    pg: Pg,
}

impl Locked {
    /// Opens a transaction and waits for the board's lock.
    pub async fn begin(pg: &Pg) -> Result<Locked, PgError> {
        let client = pg.get().await?;
        let locked = Locked {
            client: Some(client),
            pg: pg.clone(),
        };
        let c = locked.client();
        pg.with_timeout(async {
            c.batch_execute("BEGIN").await?;
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&QA_LOCK])
                .await
        })
        .await??;
        Ok(locked)
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("open until commit")
    }

    /// The changes committed after `after` (all of them, under the lock).
    pub async fn changes(&self, after: u64) -> Result<Missed, PgError> {
        let mut out = Vec::new();
        let mut at = after;
        loop {
            match read_changes(&self.pg, self.client(), at).await? {
                Missed::Gone => return Ok(Missed::Gone),
                Missed::Changes(batch) if batch.is_empty() => break,
                Missed::Changes(batch) => {
                    at = batch.last().map_or(at, |c| c.last);
                    out.extend(batch);
                }
            }
        }
        Ok(Missed::Changes(out))
    }

    /// Writes `change` (rows, log entries, the change itself) and commits.
    pub async fn commit(mut self, change: &Change) -> Result<(), PgError> {
        let c = self.client();
        self.pg
            .with_timeout(async {
                apply(c, &change.writes).await?;
                let body = change.encode();
                c.execute(
                    "INSERT INTO qa_changes (id, first_id, body) VALUES ($1, $2, $3)",
                    &[&(change.last as i64), &(change.first as i64), &body],
                )
                .await?;
                c.execute("UPDATE qa_state SET last_id = $1", &[&(change.last as i64)])
                    .await?;
                c.batch_execute("COMMIT").await
            })
            .await??;
        // Committed: the connection goes back to the pool.
        drop(self.client.take());
        Ok(())
    }

    /// Ends the transaction without writing (a refused or no-op action).
    pub async fn rollback(mut self) {
        let c = self.client();
        if self
            .pg
            .with_timeout(c.batch_execute("ROLLBACK"))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            drop(self.client.take());
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // A connection left mid-transaction must not go back to the pool.
        if let Some(c) = self.client.take() {
            drop(Object::take(c));
        }
    }
}

/// One batch of the changes after `after`, or `Gone` when the log was
/// pruned past it.
async fn read_changes(pg: &Pg, c: &tokio_postgres::Client, after: u64) -> Result<Missed, PgError> {
    let (floor, rows) = pg
        .with_timeout(async {
            let floor: i64 = c
                .query_one("SELECT log_floor FROM qa_state", &[])
                .await?
                .get(0);
            let rows = c
                .query(
                    "SELECT first_id, body FROM qa_changes WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&(after as i64), &CATCH_UP_BATCH],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>((floor, rows))
        })
        .await??;
    if floor as u64 > after {
        return Ok(Missed::Gone);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut next = after + 1;
    for row in rows {
        let first: i64 = row.get(0);
        let body: Vec<u8> = row.get(1);
        let Some(change) = Change::decode(&body) else {
            return Err(PgError::Unavailable(format!(
                "unreadable Q&A change at id {first}"
            )));
        };
        if change.first != next {
            return Ok(Missed::Gone);
        }
        next = change.last + 1;
        out.push(change);
    }
    Ok(Missed::Changes(out))
}

/// The changes after `after`, read without the lock (committed changes
/// form a gapless prefix, so this never skips one).
pub(super) async fn changes_since(pg: &Pg, after: u64) -> Result<Missed, PgError> {
    let c = pg.get().await?;
    read_changes(pg, &c, after).await
}

/// The highest committed event id (cheap: one row).
pub(super) async fn last_id(pg: &Pg) -> Result<u64, PgError> {
    let c = pg.get().await?;
    let v: i64 = pg
        .with_timeout(c.query_one("SELECT last_id FROM qa_state", &[]))
        .await??
        .get(0);
    Ok(v as u64)
}

async fn apply(c: &tokio_postgres::Client, writes: &[Write]) -> Result<(), tokio_postgres::Error> {
    for w in writes {
        match w {
            Write::InsertUser { id, handle, now } => {
                c.execute(
                    "INSERT INTO qa_users (id, handle, selected, seen_ms) VALUES ($1, $2, NULL, $3)",
                    &[id, handle, &(*now as i64)],
                )
                .await?;
            }
            Write::TouchUser { id, now } => {
                c.execute(
                    "UPDATE qa_users SET seen_ms = $2 WHERE id = $1",
                    &[id, &(*now as i64)],
                )
                .await?;
            }
            Write::Select { user, question } => {
                c.execute(
                    "UPDATE qa_users SET selected = $2 WHERE id = $1",
                    &[user, question],
                )
                .await?;
            }
            Write::Question { text, author, now } => {
                c.execute(
                    "INSERT INTO qa_questions (text, author, asked_ms) VALUES ($1, $2, $3)",
                    &[text, author, &(*now as i64)],
                )
                .await?;
            }
            Write::Answer {
                question,
                text,
                author,
                now,
            } => {
                c.execute(
                    "INSERT INTO qa_answers (question, text, author, answered_ms) VALUES ($1, $2, $3, $4)",
                    &[question, text, author, &(*now as i64)],
                )
                .await?;
            }
            Write::Vote { question, user, on } => {
                let sql = if *on {
                    "INSERT INTO qa_votes (question, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM qa_votes WHERE question = $1 AND user_id = $2"
                };
                c.execute(sql, &[question, user]).await?;
            }
            Write::Log {
                id,
                audience,
                frame,
            } => {
                let id = *id as i64;
                let everyone = matches!(audience, Audience::Everyone);
                c.execute(
                    "INSERT INTO qa_events (id, everyone, frame) VALUES ($1, $2, $3)",
                    &[&id, &everyone, &&frame[..]],
                )
                .await?;
                match audience {
                    Audience::Everyone => {}
                    Audience::User(user) => {
                        c.execute(
                            "INSERT INTO qa_event_targets (event_id, user_id) VALUES ($1, $2)",
                            &[&id, user],
                        )
                        .await?;
                    }
                    Audience::FollowersOf(q) => {
                        c.execute(
                            "INSERT INTO qa_event_targets (event_id, user_id)
                             SELECT $1, id FROM qa_users WHERE selected = $2",
                            &[&id, q],
                        )
                        .await?;
                    }
                }
            }
            Write::Prune(upto) => {
                let upto = *upto as i64;
                c.execute("DELETE FROM qa_events WHERE id <= $1", &[&upto])
                    .await?;
                c.execute(
                    "DELETE FROM qa_event_targets WHERE event_id <= $1",
                    &[&upto],
                )
                .await?;
                c.execute("DELETE FROM qa_changes WHERE id <= $1", &[&upto])
                    .await?;
                c.execute(
                    "UPDATE qa_state SET log_floor = GREATEST(log_floor, $1)",
                    &[&upto],
                )
                .await?;
            }
            // Ids come from qa_state under the lock: nothing to reserve.
            Write::Reserve(_) => {}
        }
    }
    Ok(())
}

/// Runs `writes` that need no order (users created or touched at login),
/// each statement on its own.
pub(super) async fn write_unordered(pg: &Pg, writes: &[Write]) -> Result<(), PgError> {
    let c = pg.get().await?;
    pg.with_timeout(apply(&c, writes)).await??;
    Ok(())
}

pub(super) async fn get_user(pg: &Pg, id: &str) -> Result<Option<UserRow>, PgError> {
    let c = pg.get().await?;
    let row = pg
        .with_timeout(c.query_opt(
            "SELECT handle, selected FROM qa_users WHERE id = $1",
            &[&id],
        ))
        .await??;
    Ok(row.map(|r| UserRow {
        handle: r.get(0),
        selected: r.get(1),
    }))
}

/// The user as stored, and the last change id of the same snapshot (one
/// statement), so the owner can tell whether it has applied changes since.
pub(super) async fn get_user_at(pg: &Pg, id: &str) -> Result<Option<(UserRow, u64)>, PgError> {
    let c = pg.get().await?;
    let row = pg
        .with_timeout(c.query_opt(
            "SELECT u.handle, u.selected, s.last_id FROM qa_users u, qa_state s WHERE u.id = $1",
            &[&id],
        ))
        .await??;
    Ok(row.map(|r| {
        let user = UserRow {
            handle: r.get(0),
            selected: r.get(1),
        };
        (user, r.get::<_, i64>(2) as u64)
    }))
}

/// The selections of `users` (the ones connected to this node), for a
/// reload.
pub(super) async fn selections(
    pg: &Pg,
    users: &[String],
) -> Result<Vec<(String, Option<String>)>, PgError> {
    let c = pg.get().await?;
    let rows = pg
        .with_timeout(c.query(
            "SELECT id, selected FROM qa_users WHERE id = ANY($1)",
            &[&users],
        ))
        .await??;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Which logged events `user` received (or would have, had it been
/// connected) in `(after, upto]`.
const REPLAY_FILTER: &str = "FROM qa_events e
     WHERE e.id > $1 AND e.id <= $2 AND (e.everyone OR EXISTS (
         SELECT 1 FROM qa_event_targets t WHERE t.event_id = e.id AND t.user_id = $3))";

/// The size in bytes of what [`replay_kept`] would return.
pub(super) async fn replay_size(
    pg: &Pg,
    after: u64,
    upto: u64,
    user: &str,
) -> Result<u64, PgError> {
    let c = pg.get().await?;
    let sql = format!("SELECT coalesce(sum(length(frame)), 0)::bigint {REPLAY_FILTER}");
    let v: i64 = pg
        .with_timeout(c.query_one(&sql, &[&(after as i64), &(upto as i64), &user]))
        .await??
        .get(0);
    Ok(v as u64)
}

/// The logged events in `(after, upto]` for `user`, in order, as the bytes
/// sent; `None` when the log no longer reaches back to `after`. This node's
/// idea of the log's start may be behind: another node may have pruned
/// past it.
pub(super) async fn replay_kept(
    pg: &Pg,
    after: u64,
    upto: u64,
    user: &str,
) -> Result<Option<Vec<Bytes>>, PgError> {
    let c = pg.get().await?;
    let sql = format!("SELECT frame {REPLAY_FILTER} ORDER BY e.id");
    let (rows, floor) = pg
        .with_timeout(async {
            let rows = c
                .query(&sql, &[&(after as i64), &(upto as i64), &user])
                .await?;
            // Read after the events: the floor only grows, so if it is
            // still at most `after` now, nothing after `after` had been
            // pruned when the events were read.
            let floor: i64 = c
                .query_one("SELECT log_floor FROM qa_state", &[])
                .await?
                .get(0);
            Ok::<_, tokio_postgres::Error>((rows, floor))
        })
        .await??;
    if floor as u64 > after {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .map(|r| Bytes::from(r.get::<_, Vec<u8>>(0)))
            .collect(),
    ))
}

/// Marks the `live` users as seen, then deletes the forgotten ones.
pub(super) async fn forget_users(
    pg: &Pg,
    live: &[String],
    forget: super::db::Forget,
) -> Result<u64, PgError> {
    let c = pg.get().await?;
    pg.with_timeout(async {
        c.execute(
            "UPDATE qa_users SET seen_ms = $2 WHERE id = ANY($1)",
            &[&live, &(forget.now_ms as i64)],
        )
        .await?;
        let stale = c
            .execute(
                "DELETE FROM qa_users WHERE seen_ms < $1",
                &[&(forget.stale_before_ms as i64)],
            )
            .await?;
        let idle = c
            .execute(
                "DELETE FROM qa_users u
                 WHERE seen_ms < $1 AND selected IS NULL
                   AND NOT EXISTS (SELECT 1 FROM qa_votes v WHERE v.user_id = u.id)
                   AND NOT EXISTS (SELECT 1 FROM qa_questions q WHERE q.author = u.handle)
                   AND NOT EXISTS (SELECT 1 FROM qa_answers a WHERE a.author = u.handle)",
                &[&(forget.idle_before_ms as i64)],
            )
            .await?;
        Ok::<_, tokio_postgres::Error>(stale + idle)
    })
    .await?
    .map_err(PgError::from)
}

/// The whole board, the log's ids and sizes, its floor and the last id.
pub(super) async fn load(pg: &Pg) -> Result<Loaded, PgError> {
    let mut c = pg.get().await?;
    pg.with_timeout(async {
        // One snapshot, so the board and `last_id` agree.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut out = Loaded::default();
        let state = tx
            .query_one("SELECT last_id, log_floor FROM qa_state", &[])
            .await?;
        out.reserved = state.get::<_, i64>(0) as u64;
        out.floor = state.get::<_, i64>(1) as u64;
        out.questions = tx
            .query(
                "SELECT text, author, asked_ms FROM qa_questions ORDER BY seq",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect();
        out.answers = tx
            .query(
                "SELECT question, text, author, answered_ms FROM qa_answers ORDER BY seq",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get::<_, i64>(3) as u64))
            .collect();
        out.votes = tx
            .query("SELECT question, user_id FROM qa_votes", &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        out.log = tx
            .query(
                "SELECT id, length(frame)::bigint FROM qa_events ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
            .collect();
        tx.commit().await?;
        Ok::<_, tokio_postgres::Error>(out)
    })
    .await?
    .map_err(PgError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_survives_its_encoding() {
        let frame = Bytes::from_static(
            b"id: 7\ndata: {\"type\":\"questions\",\"q\":\"caf\xc3\xa9 \\n\"}\n\n",
        );
        let change = Change {
            first: 7,
            last: 8,
            writes: vec![
                Write::Question {
                    text: "café?".into(),
                    author: "user-1".into(),
                    now: 1,
                },
                Write::Log {
                    id: 7,
                    audience: Audience::FollowersOf("café?".into()),
                    frame: frame.clone(),
                },
                Write::Prune(3),
            ],
        };
        let back = Change::decode(&change.encode()).expect("decodes");
        assert_eq!((back.first, back.last), (7, 8));
        match &back.writes[1] {
            Write::Log {
                id: 7,
                audience: Audience::FollowersOf(q),
                frame: f,
            } => {
                assert_eq!(q, "café?");
                assert_eq!(f, &frame);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(back.writes[2], Write::Prune(3)));
        assert!(Change::decode(b"not json").is_none());
    }
}
