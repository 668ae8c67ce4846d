//! Exponential reconnect delay shared by the network clients.

use std::time::Duration;

/// First delay after a failure.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The delay stops doubling here.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Doubles from [`INITIAL_DELAY`] up to [`MAX_DELAY`]; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
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
        self.next = INITIAL_DELAY;
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
}
