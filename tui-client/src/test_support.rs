//! Deterministic data for unit and snapshot tests.

use crate::app::{App, Msg, ServerInfo};
use crate::net::ticker::{NextUpdate, TickerEvent, TickerTransport};
use crate::net::{ConnState, NetEvent, Transport};
use crate::panes::Pane;
use crate::panes::canvas::CanvasPane;
use crate::panes::qa::QaPane;
use crate::panes::text::TextPane;
use crate::panes::ticker::TickerPane;
use crate::ui::theme::Theme;
use rt_protocol::ticker::Quote;
use rt_protocol::ticker::Symbol;
use std::time::{Duration, Instant};

/// A quote for `symbol` at `price`, `change` from the previous close.
pub fn quote(symbol: &str, price: f64, change: f64) -> Quote {
    let previous_close = price - change;
    Quote {
        symbol: symbol.to_string(),
        company_name: format!("{symbol} Inc."),
        latest_price: price,
        change,
        change_percent: change / previous_close,
        open: previous_close,
        high: price.max(previous_close),
        low: price.min(previous_close),
        previous_close,
        volume: 1_000_000,
        latest_update: 1_700_000_000_000,
        extra: Default::default(),
    }
}

pub fn sym(s: &str) -> Symbol {
    Symbol::parse(s).expect("valid test symbol")
}

/// The four panes `rt-tui connect` shows, before any data arrived, the
/// ticker following `watch`.
pub fn panes(watch: Vec<Symbol>) -> Vec<Box<dyn Pane>> {
    // The default name comes from $USER; tests must not depend on it.
    let text = TextPane::new("examples", "richtext").with_name("tester (tui)");
    vec![
        Box::new(TickerPane::new(watch, TickerTransport::Poll)),
        Box::new(CanvasPane::new()),
        Box::new(QaPane::new()),
        Box::new(text),
    ]
}

/// The transports `rt-tui connect` shows in its status bar.
pub const TRANSPORTS: [Transport; 4] = [
    Transport::Ticker,
    Transport::Draw,
    Transport::Qa,
    Transport::Doc,
];

/// An app as `rt-tui connect` builds it, with a fixed watchlist, sized
/// `w`×`h`, created at `t0`.
pub fn app(theme: Theme, w: u16, h: u16, t0: Instant) -> App {
    let watch = ["AAPL", "MSFT", "IBM", "GOOGL", "AMZN"].map(sym).to_vec();
    let mut app = App::new(
        ServerInfo {
            url: "http://127.0.0.1:8080".into(),
            embedded: false,
        },
        panes(watch),
        &TRANSPORTS,
        theme,
        t0,
    );
    app.update(Msg::Resize(w, h));
    app
}

/// Feeds a fixed market into `app`: a rising AAPL, a falling MSFT that the
/// server stopped, an error for IBM, flat GOOGL; AMZN has no answer yet.
/// Afterwards the app's clock is `t0 + 7s`.
pub fn feed_market(app: &mut App, t0: Instant) {
    let s = |n: u64| t0 + Duration::from_secs(n);
    app.update(Msg::Net(NetEvent::State(
        Transport::Ticker,
        ConnState::Connected,
    )));
    let aapl = [190.0, 190.4, 190.2, 190.9, 191.3, 191.1];
    for (i, p) in aapl.iter().enumerate() {
        let next = NextUpdate::At(s(i as u64 + 5));
        let ev = TickerEvent::Quote {
            symbol: sym("AAPL"),
            quote: quote("AAPL", *p, p - 189.5),
            at: s(i as u64),
            next,
        };
        app.update(Msg::Net(NetEvent::Ticker(ev)));
    }
    for (i, p) in [415.0, 414.2, 413.9].iter().enumerate() {
        let next = if i == 2 {
            NextUpdate::Stopped
        } else {
            NextUpdate::At(s(i as u64 + 5))
        };
        let ev = TickerEvent::Quote {
            symbol: sym("MSFT"),
            quote: quote("MSFT", *p, p - 420.0),
            at: s(i as u64),
            next,
        };
        app.update(Msg::Net(NetEvent::Ticker(ev)));
    }
    app.update(Msg::Net(NetEvent::Ticker(TickerEvent::Error {
        symbol: sym("IBM"),
        error: "Received empty data set".into(),
        at: s(5),
        next: NextUpdate::At(s(15)),
    })));
    for i in 0..3 {
        let ev = TickerEvent::Quote {
            symbol: sym("GOOGL"),
            quote: quote("GOOGL", 170.0, 0.0),
            at: s(i),
            next: NextUpdate::At(s(i + 5)),
        };
        app.update(Msg::Net(NetEvent::Ticker(ev)));
    }
    app.update(Msg::Tick(s(7)));
}
