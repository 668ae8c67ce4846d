//! Versioned schema. Each migration has a unique name and runs once, in list
//! order; the names applied are recorded in the file. A file holding a name
//! this build does not know was written by a newer rt and is refused.
//!
//! Append new migrations at the end; never edit or reorder a landed one.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// One schema step.
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this build knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001-meta",
        sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    },
    Migration {
        name: "0002-doc-ops",
        sql: "CREATE TABLE doc_ops (
                collection TEXT NOT NULL,
                doc_id TEXT NOT NULL,
                v INTEGER NOT NULL,
                src TEXT NOT NULL,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('create', 'op', 'del')),
                data TEXT,
                ts INTEGER NOT NULL,
                PRIMARY KEY (collection, doc_id, v)
              ) WITHOUT ROWID;
              CREATE TABLE doc_snapshots (
                collection TEXT NOT NULL,
                doc_id TEXT NOT NULL,
                v INTEGER NOT NULL,
                data TEXT,
                PRIMARY KEY (collection, doc_id, v)
              ) WITHOUT ROWID;",
    },
    Migration {
        name: "0003-draw",
        sql: "CREATE TABLE draw_strokes (
                  id INTEGER PRIMARY KEY,
                  author TEXT NOT NULL,
                  colour TEXT NOT NULL
              );
              CREATE TABLE draw_points (
                  stroke INTEGER NOT NULL REFERENCES draw_strokes(id) ON DELETE CASCADE,
                  seq INTEGER NOT NULL,
                  x REAL NOT NULL,
                  y REAL NOT NULL,
                  PRIMARY KEY (stroke, seq)
              ) WITHOUT ROWID;",
    },
    Migration {
        name: "0004-qa",
        sql: "
CREATE TABLE qa_users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    selected TEXT,
    seen_ms INTEGER NOT NULL
);
CREATE INDEX qa_users_selected ON qa_users(selected) WHERE selected IS NOT NULL;
CREATE TABLE qa_questions (
    seq INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    asked_ms INTEGER NOT NULL
);
CREATE TABLE qa_answers (
    seq INTEGER PRIMARY KEY,
    question TEXT NOT NULL REFERENCES qa_questions(text),
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    answered_ms INTEGER NOT NULL
);
CREATE INDEX qa_answers_question ON qa_answers(question, seq);
CREATE TABLE qa_votes (
    question TEXT NOT NULL REFERENCES qa_questions(text),
    user_id TEXT NOT NULL,
    PRIMARY KEY (question, user_id)
) WITHOUT ROWID;
CREATE TABLE qa_events (
    id INTEGER PRIMARY KEY,
    everyone INTEGER NOT NULL,
    frame BLOB NOT NULL
);
CREATE TABLE qa_event_targets (
    event_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (event_id, user_id)
) WITHOUT ROWID;
CREATE TABLE qa_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO qa_counters(name, value) VALUES ('reserved_id', 0), ('log_floor', 0);
",
    },
];

pub(super) fn apply(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS rt_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);",
    )
    .map_err(corrupt)?;
    let applied: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM rt_migrations ORDER BY rowid")
            .map_err(corrupt)?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(corrupt)?
    };
    if let Some(unknown) = applied
        .iter()
        .find(|name| !MIGRATIONS.iter().any(|m| m.name == name.as_str()))
    {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            migration: unknown.clone(),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for m in MIGRATIONS {
        if applied.iter().any(|a| a == m.name) {
            continue;
        }
        let run = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO rt_migrations(name, applied_at) VALUES (?1, ?2)",
                rusqlite::params![m.name, now],
            )?;
            tx.commit()
        };
        run().map_err(|source| StoreError::Migration {
            name: m.name,
            source,
        })?;
        tracing::info!(migration = m.name, "applied schema migration");
    }
    Ok(())
}
