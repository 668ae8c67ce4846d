//! The accept loop: every connection is hyper's, except that a `GET` of a
//! long-lived event stream (`/login`, …) is answered through the same router
//! but written by [`lean`], so thousands of idle streams cost a few KiB each.

mod lean;
mod rewind;
mod sink;
pub(crate) mod sniff;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use sink::{Event, SinkError, SinkOffer, SinkTaken, StreamSink};

/// Paths whose `GET` answers are event streams.
pub const STREAM_PATHS: &[&str] = &["/login", "/ticker/stream", "/stats"];
/// A stream request's head larger than this goes through hyper (it works
/// the same, it just holds hyper's buffers).
pub const LEAN_HEAD_LIMIT: usize = 8 * 1024;
/// After an accept error that is not the peer's (out of descriptors), wait
/// this long before accepting again rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// An event-stream response around `body`, with the headers every stream
/// sends: no caching, and no buffering by a reverse proxy (nginx) either.
/// The lean writer recognises a stream by this content type.
pub fn sse_response(body: axum::body::Body) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut res = axum::response::Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request head.
    pub header_timeout: Duration,
    /// How long a lean stream's socket may stay full before it is dropped.
    pub stream_stall: Duration,
}

/// Accepts until `shutdown`, spawning each connection on `conns`. Hyper's
/// connections finish their request in flight and close when `shutdown`
/// fires; lean streams end their body and close on the same token.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    conns: TaskTracker,
    limits: Limits,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) if is_peer_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Small frames must not wait for delayed ACKs (Nagle is on by default).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        conns.spawn(connection(tcp, router.clone(), shutdown.clone(), limits));
    }
}

fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection: the first request decides the way. Each phase is its own
/// boxed future, so a long-lived stream's task holds only what waiting on
/// its socket needs, not room for the router's or hyper's state.
async fn connection(
    mut tcp: TcpStream,
    router: Router,
    shutdown: CancellationToken,
    limits: Limits,
) {
    let sniffed = Box::pin(async {
        tokio::select! {
            r = tokio::time::timeout(
                limits.header_timeout,
                sniff::sniff(&mut tcp, STREAM_PATHS, LEAN_HEAD_LIMIT),
            ) => Some(r),
            () = shutdown.cancelled() => None,
        }
    })
    .await;
    let prefix = match sniffed {
        None => return,
        Some(Ok(Ok(sniff::Sniffed::Stream(req, rest)))) => {
            match lean_stream(tcp, req, &router, &shutdown, limits).await {
                Some(tcp_back) => {
                    tcp = tcp_back;
                    rest
                }
                None => return,
            }
        }
        Some(Ok(Ok(sniff::Sniffed::Other(prefix)))) => prefix,
        Some(Ok(Ok(sniff::Sniffed::Closed))) => return,
        Some(Ok(Err(e))) => {
            tracing::debug!(error = %e, "connection failed before its first request");
            return;
        }
        Some(Err(_elapsed)) => {
            tracing::debug!("no request head within the header timeout; closing");
            return;
        }
    };
    Box::pin(with_hyper(prefix, tcp, router, &shutdown, limits)).await;
}

/// Answers a stream request and writes the stream until it ends. Returns
/// the connection when the answer was not a stream and hyper may go on
/// with it.
async fn lean_stream(
    tcp: TcpStream,
    mut req: Box<axum::http::Request<()>>,
    router: &Router,
    shutdown: &CancellationToken,
    limits: Limits,
) -> Option<TcpStream> {
    let tcp = Arc::new(tcp);
    let chunked = req.version() == axum::http::Version::HTTP_11;
    let sink = StreamSink::new(tcp.clone(), chunked);
    req.extensions_mut().insert(SinkOffer(sink.clone()));
    let answered = Box::pin(lean::respond(
        &tcp,
        req,
        router.clone(),
        shutdown,
        limits.stream_stall,
    ))
    .await;
    let ended = match answered {
        Ok(lean::Outcome::KeepAlive) => {
            sink.close();
            drop(sink);
            // The handler may still hold the sink if it took it and then
            // answered otherwise; then the connection just closes.
            return Arc::try_unwrap(tcp).ok();
        }
        Ok(lean::Outcome::Done) => return None,
        Err(e) => Err(e),
        Ok(lean::Outcome::Stream {
            body,
            chunked,
            sink_taken: false,
        }) => lean::stream(&tcp, body, chunked, true, shutdown, limits.stream_stall).await,
        Ok(lean::Outcome::Stream {
            body,
            chunked,
            sink_taken: true,
        }) => match lean::stream(&tcp, body, chunked, false, shutdown, limits.stream_stall).await {
            Ok(()) => {
                sink.open();
                sink.run(&tcp, shutdown, limits.stream_stall).await
            }
            Err(e) => Err(e),
        },
    };
    sink.close();
    if let Err(e) = ended {
        tracing::debug!(error = %e, "event stream ended");
    }
    None
}

async fn with_hyper(
    prefix: Bytes,
    tcp: TcpStream,
    router: Router,
    shutdown: &CancellationToken,
    limits: Limits,
) {
    let io = TokioIo::new(rewind::Rewind::new(prefix, tcp));
    let service = TowerToHyperService::new(router);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        }
        () = shutdown.cancelled() => {
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        }
    }
}
