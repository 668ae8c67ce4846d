//! The ticker network client (`rt_tui::net::ticker`) against a real server:
//! polling on `callIn`, the SSE stream, watchlist changes and reconnecting
//! after the server was unreachable.

mod support;

use std::time::Duration;

use rt_protocol::ticker::Symbol;
use rt_tui::net::ticker::{
    NextUpdate, TickerClient, TickerClientConfig, TickerEvent, TickerTransport,
};
use rt_tui::net::{ConnState, NetEvent};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

fn sym(s: &str) -> Symbol {
    Symbol::parse(s).unwrap()
}

fn client(
    url: &str,
    transport: TickerTransport,
    list: &[&str],
) -> (TickerClient, mpsc::Receiver<NetEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let c = TickerClient::spawn(
        TickerClientConfig {
            base_url: url.to_string().into(),
            transport,
        },
        list.iter().map(|s| sym(s)).collect(),
        tx,
    );
    (c, rx)
}

/// Receives until `pred` matches; returns everything received up to it.
async fn until(
    rx: &mut mpsc::Receiver<NetEvent>,
    what: &str,
    mut pred: impl FnMut(&NetEvent) -> bool,
) -> Vec<NetEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                let done = pred(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("client stopped before {what}: {seen:#?}"),
            Err(_) => panic!("timed out waiting for {what}: {seen:#?}"),
        }
    }
}

fn quote_symbol(ev: &NetEvent) -> Option<&str> {
    match ev {
        NetEvent::Ticker(TickerEvent::Quote { symbol, .. }) => Some(symbol.as_str()),
        _ => None,
    }
}

/// Waits until quotes for every symbol in `want` arrived.
async fn quotes_for(rx: &mut mpsc::Receiver<NetEvent>, want: &[&str]) -> Vec<NetEvent> {
    let mut missing: Vec<&str> = want.to_vec();
    until(rx, &format!("quotes for {want:?}"), |ev| {
        if let Some(s) = quote_symbol(ev) {
            missing.retain(|m| *m != s);
        }
        missing.is_empty()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_reports_state_schedules_by_call_in_and_follows_the_watchlist() {
    let server = support::rt_server(400).await;
    let (c, mut rx) = client(&server.url(), TickerTransport::Poll, &["IBM", "AAPL"]);
    let seen = quotes_for(&mut rx, &["IBM", "AAPL"]).await;
    assert_eq!(
        seen[0],
        NetEvent::State(rt_tui::net::Transport::Ticker, ConnState::Connecting)
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, NetEvent::State(_, ConnState::Connected)))
    );
    for ev in &seen {
        if let NetEvent::Ticker(TickerEvent::Quote { at, next, .. }) = ev {
            assert_eq!(*next, NextUpdate::At(*at + Duration::from_millis(400)));
        }
    }
    // A second round comes after callIn.
    quotes_for(&mut rx, &["IBM", "AAPL"]).await;

    c.set_watchlist(vec![sym("MSFT")]);
    quotes_for(&mut rx, &["MSFT"]).await;
    // After the change only MSFT is polled (one IBM/AAPL answer may have
    // been in flight when it happened).
    let later = quotes_for(&mut rx, &["MSFT"]).await;
    let later = [later, quotes_for(&mut rx, &["MSFT"]).await].concat();
    assert!(
        later.iter().filter_map(quote_symbol).all(|s| s == "MSFT"),
        "{later:#?}"
    );
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_delivers_live_quotes_and_reconnects_for_a_new_watchlist() {
    let server = support::rt_server(5000).await;
    let (c, mut rx) = client(&server.url(), TickerTransport::Sse, &["IBM"]);
    let seen = quotes_for(&mut rx, &["IBM"]).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, NetEvent::State(_, ConnState::Connected)))
    );
    match seen.last().unwrap() {
        NetEvent::Ticker(TickerEvent::Quote { next, quote, .. }) => {
            assert_eq!(*next, NextUpdate::Live);
            assert_eq!(quote.symbol, "IBM");
        }
        other => panic!("{other:?}"),
    }
    c.set_watchlist(vec![sym("GOOGL"), sym("AMZN")]);
    quotes_for(&mut rx, &["GOOGL", "AMZN"]).await;
    drop(c);
    server.shutdown().await.unwrap();
}

/// The client reports the failure with a retry time, then recovers on its
/// own once a server listens at the address.
async fn recovers_after_the_server_appears(transport: TickerTransport) {
    let port = support::closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let (c, mut rx) = client(&url, transport, &["IBM"]);
    let seen = until(&mut rx, "a retry", |ev| {
        matches!(ev, NetEvent::State(_, ConnState::Retrying { .. }))
    })
    .await;
    match seen.last().unwrap() {
        NetEvent::State(_, ConnState::Retrying { error, .. }) => {
            assert!(error.starts_with(&format!("cannot reach {url}")), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let mut config = rt_server::Config::for_tests();
    config.bind.set_port(port);
    let server = rt_server::spawn(config).await.unwrap();
    let seen = quotes_for(&mut rx, &["IBM"]).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, NetEvent::State(_, ConnState::Connected)))
    );
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_recovers_after_the_server_appears() {
    recovers_after_the_server_appears(TickerTransport::Poll).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_recovers_after_the_server_appears() {
    recovers_after_the_server_appears(TickerTransport::Sse).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_watchlist_is_idle() {
    let server = support::rt_server(400).await;
    for transport in [TickerTransport::Poll, TickerTransport::Sse] {
        let (c, mut rx) = client(&server.url(), transport, &[]);
        until(&mut rx, "idle", |ev| {
            matches!(ev, NetEvent::State(_, ConnState::Idle))
        })
        .await;
        c.set_watchlist(vec![sym("IBM")]);
        quotes_for(&mut rx, &["IBM"]).await;
    }
    server.shutdown().await.unwrap();
}
