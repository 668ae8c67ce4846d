//! Server-wide counters: open connections per app and events delivered.
//!
//! Plain atomics: every connection bumps them, nobody waits on them.

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
}

/// Counters shared by the whole server.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    open: [AtomicI64; 5],
    events: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            open: Default::default(),
            events: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Counts a connection as open until the guard drops.
    pub fn connect(self: &std::sync::Arc<Self>, app: App) -> ConnGuard {
        self.open[app as usize].fetch_add(1, Ordering::Relaxed);
        ConnGuard {
            stats: self.clone(),
            app,
        }
    }

    /// Counts `n` messages delivered to clients.
    pub fn delivered(&self, n: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    pub fn open(&self, app: App) -> i64 {
        self.open[app as usize].load(Ordering::Relaxed)
    }

    pub fn events_total(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// Decrements its app's open-connection count when dropped.
#[derive(Debug)]
pub struct ConnGuard {
    stats: std::sync::Arc<Stats>,
    app: App,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.open[self.app as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
}
