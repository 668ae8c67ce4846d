//! Socket.IO handlers: check each event where it arrives, then queue it for
//! the canvas task.
//!
//! The closures are plain (not `async`): their body runs in the socket's
//! receive path, in arrival order, before socketioxide spawns the (empty)
//! future. That keeps each client's events in order on the way to the
//! canvas task.

use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rt_protocol::draw::{DrawError, event, parse_hello, parse_mousemove};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{Event, SocketRef, TryData};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{Command, DrawConfig};

/// Registers the default namespace.
pub fn register(io: &SocketIo, config: &DrawConfig, commands: mpsc::Sender<Command>) {
    let config = config.clone();
    io.ns("/", move |socket: SocketRef| -> Ready<()> {
        connect(socket, &config, &commands);
        ready(())
    });
}

fn connect(socket: SocketRef, config: &DrawConfig, commands: &mpsc::Sender<Command>) {
    let limiter = Arc::new(Mutex::new(RateLimiter::new(config.rate)));
    let bounds = config.bounds();

    let (tx, lim) = (commands.clone(), limiter.clone());
    socket.on(
        event::MOUSEMOVE,
        move |s: SocketRef, TryData(arg): TryData<Value>| -> Ready<()> {
            if admit(&s, &lim, event::MOUSEMOVE) {
                let parsed = match arg {
                    Ok(arg) => parse_mousemove(arg, bounds),
                    Err(_) => Err(DrawError::Unreadable {
                        event: event::MOUSEMOVE,
                    }),
                };
                match parsed {
                    Ok(mv) => queue(&s, &tx, Command::Move { sid: s.id, mv }, event::MOUSEMOVE),
                    Err(e) => report(&s, &e, event::MOUSEMOVE),
                }
            }
            ready(())
        },
    );

    let (tx, lim) = (commands.clone(), limiter.clone());
    socket.on(
        event::HELLO,
        move |s: SocketRef, TryData(arg): TryData<Value>| -> Ready<()> {
            if admit(&s, &lim, event::HELLO) {
                let parsed = match arg {
                    Ok(arg) => parse_hello(arg),
                    Err(_) => Err(DrawError::Unreadable {
                        event: event::HELLO,
                    }),
                };
                match parsed {
                    Ok(hello) => queue(&s, &tx, Command::Hello { sid: s.id, hello }, event::HELLO),
                    Err(e) => report(&s, &e, event::HELLO),
                }
            }
            ready(())
        },
    );

    let (tx, lim) = (commands.clone(), limiter.clone());
    socket.on(event::CLEAR, move |s: SocketRef| -> Ready<()> {
        if admit(&s, &lim, event::CLEAR) {
            queue(&s, &tx, Command::Clear { sid: s.id }, event::CLEAR);
        }
        ready(())
    });

    let (tx, lim) = (commands.clone(), limiter.clone());
    socket.on(event::UNDO, move |s: SocketRef| -> Ready<()> {
        if admit(&s, &lim, event::UNDO) {
            queue(&s, &tx, Command::Undo { sid: s.id }, event::UNDO);
        }
        ready(())
    });

    let (tx, lim) = (commands.clone(), limiter.clone());
    socket.on(event::SYNC, move |s: SocketRef| -> Ready<()> {
        if admit(&s, &lim, event::SYNC) {
            queue(&s, &tx, Command::Sync { sid: s.id }, event::SYNC);
        }
        ready(())
    });

    let lim = limiter.clone();
    socket.on_fallback(move |s: SocketRef, Event(name): Event| -> Ready<()> {
        if admit(&s, &lim, &name) {
            report(&s, &DrawError::UnknownEvent(name.clone()), &name);
        }
        ready(())
    });

    let tx = commands.clone();
    socket.on_disconnect(move |s: SocketRef| {
        let tx = tx.clone();
        async move {
            // Leaving must not be lost: wait for room in the queue.
            let _ = tx.send(Command::Leave { sid: s.id }).await;
        }
    });

    let sid = socket.id;
    match commands.try_send(Command::Join { socket }) {
        Ok(()) => {}
        Err(TrySendError::Full(Command::Join { socket }))
        | Err(TrySendError::Closed(Command::Join { socket })) => {
            tracing::warn!(%sid, "drawing board busy; refusing a connection");
            report(&socket, &DrawError::Busy, "connect");
            let _ = socket.disconnect();
        }
        Err(_) => {}
    }
}

/// Counts the event against the sender's rate; tells them (once per
/// second) when they are over it.
fn admit(s: &SocketRef, limiter: &Mutex<RateLimiter>, name: &str) -> bool {
    crate::metrics::events_in(crate::stats::App::Draw, 1);
    let verdict = match limiter.lock() {
        Ok(mut l) => l.take(Instant::now()),
        Err(_) => Verdict::Allow,
    };
    match verdict {
        Verdict::Allow => true,
        Verdict::Drop { warn } => {
            crate::metrics::refused("draw_rate");
            if warn {
                let per_second = limiter.lock().map(|l| l.rate).unwrap_or(0);
                report(s, &DrawError::RateLimited { per_second }, name);
            }
            false
        }
    }
}

fn queue(s: &SocketRef, tx: &mpsc::Sender<Command>, cmd: Command, name: &str) {
    if let Err(TrySendError::Full(_)) = tx.try_send(cmd) {
        report(s, &DrawError::Busy, name);
    }
}

fn report(s: &SocketRef, err: &DrawError, name: &str) {
    let _ = s.emit(event::ERROR, &err.to_event(name));
}

/// A token bucket: `rate` events per second, bursts of up to `rate`.
#[derive(Debug)]
pub(super) struct RateLimiter {
    rate: u32,
    tokens: f64,
    last: Instant,
    warned_at: Option<Instant>,
}

#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    Allow,
    Drop { warn: bool },
}

impl RateLimiter {
    pub(super) fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate,
            tokens: f64::from(rate),
            last: Instant::now(),
            warned_at: None,
        }
    }

    pub(super) fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap = f64::from(self.rate);
        self.tokens = (self.tokens + elapsed * cap).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        let warn = self
            .warned_at
            .is_none_or(|t| now.saturating_duration_since(t).as_secs_f64() >= 1.0);
        if warn {
            self.warned_at = Some(now);
        }
        Verdict::Drop { warn }
    }

    /// How long until the bucket holds one event again (as of the last
    /// [`RateLimiter::take`]).
    pub(super) fn until_next(&self) -> std::time::Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        std::time::Duration::from_secs_f64(missing / f64::from(self.rate.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_limiter_allows_a_second_of_burst_then_refills() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(60);
        l.last = t0;
        for _ in 0..60 {
            assert_eq!(l.take(t0), Verdict::Allow);
        }
        assert_eq!(l.take(t0), Verdict::Drop { warn: true });
        assert_eq!(l.take(t0), Verdict::Drop { warn: false });
        // 50 ms later: three more tokens.
        let t1 = t0 + Duration::from_millis(50);
        for _ in 0..3 {
            assert_eq!(l.take(t1), Verdict::Allow);
        }
        assert_eq!(l.take(t1), Verdict::Drop { warn: false });
        let t2 = t0 + Duration::from_millis(1100);
        assert_eq!(l.take(t2), Verdict::Allow);
    }

    #[test]
    fn until_next_is_when_a_token_is_back() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20);
        l.last = t0;
        for _ in 0..20 {
            assert_eq!(l.take(t0), Verdict::Allow);
        }
        assert!(l.until_next() <= Duration::from_millis(50));
        assert!(l.until_next() >= Duration::from_millis(49));
        let later = t0 + l.until_next() + Duration::from_micros(10);
        assert_eq!(l.take(later), Verdict::Allow);
        assert!(matches!(l.take(later), Verdict::Drop { .. }));
    }

    #[test]
    fn zero_rate_refuses_everything() {
        let mut l = RateLimiter::new(0);
        assert!(matches!(l.take(Instant::now()), Verdict::Drop { .. }));
    }
}
