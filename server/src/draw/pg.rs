//! The drawing in PostgreSQL (`--database`): the same two tables as the
//! embedded store, plus what several nodes need.
//!
//! - Stroke ids come in blocks of `ID_BLOCK` from one sequence, so nodes
//!   never hand out the same id.
//! - Removal is a tombstone (`removed`) on the stroke's row, written with
//!   an upsert: an undo or clear may reach the database before the stroke
//!   it removes (each node persists its own changes, on its own
//!   connection), and a late insert must not bring the stroke back. Every
//!   write is idempotent, so a retried batch is harmless.

use std::ops::Range;

use rt_protocol::draw::{Board, Point, Stroke};

use super::store::Change;
use crate::cluster::schema::Migration;
use crate::cluster::{Pg, PgError};

/// This app's migrations, oldest first (names prefixed with the app's).
pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "draw-0001-strokes",
    sql: "CREATE TABLE draw_strokes (
              id BIGINT PRIMARY KEY,
              author TEXT NOT NULL,
              colour TEXT NOT NULL,
              removed BOOLEAN NOT NULL DEFAULT FALSE
          );
          CREATE TABLE draw_points (
              stroke BIGINT NOT NULL,
              seq INTEGER NOT NULL,
              x DOUBLE PRECISION NOT NULL,
              y DOUBLE PRECISION NOT NULL,
              PRIMARY KEY (stroke, seq)
          );
          CREATE SEQUENCE draw_stroke_blocks;",
}];

/// Stroke ids a node takes from the sequence at once.
pub const ID_BLOCK: u64 = 1024;

/// Reserves the next block of stroke ids for this node.
pub async fn reserve_ids(pg: &Pg) -> Result<Range<u64>, PgError> {
    let client = pg.get().await?;
    let row = pg
        .with_timeout(client.query_one("SELECT nextval('draw_stroke_blocks')", &[]))
        .await??;
    let block = row.get::<_, i64>(0).max(1) as u64;
    Ok(block * ID_BLOCK..(block + 1) * ID_BLOCK)
}

/// Reads the drawing: every stroke not removed, with its points.
pub async fn load(pg: &Pg) -> Result<Board, PgError> {
    let client = pg.get().await?;
    let strokes = pg
        .with_timeout(client.query(
            "SELECT id, author, colour FROM draw_strokes WHERE NOT removed ORDER BY id",
            &[],
        ))
        .await??;
    let points = pg
        .with_timeout(client.query(
            "SELECT p.stroke, p.x, p.y FROM draw_points p
             JOIN draw_strokes s ON s.id = p.stroke
             WHERE NOT s.removed ORDER BY p.stroke, p.seq",
            &[],
        ))
        .await??;
    let mut strokes: Vec<Stroke> = strokes
        .iter()
        .map(|r| Stroke {
            id: r.get::<_, i64>(0) as u64,
            by: r.get(1),
            colour: r.get(2),
            points: Vec::new(),
        })
        .collect();
    let mut i = 0;
    for row in &points {
        let id = row.get::<_, i64>(0) as u64;
        while i < strokes.len() && strokes[i].id < id {
            i += 1;
        }
        if let Some(s) = strokes.get_mut(i).filter(|s| s.id == id) {
            s.points.push(Point {
                x: row.get(1),
                y: row.get(2),
            });
        }
    }
    strokes.retain(|s| s.points.len() >= 2);
    Ok(Board::from_strokes(strokes))
}

/// Commits `changes` in one transaction.
pub async fn apply(pg: &Pg, changes: &[Change]) -> Result<(), PgError> {
    let mut client = pg.get().await?;
    pg.with_timeout(async {
        let tx = client.transaction().await?;
        let stroke = tx
            .prepare(
                "INSERT INTO draw_strokes (id, author, colour) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        let point = tx
            .prepare(
                "INSERT INTO draw_points (stroke, seq, x, y) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (stroke, seq) DO NOTHING",
            )
            .await?;
        let tombstone = tx
            .prepare(
                "INSERT INTO draw_strokes (id, author, colour, removed)
                 SELECT unnest($1::BIGINT[]), '', '', TRUE
                 ON CONFLICT (id) DO UPDATE SET removed = TRUE",
            )
            .await?;
        let drop_points = tx
            .prepare("DELETE FROM draw_points WHERE stroke = ANY($1::BIGINT[])")
            .await?;
        for change in changes {
            match change {
                Change::Start {
                    id,
                    author,
                    colour,
                    from,
                    to,
                } => {
                    let id = *id as i64;
                    tx.execute(&stroke, &[&id, author, colour]).await?;
                    tx.execute(&point, &[&id, &0i32, &from.x, &from.y]).await?;
                    tx.execute(&point, &[&id, &1i32, &to.x, &to.y]).await?;
                }
                Change::Extend { id, seq, to } => {
                    let (id, seq) = (*id as i64, *seq as i32);
                    tx.execute(&point, &[&id, &seq, &to.x, &to.y]).await?;
                }
                Change::Remove { id } => {
                    let ids = vec![*id as i64];
                    tx.execute(&tombstone, &[&ids]).await?;
                    tx.execute(&drop_points, &[&ids]).await?;
                }
                Change::Clear { ids } => {
                    let ids: Vec<i64> = ids.iter().map(|id| *id as i64).collect();
                    tx.execute(&tombstone, &[&ids]).await?;
                    tx.execute(&drop_points, &[&ids]).await?;
                }
            }
        }
        tx.commit().await
    })
    .await??;
    Ok(())
}
