//! The accept loop: every connection is hyper's, except that a plain-HTTP
//! `GET` of a long-lived event stream (`/login`, …) is answered through the
//! same router but written by [`lean`], so thousands of idle streams cost a
//! few KiB each.
//!
//! Over TLS every connection is hyper's: HTTP/2 when the client offers it
//! (ALPN), HTTP/1.1 otherwise. The lean writer and the stream sinks write to
//! the socket from whichever task has an event, without waiting; a TLS
//! session is one mutable state that would need a lock and an encryption
//! step in every sender, and it holds buffers of its own anyway.
//!
//! Every connection first passes the caps of [`admit`]; each request is
//! given its peer address (`ConnectInfo<SocketAddr>`) and the server's
//! [`rate::QaRates`].

mod admit;
mod config;
mod idle;
mod lean;
pub mod rate;
mod refuse;
mod rewind;
mod sink;
pub(crate) mod sniff;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub use config::ServeConfig;
pub use sink::{Event, SinkError, SinkOffer, SinkTaken, StreamSink};
pub use tls::{Tls, TlsError};

use admit::{Gate, Permit};
use idle::{Activity, Tracked};

/// Paths whose `GET` answers are event streams.
pub const STREAM_PATHS: &[&str] = &["/login", "/ticker/stream", "/stats"];
/// A stream request's head larger than this goes through hyper (it works
/// the same, it just holds hyper's buffers).
pub const LEAN_HEAD_LIMIT: usize = 8 * 1024;
/// After an accept error that is not the peer's (out of descriptors), wait
/// this long before accepting again rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// HTTP/2: streams one connection may have open at once (a browser puts
/// every tab of the origin on one connection, each event stream is one).
pub const H2_MAX_STREAMS: u32 = 256;
/// HTTP/2: a ping this often while streams are open, so a peer that
/// vanished is noticed even when nothing else is sent.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// HTTP/2: a ping not answered within this closes the connection.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Connection timings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request head (or to finish a
    /// TLS handshake).
    pub header_timeout: Duration,
    /// How long a lean stream's socket may stay full before it is dropped.
    pub stream_stall: Duration,
    /// How long a hyper connection may have no request in flight.
    pub keep_alive_idle: Duration,
}

/// What every connection of one server shares.
struct Shared {
    router: Router,
    shutdown: CancellationToken,
    limits: Limits,
    tls: Option<Tls>,
    rates: rate::QaRates,
}

/// The accept loop's settings, built once from the server's flags.
pub struct Serve {
    limits: Limits,
    tls: Option<Tls>,
    gate: Arc<Gate>,
    rates: rate::QaRates,
}

impl Serve {
    /// From the flags; `tls` from [`tls::load`].
    pub fn new(config: &crate::Config, tls: Option<Tls>) -> Serve {
        let s = &config.serve;
        Serve {
            limits: Limits {
                header_timeout: Duration::from_millis(config.header_timeout_ms),
                stream_stall: Duration::from_millis(config.stream_stall_ms),
                keep_alive_idle: Duration::from_millis(s.keep_alive_idle_ms),
            },
            tls,
            gate: Gate::new(
                s.max_connections,
                s.max_connections_per_ip,
                s.limit_loopback,
            ),
            rates: rate::QaRates::new(s),
        }
    }
}

/// Accepts until `shutdown`, spawning each connection on `conns`. Hyper's
/// connections finish their request in flight and close when `shutdown`
/// fires; lean streams end their body and close on the same token.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    conns: TaskTracker,
    serve: Serve,
) {
    let Serve {
        limits,
        tls,
        gate,
        rates,
    } = serve;
    let shared = Arc::new(Shared {
        router,
        shutdown: shutdown.clone(),
        limits,
        tls,
        rates,
    });
    let refusals = refuse::slots();
    conns.spawn(gate.clone().log_refusals(shutdown.clone()));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
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
        match gate.admit(peer.ip()) {
            Ok(permit) => {
                conns.spawn(connection(tcp, peer, permit, shared.clone()));
            }
            Err(why) => refused(tcp, why, &shared, &refusals, &conns),
        }
    }
}

/// Answers a refused connection with a `503`, unless too many refusals are
/// being written already: then it is just closed.
fn refused(
    tcp: TcpStream,
    why: admit::Refusal,
    shared: &Shared,
    slots: &Arc<Semaphore>,
    conns: &TaskTracker,
) {
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        return;
    };
    let tls = shared.tls.clone();
    conns.spawn(async move {
        refuse::refuse(tcp, tls, why).await;
        drop(slot);
    });
}

fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One admitted connection.
async fn connection(tcp: TcpStream, peer: SocketAddr, permit: Permit, shared: Arc<Shared>) {
    if let Some(tls) = &shared.tls {
        let acceptor = tls.accept.clone();
        Box::pin(tls_connection(tcp, acceptor, peer, permit, &shared)).await;
    } else {
        plain_connection(tcp, peer, permit, &shared).await;
    }
}

/// A TLS connection: the handshake (within the header timeout), then hyper
/// in the protocol ALPN chose.
async fn tls_connection(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    peer: SocketAddr,
    permit: Permit,
    shared: &Shared,
) {
    let handshake = tokio::select! {
        r = tokio::time::timeout(shared.limits.header_timeout, acceptor.accept(tcp)) => r,
        () = shared.shutdown.cancelled() => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("no TLS handshake within the header timeout; closing");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(tls::ALPN_H2);
    let io = Held::new(stream, permit);
    if h2 {
        serve_http2(io, peer, shared).await;
    } else {
        serve_http1(io, peer, shared).await;
    }
}

/// One plain connection: the first request decides the way. Each phase is
/// its own boxed future, so a long-lived stream's task holds only what
/// waiting on its socket needs, not room for the router's or hyper's state.
async fn plain_connection(mut tcp: TcpStream, peer: SocketAddr, permit: Permit, shared: &Shared) {
    let limits = shared.limits;
    let shutdown = &shared.shutdown;
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
        Some(Ok(Ok(sniff::Sniffed::Stream(mut req, rest)))) => {
            given_peer(req.extensions_mut(), peer, shared);
            match lean_stream(tcp, req, &shared.router, shutdown, limits).await {
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
    let io = Held::new(rewind::Rewind::new(prefix, tcp), permit);
    Box::pin(serve_http1(io, peer, shared)).await;
}

/// What every request is given: its peer, and the rate limits to count it
/// against.
fn given_peer(ext: &mut axum::http::Extensions, peer: SocketAddr, shared: &Shared) {
    ext.insert(ConnectInfo(peer));
    ext.insert(shared.rates.clone());
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

/// The router as a hyper service for one connection: each request gets its
/// peer, and counts as in flight until its response body is done.
fn service(
    peer: SocketAddr,
    shared: &Shared,
    activity: &Arc<Activity>,
) -> impl hyper::service::Service<
    axum::http::Request<Incoming>,
    Response = axum::http::Response<Tracked<axum::body::Body>>,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::http::Response<Tracked<axum::body::Body>>, Infallible>>
             + Send
             + 'static,
> + Clone
+ 'static {
    let router = shared.router.clone();
    let rates = shared.rates.clone();
    let activity = activity.clone();
    hyper::service::service_fn(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(rates.clone());
        let busy = activity.begin();
        let router = router.clone();
        async move {
            let res = match router.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok(res.map(|body| Tracked::new(body, busy)))
        }
    })
}

async fn serve_http1<T>(io: T, peer: SocketAddr, shared: &Shared)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_timeout)
        .serve_connection(TokioIo::new(io), service(peer, shared, &activity))
        .with_upgrades();
    drive(conn, shared, &activity).await;
}

async fn serve_http2<T>(io: T, peer: SocketAddr, shared: &Shared)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .serve_connection(TokioIo::new(io), service(peer, shared, &activity));
    drive(conn, shared, &activity).await;
}

/// A hyper connection that can be asked to finish.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http1::UpgradeableConnection<I, S>
where
    Self: Future<Output = hyper::Result<()>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, E> Graceful for http2::Connection<I, S, E>
where
    Self: Future<Output = hyper::Result<()>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `conn` until it ends. At shutdown, or after the keep-alive idle
/// time with no request in flight, it is asked to finish: the request in
/// flight (if any) is answered, then the connection closes.
async fn drive<C: Graceful>(conn: C, shared: &Shared, activity: &Activity) {
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = shared.shutdown.cancelled() => {
            conn.as_mut().graceful();
            conn.await
        }
        () = activity.idle_for(shared.limits.keep_alive_idle) => {
            tracing::trace!("keep-alive connection idle; closing");
            conn.as_mut().graceful();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// A connection's socket with its admission permit: the place is given
/// back when the socket goes, also after an upgrade to a WebSocket (the
/// upgraded stream owns this).
struct Held<T> {
    io: T,
    _permit: Permit,
}

impl<T> Held<T> {
    fn new(io: T, permit: Permit) -> Self {
        Held {
            io,
            _permit: permit,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Held<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Held<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
