//! Keep-alive idle time: a hyper connection counts its requests in flight
//! (a request is in flight until its response body is done or dropped, so
//! an event stream always is), and one with none for `--keep-alive-idle-ms`
//! is closed gracefully.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// One connection's requests in flight.
#[derive(Debug, Default)]
pub struct Activity {
    busy: AtomicUsize,
    changed: Notify,
}

/// One request in flight; dropping it ends it.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity::default())
    }

    /// Marks a request in flight.
    pub fn begin(self: &Arc<Activity>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        Busy(self.clone())
    }

    /// Resolves once no request has been in flight for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the count is read, so no change is missed.
            changed.as_mut().enable();
            if self.busy.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(limit) => {
                        if self.busy.load(Ordering::Acquire) == 0 {
                            return;
                        }
                    }
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A response body that keeps its request in flight until it is done.
pub struct Tracked<B> {
    body: B,
    busy: Option<Busy>,
}

impl<B> Tracked<B> {
    pub fn new(body: B, busy: Busy) -> Self {
        Tracked {
            body,
            busy: Some(busy),
        }
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_starts_when_the_last_request_ends() {
        let activity = Activity::new();
        let busy = activity.begin();
        let idle = {
            let activity = activity.clone();
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                activity.idle_for(Duration::from_secs(10)).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!idle.is_finished(), "not idle while a request is in flight");
        drop(busy);
        let took = idle.await.unwrap();
        assert!(
            took >= Duration::from_secs(40) && took < Duration::from_secs(41),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_within_the_window_restarts_it() {
        let activity = Activity::new();
        let idle = {
            let activity = activity.clone();
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                activity.idle_for(Duration::from_secs(10)).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(6)).await;
        drop(activity.begin());
        let took = idle.await.unwrap();
        assert!(
            took >= Duration::from_secs(16) && took < Duration::from_secs(17),
            "{took:?}"
        );
    }
}
