//! Engine.IO v4 and Socket.IO v5 text packets (protocols.md §2.2–2.3).
//!
//! Pure encoding and decoding, for clients that speak the WebSocket
//! transport: one Engine.IO packet per text frame, Socket.IO packets inside
//! Engine.IO `4` message packets. Binary attachments are not supported: a
//! binary Socket.IO packet decodes to an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownEngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownSocketType(char),
    #[error("binary Socket.IO packets are not supported")]
    Binary,
    #[error("bad packet payload: {0}")]
    BadPayload(String),
}

/// An Engine.IO v4 packet (text form).
#[derive(Debug, Clone, PartialEq)]
pub enum EnginePacket {
    /// `0{…}`: the handshake.
    Open(OpenInfo),
    /// `1`
    Close,
    /// `2` (with `probe` during an upgrade).
    Ping(String),
    /// `3`
    Pong(String),
    /// `4…`: carries a Socket.IO packet.
    Message(String),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// The open packet's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: u64,
}

impl EnginePacket {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<EnginePacket, CodecError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(CodecError::Empty)?;
        let rest = chars.as_str();
        Ok(match kind {
            '0' => EnginePacket::Open(
                serde_json::from_str(rest).map_err(|e| CodecError::BadPayload(e.to_string()))?,
            ),
            '1' => EnginePacket::Close,
            '2' => EnginePacket::Ping(rest.to_string()),
            '3' => EnginePacket::Pong(rest.to_string()),
            '4' => EnginePacket::Message(rest.to_string()),
            '5' => EnginePacket::Upgrade,
            '6' => EnginePacket::Noop,
            other => return Err(CodecError::UnknownEngineType(other)),
        })
    }

    /// Encodes as one text frame.
    pub fn encode(&self) -> String {
        match self {
            EnginePacket::Open(info) => {
                format!("0{}", serde_json::to_string(info).unwrap_or_default())
            }
            EnginePacket::Close => "1".into(),
            EnginePacket::Ping(d) => format!("2{d}"),
            EnginePacket::Pong(d) => format!("3{d}"),
            EnginePacket::Message(d) => format!("4{d}"),
            EnginePacket::Upgrade => "5".into(),
            EnginePacket::Noop => "6".into(),
        }
    }
}

/// A Socket.IO v5 packet (text, no binary attachments).
#[derive(Debug, Clone, PartialEq)]
pub struct SocketPacket {
    pub kind: SocketKind,
    /// `/` unless another namespace.
    pub nsp: String,
    pub ack: Option<u64>,
    pub data: Option<Value>,
}

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
}

impl SocketKind {
    fn digit(self) -> char {
        match self {
            SocketKind::Connect => '0',
            SocketKind::Disconnect => '1',
            SocketKind::Event => '2',
            SocketKind::Ack => '3',
            SocketKind::ConnectError => '4',
        }
    }
}

impl SocketPacket {
    /// `CONNECT` to the default namespace (with an optional auth payload).
    pub fn connect(auth: Option<Value>) -> SocketPacket {
        SocketPacket {
            kind: SocketKind::Connect,
            nsp: "/".into(),
            ack: None,
            data: auth,
        }
    }

    /// An `EVENT` `[name, args…]` on the default namespace.
    pub fn event(name: &str, args: impl IntoIterator<Item = Value>) -> SocketPacket {
        let mut arr = vec![Value::String(name.to_string())];
        arr.extend(args);
        SocketPacket {
            kind: SocketKind::Event,
            nsp: "/".into(),
            ack: None,
            data: Some(Value::Array(arr)),
        }
    }

    /// The event name and arguments, for an `EVENT`.
    pub fn as_event(&self) -> Option<(&str, &[Value])> {
        if self.kind != SocketKind::Event {
            return None;
        }
        let arr = self.data.as_ref()?.as_array()?;
        let (name, args) = arr.split_first()?;
        Some((name.as_str()?, args))
    }

    /// Encodes as the payload of an Engine.IO message (without the `4`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        out.push(self.kind.digit());
        if self.nsp != "/" {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.ack {
            out.push_str(&id.to_string());
        }
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    /// Decodes the payload of an Engine.IO message.
    pub fn decode(text: &str) -> Result<SocketPacket, CodecError> {
        let mut chars = text.chars();
        let kind = match chars.next().ok_or(CodecError::Empty)? {
            '0' => SocketKind::Connect,
            '1' => SocketKind::Disconnect,
            '2' => SocketKind::Event,
            '3' => SocketKind::Ack,
            '4' => SocketKind::ConnectError,
            '5' | '6' => return Err(CodecError::Binary),
            other => return Err(CodecError::UnknownSocketType(other)),
        };
        let mut rest = chars.as_str();
        let mut nsp = "/".to_string();
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            nsp = rest[..end].to_string();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let ack = if digits > 0 {
            Some(
                rest[..digits]
                    .parse()
                    .map_err(|_| CodecError::BadPayload("ack id too large".into()))?,
            )
        } else {
            None
        };
        rest = &rest[digits..];
        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str(rest).map_err(|e| CodecError::BadPayload(e.to_string()))?)
        };
        // The payload shapes Socket.IO v5 allows. Checking them also keeps
        // decoding unambiguous: a bare number after the type (`0 1000`)
        // would re-encode as an ack id (`01000`).
        let shape_ok = match (kind, &data) {
            (SocketKind::Connect, None | Some(Value::Object(_))) => true,
            (SocketKind::Disconnect, None) => true,
            (SocketKind::Event, Some(Value::Array(a))) => a.first().is_some_and(Value::is_string),
            (SocketKind::Ack, Some(Value::Array(_))) => true,
            (SocketKind::ConnectError, Some(Value::Object(_) | Value::String(_))) => true,
            _ => false,
        };
        if !shape_ok {
            return Err(CodecError::BadPayload(
                match kind {
                    SocketKind::Connect => "a CONNECT payload must be an object",
                    SocketKind::Disconnect => "a DISCONNECT has no payload",
                    SocketKind::Event => "an event must be an array starting with its name",
                    SocketKind::Ack => "an ACK payload must be an array",
                    SocketKind::ConnectError => {
                        "a CONNECT_ERROR payload must be an object or a string"
                    }
                }
                .into(),
            ));
        }
        Ok(SocketPacket {
            kind,
            nsp,
            ack,
            data,
        })
    }
}

/// A Socket.IO event as one Engine.IO text frame: `42["name",…]`.
pub fn event_frame(name: &str, args: impl IntoIterator<Item = Value>) -> String {
    EnginePacket::Message(SocketPacket::event(name, args).encode()).encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_open_packet() {
        let p = EnginePacket::decode(
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        let EnginePacket::Open(info) = p else {
            panic!("not open: {p:?}")
        };
        assert_eq!(info.sid, "abc");
        assert_eq!(info.ping_interval, 25000);
        assert_eq!(info.upgrades, vec!["websocket"]);
    }

    #[test]
    fn engine_packets_round_trip() {
        for p in [
            EnginePacket::Close,
            EnginePacket::Ping(String::new()),
            EnginePacket::Ping("probe".into()),
            EnginePacket::Pong(String::new()),
            EnginePacket::Message("2[\"a\"]".into()),
            EnginePacket::Upgrade,
            EnginePacket::Noop,
        ] {
            assert_eq!(EnginePacket::decode(&p.encode()).unwrap(), p);
        }
        assert_eq!(EnginePacket::decode(""), Err(CodecError::Empty));
        assert_eq!(
            EnginePacket::decode("9"),
            Err(CodecError::UnknownEngineType('9'))
        );
    }

    #[test]
    fn encodes_classic_events() {
        assert_eq!(
            event_frame("mousemove", [json!({"x": 1, "y": 2, "drawing": true})]),
            r#"42["mousemove",{"drawing":true,"x":1,"y":2}]"#
        );
        assert_eq!(SocketPacket::connect(None).encode(), "0");
    }

    #[test]
    fn decodes_socket_packets() {
        let p = SocketPacket::decode(r#"0{"sid":"xyz"}"#).unwrap();
        assert_eq!(p.kind, SocketKind::Connect);
        assert_eq!(p.data, Some(json!({"sid": "xyz"})));

        let p = SocketPacket::decode(r#"2["moving",{"x":1}]"#).unwrap();
        let (name, args) = p.as_event().unwrap();
        assert_eq!(name, "moving");
        assert_eq!(args, &[json!({"x": 1})]);

        let p = SocketPacket::decode(r#"2/admin,12["a"]"#).unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.ack, Some(12));

        let p = SocketPacket::decode("1").unwrap();
        assert_eq!(p.kind, SocketKind::Disconnect);
        assert_eq!(p.data, None);

        let p = SocketPacket::decode(r#"4{"message":"no"}"#).unwrap();
        assert_eq!(p.kind, SocketKind::ConnectError);
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(SocketPacket::decode(""), Err(CodecError::Empty));
        assert_eq!(
            SocketPacket::decode(r#"51-["a",{"_placeholder":true,"num":0}]"#),
            Err(CodecError::Binary)
        );
        assert!(SocketPacket::decode("2{").is_err());
        assert!(SocketPacket::decode("2{}").is_err());
        assert!(SocketPacket::decode("2[]").is_err());
        assert!(SocketPacket::decode("2[1]").is_err());
        assert!(SocketPacket::decode("299999999999999999999999[\"a\"]").is_err());
        assert_eq!(
            SocketPacket::decode("7"),
            Err(CodecError::UnknownSocketType('7'))
        );
    }

    #[test]
    fn payload_shapes_are_checked_so_decoding_is_unambiguous() {
        // Found by the `engineio` fuzz target (fuzz/corpus/engineio/
        // regression-connect-number): `0 1000` decoded as a CONNECT with data
        // 1000, which encodes as `01000`, a CONNECT with ack id 1000.
        assert!(SocketPacket::decode("0 1000").is_err());
        assert!(SocketPacket::decode("3 5").is_err());
        assert!(SocketPacket::decode("0[1]").is_err());
        assert!(SocketPacket::decode("1{}").is_err());
        assert!(SocketPacket::decode("3{}").is_err());
        assert!(SocketPacket::decode("4 7").is_err());
        for ok in [
            "0",
            r#"0{"token":"t"}"#,
            "1",
            "31[]",
            r#"3/a,2["x",1]"#,
            r#"4"no""#,
        ] {
            let p = SocketPacket::decode(ok).unwrap();
            assert_eq!(SocketPacket::decode(&p.encode()), Ok(p), "{ok}");
        }
    }
}
