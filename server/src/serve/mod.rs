//! The accept loop: every connection is hyper's, except that a `GET` of a
//! long-lived event stream (`/login`, …) is answered through the same router
//! but written by [`lean`], so thousands of idle streams cost a few KiB each.

mod lean;
mod rewind;
mod sniff;

use std::io;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use sniff::{Verdict, classify};

/// Paths whose `GET` answers are event streams.
pub const STREAM_PATHS: &[&str] = &["/login", "/ticker/stream", "/stats"];
/// A stream request's head larger than this goes through hyper (it works
/// the same, it just holds hyper's buffers).
pub const LEAN_HEAD_LIMIT: usize = 8 * 1024;
/// After an accept error that is not the peer's (out of descriptors), wait
/// this long before accepting again rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
/// fires; lean streams end with their body, which ends on the same token.
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

/// What a connection does after its first request.
enum Next {
    /// Write this event stream until it ends.
    Stream(axum::body::Body, bool),
    /// Serve it with hyper, these bytes first.
    Hyper(Bytes),
    Close,
}

/// One connection: the first request decides the way. Each phase is its own
/// boxed future, so a long-lived stream's task holds only the stream loop's
/// few hundred bytes, not room for the router's or hyper's state.
async fn connection(
    mut tcp: TcpStream,
    router: Router,
    shutdown: CancellationToken,
    limits: Limits,
) {
    let next = Box::pin(first_request(&mut tcp, &router, &shutdown, limits)).await;
    match next {
        Next::Stream(body, chunked) => {
            let ended = lean::stream(&tcp, body, chunked, &shutdown, limits.stream_stall).await;
            if let Err(e) = ended {
                tracing::debug!(error = %e, "event stream ended");
            }
        }
        Next::Hyper(prefix) => {
            Box::pin(with_hyper(prefix, tcp, router, &shutdown, limits)).await;
        }
        Next::Close => {}
    }
}

async fn first_request(
    tcp: &mut TcpStream,
    router: &Router,
    shutdown: &CancellationToken,
    limits: Limits,
) -> Next {
    let sniffed = tokio::select! {
        r = tokio::time::timeout(
            limits.header_timeout,
            sniff::sniff(tcp, STREAM_PATHS, LEAN_HEAD_LIMIT),
        ) => r,
        () = shutdown.cancelled() => return Next::Close,
    };
    match sniffed {
        Ok(Ok(sniff::Sniffed::Stream(req, rest))) => {
            match lean::respond(tcp, req, router.clone(), shutdown, limits.stream_stall).await {
                Ok(lean::Outcome::Stream { body, chunked }) => Next::Stream(body, chunked),
                Ok(lean::Outcome::KeepAlive) => Next::Hyper(rest),
                Ok(lean::Outcome::Done) => Next::Close,
                Err(e) => {
                    tracing::debug!(error = %e, "event stream request failed");
                    Next::Close
                }
            }
        }
        Ok(Ok(sniff::Sniffed::Other(prefix))) => Next::Hyper(prefix),
        Ok(Ok(sniff::Sniffed::Closed)) => Next::Close,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection failed before its first request");
            Next::Close
        }
        Err(_elapsed) => {
            tracing::debug!("no request head within the header timeout; closing");
            Next::Close
        }
    }
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
