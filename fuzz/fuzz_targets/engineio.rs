//! The Engine.IO / Socket.IO text codec: decoding never panics, and every
//! packet that decodes encodes to a frame that decodes to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_protocol::engineio::{EnginePacket, SocketPacket};
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    // Frames are WebSocket text or long-polling payload text: UTF-8.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(packet) = EnginePacket::decode(text) {
        let frame = packet.encode();
        assert_eq!(
            EnginePacket::decode(&frame).as_ref(),
            Ok(&packet),
            "engine frame {text:?} re-encoded as {frame:?}"
        );
        if let EnginePacket::Message(payload) = &packet {
            socket_round_trip(payload);
        }
    }
    socket_round_trip(text);
});

fn socket_round_trip(text: &str) {
    if let Ok(packet) = SocketPacket::decode(text) {
        let frame = packet.encode();
        let back = SocketPacket::decode(&frame)
            .unwrap_or_else(|e| panic!("socket packet {text:?} re-encoded as {frame:?}: {e}"));
        assert_eq!(
            (back.kind, &back.nsp, back.ack),
            (packet.kind, &packet.nsp, packet.ack),
            "socket packet {text:?} re-encoded as {frame:?}"
        );
        assert!(
            same_json(back.data.as_ref(), packet.data.as_ref()),
            "socket packet {text:?} re-encoded as {frame:?}"
        );
        // The helpers callers use on a decoded packet.
        let _ = packet.as_event();
    }
}

/// JSON equality, except that floats may differ in their last bit: serde_json's
/// default parser (without `float_roundtrip`, as rt builds it) can round a long
/// literal such as `2500055555555555555540` one unit off, and its own output
/// of that float then parses to the neighbour. A number stays a number, an
/// integer an integer.
fn same_json(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(a, b),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
