//! Network clients. Each is a task that owns its connection, reconnects with
//! backoff and reports what it receives, and its connection state, to the UI
//! over a bounded channel. The UI never awaits the network.

pub mod backoff;
pub mod doc;
pub mod draw;
pub mod endpoint;
pub mod http;
pub mod qa;
pub mod ticker;

use std::time::Instant;

pub use endpoint::Endpoint;

/// Capacity of the channel from the network tasks to the UI loop. The loop
/// drains it every iteration; a full channel makes the tasks wait, it never
/// grows.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;

/// A failed event stream (ticker or Q&A) in one line for the status bar:
/// the HTTP status, or the innermost cause of a transport error.
pub(crate) fn describe_sse(base: &str, e: &eventsource_client::Error) -> String {
    use eventsource_client::Error as E;
    match e {
        E::UnexpectedResponse(r, _) => format!("{base} answered HTTP {}", r.status()),
        E::Transport(t) => {
            let mut inner: &dyn std::error::Error = t.inner();
            while let Some(s) = inner.source() {
                inner = s;
            }
            format!("cannot reach {base}: {inner}")
        }
        E::TimedOut => format!("cannot reach {base}: timed out"),
        other => format!("stream from {base} failed: {other}"),
    }
}

/// A network connection, as named in the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Ticker quotes (HTTP polling or SSE).
    Ticker,
    /// The Q&A board's event stream.
    Qa,
    /// The collaborative document (ShareDB over a WebSocket).
    Doc,
    /// The drawing board (Socket.IO over WebSocket).
    Draw,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ticker => "ticker",
            Transport::Qa => "qa",
            Transport::Doc => "doc",
            Transport::Draw => "draw",
        }
    }
}

/// The state of one transport's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Not started, or nothing to do (for example an empty watchlist).
    Idle,
    /// First attempt under way.
    Connecting,
    /// The last exchange with the server succeeded.
    Connected,
    /// The server could not be reached; the next attempt is at `at`.
    Retrying { at: Instant, error: String },
}

/// Everything a network task tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A transport's connection state changed.
    State(Transport, ConnState),
    /// Ticker data.
    Ticker(ticker::TickerEvent),
    /// Q&A board data.
    Qa(qa::QaEvent),
    /// The document's socket.
    Doc(doc::DocEvent),
    /// Drawing board events.
    Draw(draw::DrawEvent),
}
