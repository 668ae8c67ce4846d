//! ShareDB message decoding: any text frame is parsed and validated without
//! panicking; a rejected request gets an error echo that is itself valid
//! JSON; an accepted op, as the server broadcasts it, decodes to the same op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_protocol::sharedb::{self, Request};

fuzz_target!(|input: &[u8]| {
    // WebSocket text frames are UTF-8 (the WebSocket layer rejects others).
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let frame = match sharedb::parse_frame(text) {
        Ok(frame) => frame,
        Err(err) => {
            let reply = sharedb::frame_error_reply(&err);
            assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok());
            return;
        }
    };
    match sharedb::parse_request(&frame) {
        Err(err) => {
            let echo = sharedb::error_echo(&frame.raw, &err);
            let echoed = sharedb::parse_frame(&echo).expect("an error echo is a JSON object");
            assert!(echoed.raw.contains_key("error"));
        }
        Ok(Request::Op(submit)) => {
            let v = submit.v.unwrap_or(0);
            let wire =
                sharedb::op_message(&submit.c, &submit.d, v, "src", submit.seq, &submit.body);
            let again = sharedb::parse_frame(&wire).expect("an op message is a JSON object");
            match sharedb::parse_request(&again) {
                Ok(Request::Op(back)) => {
                    let (field, value) = submit.body.wire_field();
                    let (back_field, back_value) = back.body.wire_field();
                    assert_eq!(back_field, field, "broadcast {wire}");
                    assert!(rt_fuzz::same_value(&back_value, &value), "broadcast {wire}");
                    assert_eq!((back.c, back.d, back.seq), (submit.c, submit.d, submit.seq));
                }
                other => panic!("the broadcast {wire} of an accepted op decodes to {other:?}"),
            }
        }
        Ok(_) => {}
    }
});
