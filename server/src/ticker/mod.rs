//! The stock ticker: classic AJAX polling (`GET /?symbol=`) and an SSE stream
//! (`GET /ticker/stream?symbols=…`), see protocols.md §1.
//!
//! One owner task ([`owner`]) holds the simulated market ([`market`]) or the
//! cache of an upstream provider ([`upstream`]), and keeps each symbol's poll
//! body serialized once per change, so a poll is a lookup. Streams receive
//! encoded events through a per-stream [`mailbox`] that keeps only the latest
//! unsent quote per symbol.

mod cluster;
pub mod mailbox;
pub mod market;
mod owner;
mod stream;
pub mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use rt_protocol::ticker::{ERROR_CALL_IN_MS, Symbol};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use mailbox::Mailbox;
use owner::{Command, Owner, Role, Settings, UpstreamSettings};

pub use owner::Full;

/// Commands queued for the owner before handlers wait.
pub const COMMAND_QUEUE: usize = 4096;

/// Ticker settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Stock ticker")]
pub struct TickerConfig {
    /// `callIn` sent to polling clients: how long they wait between polls
    /// (0 is refused: it would tell every classic client to stop).
    #[arg(long, default_value_t = 5000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_ms: u64,

    /// Seed for the simulated market, for a reproducible run (each symbol's
    /// series depends only on the seed and the symbol). Default: random.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// How often the market moves: every tick is one simulated minute of
    /// trading (a session is 390 ticks). Upstream symbols watched by streams
    /// are refreshed on this clock too.
    #[arg(long, default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tick_ms: u64,

    /// The most symbols tracked besides the built-in ones; the least recently
    /// requested one is dropped to make room.
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_symbols: u64,

    /// Take quotes from this upstream URL instead of the simulator;
    /// `{symbol}` is replaced by the symbol. It must return an IEX-style quote.
    #[arg(long, value_name = "URL", value_parser = upstream::parse_quotes_url)]
    pub quotes_url: Option<String>,

    /// Upstream: the least time between two requests for one symbol; a quote
    /// is cached that long and concurrent pollers share one request.
    #[arg(long, default_value_t = 5000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_interval_ms: u64,

    /// Upstream: give up on a request after this long.
    #[arg(long, default_value_t = 3000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_ms: u64,

    /// Upstream: after consecutive failures a symbol waits 1, 2, 4… upstream
    /// intervals before the next request, at most this long.
    #[arg(long, default_value_t = 60_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_backoff_max_ms: u64,

    /// Upstream: the most requests in flight at once (over all symbols).
    #[arg(long, default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_max_in_flight: u64,

    /// `/ticker/stream`: a heartbeat comment after this long without events.
    #[arg(long, default_value_t = 15_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ticker_heartbeat_ms: u64,

    /// `/ticker/stream`: the most symbols one stream may watch.
    #[arg(long, default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ticker_stream_max_symbols: u64,
}

/// Handle to the ticker's owner task; cloning is cheap.
#[derive(Clone)]
pub struct Ticker {
    commands: mpsc::Sender<Command>,
    heartbeat: Duration,
    stream_max_symbols: usize,
    driving: Arc<AtomicBool>,
}

impl Ticker {
    /// Spawns the owner task; it stops on `shutdown`. Must be called inside
    /// a tokio runtime. In a cluster (PostgreSQL and Redis) the owner is a
    /// face of the cluster's one market (see `cluster`).
    pub fn start(
        config: &TickerConfig,
        cluster: &crate::cluster::Cluster,
        shutdown: CancellationToken,
    ) -> Ticker {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let driving = Arc::new(AtomicBool::new(false));
        let role = match (&cluster.bus, &cluster.pg) {
            (Some(bus), Some(pg)) => {
                let driver_config = config.clone();
                let wants = cluster::start(
                    bus.clone(),
                    pg.clone(),
                    tx.clone(),
                    Box::new(move |role| settings(&driver_config, role)),
                    driving.clone(),
                    shutdown.clone(),
                );
                Role::Face { wants }
            }
            _ => Role::Local,
        };
        let owner = Owner::new(settings(config, role), tx.downgrade());
        tokio::spawn(owner.run(rx, shutdown));
        Ticker {
            commands: tx,
            heartbeat: Duration::from_millis(config.ticker_heartbeat_ms),
            stream_max_symbols: config.ticker_stream_max_symbols as usize,
            driving,
        }
    }

    /// In a cluster: whether this node drives the market now. A single
    /// node always holds its own market and answers false.
    pub fn is_driver(&self) -> bool {
        self.driving.load(Ordering::Relaxed)
    }

    /// The JSON body answering `GET /?symbol=<raw_symbol>`: a quote with
    /// `callIn` = poll interval, an error with `callIn` 10000 when no quote
    /// can be had right now, or an error with `callIn: null` (stop polling)
    /// for an invalid symbol.
    pub async fn poll(&self, raw_symbol: &str) -> Bytes {
        let symbol = match Symbol::parse(raw_symbol) {
            Ok(s) => s,
            Err(e) => return owner::error_body(&e.to_string(), None),
        };
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Poll { symbol, reply })
            .await
            .is_err()
        {
            return stopped_body();
        }
        rx.await.unwrap_or_else(|_| stopped_body())
    }

    /// [`Ticker::poll`] as an HTTP response: always `200 application/json`.
    pub async fn poll_response(&self, raw_symbol: &str) -> Response {
        let body = self.poll(raw_symbol).await;
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }

    /// How many symbols the owner tracks (built-in ones included).
    pub async fn tracked(&self) -> Option<usize> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Tracked { reply }).await.ok()?;
        rx.await.ok()
    }

    /// Subscribes `mailbox` to `symbols` (slot `i` receives `symbols[i]`) and
    /// queues their current quotes into it.
    pub(crate) async fn subscribe(
        &self,
        symbols: Vec<Symbol>,
        mailbox: Arc<Mailbox>,
    ) -> Result<(), SubscribeError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe {
                symbols,
                mailbox,
                reply,
            })
            .await
            .map_err(|_| SubscribeError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(full)) => Err(SubscribeError::Full(full)),
            Err(_) => Err(SubscribeError::Stopped),
        }
    }
}

/// The owner's settings for `role`, from the node's flags.
fn settings(config: &TickerConfig, role: Role) -> Settings {
    let upstream = config.quotes_url.as_ref().and_then(|url| {
        let timeout = Duration::from_millis(config.upstream_timeout_ms);
        match upstream::Upstream::new(url.clone(), timeout) {
            Ok(u) => Some(UpstreamSettings {
                upstream: u,
                interval: Duration::from_millis(config.upstream_interval_ms),
                backoff_max: Duration::from_millis(config.upstream_backoff_max_ms),
                max_in_flight: config.upstream_max_in_flight as usize,
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the upstream client; simulating");
                None
            }
        }
    });
    Settings {
        poll_ms: config.poll_ms,
        tick: Duration::from_millis(config.tick_ms),
        seed: config.seed.unwrap_or_else(rand::random),
        max_symbols: config.max_symbols as usize,
        upstream,
        role,
    }
}

/// Why a stream could not subscribe.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscribeError {
    #[error(transparent)]
    Full(Full),
    #[error("the ticker is shutting down")]
    Stopped,
}

fn stopped_body() -> Bytes {
    owner::error_body("the ticker is shutting down", Some(ERROR_CALL_IN_MS))
}

/// The ticker's own routes (the poll itself is on `/`, see `root.rs`).
pub fn routes() -> Router<AppState> {
    Router::new().route("/ticker/stream", get(stream::stream))
}
