//! A minimal WebSocket client (RFC 6455) for the load generator: the
//! upgrade handshake, masked text frames out, unmasked frames in, parsed in
//! place from one read buffer so that a read carrying several frames costs
//! one system call and no per-frame copy.
//!
//! The handshake checks the status and the `Upgrade` header but not
//! `Sec-WebSocket-Accept` (the server is ours and on loopback; a SHA-1 per
//! connection would buy nothing here).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net::{Connector, parse_head};

/// The largest frame accepted from the server.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// WebSocket client errors.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("handshake refused: {0}")]
    Handshake(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A complete message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(Bytes),
    Binary(Bytes),
    /// A close frame (code, if any).
    Close(Option<u16>),
}

/// One WebSocket connection.
#[derive(Debug)]
pub struct WsConn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Payload of a fragmented message being reassembled, with its opcode.
    partial: Option<(u8, BytesMut)>,
    mask_state: u32,
}

impl WsConn {
    /// Connects and performs the upgrade of `GET path`.
    pub async fn connect(connector: &Connector, path: &str) -> Result<WsConn, WsError> {
        let stream = connector.connect().await?;
        let mut conn = WsConn {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(256),
            partial: None,
            mask_state: seed(),
        };
        let key = base64_16(&conn.next_mask_bytes16());
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            connector.server()
        );
        conn.stream.write_all(request.as_bytes()).await?;
        loop {
            match parse_head(&conn.rbuf).map_err(|e| WsError::Handshake(e.to_string()))? {
                Some((head, used)) => {
                    if head.status != 101 {
                        return Err(WsError::Handshake(format!("status {}", head.status)));
                    }
                    conn.rbuf.advance(used);
                    return Ok(conn);
                }
                None => {
                    if conn.rbuf.len() > 16 * 1024 {
                        return Err(WsError::Handshake("response head too long".into()));
                    }
                    conn.fill().await?;
                }
            }
        }
    }

    /// Reads more bytes into the buffer. Cancel-safe (for `select!`).
    pub async fn fill(&mut self) -> Result<usize, WsError> {
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(8192);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(WsError::Closed);
        }
        Ok(n)
    }

    /// The next complete message already buffered, answering pings on the
    /// way (the pong is queued; [`WsConn::flush`] sends it).
    pub fn next_buffered(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let Some((fin, opcode, payload)) = parse_frame(&mut self.rbuf)? else {
                return Ok(None);
            };
            match opcode {
                0x9 => {
                    encode_frame(&mut self.wbuf, 0xA, &payload, self.mask_state);
                    self.mask_state = xorshift(self.mask_state);
                }
                0xA => {}
                0x8 => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Message::Close(code)));
                }
                0x0 => {
                    let Some((_, buf)) = self.partial.as_mut() else {
                        return Err(WsError::Protocol("continuation without a start".into()));
                    };
                    buf.extend_from_slice(&payload);
                    if buf.len() > MAX_FRAME_BYTES {
                        return Err(WsError::Protocol("message too large".into()));
                    }
                    if fin {
                        let (op, buf) = self.partial.take().expect("checked above");
                        return Ok(Some(data_message(op, buf.freeze())));
                    }
                }
                0x1 | 0x2 => {
                    if fin {
                        return Ok(Some(data_message(opcode, payload)));
                    }
                    self.partial = Some((opcode, BytesMut::from(&payload[..])));
                }
                op => return Err(WsError::Protocol(format!("opcode {op}"))),
            }
        }
    }

    /// Waits for the next message.
    pub async fn next(&mut self) -> Result<Message, WsError> {
        loop {
            if let Some(m) = self.next_buffered()? {
                self.flush().await?;
                return Ok(m);
            }
            self.flush().await?;
            self.fill().await?;
        }
    }

    /// Queues a text frame; [`WsConn::flush`] sends everything queued in one
    /// write.
    pub fn queue_text(&mut self, text: &[u8]) {
        encode_frame(&mut self.wbuf, 0x1, text, self.mask_state);
        self.mask_state = xorshift(self.mask_state);
    }

    /// Writes the queued frames.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Queues and sends one text frame.
    pub async fn send_text(&mut self, text: &[u8]) -> Result<(), WsError> {
        self.queue_text(text);
        self.flush().await
    }

    /// Sends a close frame (best effort).
    pub async fn close(&mut self, code: u16) {
        encode_frame(&mut self.wbuf, 0x8, &code.to_be_bytes(), self.mask_state);
        let _ = self.flush().await;
    }

    fn next_mask_bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for chunk in out.chunks_mut(4) {
            self.mask_state = xorshift(self.mask_state);
            chunk.copy_from_slice(&self.mask_state.to_le_bytes());
        }
        out
    }
}

fn data_message(opcode: u8, payload: Bytes) -> Message {
    if opcode == 0x1 {
        Message::Text(payload)
    } else {
        Message::Binary(payload)
    }
}

/// Parses one frame from the front of `buf`: (fin, opcode, payload), or
/// `None` when incomplete. Server frames must not be masked, but a masked
/// one is unmasked rather than refused.
fn parse_frame(buf: &mut BytesMut) -> Result<Option<(bool, u8, Bytes)>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if len > MAX_FRAME_BYTES {
        return Err(WsError::Protocol(format!("frame of {len} bytes")));
    }
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    buf.advance(at);
    let mut payload = buf.split_to(len);
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok(Some((fin, opcode, payload.freeze())))
}

/// Appends a masked client frame.
fn encode_frame(out: &mut BytesMut, opcode: u8, payload: &[u8], mask_seed: u32) {
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.put_u8(0x80 | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
    }
    let mask = mask_seed.to_le_bytes();
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

fn xorshift(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

/// A per-connection seed for masks and keys; masks only need to vary, not
/// be secret, against our own server on loopback.
fn seed() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    let n = NEXT.fetch_add(0x6D2B_79F5, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    (n ^ t) | 1
}

/// Base64 of 16 bytes (the handshake key).
fn base64_16(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
        let len = (frame[1] & 0x7F) as usize;
        let mask = &frame[2..6];
        let data = frame[6..6 + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        (frame[0], data)
    }

    #[test]
    fn client_frames_are_masked_and_round_trip() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, 0x1, b"42[\"mousemove\"]", 0xDEADBEEF);
        assert_eq!(out[1] & 0x80, 0x80);
        let (b0, data) = unmask(&out);
        assert_eq!(b0, 0x81);
        assert_eq!(data, b"42[\"mousemove\"]");
        // The parser accepts (and unmasks) it too.
        let (fin, op, payload) = parse_frame(&mut out).unwrap().unwrap();
        assert!(fin);
        assert_eq!(op, 1);
        assert_eq!(&payload[..], b"42[\"mousemove\"]");
    }

    #[test]
    fn server_frames_of_every_length_form() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let mut buf = BytesMut::new();
            buf.put_u8(0x81);
            if len < 126 {
                buf.put_u8(len as u8);
            } else if len <= 65535 {
                buf.put_u8(126);
                buf.put_u16(len as u16);
            } else {
                buf.put_u8(127);
                buf.put_u64(len as u64);
            }
            buf.put_bytes(b'a', len);
            let whole = buf.clone();
            let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
            assert!(parse_frame(&mut partial).unwrap().is_none());
            let (_, _, payload) = parse_frame(&mut buf).unwrap().unwrap();
            assert_eq!(payload.len(), len);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn base64_of_a_key() {
        assert_eq!(base64_16(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }
}
