//! rt-server: one listener for four real-time apps.
//!
//! - the stock ticker (`GET /?symbol=`, `/ticker/stream`), [`ticker`]
//! - the Q&A board over SSE (`/login`, `/askquestion/…`), [`qa`]
//! - server figures over SSE (`/stats`), [`stats_stream`]
//! - Prometheus metrics (`/metrics`), [`metrics`]
//! - the collaborative editor (ShareDB over a WebSocket at `/`), [`docs`]
//! - the drawing board (Socket.IO at `/socket.io/`), [`draw`]
//! - the browser pages (`/`, `/ticker/`, …), [`web`]
//!
//! [`app`] builds the router (tests drive it on port 0); [`run`] serves it
//! until shutdown; [`spawn`] does both in the background.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod config;
pub mod config_file;
pub mod docs;
pub mod draw;
pub mod guard;
pub mod metrics;
pub mod qa;
pub mod root;
pub mod serve;
pub mod state;
pub mod stats;
pub mod stats_stream;
pub mod store;
pub mod ticker;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use state::AppState;

/// The whole HTTP surface on one router.
pub fn app(state: AppState) -> Router {
    let guard = guard::Guard::new(&state.config.guard);
    Router::new()
        .route("/", get(root::root))
        .route("/healthz", get(|| async { "ok" }))
        .route("/favicon.ico", get(root::favicon))
        .merge(ticker::routes())
        .merge(qa::routes())
        .route("/stats", get(stats_stream::stats))
        .route("/metrics", get(metrics::scrape))
        .fallback(root::pages)
        // After every route and the fallback, so it wraps them all.
        .layer(state.draw.layer())
        // After the layer, so the layer does not claim it.
        .route("/socket.io/socket.io.js", get(draw::client_script))
        .with_state(state)
        // Outermost: origin and token checks run before any handler,
        // socketioxide or the lean stream writer answers.
        .layer(guard.layer())
}

/// Serves `app(state)` on `listener` until `shutdown` resolves or the state's
/// token is cancelled, then stops every stream and waits for connection tasks
/// to flush their close frames: at most `--shutdown-grace-ms`, after which
/// connections still open (a request stuck in its headers, a peer that does
/// not read its close frame) are abandoned. Serves TLS when the config names
/// a certificate (which must load).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = serve::tls::load(&state.config.serve)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    run_with(listener, state, tls, shutdown).await
}

/// [`run`] with TLS already loaded (by [`serve::tls::load`]; `None` for
/// plain HTTP), so a binary can report a bad certificate before it serves.
pub async fn run_with(
    listener: TcpListener,
    state: AppState,
    tls: Option<serve::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    let tasks = state.tasks.clone();
    let draw = state.draw.clone();
    let grace = Duration::from_millis(state.config.shutdown_grace_ms);
    let settings = serve::Serve::new(&state.config, tls);
    let signal = {
        let token = token.clone();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = token.cancelled() => {}
            }
            tracing::info!("shutting down");
            // Streams end on the token; plain graceful shutdown would wait on
            // them forever.
            token.cancel();
            // socketioxide's close does not run on_disconnect handlers; the
            // drawing board ends on the token instead.
            draw.close().await;
        }
    };
    let conns = TaskTracker::new();
    let accept = serve::accept_loop(listener, app(state), token.clone(), conns.clone(), settings);
    let serving = async {
        tokio::join!(accept, signal);
        conns.close();
        conns.wait().await;
        tasks.close();
        tasks.wait().await;
        Ok(())
    };
    // Graceful shutdown waits for every connection to finish its request,
    // and a client may never finish one.
    let overdue = async {
        token.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = serving => r,
        () = overdue => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "connections still open after the shutdown grace period; leaving them"
            );
            Ok(())
        }
    }
}

/// A server running in the background (tests, the TUI's embedded server).
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// `http://addr`, or `https://addr` with TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.state.config.serve.scheme(), self.addr)
    }

    /// Stops the server and waits until it has.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.state.shutdown.cancel();
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Binds `config.bind`, builds the state and serves in a background task
/// (with TLS when the config names a certificate).
pub async fn spawn(mut config: Config) -> anyhow::Result<Server> {
    config.guard.load()?;
    let tls = serve::tls::load(&config.serve)?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config).await?;
    let handle = tokio::spawn(run_with(
        listener,
        state.clone(),
        tls,
        std::future::pending(),
    ));
    Ok(Server {
        addr,
        state,
        handle,
    })
}

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::serve::{LEAN_HEAD_LIMIT, STREAM_PATHS, sniff};

    /// What the request sniffer decides about a connection's first bytes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Sniffed {
        /// A stream request to `path` whose head is `head_len` bytes.
        Stream { path: String, head_len: usize },
        /// For hyper.
        Other,
        /// Undecided: the server reads more.
        NeedMore,
    }

    /// Runs the sniffer's classifier on `bytes` with the server's stream paths.
    pub fn sniff(bytes: &[u8]) -> Sniffed {
        match sniff::classify(bytes, STREAM_PATHS) {
            sniff::Verdict::Stream(req, head_len) => Sniffed::Stream {
                path: req.uri().path().to_string(),
                head_len,
            },
            sniff::Verdict::Other => Sniffed::Other,
            sniff::Verdict::NeedMore => Sniffed::NeedMore,
        }
    }

    /// The most the server reads before it stops sniffing.
    pub const HEAD_LIMIT: usize = LEAN_HEAD_LIMIT;
}
