//! A stream subscriber's mailbox: the latest unsent event per symbol.
//!
//! Quotes are state, not a log: when a subscriber falls behind, a newer quote
//! for a symbol replaces the unsent older one, so the owner never waits on a
//! slow stream, memory stays at one event per subscribed symbol, and the last
//! value of every symbol is always delivered.

use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

/// One pending event: its id and its encoded bytes (shared with every other
/// subscriber of the symbol).
type Pending = (u64, Bytes);

/// Written by the ticker's owner, drained by one SSE stream.
#[derive(Debug)]
pub struct Mailbox {
    // A plain mutex: both sides hold it only to swap a few slots, never
    // across an await.
    slots: Mutex<Vec<Option<Pending>>>,
    notify: Notify,
}

impl Mailbox {
    /// A mailbox with one slot per subscribed symbol.
    pub fn new(slots: usize) -> Mailbox {
        Mailbox {
            slots: Mutex::new(vec![None; slots]),
            notify: Notify::new(),
        }
    }

    /// Stores the newest event for `slot`, replacing an unsent older one, and
    /// wakes the stream. Never blocks on the reader.
    pub fn put(&self, slot: usize, id: u64, event: Bytes) {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = slots.get_mut(slot) {
                *s = Some((id, event));
            }
        }
        self.notify.notify_one();
    }

    /// Takes every pending event, oldest id first.
    pub fn take(&self) -> Vec<Pending> {
        let mut out: Vec<Pending> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.iter_mut().filter_map(Option::take).collect()
        };
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// Resolves after the next [`Mailbox::put`] (immediately if one happened
    /// since the last wait).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_reader_gets_the_latest_value_of_each_slot_in_id_order() {
        let m = Mailbox::new(3);
        for id in 0..1000u64 {
            m.put((id % 2) as usize, id, Bytes::from(id.to_string()));
        }
        m.put(2, 1000, Bytes::from_static(b"last"));
        let got = m.take();
        assert_eq!(
            got,
            vec![
                (998, Bytes::from_static(b"998")),
                (999, Bytes::from_static(b"999")),
                (1000, Bytes::from_static(b"last")),
            ]
        );
        assert!(m.take().is_empty());
    }

    #[test]
    fn out_of_range_slots_are_ignored() {
        let m = Mailbox::new(1);
        m.put(5, 1, Bytes::from_static(b"x"));
        assert!(m.take().is_empty());
    }

    #[tokio::test]
    async fn a_put_before_waiting_is_not_missed() {
        let m = Mailbox::new(1);
        m.put(0, 1, Bytes::from_static(b"x"));
        tokio::time::timeout(std::time::Duration::from_secs(5), m.changed())
            .await
            .expect("the stored wake-up is seen");
        assert_eq!(m.take().len(), 1);
    }
}
