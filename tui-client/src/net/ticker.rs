//! Ticker client: polls `GET /?symbol=SYM` as the server's `callIn` says, or
//! follows `GET /ticker/stream?symbols=A,B` (SSE, event `quote`).
//!
//! The task owns its HTTP client. The watchlist comes in on a `watch`
//! channel (only the latest list matters, so the UI never waits to set it);
//! quotes, errors and connection states go out on a bounded `mpsc`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures_util::StreamExt;
use rt_protocol::ticker::{PollResponse, Quote, Symbol};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::http::{HttpClient, HttpError};
use super::{ConnState, Endpoint, NetEvent, Transport, describe_sse};

/// How long one poll request may take before it counts as a failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to the stream may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream silent for this long is dead (the server sends a heartbeat
/// comment every 15 s by default) and is reopened.
pub const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How quotes are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TickerTransport {
    /// `GET /?symbol=SYM`, again after the `callIn` the server sends.
    #[default]
    Poll,
    /// One Server-Sent Events stream for the whole watchlist.
    Sse,
}

impl TickerTransport {
    pub fn name(self) -> &'static str {
        match self {
            TickerTransport::Poll => "poll",
            TickerTransport::Sse => "sse",
        }
    }
}

/// When a symbol will be updated next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextUpdate {
    /// The next poll is at this instant (the server's `callIn`).
    At(Instant),
    /// The server sent `callIn: null` (or 0): no more polls for this symbol.
    Stopped,
    /// Quotes arrive as the server pushes them (SSE).
    Live,
}

/// What the ticker client receives.
#[derive(Debug, Clone, PartialEq)]
pub enum TickerEvent {
    /// A quote for `quote.symbol`.
    Quote {
        symbol: Symbol,
        quote: Quote,
        at: Instant,
        next: NextUpdate,
    },
    /// The server answered a poll for `symbol` with an error.
    Error {
        symbol: Symbol,
        error: String,
        at: Instant,
        next: NextUpdate,
    },
}

/// Where and how to fetch quotes.
#[derive(Debug, Clone)]
pub struct TickerClientConfig {
    /// The server (`http://127.0.0.1:8080`, with its token if it has one).
    pub base_url: Endpoint,
    pub transport: TickerTransport,
}

/// A running ticker client. Dropping it stops the task.
pub struct TickerClient {
    watchlist: watch::Sender<Vec<Symbol>>,
    task: JoinHandle<()>,
}

impl TickerClient {
    /// Starts the client task for `watchlist`; events go to `events`.
    pub fn spawn(
        config: TickerClientConfig,
        watchlist: Vec<Symbol>,
        events: mpsc::Sender<NetEvent>,
    ) -> TickerClient {
        let (tx, rx) = watch::channel(watchlist);
        let base = config.base_url;
        let task = match config.transport {
            TickerTransport::Poll => tokio::spawn(run_poll(base, rx, events)),
            TickerTransport::Sse => tokio::spawn(run_sse(base, rx, events)),
        };
        TickerClient {
            watchlist: tx,
            task,
        }
    }

    /// Replaces the watchlist; takes effect at the task's next step.
    pub fn set_watchlist(&self, symbols: Vec<Symbol>) {
        self.watchlist.send_replace(symbols);
    }
}

impl Drop for TickerClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL polled for `symbol`.
pub fn poll_url(base: &str, symbol: &Symbol) -> String {
    // Symbols are limited to A-Z 0-9 . - so they need no escaping.
    format!("{}/?symbol={}", base.trim_end_matches('/'), symbol)
}

/// The stream URL for `symbols`.
pub fn stream_url(base: &str, symbols: &[Symbol]) -> String {
    let list: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
    format!(
        "{}/ticker/stream?symbols={}",
        base.trim_end_matches('/'),
        list.join(",")
    )
}

/// Turns the server's `callIn` into the next update; `null` and 0 stop
/// polling, as in the classic client.
pub fn next_from_call_in(call_in: Option<u64>, now: Instant) -> NextUpdate {
    match call_in {
        Some(ms) if ms > 0 => NextUpdate::At(now + Duration::from_millis(ms)),
        _ => NextUpdate::Stopped,
    }
}

/// A transport failure, phrased for the user.
fn describe(base: &str, e: &HttpError) -> String {
    format!("cannot reach {base}: {e}")
}

/// One poll. `Err` is a transport failure (the server is not answering
/// usefully); an error *answer* is `Ok(PollResponse::Error)`.
pub async fn poll_once(
    client: &HttpClient,
    base: &str,
    symbol: &Symbol,
) -> Result<PollResponse, String> {
    let reply = client
        .get(&poll_url(base, symbol))
        .await
        .map_err(|e| describe(base, &e))?;
    if !reply.status.is_success() {
        return Err(format!("{base} answered HTTP {}", reply.status));
    }
    serde_json::from_slice::<PollResponse>(&reply.body)
        .map_err(|e| format!("malformed answer from {base}: {e}"))
}

/// The HTTP client used for polls.
pub fn http_client(endpoint: &Endpoint) -> HttpClient {
    HttpClient::new(endpoint, REQUEST_TIMEOUT, CONNECT_TIMEOUT)
}

/// Reports state changes only, so the UI is not woken for nothing.
struct StateReporter {
    last: Option<ConnState>,
    events: mpsc::Sender<NetEvent>,
}

impl StateReporter {
    async fn set(&mut self, state: ConnState) -> Result<(), Closed> {
        if self.last.as_ref() == Some(&state) {
            return Ok(());
        }
        self.last = Some(state.clone());
        send(&self.events, NetEvent::State(Transport::Ticker, state)).await
    }
}

/// The UI went away; the task ends.
struct Closed;

async fn send(events: &mpsc::Sender<NetEvent>, ev: NetEvent) -> Result<(), Closed> {
    events.send(ev).await.map_err(|_| Closed)
}

/// Keeps the polling schedule in step with the watchlist: new symbols are
/// due now, removed ones are forgotten, the rest keep their schedule.
fn sync_schedule(due: &mut HashMap<Symbol, Option<Instant>>, list: &[Symbol], now: Instant) {
    due.retain(|s, _| list.contains(s));
    for s in list {
        due.entry(s.clone()).or_insert(Some(now));
    }
}

async fn run_poll(
    endpoint: Endpoint,
    mut watchlist: watch::Receiver<Vec<Symbol>>,
    events: mpsc::Sender<NetEvent>,
) {
    let _ = poll_loop(&endpoint, &mut watchlist, &events).await;
}

async fn poll_loop(
    endpoint: &Endpoint,
    watchlist: &mut watch::Receiver<Vec<Symbol>>,
    events: &mpsc::Sender<NetEvent>,
) -> Result<(), Closed> {
    let base = endpoint.base();
    let client = http_client(endpoint);
    let mut state = StateReporter {
        last: None,
        events: events.clone(),
    };
    let mut due: HashMap<Symbol, Option<Instant>> = HashMap::new();
    let mut backoff = Backoff::default();
    // While the server is unreachable no symbol is polled before this.
    let mut blocked_until: Option<Instant> = None;
    sync_schedule(&mut due, &watchlist.borrow_and_update(), Instant::now());
    loop {
        let next = due
            .iter()
            .filter_map(|(s, t)| t.map(|t| (t, s.clone())))
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        if next.is_none() {
            state.set(ConnState::Idle).await?;
        } else if matches!(state.last, None | Some(ConnState::Idle)) {
            state.set(ConnState::Connecting).await?;
        }
        let wake = next
            .as_ref()
            .map(|(t, _)| blocked_until.map_or(*t, |b| b.max(*t)));
        tokio::select! {
            changed = watchlist.changed() => {
                if changed.is_err() {
                    return Err(Closed);
                }
                sync_schedule(&mut due, &watchlist.borrow_and_update(), Instant::now());
            }
            _ = sleep_until_opt(wake) => {
                let Some((_, symbol)) = next else { continue };
                match poll_once(&client, base, &symbol).await {
                    Ok(resp) => {
                        blocked_until = None;
                        backoff.reset();
                        state.set(ConnState::Connected).await?;
                        let at = Instant::now();
                        let next = next_from_call_in(resp.call_in(), at);
                        if let Some(slot) = due.get_mut(&symbol) {
                            *slot = match next {
                                NextUpdate::At(t) => Some(t),
                                _ => None,
                            };
                        }
                        let ev = match resp {
                            PollResponse::Quote { quote, .. } => {
                                TickerEvent::Quote { symbol, quote, at, next }
                            }
                            PollResponse::Error { error, .. } => {
                                TickerEvent::Error { symbol, error, at, next }
                            }
                        };
                        send(events, NetEvent::Ticker(ev)).await?;
                    }
                    Err(error) => {
                        let at = Instant::now() + backoff.next_delay();
                        blocked_until = Some(at);
                        tracing::debug!(%error, "ticker poll failed");
                        state.set(ConnState::Retrying { at, error }).await?;
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

async fn run_sse(
    endpoint: Endpoint,
    mut watchlist: watch::Receiver<Vec<Symbol>>,
    events: mpsc::Sender<NetEvent>,
) {
    let _ = sse_loop(&endpoint, &mut watchlist, &events).await;
}

/// How one stream connection ended.
enum StreamEnd {
    WatchlistChanged,
    Failed(String),
}

async fn sse_loop(
    endpoint: &Endpoint,
    watchlist: &mut watch::Receiver<Vec<Symbol>>,
    events: &mpsc::Sender<NetEvent>,
) -> Result<(), Closed> {
    let base = endpoint.base();
    let transport = match endpoint.sse_transport(CONNECT_TIMEOUT, Some(STREAM_READ_TIMEOUT)) {
        Ok(t) => t,
        Err(e) => {
            let error = format!("cannot start the HTTP client: {e}");
            let at = Instant::now() + Duration::from_secs(3600);
            send(
                events,
                NetEvent::State(Transport::Ticker, ConnState::Retrying { at, error }),
            )
            .await?;
            return Ok(());
        }
    };
    let mut state = StateReporter {
        last: None,
        events: events.clone(),
    };
    let mut backoff = Backoff::default();
    loop {
        let symbols = watchlist.borrow_and_update().clone();
        if symbols.is_empty() {
            state.set(ConnState::Idle).await?;
            watchlist.changed().await.map_err(|_| Closed)?;
            continue;
        }
        if !matches!(state.last, Some(ConnState::Retrying { .. })) {
            state.set(ConnState::Connecting).await?;
        }
        let url = stream_url(base, &symbols);
        let end = match endpoint.sse_builder(&url) {
            Err(e) => StreamEnd::Failed(format!("bad stream URL {url}: {e}")),
            Ok(builder) => {
                let client = builder
                    .reconnect(ReconnectOptions::reconnect(false).build())
                    .build_with_transport(transport.clone());
                let mut stream = client.stream();
                loop {
                    tokio::select! {
                        changed = watchlist.changed() => {
                            changed.map_err(|_| Closed)?;
                            break StreamEnd::WatchlistChanged;
                        }
                        item = stream.next() => match item {
                            Some(Ok(SSE::Connected(details))) => {
                                let status = details.response().status();
                                if status != 200 {
                                    break StreamEnd::Failed(format!("{base} answered HTTP {status}"));
                                }
                                backoff.reset();
                                state.set(ConnState::Connected).await?;
                            }
                            Some(Ok(SSE::Event(ev))) => {
                                if let Some(ev) = decode_stream_event(&ev.event_type, &ev.data) {
                                    state.set(ConnState::Connected).await?;
                                    send(events, NetEvent::Ticker(ev)).await?;
                                }
                            }
                            Some(Ok(SSE::Comment(_))) => {}
                            Some(Err(e)) => break StreamEnd::Failed(describe_sse(base, &e)),
                            None => break StreamEnd::Failed(format!("{base} closed the stream")),
                        }
                    }
                }
            }
        };
        if let StreamEnd::Failed(error) = end {
            let at = Instant::now() + backoff.next_delay();
            tracing::debug!(%error, "ticker stream failed");
            state.set(ConnState::Retrying { at, error }).await?;
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                changed = watchlist.changed() => changed.map_err(|_| Closed)?,
            }
        }
    }
}

/// Decodes one stream event. `quote` carries a quote; anything else (or a
/// quote that does not parse) is logged and skipped.
pub fn decode_stream_event(event_type: &str, data: &str) -> Option<TickerEvent> {
    if event_type != "quote" {
        tracing::debug!(event_type, "ignoring ticker stream event");
        return None;
    }
    let quote: Quote = match serde_json::from_str(data) {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "malformed quote on the ticker stream");
            return None;
        }
    };
    let symbol = match Symbol::parse(&quote.symbol) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "quote with an invalid symbol on the ticker stream");
            return None;
        }
    };
    Some(TickerEvent::Quote {
        symbol,
        quote,
        at: Instant::now(),
        next: NextUpdate::Live,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn urls() {
        assert_eq!(
            poll_url("http://h:1/", &sym("ibm")),
            "http://h:1/?symbol=IBM"
        );
        assert_eq!(
            stream_url("http://h:1", &[sym("A"), sym("brk.b")]),
            "http://h:1/ticker/stream?symbols=A,BRK.B"
        );
    }

    #[test]
    fn call_in_null_or_zero_stops() {
        let now = Instant::now();
        assert_eq!(next_from_call_in(None, now), NextUpdate::Stopped);
        assert_eq!(next_from_call_in(Some(0), now), NextUpdate::Stopped);
        assert_eq!(
            next_from_call_in(Some(1500), now),
            NextUpdate::At(now + Duration::from_millis(1500))
        );
    }

    #[test]
    fn schedule_follows_the_watchlist() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut due = HashMap::new();
        due.insert(sym("A"), Some(later));
        due.insert(sym("B"), None);
        sync_schedule(&mut due, &[sym("A"), sym("C")], now);
        assert_eq!(due.len(), 2);
        assert_eq!(due[&sym("A")], Some(later));
        assert_eq!(due[&sym("C")], Some(now));
    }

    #[test]
    fn stream_events_decode() {
        let data = r#"{"symbol":"IBM","companyName":"IBM","latestPrice":1.5,"change":0.1,
            "changePercent":0.01,"open":1,"high":2,"low":1,"previousClose":1.4,"volume":5,
            "latestUpdate":1}"#;
        match decode_stream_event("quote", data) {
            Some(TickerEvent::Quote {
                symbol,
                quote,
                next,
                ..
            }) => {
                assert_eq!(symbol, sym("IBM"));
                assert_eq!(quote.latest_price, 1.5);
                assert_eq!(next, NextUpdate::Live);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_stream_event("quote", "{not json").is_none());
        assert!(decode_stream_event("ping", data).is_none());
    }
}
