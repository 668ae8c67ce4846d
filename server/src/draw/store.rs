//! The drawing in the embedded store: `draw_strokes` (id, author, colour)
//! and `draw_points` (stroke, seq, x, y); a stroke of n segments has n + 1
//! points.
//!
//! The canvas task never waits for SQLite: it hands each change to the
//! [`Persister`], which commits them in order, many per transaction.

use rt_protocol::draw::{Board, Point, Stroke};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{Store, StoreError};

/// Changes queued for the store at most; the canvas task waits beyond it.
const PERSIST_QUEUE: usize = 8192;
/// Changes committed in one store job at most.
const PERSIST_BATCH: usize = 2048;

/// One change to the stored drawing.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new stroke with its first two points.
    Start {
        id: u64,
        author: String,
        colour: String,
        from: Point,
        to: Point,
    },
    /// Point number `seq` of stroke `id`.
    Extend { id: u64, seq: usize, to: Point },
    /// Stroke `id` was undone.
    Remove { id: u64 },
    /// Everything was cleared: the strokes `ids` (all there were, as the
    /// clearing node saw them).
    Clear { ids: Vec<u64> },
}

/// Where the drawing is kept.
#[derive(Clone)]
pub enum Backend {
    /// The embedded SQLite store.
    Sqlite(Store),
    /// PostgreSQL (`--database`), shared by the nodes of a cluster.
    Pg(Box<crate::cluster::Pg>),
}

impl Backend {
    /// Reads the whole drawing.
    pub async fn load(&self) -> Result<Board, String> {
        match self {
            Backend::Sqlite(store) => load(store).await.map_err(|e| e.to_string()),
            Backend::Pg(pg) => super::pg::load(pg).await.map_err(|e| e.to_string()),
        }
    }

    /// Commits `changes`, in order; `Err(None)`: the store has shut down.
    async fn commit(&self, changes: Arc<[Change]>) -> Result<(), Option<String>> {
        match self {
            Backend::Sqlite(store) => store
                .call(move |conn| {
                    for c in changes.iter() {
                        apply(conn, c)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| match e {
                    StoreError::Closed => None,
                    e => Some(e.to_string()),
                }),
            Backend::Pg(pg) => super::pg::apply(pg, &changes)
                .await
                .map_err(|e| Some(e.to_string())),
        }
    }
}

/// Reads the whole drawing.
pub async fn load(store: &Store) -> Result<Board, StoreError> {
    store
        .call(|conn| {
            let mut strokes: Vec<Stroke> = Vec::new();
            let mut stmt =
                conn.prepare("SELECT id, author, colour FROM draw_strokes ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(Stroke {
                    id: r.get::<_, i64>(0)? as u64,
                    by: r.get(1)?,
                    colour: r.get(2)?,
                    points: Vec::new(),
                })
            })?;
            for row in rows {
                strokes.push(row?);
            }
            let mut stmt =
                conn.prepare("SELECT stroke, x, y FROM draw_points ORDER BY stroke, seq")?;
            let mut rows = stmt.query([])?;
            let mut i = 0;
            while let Some(row) = rows.next()? {
                let id = row.get::<_, i64>(0)? as u64;
                while i < strokes.len() && strokes[i].id < id {
                    i += 1;
                }
                if let Some(s) = strokes.get_mut(i).filter(|s| s.id == id) {
                    s.points.push(Point {
                        x: row.get(1)?,
                        y: row.get(2)?,
                    });
                }
            }
            strokes.retain(|s| s.points.len() >= 2);
            Ok(Board::from_strokes(strokes))
        })
        .await
}

fn apply(conn: &Connection, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::Start {
            id,
            author,
            colour,
            from,
            to,
        } => {
            conn.execute(
                "INSERT INTO draw_strokes(id, author, colour) VALUES (?1, ?2, ?3)",
                params![*id as i64, author, colour],
            )?;
            let mut stmt = conn.prepare_cached(
                "INSERT INTO draw_points(stroke, seq, x, y) VALUES (?1, ?2, ?3, ?4)",
            )?;
            stmt.execute(params![*id as i64, 0, from.x, from.y])?;
            stmt.execute(params![*id as i64, 1, to.x, to.y])?;
        }
        Change::Extend { id, seq, to } => {
            conn.prepare_cached(
                "INSERT INTO draw_points(stroke, seq, x, y) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![*id as i64, *seq as i64, to.x, to.y])?;
        }
        Change::Remove { id } => {
            conn.execute("DELETE FROM draw_points WHERE stroke = ?1", [*id as i64])?;
            conn.execute("DELETE FROM draw_strokes WHERE id = ?1", [*id as i64])?;
        }
        Change::Clear { .. } => {
            conn.execute_batch("DELETE FROM draw_points; DELETE FROM draw_strokes;")?;
        }
    }
    Ok(())
}

/// Writes changes to the store in the order they were made.
///
/// A batch the store refuses (a full disk, say) is kept and retried, with
/// growing pauses, until it commits: the stored drawing never skips a change.
/// Meanwhile [`Persister::healthy`] is false, and the canvas refuses new
/// changes rather than show strokes it cannot keep.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::Sender<Change>,
    healthy: Arc<AtomicBool>,
    /// Changes handed over, and changes committed (for [`Persister::settled`]).
    queued: Arc<AtomicU64>,
    stored: Arc<AtomicU64>,
}

/// First pause before a failed batch is retried; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Persister {
    /// Starts the writer task; it ends once every handle is dropped and the
    /// queue is drained (or, while the store keeps failing, at `shutdown`).
    pub fn start(store: Store, tasks: &TaskTracker, shutdown: CancellationToken) -> Persister {
        Persister::start_on(Backend::Sqlite(store), tasks, shutdown)
    }

    /// [`Persister::start`] on any backend.
    pub fn start_on(store: Backend, tasks: &TaskTracker, shutdown: CancellationToken) -> Persister {
        let (tx, mut rx) = mpsc::channel::<Change>(PERSIST_QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let health = healthy.clone();
        let stored = Arc::new(AtomicU64::new(0));
        let done = stored.clone();
        tasks.spawn(async move {
            let mut batch = Vec::with_capacity(PERSIST_BATCH);
            while rx.recv_many(&mut batch, PERSIST_BATCH).await > 0 {
                let changes: Arc<[Change]> = std::mem::take(&mut batch).into();
                let mut pause = RETRY_FIRST;
                let mut last_try = false;
                loop {
                    let result = store.commit(changes.clone()).await;
                    match result {
                        Ok(()) => {
                            done.fetch_add(changes.len() as u64, Ordering::Relaxed);
                            if !health.swap(true, Ordering::Relaxed) {
                                tracing::info!("drawing changes are being stored again");
                            }
                            break;
                        }
                        Err(None) => {
                            tracing::error!(changes = changes.len(), "the store has shut down; drawing changes lost");
                            return;
                        }
                        Err(Some(e)) => {
                            if health.swap(false, Ordering::Relaxed) {
                                tracing::error!(error = %e, changes = changes.len(), "cannot store drawing changes; drawing is refused until they are stored");
                            }
                            if last_try {
                                tracing::error!(changes = changes.len(), "shutting down with drawing changes the store refused");
                                return;
                            }
                            // At shutdown, one more try at once: space
                            // may have come back since the last one.
                            tokio::select! {
                                _ = tokio::time::sleep(pause) => {}
                                _ = shutdown.cancelled() => last_try = true,
                            }
                            pause = (pause * 2).min(RETRY_MAX);
                        }
                    }
                }
            }
        });
        Persister {
            tx,
            healthy,
            queued: Arc::new(AtomicU64::new(0)),
            stored,
        }
    }

    /// Is the store taking changes? False from a failed commit until a retry
    /// succeeds.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Waits until every change handed over so far is committed, or
    /// `limit` has passed; true when they are.
    pub async fn settled(&self, limit: Duration) -> bool {
        let target = self.queued.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + limit;
        while self.stored.load(Ordering::Relaxed) < target {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Queues a change (waits while the queue is full).
    pub async fn send(&self, change: Change) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(change).await.is_err() {
            tracing::error!("drawing store writer has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    #[tokio::test]
    async fn changes_survive_a_reload() {
        let store = Store::memory();
        let tasks = TaskTracker::new();
        let persister = Persister::start(store.clone(), &tasks, CancellationToken::new());
        let start = |id: u64| Change::Start {
            id,
            author: "a".into(),
            colour: "#000000".into(),
            from: p(0.0, 0.0),
            to: p(1.0, 1.0),
        };
        persister.send(start(1)).await;
        persister
            .send(Change::Extend {
                id: 1,
                seq: 2,
                to: p(2.5, 2.0),
            })
            .await;
        persister.send(start(2)).await;
        persister.send(start(3)).await;
        persister.send(Change::Remove { id: 2 }).await;
        drop(persister);
        tasks.close();
        tasks.wait().await;
        let board = load(&store).await.unwrap();
        let ids: Vec<u64> = board.strokes().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(board.stroke(1).unwrap().points[2], p(2.5, 2.0));
        assert_eq!(board.segments(), 3);

        let tasks = TaskTracker::new();
        let persister = Persister::start(store.clone(), &tasks, CancellationToken::new());
        persister.send(Change::Clear { ids: vec![1, 3] }).await;
        drop(persister);
        tasks.close();
        tasks.wait().await;
        assert_eq!(load(&store).await.unwrap().segments(), 0);
    }
}
