//! Server-wide counters: open connections per app and transport, and
//! messages delivered per app.
//!
//! The one place these are counted: `/stats` and `/metrics` both read them.
//! Plain atomics: every connection bumps them, nobody waits on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// The apps (and streams) whose connections are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Ticker,
    Draw,
    Qa,
    Editor,
    Stats,
}

/// How a client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A plain request answered at once (the ticker's `GET /?symbol=`),
    /// counted while it is being answered.
    Poll,
    /// A server-sent event stream.
    Sse,
    /// A WebSocket (the editor's, or Socket.IO's after its upgrade).
    Websocket,
    /// Socket.IO's HTTP long-polling.
    Polling,
}

const APPS: usize = App::ALL.len();
const TRANSPORTS: usize = 4;

impl App {
    pub const ALL: [App; 5] = [App::Ticker, App::Draw, App::Qa, App::Editor, App::Stats];

    pub fn name(self) -> &'static str {
        match self {
            App::Ticker => "ticker",
            App::Draw => "draw",
            App::Qa => "qa",
            App::Editor => "editor",
            App::Stats => "stats",
        }
    }

    /// The transports this app's clients use; the first is the one
    /// [`Stats::connect`] counts.
    pub fn transports(self) -> &'static [Transport] {
        match self {
            App::Ticker => &[Transport::Sse, Transport::Poll],
            // Socket.IO: one count, split by transport at scrape time
            // (clients upgrade after connecting).
            App::Draw => &[Transport::Websocket, Transport::Polling],
            App::Qa | App::Stats => &[Transport::Sse],
            App::Editor => &[Transport::Websocket],
        }
    }
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Poll => "poll",
            Transport::Sse => "sse",
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

/// Counters shared by the whole server.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    open: [[AtomicI64; TRANSPORTS]; APPS],
    delivered: [AtomicU64; APPS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            open: Default::default(),
            delivered: Default::default(),
        }
    }
}

impl Stats {
    /// Counts a connection over the app's main transport as open until the
    /// guard drops.
    pub fn connect(self: &Arc<Self>, app: App) -> ConnGuard {
        self.connect_via(app, app.transports()[0])
    }

    /// Counts a connection over `transport` as open until the guard drops.
    pub fn connect_via(self: &Arc<Self>, app: App, transport: Transport) -> ConnGuard {
        self.open[app as usize][transport as usize].fetch_add(1, Ordering::Relaxed);
        ConnGuard {
            stats: self.clone(),
            app,
            transport,
        }
    }

    /// Counts `n` messages delivered to clients of `app`.
    pub fn delivered(&self, app: App, n: u64) {
        self.delivered[app as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Open connections of `app`, over every transport.
    pub fn open(&self, app: App) -> i64 {
        self.open[app as usize]
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Open connections of `app` over `transport`.
    pub fn open_via(&self, app: App, transport: Transport) -> i64 {
        self.open[app as usize][transport as usize].load(Ordering::Relaxed)
    }

    /// Messages delivered to clients of `app` since start.
    pub fn delivered_by(&self, app: App) -> u64 {
        self.delivered[app as usize].load(Ordering::Relaxed)
    }

    /// Messages delivered to clients of every app since start.
    pub fn events_total(&self) -> u64 {
        App::ALL.iter().map(|&a| self.delivered_by(a)).sum()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// Decrements its app's open-connection count when dropped.
#[derive(Debug)]
pub struct ConnGuard {
    stats: Arc<Stats>,
    app: App,
    transport: Transport,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.open[self.app as usize][self.transport as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_open_connections() {
        let s = Arc::new(Stats::default());
        let a = s.connect(App::Qa);
        let b = s.connect(App::Qa);
        assert_eq!(s.open(App::Qa), 2);
        drop(a);
        assert_eq!(s.open(App::Qa), 1);
        drop(b);
        assert_eq!(s.open(App::Qa), 0);
        assert_eq!(s.open(App::Draw), 0);
    }

    #[test]
    fn transports_add_up_to_the_app() {
        let s = Arc::new(Stats::default());
        let stream = s.connect(App::Ticker);
        let poll = s.connect_via(App::Ticker, Transport::Poll);
        assert_eq!(s.open_via(App::Ticker, Transport::Sse), 1);
        assert_eq!(s.open_via(App::Ticker, Transport::Poll), 1);
        assert_eq!(s.open(App::Ticker), 2);
        drop(poll);
        assert_eq!(s.open_via(App::Ticker, Transport::Poll), 0);
        drop(stream);
        assert_eq!(s.open(App::Ticker), 0);
    }

    #[test]
    fn deliveries_are_kept_per_app() {
        let s = Stats::default();
        s.delivered(App::Draw, 3);
        s.delivered(App::Qa, 2);
        assert_eq!(s.delivered_by(App::Draw), 3);
        assert_eq!(s.delivered_by(App::Editor), 0);
        assert_eq!(s.events_total(), 5);
    }
}
