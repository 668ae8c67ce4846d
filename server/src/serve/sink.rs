//! A lean event stream's socket, handed to the task that produces its
//! events, which writes each event straight to it: no queue, no wake-up of
//! the stream's own task, one `write` per event. The stream's task only
//! waits: for the peer to leave, for shutdown, or to flush the rare backlog
//! of a socket that was full.
//!
//! The router's handler finds a [`SinkOffer`] in a lean request's
//! extensions; if it takes it, it marks its response with [`SinkTaken`],
//! and the lean writer sends the response's (finite) body first and then
//! [`StreamSink::open`]s the sink. Events sent before that wait in order.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::lean::{chunk_size_line, peer_left, write_now};

/// In a lean stream request's extensions: the connection's sink.
#[derive(Clone)]
pub struct SinkOffer(pub Arc<StreamSink>);

/// In a response's extensions: the handler took the offered sink, so the
/// stream continues through it once the body has been sent.
#[derive(Clone, Copy, Debug)]
pub struct SinkTaken;

/// Why an event was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("the stream is closed")]
    Closed,
    /// The backlog reached its limit: the stream is closed, the client
    /// reconnects and catches up.
    #[error("the stream fell behind and was cut")]
    Full,
}

/// One stream's socket and its backlog.
pub struct StreamSink {
    chunked: bool,
    /// Events waiting at most (while the socket is full, or before open).
    limit: AtomicUsize,
    state: Mutex<State>,
    wake: Notify,
}

struct State {
    /// Let go when the stream closes, so the socket closes with the
    /// stream's task even while the producer still holds the sink.
    tcp: Option<Arc<TcpStream>>,
    open: bool,
    closed: bool,
    /// Framed bytes not yet written, in order.
    backlog: VecDeque<Bytes>,
    /// Whatever the producer wants kept for as long as the stream is open
    /// (its open-connection count).
    keep: Option<Box<dyn Any + Send>>,
}

impl StreamSink {
    pub(super) fn new(tcp: Arc<TcpStream>, chunked: bool) -> Arc<StreamSink> {
        Arc::new(StreamSink {
            chunked,
            limit: AtomicUsize::new(usize::MAX),
            state: Mutex::new(State {
                tcp: Some(tcp),
                open: false,
                closed: false,
                backlog: VecDeque::new(),
                keep: None,
            }),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// At most `limit` events wait in the backlog; one more cuts the stream.
    /// Set by the producer when it takes the sink.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Keeps `value` until the stream closes (for the producer's counters).
    pub fn keep_until_closed(&self, value: Box<dyn Any + Send>) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        s.keep = Some(value);
    }

    /// Whether the stream has closed: the producer forgets it.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sends one event. Written at once when the socket has room and
    /// nothing waits before it; queued otherwise (the same bytes, no copy).
    pub fn send(&self, event: &Event) -> Result<(), SinkError> {
        if event.raw.is_empty() {
            // Nothing to send, and an empty chunk would end the body.
            return Ok(());
        }
        let bytes = if self.chunked {
            &event.chunked
        } else {
            &event.raw
        };
        let mut s = self.lock();
        if s.closed {
            return Err(SinkError::Closed);
        }
        if s.open
            && s.backlog.is_empty()
            && let Some(tcp) = &s.tcp
        {
            return match tcp.try_write(bytes) {
                Ok(n) if n == bytes.len() => Ok(()),
                Ok(n) => {
                    s.backlog.push_back(bytes.slice(n..));
                    self.wake.notify_one();
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    s.backlog.push_back(bytes.clone());
                    self.wake.notify_one();
                    Ok(())
                }
                Err(_) => {
                    close(&mut s);
                    self.wake.notify_one();
                    Err(SinkError::Closed)
                }
            };
        }
        if s.backlog.len() >= self.limit.load(Ordering::Relaxed) {
            close(&mut s);
            self.wake.notify_one();
            return Err(SinkError::Full);
        }
        s.backlog.push_back(bytes.clone());
        if s.open {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Starts writing: the response's head and body are out.
    pub(super) fn open(&self) {
        self.lock().open = true;
        self.wake.notify_one();
    }

    /// Marks the stream closed (its task ends); the producer learns it at
    /// its next send.
    pub(super) fn close(&self) {
        close(&mut self.lock());
    }

    /// The stream's task after the body: flushes the backlog, watches the
    /// peer, ends the response at shutdown.
    pub(super) async fn run(
        &self,
        tcp: &TcpStream,
        shutdown: &CancellationToken,
        stall: Duration,
    ) -> io::Result<()> {
        let result = self.serve(tcp, shutdown, stall).await;
        self.close();
        result
    }

    async fn serve(
        &self,
        tcp: &TcpStream,
        shutdown: &CancellationToken,
        stall: Duration,
    ) -> io::Result<()> {
        loop {
            let waiting = self.flush()?;
            if self.is_closed() {
                return Ok(());
            }
            tokio::select! {
                () = self.wake.notified() => {}
                r = tcp.writable(), if waiting => r?,
                () = tokio::time::sleep(stall), if waiting => {
                    crate::metrics::refused("stream_stall_ms");
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"));
                }
                r = tcp.readable() => {
                    r?;
                    if peer_left(tcp)? {
                        return Ok(());
                    }
                }
                () = shutdown.cancelled() => {
                    let mut s = self.lock();
                    if self.chunked && s.backlog.is_empty() && !s.closed {
                        // Best effort: the end of the body, if it fits now.
                        let _ = tcp.try_write(b"0\r\n\r\n");
                    }
                    close(&mut s);
                    return Ok(());
                }
            }
        }
    }

    /// Writes what the socket takes of the backlog; returns whether some is
    /// left (the socket is full).
    fn flush(&self) -> io::Result<bool> {
        let mut s = self.lock();
        let State { tcp, backlog, .. } = &mut *s;
        let Some(tcp) = tcp else { return Ok(false) };
        while let Some(front) = backlog.front_mut() {
            match tcp.try_write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n == front.len() => {
                    backlog.pop_front();
                }
                Ok(n) => {
                    let _ = front.split_to(n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

fn close(s: &mut State) {
    s.closed = true;
    s.tcp = None;
    s.backlog = VecDeque::new();
    s.keep = None;
}

/// One event for many sinks: framed as a chunk once, for all of them.
#[derive(Debug, Clone)]
pub struct Event {
    raw: Bytes,
    chunked: Bytes,
}

impl Event {
    /// `frame` is one SSE frame (or several), not empty.
    pub fn new(frame: &Bytes) -> Event {
        Event {
            raw: frame.clone(),
            chunked: as_chunk(frame),
        }
    }
}

/// `frame` as one chunk of a chunked body.
fn as_chunk(frame: &Bytes) -> Bytes {
    let mut size = [0u8; 18];
    let n = chunk_size_line(frame.len(), &mut size);
    let mut out = Vec::with_capacity(n + frame.len() + 2);
    out.extend_from_slice(&size[..n]);
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Writes `data` as one chunk, as far as the socket takes it now; returns
/// what did not fit.
pub(super) fn write_chunk_now(
    io: &TcpStream,
    data: &[u8],
    chunked: bool,
) -> io::Result<Option<Vec<u8>>> {
    if data.is_empty() {
        // An empty chunk would end the body.
        return Ok(None);
    }
    if !chunked {
        return write_now(io, &mut [IoSlice::new(data)]);
    }
    let mut size = [0u8; 18];
    let size_len = chunk_size_line(data.len(), &mut size);
    write_now(
        io,
        &mut [
            IoSlice::new(&size[..size_len]),
            IoSlice::new(data),
            IoSlice::new(b"\r\n"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A sink on one end of a loopback connection, and the other end.
    async fn pair(chunked: bool) -> (Arc<StreamSink>, Arc<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let server = Arc::new(server);
        (StreamSink::new(server.clone(), chunked), server, client)
    }

    async fn read_exactly(client: &mut TcpStream, n: usize) -> String {
        let mut buf = vec![0u8; n];
        client.read_exact(&mut buf).await.unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn event(s: &'static str) -> Event {
        Event::new(&Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn events_before_open_wait_and_keep_their_order() {
        let (sink, _server, mut client) = pair(true).await;
        sink.send(&event("data: a\n\n")).unwrap();
        sink.send(&event("data: bc\n\n")).unwrap();
        sink.open();
        assert!(!sink.flush().unwrap(), "all written");
        sink.send(&event("data: d\n\n")).unwrap();
        let want = "9\r\ndata: a\n\n\r\na\r\ndata: bc\n\n\r\n9\r\ndata: d\n\n\r\n";
        assert_eq!(read_exactly(&mut client, want.len()).await, want);
    }

    #[tokio::test]
    async fn without_chunking_events_go_as_they_are() {
        let (sink, _server, mut client) = pair(false).await;
        sink.open();
        sink.send(&event("data: x\n\n")).unwrap();
        sink.send(&event("")).unwrap();
        sink.send(&event("data: y\n\n")).unwrap();
        let want = "data: x\n\ndata: y\n\n";
        assert_eq!(read_exactly(&mut client, want.len()).await, want);
    }

    #[tokio::test]
    async fn a_backlog_at_its_limit_cuts_the_stream_and_lets_the_socket_go() {
        let (sink, server, _client) = pair(true).await;
        sink.set_limit(2);
        sink.keep_until_closed(Box::new(()));
        sink.send(&event("data: 1\n\n")).unwrap();
        sink.send(&event("data: 2\n\n")).unwrap();
        assert_eq!(sink.send(&event("data: 3\n\n")), Err(SinkError::Full));
        assert!(sink.is_closed());
        assert_eq!(sink.send(&event("data: 4\n\n")), Err(SinkError::Closed));
        // The sink no longer holds the socket: only the test's handle does.
        assert_eq!(Arc::strong_count(&server), 1);
        assert!(sink.lock().keep.is_none());
    }

    #[tokio::test]
    async fn a_full_socket_keeps_the_rest_for_the_streams_task() {
        let (sink, server, mut client) = pair(true).await;
        sink.set_limit(100_000);
        sink.open();
        // Far more than the socket buffers hold while nobody reads.
        let big = Bytes::from(vec![b'x'; 64 * 1024]);
        let ev = Event::new(&big);
        let mut sent = 0;
        while sink.lock().backlog.is_empty() {
            sink.send(&ev).unwrap();
            sent += 1;
            assert!(sent < 10_000, "the socket never filled");
        }
        sink.send(&ev).unwrap();
        sent += 1;
        let shutdown = CancellationToken::new();
        let task = {
            let sink = sink.clone();
            let server = server.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { sink.run(&server, &shutdown, Duration::from_secs(30)).await })
        };
        let per_event = ev.chunked.len();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while got < sent * per_event {
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got += n;
        }
        assert_eq!(got, sent * per_event, "every byte, once");
        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert!(sink.is_closed());
        // The stream's task and the sink have let go; the socket closes with
        // the last handle.
        drop(server);
        let mut end = Vec::new();
        client.read_to_end(&mut end).await.unwrap();
        assert_eq!(end, b"0\r\n\r\n", "the body ends at shutdown");
    }
}
