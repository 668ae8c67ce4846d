//! The SSE parser: never panics, and the events it yields do not depend on
//! how the stream is cut into reads. Also checks that an encoded event parses
//! back to what was encoded.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use rt_protocol::sse::{self, ParsedEvent, Parser};

/// Everything a parser reports after a run of reads.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<ParsedEvent>,
    last_id: Option<String>,
    retry: Option<u64>,
}

fn parse(chunks: &[&[u8]]) -> Outcome {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.feed(chunk));
    }
    Outcome {
        events,
        last_id: parser.last_id().map(str::to_owned),
        retry: parser.retry(),
    }
}

/// An event to encode; the encoder's contract is exercised, not the stream's.
#[derive(Debug, Arbitrary)]
struct Encoded<'a> {
    event: Option<&'a str>,
    id: Option<&'a str>,
    data: &'a str,
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, stream)) = input.split_first() else {
        return;
    };
    let whole = parse(&[stream]);
    // Two reads, cut anywhere (the first byte picks where, scaled).
    let split = stream.len() * cut as usize / 255;
    let (a, b) = stream.split_at(split);
    assert_eq!(parse(&[a, b]), whole, "split at {split}");
    // One byte per read: every cut at once (CR at the end of a read, a BOM
    // or a UTF-8 sequence across reads).
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(parse(&bytes), whole, "byte by byte");

    let Ok(encoded) = Encoded::arbitrary_take_rest(Unstructured::new(stream)) else {
        return;
    };
    let frame = sse::encode_event(encoded.event, encoded.id, encoded.data);
    let got = parse(&[&frame]);
    let single_line = |s: &str| s.replace(['\r', '\n'], " ");
    let event = encoded.event.map(single_line).unwrap_or_default();
    let id = encoded
        .id
        .map(single_line)
        .filter(|id| !id.is_empty() && !id.contains('\0'));
    let data = encoded.data.replace("\r\n", "\n").replace('\r', "\n");
    let expected = ParsedEvent {
        event: if event.is_empty() {
            "message".into()
        } else {
            event
        },
        data,
        id: id.clone(),
    };
    assert_eq!(got.events, vec![expected], "frame {frame:?}");
    assert_eq!(got.last_id, id);
});
