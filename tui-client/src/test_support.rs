//! Deterministic data for unit and snapshot tests.

use crate::app::{App, Msg, ServerInfo};
use crate::net::doc::DocEvent;
use crate::net::draw::DrawEvent;
use crate::net::qa::{QaEvent, QuestionInfo};
use crate::net::ticker::{NextUpdate, TickerEvent, TickerTransport};
use crate::net::{ConnState, NetEvent, Transport};
use crate::panes::Pane;
use crate::panes::canvas::CanvasPane;
use crate::panes::qa::QaPane;
use crate::panes::text::TextPane;
use crate::panes::ticker::TickerPane;
use crate::ui::theme::Theme;
use rt_protocol::draw::Peer;
use rt_protocol::qa::QuestionMeta;
use rt_protocol::sharedb::RICH_TEXT_URI;
use rt_protocol::ticker::Quote;
use rt_protocol::ticker::Symbol;
use serde_json::json;
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

/// A question for the Q&A board.
pub fn question(text: &str, author: &str, time: u64, votes: u32, answers: u32) -> QuestionInfo {
    QuestionInfo {
        text: text.into(),
        meta: QuestionMeta {
            author: author.into(),
            time,
            votes,
            answers,
        },
    }
}

/// The Q&A board [`feed_everything`] starts with.
pub fn board() -> Vec<QuestionInfo> {
    vec![
        question("Why is the sky blue?", "user-1a2b3c4d", 1000, 3, 2),
        question("How do SSE reconnects work?", "user-5e6f7a8b", 2000, 5, 0),
    ]
}

fn peer(id: &str, name: &str, colour: &str) -> Peer {
    Peer {
        id: id.into(),
        name: name.into(),
        colour: colour.into(),
        author: format!("a-{id}"),
    }
}

/// Feeds every pane: the market of [`feed_market`], a Q&A board of two
/// questions, a drawing board with two people and one stroke of Ann's, and
/// a document. All four transports are connected.
pub fn feed_everything(app: &mut App, t0: Instant) {
    feed_market(app, t0);
    let net = |app: &mut App, ev: NetEvent| {
        app.update(Msg::Net(ev));
    };
    for t in TRANSPORTS {
        net(app, NetEvent::State(t, ConnState::Connected));
    }
    net(app, NetEvent::Qa(QaEvent::Login { user: "u1".into() }));
    net(app, NetEvent::Qa(QaEvent::Questions(board())));
    net(
        app,
        NetEvent::Draw(DrawEvent::Connected { id: "me".into() }),
    );
    let me = peer("me", "guest-1", "#e6194b");
    let peers = vec![me.clone(), peer("ann", "Ann", "#3cb44b")];
    net(app, NetEvent::Draw(DrawEvent::Peers(peers)));
    net(app, NetEvent::Draw(DrawEvent::Welcome(me)));
    for (x, y, drawing) in [
        (400.0, 300.0, false),
        (1200.0, 500.0, true),
        (1600.0, 800.0, true),
    ] {
        let id = "ann".into();
        net(app, NetEvent::Draw(DrawEvent::Moving { id, x, y, drawing }));
    }
    net(app, NetEvent::Doc(DocEvent::Open));
    net(
        app,
        NetEvent::Doc(DocEvent::Message(json!({"a": "hs", "id": "me"}))),
    );
    net(
        app,
        NetEvent::Doc(DocEvent::Message(
            json!({"a": "s", "c": "examples", "d": "richtext",
            "data": {"v": 4, "type": RICH_TEXT_URI, "data": {"ops": [
                {"insert": "Shared notes"}, {"insert": "\n"},
                {"insert": "Everyone types here at once."}, {"insert": "\n"}]}}}),
        )),
    );
}

/// News for the panes not in view: AAPL rises, MSFT falls, a question is
/// asked.
pub fn feed_news(app: &mut App, t0: Instant) {
    let s = |n: u64| t0 + Duration::from_secs(n);
    for (symbol, price, change) in [("AAPL", 192.0, 2.5), ("MSFT", 410.0, -10.0)] {
        let ev = TickerEvent::Quote {
            symbol: sym(symbol),
            quote: quote(symbol, price, change),
            at: s(7),
            next: NextUpdate::At(s(12)),
        };
        app.update(Msg::Net(NetEvent::Ticker(ev)));
    }
    let mut list = board();
    list.push(question(
        "Does the tab bar count this?",
        "user-9",
        3000,
        0,
        0,
    ));
    app.update(Msg::Net(NetEvent::Qa(QaEvent::Questions(list))));
}
