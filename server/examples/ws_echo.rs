//! A WebSocket echo endpoint for conformance testing (Autobahn), built only
//! as an example: never part of `rt-server`.
//!
//! It upgrades with the editor's settings ([`rt_server::root::editor_websocket`],
//! so the same flags apply, e.g. `--doc-max-frame-bytes`) and serves through
//! rt's own accept loop ([`rt_server::serve::accept_loop`]: the request
//! sniffer, hyper, the header timeout). Every text or binary message comes
//! back as sent; pings, pongs and the closing handshake are the WebSocket
//! layer's, as on the editor's socket.
//!
//! `cargo run -p rt-server --example ws_echo -- --bind 127.0.0.1:9001`
//! prints `listening on ws://ADDR/` once bound and serves until Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use clap::Parser;
use rt_server::Config;
use rt_server::serve::{Serve, accept_loop};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a close frame may take to go out to a peer that does not read.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Arc::new(Config::parse());
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    println!("listening on ws://{}/", listener.local_addr()?);
    // The server's own connection settings: caps, header and idle timeouts.
    let settings = Serve::new(&config, None);
    let shutdown = CancellationToken::new();
    let conns = TaskTracker::new();
    let router = Router::new()
        .route("/", get(upgrade))
        .with_state(config.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    accept_loop(listener, router, shutdown, conns.clone(), settings).await;
    conns.close();
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let _ = tokio::time::timeout(grace, conns.wait()).await;
    Ok(())
}

async fn upgrade(State(config): State<Arc<Config>>, ws: WebSocketUpgrade) -> Response {
    rt_server::root::editor_websocket(ws, &config).on_upgrade(echo)
}

/// Sends every data message back until the stream ends: after the peer's
/// close frame the next read sends the reply and ends it. A failed read
/// (a protocol error, invalid UTF-8, a message over the limit) is closed
/// with the editor's code for it (1002, 1007, 1009).
async fn echo(mut socket: WebSocket) {
    while let Some(msg) = socket.recv().await {
        let reply = match msg {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => msg,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => continue,
            Err(e) => {
                let (code, reason) = rt_server::docs::conn::read_failure(&e.to_string());
                let close = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = tokio::time::timeout(CLOSE_FLUSH, socket.send(Message::Close(Some(close))))
                    .await;
                return;
            }
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}
