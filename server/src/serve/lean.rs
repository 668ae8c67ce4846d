//! The lean way for long-lived event streams: the router answers the
//! request as usual, then this writes the response itself, straight from
//! the body to the socket. A stream then holds its socket, its body and a
//! few words, instead of hyper's read and write buffers (16 + 8 KiB per
//! connection, measured), and each event costs one `writev` and no copy.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, Version, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Largest non-stream answer written here (refusals are a line of JSON).
const MAX_PLAIN_BODY: usize = 64 * 1024;

/// What follows a lean request's answer.
pub enum Outcome {
    /// The answer is an event stream whose head is written: [`stream`] the
    /// body.
    Stream {
        body: Body,
        chunked: bool,
        /// The handler took the connection's [`super::SinkOffer`]: the
        /// stream goes on through the sink once the body is out.
        sink_taken: bool,
    },
    /// The answer was written whole and the connection may serve more
    /// requests: hyper takes it from here.
    KeepAlive,
    /// The connection is to be closed.
    Done,
}

/// Answers `req` through `router`: writes an event stream's head (its body
/// is for [`stream`]) or a whole answer of any other kind.
pub async fn respond(
    io: &TcpStream,
    req: Box<Request<()>>,
    router: Router,
    shutdown: &CancellationToken,
    stall: Duration,
) -> io::Result<Outcome> {
    let version = req.version();
    let close_asked = wants_close(req.headers(), version);
    let res = match router.oneshot((*req).map(|()| Body::empty())).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (parts, body) = res.into_parts();
    let is_stream = parts.status == StatusCode::OK
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_stream {
        let chunked = version == Version::HTTP_11;
        let head = encode_head(parts.status, &parts.headers, Framing::Stream { chunked });
        write_all(io, &mut [IoSlice::new(&head)], shutdown, stall).await?;
        let sink_taken = parts.extensions.get::<super::SinkTaken>().is_some();
        return Ok(Outcome::Stream {
            body,
            chunked,
            sink_taken,
        });
    }
    let data = match http_body_util::Limited::new(body, MAX_PLAIN_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "answer to a stream request could not be read; closing");
            return Ok(Outcome::Done);
        }
    };
    let head = encode_head(
        parts.status,
        &parts.headers,
        Framing::Length {
            len: data.len(),
            close: close_asked,
        },
    );
    write_all(
        io,
        &mut [IoSlice::new(&head), IoSlice::new(&data)],
        shutdown,
        stall,
    )
    .await?;
    Ok(if close_asked {
        Outcome::Done
    } else {
        Outcome::KeepAlive
    })
}

/// Whether the client wants the connection closed after this answer.
fn wants_close(headers: &HeaderMap, version: Version) -> bool {
    let has = |token: &str| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version == Version::HTTP_10 {
        !has("keep-alive")
    } else {
        has("close")
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Chunked (HTTP/1.1), or until the connection closes (HTTP/1.0).
    Stream { chunked: bool },
    /// `content-length`.
    Length { len: usize, close: bool },
}

/// The status line and headers; framing headers are ours, not the router's.
fn encode_head(status: StatusCode, headers: &HeaderMap, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Stream { chunked: true } => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        Framing::Stream { chunked: false } => out.extend_from_slice(b"connection: close\r\n"),
        Framing::Length { len, close } => {
            out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes());
            if close {
                out.extend_from_slice(b"connection: close\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// What woke the stream loop.
enum Step {
    Frame(Option<Result<hyper::body::Frame<Bytes>, axum::Error>>),
    Readable(io::Result<()>),
}

/// Copies the body's events to the socket, one write each (the body yields
/// a join's first events as one piece), until the body ends (then the last
/// chunk is written if `finish`), the peer goes, a write stalls for `stall`
/// or `shutdown` fires. This is what an idle
/// stream's task holds, so its state is kept small: no buffers, the rare
/// slow write boxed, and one poll of the body and the socket per event.
pub async fn stream(
    io: &TcpStream,
    mut body: Body,
    chunked: bool,
    finish: bool,
    shutdown: &CancellationToken,
    stall: Duration,
) -> io::Result<()> {
    loop {
        let step = std::future::poll_fn(|cx| {
            if let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(cx) {
                return Poll::Ready(Step::Frame(frame));
            }
            io.poll_read_ready(cx).map(Step::Readable)
        })
        .await;
        match step {
            Step::Frame(None) => {
                if chunked && finish {
                    write_all(io, &mut [IoSlice::new(b"0\r\n\r\n")], shutdown, stall).await?;
                }
                return Ok(());
            }
            // The body failed (its producer cut the stream): end the
            // response without its last chunk, so the client sees an error
            // and reconnects.
            Step::Frame(Some(Err(e))) => {
                tracing::debug!(error = %e, "event stream failed; closing");
                return Ok(());
            }
            Step::Frame(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if let Some(rest) = super::sink::write_chunk_now(io, &data, chunked)? {
                    Box::pin(write_when_ready(io, rest, shutdown, stall)).await?;
                }
            }
            Step::Readable(ready) => {
                ready?;
                if peer_left(io)? {
                    return Ok(());
                }
            }
        }
    }
}

/// `{len:x}\r\n` into `out`; returns its length.
pub(super) fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> usize {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out.iter_mut().take(digits).enumerate() {
        let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// After a stream socket turned readable: whether the client has gone (end
/// of file). A stream request has no body and the answer never ends, so
/// anything else the client sends is read and ignored.
pub(super) fn peer_left(io: &TcpStream) -> io::Result<bool> {
    let mut scratch = [0u8; 64];
    match io.try_read(&mut scratch) {
        Ok(0) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes every slice, at once when the socket has room (nearly always);
/// otherwise the rest is written by a boxed slow path, so that an idle
/// stream's task has no room reserved for it.
async fn write_all(
    io: &TcpStream,
    slices: &mut [IoSlice<'_>],
    shutdown: &CancellationToken,
    stall: Duration,
) -> io::Result<()> {
    match write_now(io, slices)? {
        None => Ok(()),
        Some(rest) => Box::pin(write_when_ready(io, rest, shutdown, stall)).await,
    }
}

/// Writes what the socket takes without waiting; returns a copy of the rest
/// when it is full.
pub(super) fn write_now(
    io: &TcpStream,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<Option<Vec<u8>>> {
    while !slices.is_empty() {
        match io.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Some(
                    slices.iter().flat_map(|s| s.iter().copied()).collect(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Waits for room and writes `rest`. A socket that stays full for `stall`
/// (a peer that stopped reading) is given up, as is any write at shutdown.
async fn write_when_ready(
    io: &TcpStream,
    rest: Vec<u8>,
    shutdown: &CancellationToken,
    stall: Duration,
) -> io::Result<()> {
    let mut rest = &rest[..];
    while !rest.is_empty() {
        tokio::select! {
            r = io.writable() => r?,
            () = tokio::time::sleep(stall) => {
                crate::metrics::refused("stream_stall_ms");
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"));
            }
            () = shutdown.cancelled() => {
                return Err(io::Error::other("shutting down"));
            }
        }
        match io.try_write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_lowercase_hex_lines() {
        for (len, want) in [
            (1usize, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (2048, "800\r\n"),
            (0xabcdef, "abcdef\r\n"),
        ] {
            let mut out = [0u8; 18];
            let n = chunk_size_line(len, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), want);
        }
        let mut out = [0u8; 18];
        let n = chunk_size_line(usize::MAX, &mut out);
        assert_eq!(n, 18);
    }

    #[test]
    fn heads_carry_our_framing_not_the_routers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "99".parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        let head = encode_head(StatusCode::OK, &h, Framing::Stream { chunked: true });
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let head = encode_head(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            Framing::Length {
                len: 12,
                close: true,
            },
        );
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn close_is_what_the_version_and_header_say() {
        let mut h = HeaderMap::new();
        assert!(!wants_close(&h, Version::HTTP_11));
        assert!(wants_close(&h, Version::HTTP_10));
        h.insert(header::CONNECTION, "Keep-Alive".parse().unwrap());
        assert!(!wants_close(&h, Version::HTTP_10));
        h.insert(header::CONNECTION, "foo, close".parse().unwrap());
        assert!(wants_close(&h, Version::HTTP_11));
    }
}
