//! Plain sockets for the load generator: many loopback connections from
//! several source addresses, and just enough HTTP/1.1 to read responses and
//! event streams without a general-purpose client's per-message cost.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The most header lines accepted in a response.
const MAX_HEADERS: usize = 32;
/// The longest response head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The longest body read whole (ticker polls, action answers).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// File descriptors wanted beyond the connections themselves.
const SPARE_FDS: u64 = 256;

/// Raises this process's open-file limit so that `connections` sockets fit;
/// a process started by the bench (`--spawn-server`) inherits it. Returns the
/// soft limit now in force.
pub fn raise_nofile(connections: u64) -> io::Result<u64> {
    let want = connections + SPARE_FDS;
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft >= want {
        return Ok(soft);
    }
    // Raising the hard limit needs privileges; fall back to the hard limit.
    if rlimit::Resource::NOFILE.set(want, want.max(hard)).is_ok() {
        return Ok(want);
    }
    rlimit::increase_nofile_limit(want)
}

/// Opens connections to one server, spreading them over several loopback
/// source addresses (127.0.0.1, 127.0.0.2, …) so that tens of thousands of
/// connections do not run out of ephemeral ports.
#[derive(Debug)]
pub struct Connector {
    /// The nodes; connection n goes to node n modulo their number.
    servers: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
    next_server: AtomicUsize,
}

impl Connector {
    /// `sources` loopback addresses (at least one). For an IPv6 server only
    /// `::1` exists, so one source is used.
    pub fn new(server: SocketAddr, sources: u8) -> Connector {
        Connector::to_nodes(&[server], sources)
    }

    /// Connections spread over `servers` in turn (several nodes of one
    /// cluster).
    pub fn to_nodes(servers: &[SocketAddr], sources: u8) -> Connector {
        assert!(!servers.is_empty(), "at least one server");
        let server = servers[0];
        let sources = match server {
            SocketAddr::V4(_) => (1..=sources.max(1))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect(),
            SocketAddr::V6(_) => vec![server.ip()],
        };
        Connector {
            servers: servers.to_vec(),
            sources,
            next: AtomicUsize::new(0),
            next_server: AtomicUsize::new(0),
        }
    }

    /// The (first) server's address.
    pub fn server(&self) -> SocketAddr {
        self.servers[0]
    }

    /// Connects from the next source address, with Nagle off.
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        let n = self.next_server.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        let server = self.servers[n];
        let socket = match server {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if self.sources.len() > 1 {
            socket.bind(SocketAddr::new(self.sources[i], 0))?;
        }
        let stream = socket.connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// What a response head said about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub content_type: Option<String>,
}

/// Errors of the small HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("response too large")]
    TooLarge,
}

/// One HTTP/1.1 connection with its read buffer.
#[derive(Debug)]
pub struct HttpConn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

impl HttpConn {
    pub fn new(stream: TcpStream, capacity: usize) -> HttpConn {
        HttpConn {
            stream,
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Reads more bytes into the buffer; `Closed` at end of stream.
    pub async fn fill(&mut self) -> Result<usize, HttpError> {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(4096);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        Ok(n)
    }

    /// Writes a whole request.
    pub async fn send(&mut self, request: &[u8]) -> Result<(), HttpError> {
        self.stream.write_all(request).await?;
        Ok(())
    }

    /// Reads and removes a response head from the buffer.
    pub async fn read_head(&mut self) -> Result<Head, HttpError> {
        loop {
            if let Some((head, used)) = parse_head(&self.buf)? {
                self.buf.advance(used);
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::TooLarge);
            }
            self.fill().await?;
        }
    }

    /// Reads a whole body framed by Content-Length or chunked encoding.
    pub async fn read_body(&mut self, head: &Head) -> Result<BytesMut, HttpError> {
        if head.chunked {
            let mut decoder = Chunked::default();
            let mut body = BytesMut::new();
            loop {
                decoder.decode(&mut self.buf, &mut body)?;
                if decoder.is_done() {
                    return Ok(body);
                }
                if body.len() > MAX_BODY_BYTES {
                    return Err(HttpError::TooLarge);
                }
                self.fill().await?;
            }
        }
        let len = head
            .content_length
            .ok_or_else(|| HttpError::Malformed("no body length".into()))?;
        if len > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        while self.buf.len() < len {
            self.fill().await?;
        }
        Ok(self.buf.split_to(len))
    }
}

/// Parses a response head at the start of `buf`: the head and its length,
/// or `None` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        content_type: None,
    };
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                value
                    .parse()
                    .map_err(|_| HttpError::Malformed(format!("content-length {value:?}")))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_string());
        }
    }
    Ok(Some((head, used)))
}

/// Incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a size line.
    #[default]
    Size,
    /// Inside a chunk with this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Expecting the trailer section's final CRLF after the last chunk.
    Trailer,
    Done,
}

impl Chunked {
    /// Moves the decoded bytes available in `input` to `out`, consuming what
    /// it used; leaves partial size lines in `input`.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<(), HttpError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(end) = find_crlf(input) else {
                        if input.len() > 1024 {
                            return Err(HttpError::Malformed("chunk size line too long".into()));
                        }
                        return Ok(());
                    };
                    let line = std::str::from_utf8(&input[..end])
                        .map_err(|_| HttpError::Malformed("chunk size".into()))?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16)
                        .map_err(|_| HttpError::Malformed(format!("chunk size {hex:?}")))?;
                    input.advance(end + 2);
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(());
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(HttpError::Malformed("no CRLF after chunk".into()));
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(end) = find_crlf(input) else {
                        return Ok(());
                    };
                    input.advance(end + 2);
                    if end == 0 {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(()),
            }
        }
    }

    /// The last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_length_and_type() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 12\r\n\r\n{\"callIn\":1}";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, Some(12));
        assert!(!head.chunked);
        assert_eq!(head.content_type.as_deref(), Some("application/json"));
        assert_eq!(&raw[used..], b"{\"callIn\":1}");
        assert!(parse_head(&raw[..20]).unwrap().is_none());
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_body_in_pieces() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        // Every split point must give the same result.
        for split in 0..wire.len() {
            let mut d = Chunked::default();
            let mut input = BytesMut::from(&wire[..split]);
            let mut out = BytesMut::new();
            d.decode(&mut input, &mut out).unwrap();
            input.extend_from_slice(&wire[split..]);
            d.decode(&mut input, &mut out).unwrap();
            assert!(d.is_done(), "split {split}");
            assert_eq!(&out[..], b"hello, world");
            assert!(input.is_empty());
        }
    }

    #[test]
    fn bad_chunk_size_is_an_error() {
        let mut d = Chunked::default();
        let mut input = BytesMut::from(&b"zz\r\n"[..]);
        assert!(d.decode(&mut input, &mut BytesMut::new()).is_err());
    }

    #[tokio::test]
    async fn connector_spreads_source_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = Connector::new(listener.local_addr().unwrap(), 3);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let _s = c.connect().await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            seen.push(peer.ip());
        }
        seen.sort();
        let want: Vec<IpAddr> = (1..=3)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        assert_eq!(seen, want);
    }
}
