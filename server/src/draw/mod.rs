//! The collaborative drawing board over Socket.IO (protocols.md §2).
//!
//! socketioxide speaks Engine.IO / Socket.IO at `/socket.io/` (long-polling,
//! WebSocket, and the upgrade between them). [`Canvas`] is the one task that
//! owns the drawing: every event that changes it, and every join, is a
//! command to that task, so a joiner's snapshot and its live stream meet
//! without a gap.
//!
//! Event handlers run their checks (shape, bounds, rate) synchronously in the
//! socket's receive path and queue the command there with `try_send`:
//! socketioxide spawns one task per message, so queueing from those tasks
//! could reorder a client's moves.
//!
//! # Storage
//! Without `--database` strokes are kept in the embedded SQLite store
//! ([`store`]), as always. With `--database` they are kept in PostgreSQL
//! ([`pg`]): stroke ids come in blocks from a sequence, and undo and clear
//! leave a tombstone on the stroke's row, so writes are idempotent and may
//! reach the database in any order. A write PostgreSQL refuses (or does
//! not answer within `--database-timeout-ms`) is kept and retried; until it
//! is stored, drawing, undo and clear are refused with `error` code
//! `unsaved`, and they are taken again once the retry succeeds.
//!
//! # Several nodes (`--database` and `--redis`)
//! One board across nodes. Each node's canvas task applies what its own
//! clients do at once, persists it, and publishes it on the Bus topic
//! `draw` (`draw/cluster.rs`); every other node applies it in the order Redis
//! delivers that topic and emits it to its own clients. A relay and the
//! canvas change it carries are one message, so they stay in order; a
//! node's own events and those it hears from others go to its clients in
//! the order its canvas task applied them.
//!
//! Nodes apply their own changes without waiting for Redis (no added
//! latency for local clients), so the changes are made to converge in any
//! order: a stroke is named by its id (unique across nodes), a point by its
//! index in the stroke, an undo by the stroke it removes, and a clear by
//! the strokes it removes (a stroke started on another node within Redis'
//! delay survives the clear on every node alike, and the nodes holding
//! one send their clients a fresh canvas). A removed stroke stays
//! removed wherever a late point of it arrives. `peer` and
//! `clientdisconnect` cross as well; `peers` lists everyone, on every node,
//! that this node has heard of (a participant who joined elsewhere within
//! Redis' delay comes as a `peer` instead). Each node says it is alive
//! every two seconds; the participants of a node not heard from for seven
//! leave the other boards (a stopped node runs no disconnect handlers).
//!
//! Redis is not durable. When messages may have been lost (`Resync`: Redis
//! restarted and the node reconnected by itself, or a queue overflowed)
//! or a stroke shows a gap, the node reloads the canvas from PostgreSQL
//! half a second later (each node stores its last changes meanwhile), sends every local client a fresh canvas, and asks the other
//! nodes who is on them.
//!
//! ## Why not socketioxide's Redis adapter
//! The scale-out issue asks for `socketioxide-redis` unless it cannot carry
//! rt's events. It cannot carry them as they must be carried:
//! - the adapter fans out socket.io *broadcasts* (`io.emit`,
//!   `socket.broadcast()`) to sockets on other nodes; it does not give an
//!   application the messages themselves. The board's state (strokes,
//!   undo, clear) lives in each node's canvas task and must be applied
//!   there, in one order, and a relay must stay ordered with the change it
//!   belongs to. rt's canvas task emits per socket (per-socket pacing of
//!   canvases, cutting slow consumers, holding back `welcome`), which the
//!   adapter never sees.
//! - it has no notice of lost messages: a Redis restart silently drops
//!   what was published meanwhile, while rt must reload the canvas then
//!   (the Bus reports `Resync`).
//! - it would add its own Redis connections and protocol (RESP3, Redis 7
//!   or later) and make every handler generic over the adapter, only to
//!   carry events rt must publish again anyway for the canvas tasks.
//!
//! So the board uses rt's own Bus topic, which carries both the relays and
//! the canvas changes, in one order per topic, with `Resync`.
//!
//! # Sizes
//! A full canvas (the default 200,000 segments) can be several megabytes of
//! JSON, more than one long-polling response should carry, so `canvas` is
//! sent in parts of at most [`CANVAS_PART_BYTES`]; [`MAX_PAYLOAD`] fits one
//! part with its envelope, and the socket buffer ([`SOCKET_BUFFER`] packets)
//! fits every part of a full canvas plus live traffic.

mod canvas;
mod cluster;
mod handlers;
/// The tables in PostgreSQL (`--database`).
pub mod pg;
/// The drawing's tables and its ordered writer.
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use rt_protocol::draw::Bounds;
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{BusError, Cluster, PgError};
use crate::state::AppState;
use crate::stats::Stats;
use crate::store::{Store, StoreError};

pub use canvas::Command;

/// Bytes of stroke JSON per `canvas` part at most (one stroke entry may be
/// up to `MAX_POINTS_PER_ENTRY` points, about 15 kB, and is never split).
pub const CANVAS_PART_BYTES: usize = 128 * 1024;
/// Engine.IO `maxPayload`: one `canvas` part plus its envelope and the pens
/// of [`DrawConfig::max_clients`] participants. Client events are tiny.
pub const MAX_PAYLOAD: u64 = 256 * 1024;
/// Packets a socket may have queued. A full default canvas is about 150
/// parts; the rest is room for live events.
pub const SOCKET_BUFFER: usize = 512;
/// Commands queued for the canvas task at most; beyond it events are
/// refused with `busy`.
pub const COMMAND_QUEUE: usize = 4096;

/// Drawing board settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct DrawConfig {
    /// Board width: `x` must lie in 0..=WIDTH.
    #[arg(long = "draw-width", default_value_t = 2000.0, value_name = "PX", value_parser = positive_size)]
    pub width: f64,

    /// Board height: `y` must lie in 0..=HEIGHT.
    #[arg(long = "draw-height", default_value_t = 1000.0, value_name = "PX", value_parser = positive_size)]
    pub height: f64,

    /// Events per second one client may send (bursts up to one second's worth).
    #[arg(long = "draw-rate", default_value_t = 60, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Segments the canvas holds at most; drawing beyond it is refused until
    /// someone clears or undoes.
    #[arg(
        long = "draw-max-segments",
        default_value_t = 200_000,
        value_name = "N"
    )]
    pub max_segments: usize,

    /// Canvases sent per second at most, to joiners and `sync`s together
    /// (bursts up to one second's worth). Every joiner is on the board and
    /// gets live events at once; only its canvas waits, in join order.
    #[arg(long = "draw-join-rate", default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub join_rate: u32,

    /// Joiners' canvases waiting for the join rate at most; a joiner beyond
    /// it gets an `error` (`busy`) and may ask with `sync` later.
    #[arg(long = "draw-canvas-queue", default_value_t = DEFAULT_CANVAS_QUEUE, value_name = "N", value_parser = at_least_one)]
    pub canvas_queue: usize,

    /// Participants on the board at once at most.
    #[arg(long = "draw-max-clients", default_value_t = 1000, value_name = "N", value_parser = at_least_one)]
    pub max_clients: usize,

    /// Milliseconds the board gathers `moving` relays before sending them
    /// (0: each at once). Moves that arrive within one tick reach each
    /// client together, in one write; each waits at most this long.
    #[arg(
        long = "draw-relay-tick",
        default_value_t = DEFAULT_RELAY_TICK_MS,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(0..=MAX_RELAY_TICK_MS)
    )]
    pub relay_tick_ms: u64,
}

/// Default of `--draw-canvas-queue`: as many as `--draw-max-clients`'
/// default, so on default flags every joiner gets its canvas.
pub const DEFAULT_CANVAS_QUEUE: usize = 1000;

/// Default of `--draw-relay-tick`: off. A tick saves server CPU (4 ms:
/// about half per delivery in `bench draw`) but adds about its length to
/// every relay's latency, and the 99th percentile must stay under 10 ms
/// (BENCHMARKS.md).
pub const DEFAULT_RELAY_TICK_MS: u64 = 0;
/// Largest `--draw-relay-tick`: beyond it a drawing visibly lags.
pub const MAX_RELAY_TICK_MS: u64 = 50;

/// Board sizes: finite, positive, and small enough that a coordinate stays
/// a short number on the wire.
fn positive_size(raw: &str) -> Result<f64, String> {
    let v: f64 = raw.parse().map_err(|e| format!("{raw:?}: {e}"))?;
    if v.is_finite() && v > 0.0 && v <= 100_000.0 {
        Ok(v)
    } else {
        Err(format!(
            "{raw}: must be a number above 0 and at most 100000"
        ))
    }
}

fn at_least_one(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{raw}: must be a whole number of at least 1")),
    }
}

impl DrawConfig {
    /// How long `moving` relays are gathered before they go out.
    pub fn relay_tick(&self) -> Duration {
        Duration::from_millis(self.relay_tick_ms)
    }

    /// The board's size.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            width: self.width,
            height: self.height,
        }
    }
}

/// Why the board could not start.
#[derive(Debug, thiserror::Error)]
pub enum DrawStartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("drawing board: {0}")]
    Pg(#[from] PgError),
    #[error("drawing board: {0}")]
    Bus(#[from] BusError),
}

/// Handle to the drawing board: the Socket.IO layer and server, and the
/// canvas task's queue.
#[derive(Clone)]
pub struct Draw {
    io: SocketIo,
    layer: SocketIoLayer,
    commands: mpsc::Sender<Command>,
}

impl Draw {
    /// Loads the canvas from the store (PostgreSQL with `--database`),
    /// starts its task and builds the Socket.IO server; with `--redis` the
    /// task also talks to the other nodes.
    pub async fn start(
        config: &DrawConfig,
        store: Store,
        cluster: &Cluster,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Draw, DrawStartError> {
        let (board, backend, ids) = match &cluster.pg {
            None => (
                store::load(&store).await?,
                store::Backend::Sqlite(store),
                canvas::Ids::Local,
            ),
            Some(pg) => {
                let board = pg::load(pg).await?;
                let first = pg::reserve_ids(pg).await?;
                (
                    board,
                    store::Backend::Pg(Box::new(pg.clone())),
                    canvas::Ids::blocks(pg.clone(), first),
                )
            }
        };
        // Subscribed before anything is drawn here, so no message of
        // another node is missed between the load and the first event.
        let nodes = match &cluster.bus {
            Some(bus) => Some(canvas::Nodes {
                bus: bus.subscribe(cluster::TOPIC).await?,
                link: cluster::Link::start(bus.clone(), tasks, shutdown.clone()),
                backend: backend.clone(),
            }),
            None => None,
        };
        let (layer, io) = SocketIo::builder()
            .max_payload(MAX_PAYLOAD)
            .max_buffer_size(SOCKET_BUFFER)
            .ws_max_message_size(MAX_PAYLOAD as usize)
            .ws_max_frame_size(MAX_PAYLOAD as usize)
            .connect_timeout(Duration::from_secs(45))
            .build_layer();
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let persist = store::Persister::start_on(backend, tasks, shutdown.clone());
        let canvas = canvas::Canvas::new(config.clone(), board, stats, persist, ids);
        tasks.spawn(canvas.run(rx, nodes, shutdown));
        handlers::register(&io, config, commands.clone());
        Ok(Draw {
            io,
            layer,
            commands,
        })
    }

    /// The tower layer that answers `/socket.io/…`.
    pub fn layer(&self) -> SocketIoLayer {
        self.layer.clone()
    }

    /// Closes every Socket.IO connection (at shutdown).
    /// Sockets on HTTP long-polling now (the rest are on WebSocket).
    pub fn polling_sockets(&self) -> usize {
        self.io
            .sockets()
            .iter()
            .filter(|s| s.transport_type() == socketioxide::TransportType::Polling)
            .count()
    }

    pub async fn close(&self) {
        self.io.close().await;
    }

    /// Asks the canvas task for a copy of the drawing (tests, diagnostics).
    pub async fn snapshot(&self) -> Option<rt_protocol::draw::Board> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Inspect { reply: tx })
            .await
            .ok()?;
        rx.await.ok()
    }
}

/// `GET /socket.io/socket.io.js`: rt's browser client (the classic page
/// loads it from here), always as JavaScript.
pub async fn client_script(State(state): State<AppState>) -> Response {
    let uri = Uri::from_static("/socket.io/socket.io.js");
    let mut res = state.pages.serve(&uri).await;
    if res.status().is_success() {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        );
    }
    res.into_response()
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn flags_have_the_documented_defaults_and_limits() {
        let c = Config::parse_from(["rt-server"]);
        assert_eq!((c.draw.width, c.draw.height), (2000.0, 1000.0));
        assert_eq!(
            (c.draw.rate, c.draw.max_segments, c.draw.max_clients),
            (60, 200_000, 1000)
        );
        assert_eq!(c.draw.join_rate, 20);
        assert_eq!(c.draw.canvas_queue, 1000);
        assert_eq!(c.draw.relay_tick(), Duration::ZERO);
        for bad in [
            &["--draw-width", "0"][..],
            &["--draw-height", "-5"],
            &["--draw-width", "inf"],
            &["--draw-rate", "0"],
            &["--draw-join-rate", "0"],
            &["--draw-max-clients", "0"],
            &["--draw-canvas-queue", "0"],
            &["--draw-relay-tick", "51"],
            &["--draw-relay-tick", "-1"],
        ] {
            let args = std::iter::once("rt-server").chain(bad.iter().copied());
            assert!(Config::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
        let c = Config::parse_from(["rt-server", "--draw-width", "640.5", "--draw-rate", "5"]);
        assert_eq!((c.draw.width, c.draw.rate), (640.5, 5));
        let c = Config::parse_from(["rt-server", "--draw-relay-tick", "4"]);
        assert_eq!(c.draw.relay_tick(), Duration::from_millis(4));
    }
}
