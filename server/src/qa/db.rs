//! The board's tables (migration `0002-qa`). Only the board's owner task
//! calls these, inside `store.call`, so each action's writes and its log
//! entries commit together or not at all.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

/// Who a logged event is for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) enum Audience {
    Everyone,
    User(String),
    /// Every user (connected or not) whose selection is this question.
    FollowersOf(String),
}

/// One write of an action; a batch of them commits as a unit. With
/// PostgreSQL a change's writes are also what other nodes replay.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) enum Write {
    InsertUser {
        id: String,
        handle: String,
        now: u64,
    },
    TouchUser {
        id: String,
        now: u64,
    },
    Select {
        user: String,
        question: String,
    },
    Question {
        text: String,
        author: String,
        now: u64,
    },
    Answer {
        question: String,
        text: String,
        author: String,
        now: u64,
    },
    Vote {
        question: String,
        user: String,
        on: bool,
    },
    Log {
        id: u64,
        audience: Audience,
        #[serde(with = "frame_text")]
        frame: Bytes,
    },
    /// Drops logged events with ids up to this one; resumes from before it
    /// get a reset.
    Prune(u64),
    /// Event ids up to this one may be handed out.
    Reserve(u64),
}

/// Frames are SSE text (UTF-8), so they travel as JSON strings.
mod frame_text {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(frame: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(frame))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        String::deserialize(d).map(Bytes::from)
    }
}

/// A user as stored.
#[derive(Debug, Clone)]
pub(super) struct UserRow {
    pub handle: String,
    pub selected: Option<String>,
}

/// Everything the board needs at startup.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    /// (text, author handle, asked ms), in asking order.
    pub questions: Vec<(String, String, u64)>,
    /// (question, text, author handle, answered ms), oldest first.
    pub answers: Vec<(String, String, String, u64)>,
    /// (question, user id)
    pub votes: Vec<(String, String)>,
    /// Ids and sizes of the logged events, ascending.
    pub log: Vec<(u64, u64)>,
    pub floor: u64,
    pub reserved: u64,
}

pub(super) fn apply(conn: &Connection, writes: &[Write]) -> rusqlite::Result<()> {
    for w in writes {
        match w {
            Write::InsertUser { id, handle, now } => {
                conn.prepare_cached(
                    "INSERT INTO qa_users(id, handle, selected, seen_ms) VALUES (?1, ?2, NULL, ?3)",
                )?
                .execute(params![id, handle, *now as i64])?;
            }
            Write::TouchUser { id, now } => {
                conn.prepare_cached("UPDATE qa_users SET seen_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, *now as i64])?;
            }
            Write::Select { user, question } => {
                conn.prepare_cached("UPDATE qa_users SET selected = ?2 WHERE id = ?1")?
                    .execute(params![user, question])?;
            }
            Write::Question { text, author, now } => {
                conn.prepare_cached(
                    "INSERT INTO qa_questions(text, author, asked_ms) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![text, author, *now as i64])?;
            }
            Write::Answer {
                question,
                text,
                author,
                now,
            } => {
                conn.prepare_cached(
                    "INSERT INTO qa_answers(question, text, author, answered_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![question, text, author, *now as i64])?;
            }
            Write::Vote { question, user, on } => {
                let sql = if *on {
                    "INSERT INTO qa_votes(question, user_id) VALUES (?1, ?2)"
                } else {
                    "DELETE FROM qa_votes WHERE question = ?1 AND user_id = ?2"
                };
                conn.prepare_cached(sql)?.execute(params![question, user])?;
            }
            Write::Log {
                id,
                audience,
                frame,
            } => {
                let everyone = matches!(audience, Audience::Everyone);
                conn.prepare_cached(
                    "INSERT INTO qa_events(id, everyone, frame) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![*id as i64, everyone, &frame[..]])?;
                match audience {
                    Audience::Everyone => {}
                    Audience::User(user) => {
                        conn.prepare_cached(
                            "INSERT INTO qa_event_targets(event_id, user_id) VALUES (?1, ?2)",
                        )?
                        .execute(params![*id as i64, user])?;
                    }
                    Audience::FollowersOf(q) => {
                        conn.prepare_cached(
                            "INSERT INTO qa_event_targets(event_id, user_id)
                             SELECT ?1, id FROM qa_users WHERE selected = ?2",
                        )?
                        .execute(params![*id as i64, q])?;
                    }
                }
            }
            Write::Prune(upto) => prune(conn, *upto)?,
            Write::Reserve(upto) => {
                conn.prepare_cached(
                    "UPDATE qa_counters SET value = ?1 WHERE name = 'reserved_id'",
                )?
                .execute(params![*upto as i64])?;
            }
        }
    }
    Ok(())
}

fn prune(conn: &Connection, upto: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM qa_events WHERE id <= ?1")?
        .execute(params![upto as i64])?;
    conn.prepare_cached("DELETE FROM qa_event_targets WHERE event_id <= ?1")?
        .execute(params![upto as i64])?;
    conn.prepare_cached("UPDATE qa_counters SET value = max(value, ?1) WHERE name = 'log_floor'")?
        .execute(params![upto as i64])?;
    Ok(())
}

pub(super) fn get_user(conn: &Connection, id: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached("SELECT handle, selected FROM qa_users WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok(UserRow {
                handle: r.get(0)?,
                selected: r.get(1)?,
            })
        })
        .optional()
}

/// The logged events after `after` that `user` received (or would have,
/// had it been connected), in order, as the exact bytes sent.
pub(super) fn replay(conn: &Connection, after: u64, user: &str) -> rusqlite::Result<Vec<Bytes>> {
    let mut stmt = conn.prepare_cached(
        "SELECT frame FROM qa_events e
         WHERE e.id > ?1 AND (e.everyone = 1 OR EXISTS (
             SELECT 1 FROM qa_event_targets t WHERE t.event_id = e.id AND t.user_id = ?2))
         ORDER BY e.id",
    )?;
    let rows = stmt.query_map(params![after as i64, user], |r| {
        r.get::<_, Vec<u8>>(0).map(Bytes::from)
    })?;
    rows.collect()
}

/// The size in bytes of what [`replay`] would return.
pub(super) fn replay_bytes(conn: &Connection, after: u64, user: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT coalesce(sum(length(frame)), 0) FROM qa_events e
         WHERE e.id > ?1 AND (e.everyone = 1 OR EXISTS (
             SELECT 1 FROM qa_event_targets t WHERE t.event_id = e.id AND t.user_id = ?2))",
    )?
    .query_row(params![after as i64, user], |r| {
        r.get::<_, i64>(0).map(|v| v as u64)
    })
}

/// How far the log must be trimmed to hold at most `max_events` events and
/// `max_bytes` bytes: the highest id to drop, if any. `log` is ascending and
/// holds `count` events of `bytes` bytes in all; only the dropped part of it
/// is walked.
pub(super) fn prune_point<'a>(
    log: impl IntoIterator<Item = &'a (u64, u64)>,
    mut count: usize,
    mut bytes: u64,
    max_events: usize,
    max_bytes: u64,
) -> Option<u64> {
    let mut upto = None;
    for &(id, size) in log {
        if count <= max_events && bytes <= max_bytes {
            break;
        }
        count -= 1;
        bytes -= size;
        upto = Some(id);
    }
    upto
}

/// Which users to forget: everyone not seen since `stale_before_ms`, and
/// users who never did anything (no question or answer under their handle,
/// no vote, nothing followed) not seen since `idle_before_ms`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Forget {
    pub now_ms: u64,
    pub stale_before_ms: u64,
    pub idle_before_ms: u64,
}

/// Marks the `live` (connected) users as seen now, so they are kept, then
/// deletes the forgotten ones. Returns how many were deleted.
pub(super) fn forget_users(
    conn: &Connection,
    live: &[String],
    forget: Forget,
) -> rusqlite::Result<usize> {
    for id in live {
        conn.prepare_cached("UPDATE qa_users SET seen_ms = ?2 WHERE id = ?1")?
            .execute(params![id, forget.now_ms as i64])?;
    }
    let stale = conn
        .prepare_cached("DELETE FROM qa_users WHERE seen_ms < ?1")?
        .execute(params![forget.stale_before_ms as i64])?;
    let idle = conn
        .prepare_cached(
            // Uncorrelated subqueries: SQLite builds each set once, so the
            // sweep stays linear in users plus board.
            "DELETE FROM qa_users
             WHERE seen_ms < ?1 AND selected IS NULL
               AND id NOT IN (SELECT user_id FROM qa_votes)
               AND handle NOT IN (SELECT author FROM qa_questions
                                  UNION SELECT author FROM qa_answers)",
        )?
        .execute(params![forget.idle_before_ms as i64])?;
    Ok(stale + idle)
}

/// Forgets stale users, trims the log to its limits and reads the board.
pub(super) fn load(
    conn: &Connection,
    max_events: usize,
    max_bytes: u64,
    forget: Forget,
) -> rusqlite::Result<Loaded> {
    forget_users(conn, &[], forget)?;
    let log: Vec<(u64, u64)> = conn
        .prepare("SELECT id, length(frame) FROM qa_events ORDER BY id")?
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let total = log.iter().map(|(_, b)| b).sum();
    let upto = prune_point(&log, log.len(), total, max_events, max_bytes);
    if let Some(upto) = upto {
        prune(conn, upto)?;
    }
    let mut out = Loaded::default();
    let mut stmt = conn.prepare("SELECT text, author, asked_ms FROM qa_questions ORDER BY seq")?;
    out.questions = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt =
        conn.prepare("SELECT question, text, author, answered_ms FROM qa_answers ORDER BY seq")?;
    out.answers = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare("SELECT question, user_id FROM qa_votes")?;
    out.votes = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    out.log = log
        .into_iter()
        .filter(|(id, _)| upto.is_none_or(|u| *id > u))
        .collect();
    let counter = |name: &str| -> rusqlite::Result<u64> {
        conn.query_row(
            "SELECT value FROM qa_counters WHERE name = ?1",
            params![name],
            |r| r.get::<_, i64>(0).map(|v| v as u64),
        )
    };
    out.floor = counter("log_floor")?;
    out.reserved = counter("reserved_id")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::prune_point;

    #[test]
    fn the_log_is_trimmed_by_count_and_by_bytes() {
        let log = [(1, 10), (2, 10), (5, 50), (9, 10)];
        let p = |events, bytes| prune_point(&log, 4, 80, events, bytes);
        assert_eq!(p(4, 80), None);
        assert_eq!(p(3, 1000), Some(1));
        assert_eq!(p(10, 60), Some(2));
        assert_eq!(p(10, 55), Some(5));
        assert_eq!(p(10, 5), Some(9));
        assert_eq!(prune_point(&[], 0, 0, 1, 1), None);
    }
}
