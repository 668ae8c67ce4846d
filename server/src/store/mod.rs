//! The embedded store: one SQLite file, owned by one writer thread.
//!
//! Every read and write runs on that thread, so SQLite sees a single
//! connection and no lock is ever held across an `.await`. Jobs that arrive
//! together are committed in one transaction (group commit) and each caller
//! is answered only after that commit: an acknowledged write survives a kill
//! of the process. With `fsync` it also survives power loss.

mod migrations;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

pub use migrations::{MIGRATIONS, Migration};

/// Jobs queued for the writer thread at most; callers wait beyond it.
const QUEUE_CAPACITY: usize = 4096;
/// Jobs committed in one transaction at most.
const MAX_BATCH: usize = 1024;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data file {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the data file {path} is not an rt database or is corrupt ({detail}); move it aside or pass another --data path"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the data file {path} was written by a newer rt (it has migration {migration:?} that this build does not know); upgrade rt or use another --data path"
    )]
    TooNew { path: PathBuf, migration: String },
    #[error("migration {name:?} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the store has shut down")]
    Closed,
}

/// A job runs inside the batch transaction and returns how to answer its
/// caller once the batch's fate is known.
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A cloneable handle to the store's writer thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
}

/// Durability of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Committed to the OS: survives a crash of the process (SIGKILL).
    Process,
    /// fsync'd: survives power loss as well.
    PowerLoss,
}

impl Store {
    /// Opens (creating if needed) the file at `path` and applies migrations.
    /// `":memory:"` gives a throwaway in-memory store.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        let conn = open_connection(path, durability)?;
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        thread::Builder::new()
            .name("rt-store".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                while let Some(job) = rx.blocking_recv() {
                    batch.push(job);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&conn, &mut batch);
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Store { tx })
    }

    /// Jobs queued for the writer thread and not yet taken.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// An in-memory store (tests and `--data :memory:`).
    pub fn memory() -> Store {
        Store::open(Path::new(":memory:"), Durability::Process)
            .expect("an in-memory SQLite database always opens")
    }

    /// Runs `f` on the writer thread inside the current batch's transaction
    /// (in a savepoint of its own, so its failure undoes only its own work)
    /// and resolves once the batch is committed.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.queue(f).await?.await
    }

    /// Queues `f` as [`Store::call`] does, but returns as soon as it is
    /// queued: the returned [`Commit`] resolves once its batch is committed.
    /// Jobs run in the order they were queued, so a caller can queue the
    /// next job while the previous one commits.
    pub async fn queue<T, F>(&self, f: F) -> Result<Commit<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &Connection| -> Reply {
            let result = (|| {
                conn.execute_batch("SAVEPOINT job")?;
                match f(conn) {
                    Ok(v) => {
                        conn.execute_batch("RELEASE job")?;
                        Ok(v)
                    }
                    Err(e) => {
                        conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        Err(e)
                    }
                }
            })();
            // The answer waits for the batch's COMMIT: see `run_batch`.
            Box::new(move |committed: Result<(), String>| {
                let answer = match committed {
                    Ok(()) => result.map_err(StoreError::from),
                    Err(e) => Err(StoreError::Commit(e)),
                };
                let _ = reply_tx.send(answer);
            })
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        Ok(Commit(reply_rx))
    }
}

/// A queued job's result, available once its batch is committed.
#[derive(Debug)]
pub struct Commit<T>(oneshot::Receiver<Result<T, StoreError>>);

impl<T> Future for Commit<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>) {
    let start = std::time::Instant::now();
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    let replies: Vec<Reply> = batch.drain(..).map(|job| job(conn)).collect();
    let committed = began
        .and_then(|_| conn.execute_batch("COMMIT"))
        .map_err(|e| {
            tracing::error!(error = %e, "store commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
    crate::metrics::store_commit(start.elapsed());
    for reply in replies {
        reply(committed.clone());
    }
}

fn open_connection(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let in_memory = path.as_os_str() == ":memory:";
    if !in_memory && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
    }
    let conn = if in_memory {
        Connection::open_in_memory()
    } else {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    // The first statement that reads the file is where garbage shows up.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(corrupt)?;
    if !in_memory {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
    }
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(corrupt)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(corrupt)?;
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: check,
        });
    }
    migrations::apply(&conn, path)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rt-store-test-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("rt.db")
    }

    #[tokio::test]
    async fn writes_survive_reopen() {
        let path = temp_path("reopen");
        {
            let store = Store::open(&path, Durability::Process).unwrap();
            store
                .call(|c| c.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')", []))
                .await
                .unwrap();
        }
        // The writer thread exits when the last handle drops; give it a moment.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let store = Store::open(&path, Durability::Process).unwrap();
        let v: String = store
            .call(|c| c.query_row("SELECT value FROM meta WHERE key='k'", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(v, "v");
    }

    #[tokio::test]
    async fn a_failing_job_does_not_undo_its_batch_mates() {
        let store = Store::memory();
        let a = store.call(|c| c.execute("INSERT INTO meta VALUES ('a', '1')", []));
        let bad = store.call(|c| {
            c.execute("INSERT INTO meta VALUES ('b', '1')", [])?;
            c.execute("INSERT INTO no_such_table VALUES (1)", [])
        });
        let (a, bad) = tokio::join!(a, bad);
        assert!(a.is_ok());
        assert!(bad.is_err());
        let keys: Vec<String> = store
            .call(|c| {
                let mut s = c.prepare("SELECT key FROM meta ORDER BY key")?;
                s.query_map([], |r| r.get(0))?.collect()
            })
            .await
            .unwrap();
        assert_eq!(keys, vec!["a".to_string()]);
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let path = temp_path("garbage");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        match Store::open(&path, Durability::Process) {
            Err(StoreError::Corrupt { .. }) => {}
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(_) => panic!("expected Corrupt, got a store"),
        }
    }

    #[test]
    fn newer_file_is_refused() {
        let path = temp_path("newer");
        drop(Store::open(&path, Durability::Process).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO rt_migrations(name, applied_at) VALUES ('9999-from-the-future', 0)",
            [],
        )
        .unwrap();
        drop(conn);
        match Store::open(&path, Durability::Process) {
            Err(StoreError::TooNew { migration, .. }) => {
                assert_eq!(migration, "9999-from-the-future")
            }
            Err(other) => panic!("expected TooNew, got {other}"),
            Ok(_) => panic!("expected TooNew, got a store"),
        }
    }
}
