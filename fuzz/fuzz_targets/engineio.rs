//! The Engine.IO / Socket.IO text codec: decoding never panics, and every
//! packet that decodes encodes to a frame that decodes to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_protocol::engineio::{EnginePacket, SocketPacket};

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
            rt_fuzz::same_json(back.data.as_ref(), packet.data.as_ref()),
            "socket packet {text:?} re-encoded as {frame:?}"
        );
        // The helpers callers use on a decoded packet.
        let _ = packet.as_event();
    }
}
