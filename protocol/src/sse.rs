//! Server-Sent Events framing (WHATWG HTML §9.2).
//!
//! The server encodes each event once into bytes and writes the same bytes to
//! every subscriber, so the encoder works on plain byte buffers.

use bytes::{BufMut, Bytes, BytesMut};

/// The padding comment the classic Q&A server sent first (for old XHR polyfills).
pub const PADDING_LEN: usize = 2048;

/// Encodes one event. `data` may contain newlines; each line becomes its own
/// `data:` field so the receiver joins them back with `\n`.
///
/// `event` and `id` must not contain CR or LF; such characters are replaced by
/// spaces rather than allowed to break the framing.
pub fn encode_event(event: Option<&str>, id: Option<&str>, data: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 32);
    if let Some(event) = event {
        buf.put_slice(b"event: ");
        put_single_line(&mut buf, event);
        buf.put_u8(b'\n');
    }
    if let Some(id) = id {
        buf.put_slice(b"id: ");
        put_single_line(&mut buf, id);
        buf.put_u8(b'\n');
    }
    for line in split_lines(data) {
        buf.put_slice(b"data: ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

/// A comment line (ignored by clients); used for padding and heartbeats.
pub fn encode_comment(text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + 3);
    buf.put_u8(b':');
    put_single_line(&mut buf, text);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// `retry: ms`, the reconnection delay a client should use.
pub fn encode_retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

/// The classic preamble: a 2 KB comment of spaces, then `retry`.
pub fn preamble(retry_ms: u64) -> Bytes {
    let mut buf = BytesMut::with_capacity(PADDING_LEN + 32);
    buf.put_u8(b':');
    buf.put_bytes(b' ', PADDING_LEN);
    buf.put_u8(b'\n');
    buf.put_slice(format!("retry: {retry_ms}\n\n").as_bytes());
    buf.freeze()
}

fn put_single_line(buf: &mut BytesMut, s: &str) {
    for b in s.bytes() {
        buf.put_u8(if b == b'\n' || b == b'\r' { b' ' } else { b });
    }
}

/// Splits on CRLF, LF or lone CR, as an SSE parser would.
fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// One event as a client sees it after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedEvent {
    /// `message` when the stream named none.
    pub event: String,
    pub data: String,
    /// The last-event-id in force when this event was dispatched.
    pub id: Option<String>,
}

/// Incremental SSE parser following the WHATWG rules: CRLF / LF / CR line
/// ends, comments, one optional space after the colon, `id` persisting, and
/// nothing dispatched for an empty data buffer.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<u64>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The most recent `retry` value the stream sent, in ms.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The current last-event-id.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<ParsedEvent> {
        let mut out = Vec::new();
        // Whole runs up to each line end are copied at once: events carry
        // kilobytes of data, and this runs for every one a client receives.
        while let Some(&first) = bytes.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    self.after_cr = bytes[i] == b'\r';
                    self.end_line(&mut out);
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.line.extend_from_slice(bytes);
                    break;
                }
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<ParsedEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if !self.started {
            self.started = true;
            if line.starts_with(&[0xEF, 0xBB, 0xBF]) {
                line.drain(..3);
            }
        }
        let line = String::from_utf8(line)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                let event = std::mem::take(&mut self.event);
                out.push(ParsedEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                    id: self.last_id.clone(),
                });
            } else {
                self.event.clear();
            }
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_id = if value.is_empty() {
                    None
                } else {
                    Some(value.to_string())
                }
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_named_event_with_id() {
        let b = encode_event(Some("login"), Some("7"), "\"abc\"");
        assert_eq!(&b[..], b"event: login\nid: 7\ndata: \"abc\"\n\n");
    }

    #[test]
    fn multi_line_data_becomes_several_fields() {
        let b = encode_event(None, None, "a\nb\r\nc\rd");
        assert_eq!(&b[..], b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn newline_in_event_name_cannot_break_framing() {
        let b = encode_event(Some("x\ndata: evil"), None, "1");
        assert_eq!(&b[..], b"event: x data: evil\ndata: 1\n\n");
    }

    #[test]
    fn preamble_is_padding_then_retry() {
        let b = preamble(2000);
        assert_eq!(b.len(), 1 + PADDING_LEN + 1 + "retry: 2000\n\n".len());
        assert!(b.ends_with(b"\nretry: 2000\n\n"));
        let mut p = Parser::new();
        assert!(p.feed(&b).is_empty());
        assert_eq!(p.retry(), Some(2000));
    }

    #[test]
    fn parser_round_trips_encoder() {
        let mut p = Parser::new();
        let mut bytes = encode_event(Some("quote"), Some("41"), "{\"a\":1}\nsecond").to_vec();
        bytes.extend_from_slice(&encode_comment(" heartbeat"));
        bytes.extend_from_slice(&encode_event(None, None, "x"));
        // Feed byte by byte to exercise the incremental path.
        let mut events = Vec::new();
        for b in bytes {
            events.extend(p.feed(&[b]));
        }
        assert_eq!(
            events,
            vec![
                ParsedEvent {
                    event: "quote".into(),
                    data: "{\"a\":1}\nsecond".into(),
                    id: Some("41".into())
                },
                ParsedEvent {
                    event: "message".into(),
                    data: "x".into(),
                    id: Some("41".into())
                },
            ]
        );
    }

    #[test]
    fn parser_handles_crlf_bom_and_fieldless_lines() {
        let mut p = Parser::new();
        let ev = p.feed(b"\xEF\xBB\xBFdata:x\r\ndata\r\n\r\nid\r\ndata: y\r\r");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].data, "x\n");
        assert_eq!(ev[1].id, None);
        assert_eq!(ev[1].data, "y");
    }

    #[test]
    fn empty_data_dispatches_nothing_but_id_sticks() {
        let mut p = Parser::new();
        assert!(p.feed(b"id: 5\n\n").is_empty());
        assert_eq!(p.last_id(), Some("5"));
    }

    proptest::proptest! {
        /// However the bytes are split into reads (a CRLF across two reads,
        /// a multi-byte character cut in half), the events are the same.
        #[test]
        fn any_split_gives_the_same_events(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "data: a", "data:", "\r", "\n", "\r\n", "event: e", "id: 7", ": c",
                    "data: é€", "retry: 5", "x",
                ]),
                0..40,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let stream: Vec<u8> = parts.concat().into_bytes();
            let whole = Parser::new().feed(&stream);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut p = Parser::new();
            let mut split = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                split.extend(p.feed(&stream[at..c]));
                at = c;
            }
            proptest::prop_assert_eq!(whole, split);
        }
    }
}
