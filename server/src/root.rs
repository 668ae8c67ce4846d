//! `/` serves three things (see protocols.md §0): a ticker poll when the
//! query names a symbol, the landing page otherwise.

use axum::extract::{RawQuery, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /`.
pub async fn root(State(state): State<AppState>, RawQuery(query): RawQuery, uri: Uri) -> Response {
    if let Some(symbol) = query.as_deref().and_then(symbol_param) {
        return state.ticker.poll_response(&symbol).await;
    }
    state.pages.serve(&uri).await
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
