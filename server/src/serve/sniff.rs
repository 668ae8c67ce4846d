//! Looks at a connection's first request to pick its path: a `GET` of an
//! event stream goes to the lean writer, everything else to hyper.

use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, Version, header};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Headers a lean request may carry; more go to hyper.
const MAX_HEADERS: usize = 48;

/// What the first bytes of a connection say.
#[derive(Debug)]
pub enum Verdict {
    /// A complete `GET` of a stream path, without a body; its head is
    /// `head_len` bytes.
    Stream(Box<Request<()>>, usize),
    /// Anything else: hyper answers it (and answers errors its own way).
    Other,
    /// Could still be a stream request: read more.
    NeedMore,
}

/// Decides from the bytes read so far. Pure, so it is tested on its own.
pub fn classify(buf: &[u8], paths: &[&str]) -> Verdict {
    const GET: &[u8] = b"GET ";
    if buf.len() < GET.len() {
        return if GET.starts_with(buf) {
            Verdict::NeedMore
        } else {
            Verdict::Other
        };
    }
    if !buf.starts_with(GET) {
        return Verdict::Other;
    }
    let target = &buf[GET.len()..];
    match target.iter().position(|&b| b == b' ' || b == b'?') {
        Some(end) => {
            if !paths.iter().any(|p| p.as_bytes() == &target[..end]) {
                return Verdict::Other;
            }
        }
        None => {
            return if paths.iter().any(|p| p.as_bytes().starts_with(target)) {
                Verdict::NeedMore
            } else {
                Verdict::Other
            };
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Verdict::NeedMore,
        Err(_) => return Verdict::Other,
    };
    let Some(built) = build(&req) else {
        return Verdict::Other;
    };
    Verdict::Stream(Box::new(built), head_len)
}

/// The parsed head as an `http::Request`, or `None` when hyper should see
/// it instead (a body, an upgrade, a header `http` refuses).
fn build(req: &httparse::Request<'_, '_>) -> Option<Request<()>> {
    let version = match req.version? {
        0 => Version::HTTP_10,
        1 => Version::HTTP_11,
        _ => return None,
    };
    let uri: Uri = req.path?.parse().ok()?;
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .version(version);
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || (name == header::CONTENT_LENGTH && h.value != b"0")
        {
            return None;
        }
        builder = builder.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    builder.body(()).ok()
}

/// How a connection starts.
#[derive(Debug)]
pub enum Sniffed {
    /// A stream request, and whatever the client sent after its head.
    Stream(Box<Request<()>>, Bytes),
    /// For hyper, with the bytes already read.
    Other(Bytes),
    /// Closed before sending anything.
    Closed,
}

/// Reads until [`classify`] decides, at most `limit` bytes (then hyper
/// takes over: a long head is no error, it just does not take the lean way).
pub async fn sniff(io: &mut TcpStream, paths: &[&str], limit: usize) -> std::io::Result<Sniffed> {
    let mut buf = BytesMut::with_capacity(limit.min(1024));
    loop {
        if buf.len() >= limit {
            return Ok(Sniffed::Other(buf.freeze()));
        }
        buf.reserve((limit - buf.len()).min(1024));
        if io.read_buf(&mut buf).await? == 0 {
            return Ok(if buf.is_empty() {
                Sniffed::Closed
            } else {
                Sniffed::Other(buf.freeze())
            });
        }
        match classify(&buf, paths) {
            Verdict::NeedMore => {}
            Verdict::Other => return Ok(Sniffed::Other(buf.freeze())),
            Verdict::Stream(req, head_len) => {
                let rest = buf.split_off(head_len).freeze();
                return Ok(Sniffed::Stream(req, rest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&str] = &["/login", "/stats"];

    fn verdict(s: &str) -> Verdict {
        classify(s.as_bytes(), PATHS)
    }

    #[test]
    fn a_stream_get_is_recognised_with_its_headers() {
        let head = "GET /login?user=abc HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\nNEXT";
        let Verdict::Stream(req, n) = verdict(head) else {
            panic!("not a stream: {:?}", verdict(head));
        };
        assert_eq!(n, head.len() - 4);
        assert_eq!(req.uri().path(), "/login");
        assert_eq!(req.uri().query(), Some("user=abc"));
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["cookie"], "a=b");
    }

    #[test]
    fn other_requests_go_to_hyper_as_soon_as_it_is_clear() {
        for head in [
            "POST /login HTTP/1.1\r\n",
            "HEAD /login HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n",
            "GET /loginx HTTP/1.1\r\n",
            "GET /log/ HTTP/1.1\r\n",
            "GET /ticker/",
            "PUT",
            "\x16\x03\x01",
        ] {
            assert!(matches!(verdict(head), Verdict::Other), "{head:?}");
        }
    }

    #[test]
    fn a_partial_head_that_may_still_match_waits() {
        for head in [
            "",
            "G",
            "GET",
            "GET ",
            "GET /lo",
            "GET /login HTTP/1.1\r\nHost: x\r\n",
        ] {
            assert!(matches!(verdict(head), Verdict::NeedMore), "{head:?}");
        }
    }

    #[test]
    fn bodies_upgrades_and_bad_heads_are_left_to_hyper() {
        for head in [
            "GET /login HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /login HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /login HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /login HTTP/2.0\r\n\r\n",
        ] {
            assert!(matches!(verdict(head), Verdict::Other), "{head:?}");
        }
        let zero = "GET /login HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(verdict(zero), Verdict::Stream(..)));
    }

    #[test]
    fn too_many_headers_go_to_hyper() {
        let mut head = String::from("GET /login HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            head.push_str(&format!("x-{i}: v\r\n"));
        }
        head.push_str("\r\n");
        assert!(matches!(verdict(&head), Verdict::Other));
    }
}
