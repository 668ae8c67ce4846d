//! `GET /ticker/stream?symbols=IBM,MSFT`: quotes pushed over Server-Sent
//! Events.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rt_protocol::sse;
use rt_protocol::ticker::{STREAM_SYMBOLS_PARAM, Symbol};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::SubscribeError;
use super::mailbox::Mailbox;
use crate::state::AppState;
use crate::stats::{App, ConnGuard, Stats};

/// The reconnection delay suggested to clients, in ms.
pub const RETRY_MS: u64 = 2000;

/// The stream handler.
pub async fn stream(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let ticker = &state.ticker;
    crate::metrics::events_in(App::Ticker, 1);
    let symbols = match parse_symbols(query.as_deref().unwrap_or(""), ticker.stream_max_symbols) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mailbox = Arc::new(Mailbox::new(symbols.len()));
    match ticker.subscribe(symbols, mailbox.clone()).await {
        Ok(()) => {}
        Err(e @ SubscribeError::Full(_)) => {
            crate::metrics::refused("max_symbols");
            return error(StatusCode::TOO_MANY_REQUESTS, e.to_string());
        }
        Err(e @ SubscribeError::Stopped) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
    }
    let guard = state.stats.connect(App::Ticker);
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + ticker.heartbeat, ticker.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let writer = Writer {
        mailbox,
        heartbeat,
        heartbeat_bytes: sse::encode_comment(" heartbeat"),
        stats: state.stats.clone(),
        _guard: guard,
        started: false,
    };
    let body = futures_util::stream::unfold(writer, |mut w| async move {
        let chunk = w.next_chunk().await;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), w))
    })
    .take_until(state.shutdown.clone().cancelled_owned());
    crate::serve::sse_response(Body::from_stream(body))
}

/// One stream's writing side: mailbox events, batched into one chunk, and
/// heartbeats when idle.
struct Writer {
    mailbox: Arc<Mailbox>,
    heartbeat: Interval,
    heartbeat_bytes: Bytes,
    stats: Arc<Stats>,
    _guard: ConnGuard,
    started: bool,
}

impl Writer {
    async fn next_chunk(&mut self) -> Bytes {
        if !self.started {
            self.started = true;
            let mut first = BytesMut::new();
            first.extend_from_slice(&sse::encode_comment(" rt ticker"));
            first.extend_from_slice(&sse::encode_retry(RETRY_MS));
            return first.freeze();
        }
        loop {
            tokio::select! {
                _ = self.mailbox.changed() => {
                    let events = self.mailbox.take();
                    if events.is_empty() {
                        continue;
                    }
                    self.stats.delivered(App::Ticker, events.len() as u64);
                    self.heartbeat.reset();
                    if let [(_, one)] = events.as_slice() {
                        return one.clone();
                    }
                    let mut buf = BytesMut::with_capacity(events.iter().map(|(_, b)| b.len()).sum());
                    for (_, b) in events {
                        buf.extend_from_slice(&b);
                    }
                    return buf.freeze();
                }
                _ = self.heartbeat.tick() => return self.heartbeat_bytes.clone(),
            }
        }
    }
}

/// The `symbols` parameters (all of them, comma-separated lists), validated,
/// upper-cased and deduplicated in order of first appearance.
fn parse_symbols(query: &str, max: usize) -> Result<Vec<Symbol>, String> {
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut seen = 0usize;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != STREAM_SYMBOLS_PARAM {
            continue;
        }
        for raw in v.split(',') {
            if raw.trim().is_empty() {
                continue;
            }
            seen += 1;
            let symbol = Symbol::parse(raw).map_err(|e| format!("symbol {seen}: {e}"))?;
            if !symbols.contains(&symbol) {
                if symbols.len() == max {
                    crate::metrics::refused("ticker_stream_max_symbols");
                    return Err(format!("too many symbols: at most {max} per stream"));
                }
                symbols.push(symbol);
            }
        }
    }
    if symbols.is_empty() {
        return Err("no symbols: use /ticker/stream?symbols=IBM,MSFT".into());
    }
    Ok(symbols)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_parsed_deduplicated_and_limited() {
        let got = parse_symbols("symbols=ibm,MSFT,%20ibm&x=1&symbols=brk.b", 3).unwrap();
        let names: Vec<_> = got.iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["IBM", "MSFT", "BRK.B"]);
        assert!(
            parse_symbols("symbols=A,B,C,D", 3)
                .unwrap_err()
                .contains("at most 3")
        );
        assert!(parse_symbols("", 3).unwrap_err().contains("no symbols"));
        assert!(
            parse_symbols("symbols=,,", 3)
                .unwrap_err()
                .contains("no symbols")
        );
        assert!(
            parse_symbols("symbols=IBM,%3Cscript%3E", 3)
                .unwrap_err()
                .starts_with("symbol 2:")
        );
    }
}
