//! The Q&A board over Server-Sent Events (protocols.md §3).
//!
//! The classic wire format is kept exactly: a `login` event whose data is the
//! JSON string of the user id, unnamed `message` events tagged by `type`
//! (`questions`, `answers`, `notification`) and a `ping` event. rt adds fields
//! classic clients ignore (`meta` on `questions` and `answers`) and named
//! events they never listen to (`meta`, `reset`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Request header naming the caller of an action.
pub const USER_HEADER: &str = "_sse_user_id_";
/// Cookie set at login so a browser's reconnect keeps its identity.
pub const USER_COOKIE: &str = "rt_qa_user";
/// Query parameter of `/login` presenting an identity (EventSource cannot send headers).
pub const USER_PARAM: &str = "user";

/// Event name of the first event on a stream: data is the JSON string of the user id.
pub const LOGIN_EVENT: &str = "login";
/// Event name of the heartbeat: data is the epoch time in ms.
pub const PING_EVENT: &str = "ping";
/// Event name announcing that the missed events are gone and a full snapshot follows.
pub const RESET_EVENT: &str = "reset";
/// Event name of a change to one question's metadata (votes, answer count).
pub const META_EVENT: &str = "meta";
/// Event name of the only event of a `/login` stream the server cannot
/// serve for now (its database is unreachable, or it is shutting down): data
/// is an [`ErrorBody`], and the stream then ends so that the client
/// reconnects after `retry:`. An HTTP error status would instead make
/// EventSource give up for good.
pub const UNAVAILABLE_EVENT: &str = "unavailable";

/// Notification text: an empty answer (classic wording).
pub const ANSWER_TOO_SHORT: &str = "Your answer is too short";
/// Notification text: an answer without a selected question (classic wording).
pub const SELECT_FIRST: &str = "Please select a question to answer";
/// Notification text: an empty question.
pub const QUESTION_TOO_SHORT: &str = "Your question is too short";

/// Action paths, each followed by one percent-encoded segment.
pub const ASK_PATH: &str = "/askquestion/";
pub const SELECT_PATH: &str = "/selectquestion/";
pub const ANSWER_PATH: &str = "/addanswer/";
pub const VOTE_PATH: &str = "/vote/";

/// A JSON object whose keys keep their order (the classic server's object
/// kept insertion order, and clients list questions in that order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1024));
                while let Some((k, v)) = a.next_entry()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}

/// What rt knows about a question beyond its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionMeta {
    /// Public handle of the asker (never a secret user id).
    pub author: String,
    /// When it was asked, epoch ms.
    pub time: u64,
    pub votes: u32,
    pub answers: u32,
}

/// Who answered and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerMeta {
    pub author: String,
    pub time: u64,
}

/// The unnamed (`message`) events, tagged by `type` as in the classic server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// Every question, mapped to its asker's public handle, in asking order.
    Questions {
        questions: OrderedMap<String>,
        /// rt's addition: metadata per question (classic clients read only `questions`).
        #[serde(default)]
        meta: OrderedMap<QuestionMeta>,
    },
    /// All answers to one question, oldest first.
    Answers {
        question: String,
        answers: Vec<String>,
        /// rt's addition: one entry per answer.
        #[serde(default)]
        meta: Vec<AnswerMeta>,
    },
    /// A message for the user (an action was refused).
    Notification { message: String },
}

impl Message {
    /// The JSON text sent as the event's data (one line: JSON has no raw newlines).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("Q&A messages always serialize")
    }
}

/// Data of the named `meta` event: one question's metadata changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaUpdate {
    pub question: String,
    pub meta: QuestionMeta,
}

/// Data of the named `reset` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    /// Why the client's missed events cannot be replayed.
    pub reason: String,
}

/// Body of a successful `POST /vote/<q>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    pub question: String,
    pub votes: u32,
    /// Whether the caller's vote is now counted.
    pub voted: bool,
}

/// Body of every refused action or login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Why an action's path segment is not text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("invalid percent-encoding at byte {0}")]
    BadPercent(usize),
    #[error("the decoded text is not UTF-8")]
    NotUtf8,
}

/// The classic server's reading of an action URL: split the request target
/// (path and query, as Node's `req.url`) on `/`, take segment 2, then
/// percent-decode it. `%2F` therefore survives as a `/` in the text.
pub fn action_segment(path_and_query: &str) -> &str {
    path_and_query.split('/').nth(2).unwrap_or("")
}

/// Strict percent-decoding, like JavaScript's `decodeURIComponent`: a `%` not
/// followed by two hex digits is an error, and so is a result that is not UTF-8.
/// `+` stays `+`.
pub fn decode_segment(raw: &str) -> Result<String, SegmentError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(SegmentError::BadPercent(i))?;
            let hi = hex_val(hex[0]).ok_or(SegmentError::BadPercent(i))?;
            let lo = hex_val(hex[1]).ok_or(SegmentError::BadPercent(i))?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SegmentError::NotUtf8)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes like JavaScript's `encodeURIComponent`, for building
/// action URLs.
pub fn encode_segment(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Whether `id` has the shape of a user id: 32 lowercase hex digits (128 bits).
pub fn is_user_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_keep_insertion_order_and_shape() {
        let m = Message::Questions {
            questions: OrderedMap(vec![
                ("b?".into(), "ann".into()),
                ("a?".into(), "bob".into()),
            ]),
            meta: OrderedMap(vec![(
                "b?".into(),
                QuestionMeta {
                    author: "ann".into(),
                    time: 5,
                    votes: 1,
                    answers: 0,
                },
            )]),
        };
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"type":"questions","questions":{"b?":"ann","a?":"bob"},"meta":{"b?":{"author":"ann","time":5,"votes":1,"answers":0}}}"#
        );
        let back: Message = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn classic_messages_parse_without_rt_fields() {
        let m: Message =
            serde_json::from_str(r#"{"type":"answers","question":"q","answers":["x"]}"#).unwrap();
        assert_eq!(
            m,
            Message::Answers {
                question: "q".into(),
                answers: vec!["x".into()],
                meta: vec![]
            }
        );
        let n: Message =
            serde_json::from_str(r#"{"type":"notification","message":"Your answer is too short"}"#)
                .unwrap();
        assert_eq!(
            n,
            Message::Notification {
                message: ANSWER_TOO_SHORT.into()
            }
        );
    }

    #[test]
    fn segment_is_split_before_decoding() {
        assert_eq!(action_segment("/askquestion/a%2Fb"), "a%2Fb");
        assert_eq!(decode_segment("a%2Fb").unwrap(), "a/b");
        assert_eq!(action_segment("/askquestion/a/b"), "a");
        assert_eq!(action_segment("/askquestion/"), "");
        assert_eq!(action_segment("/askquestion/why?x=1"), "why?x=1");
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode_segment("a+b%20c").unwrap(), "a+b c");
        assert_eq!(decode_segment("caf%C3%A9").unwrap(), "café");
        assert_eq!(decode_segment("%zz"), Err(SegmentError::BadPercent(0)));
        assert_eq!(decode_segment("ab%4"), Err(SegmentError::BadPercent(2)));
        assert_eq!(decode_segment("%FF"), Err(SegmentError::NotUtf8));
    }

    #[test]
    fn encoding_round_trips() {
        for s in [
            "a b/c?d&e",
            "<img src=x onerror=alert(1)>",
            "émoji 😀",
            "%2F",
        ] {
            assert_eq!(decode_segment(&encode_segment(s)).unwrap(), s);
        }
        assert_eq!(encode_segment("a b"), "a%20b");
    }

    #[test]
    fn user_ids_are_128_bit_hex() {
        assert!(is_user_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_user_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_user_id("4ldqpds"));
    }
}
