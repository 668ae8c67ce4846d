//! `/` serves three things (see protocols.md §0): the editor's ShareDB
//! WebSocket on an upgrade request, a ticker poll when the query names a
//! symbol, the landing page otherwise.

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{RawQuery, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::state::AppState;
use crate::stats::{App, Transport};

/// `GET /`.
pub async fn root(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> Response {
    if let Ok(ws) = ws {
        return editor_socket(ws, state);
    }
    if let Some(symbol) = query.as_deref().and_then(symbol_param) {
        let _open = state.stats.connect_via(App::Ticker, Transport::Poll);
        crate::metrics::events_in(App::Ticker, 1);
        let response = state.ticker.poll_response(&symbol).await;
        state.stats.delivered(App::Ticker, 1);
        return response;
    }
    state.pages.serve(&uri).await
}

/// Bytes the editor socket asks the kernel for per read. The WebSocket layer
/// zero-fills this much of its buffer before every read (128 KiB by
/// default, which showed up as memset in profiles); ShareDB messages are
/// small, and a larger frame is still read whole, over several reads.
const EDITOR_READ_BUFFER: usize = 8 * 1024;

/// Upgrades to the editor's ShareDB socket. Frames up to twice the frame
/// limit are read so that an oversized request still gets an error echo;
/// beyond that the WebSocket layer closes the connection (1009).
fn editor_socket(ws: WebSocketUpgrade, state: AppState) -> Response {
    editor_websocket(ws, &state.config).on_upgrade(move |socket| {
        let tasks = state.tasks.clone();
        tasks.track_future(crate::docs::serve_socket(socket, state))
    })
}

/// The editor socket's WebSocket settings. The conformance echo endpoint
/// (`server/examples/ws_echo.rs`) applies the same ones, so Autobahn tests
/// what the editor runs.
pub fn editor_websocket(ws: WebSocketUpgrade, config: &Config) -> WebSocketUpgrade {
    let max = config.docs.max_frame_bytes.saturating_mul(2);
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(EDITOR_READ_BUFFER)
}

/// The first `symbol` parameter, decoded leniently: a malformed query must
/// still reach the ticker, which answers it with an error, never a 4xx/5xx.
fn symbol_param(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "symbol")
        .map(|(_, v)| v.into_owned())
}

/// The classic servers answered `/favicon.ico` with an empty icon.
pub async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/x-icon")], "").into_response()
}

/// Everything no route claims: the browser pages.
pub async fn pages(State(state): State<AppState>, uri: Uri) -> Response {
    state.pages.serve(&uri).await
}
