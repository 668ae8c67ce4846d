//! Exponential reconnect delay shared by the network clients.

use std::time::Duration;

/// First delay after a failure.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The shortest delay a server's announcement can set (a `retry: 0` must
/// not turn into a busy loop).
pub const MIN_DELAY: Duration = Duration::from_millis(100);
/// The delay stops doubling here.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Doubles from [`INITIAL_DELAY`] (or the server's announced delay) up to
/// [`MAX_DELAY`]; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: INITIAL_DELAY,
            next: INITIAL_DELAY,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        d
    }

    /// Back to the initial delay.
    pub fn reset(&mut self) {
        self.next = self.base;
    }

    /// Takes the reconnection delay a server announced (an SSE `retry:`) as
    /// the first delay from now on, within [`MIN_DELAY`]..=[`MAX_DELAY`].
    pub fn set_initial(&mut self, delay: Duration) {
        let delay = delay.clamp(MIN_DELAY, MAX_DELAY);
        if self.next == self.base {
            self.next = delay;
        }
        self.base = delay;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), INITIAL_DELAY);
    }

    #[test]
    fn an_announced_delay_becomes_the_first_one() {
        let mut b = Backoff::default();
        b.set_initial(Duration::from_millis(2000));
        let ms: Vec<u128> = (0..3).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [2000, 4000, 8000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(2000));
        b.set_initial(Duration::from_secs(3600));
        b.reset();
        assert_eq!(b.next_delay(), MAX_DELAY);
        b.set_initial(Duration::ZERO);
        b.reset();
        assert_eq!(b.next_delay(), MIN_DELAY);
    }
}
