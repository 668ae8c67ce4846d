//! The request sniffer, which reads a connection's first bytes before hyper
//! does: never panics, a stream verdict names a stream path and a head
//! within the bytes, and reading the same bytes in smaller pieces never
//! reaches a different stream verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_server::fuzzing::{HEAD_LIMIT, Sniffed, sniff};

fuzz_target!(|input: &[u8]| {
    // The server stops sniffing at the limit; beyond it hyper reads.
    let input = &input[..input.len().min(HEAD_LIMIT)];
    let whole = sniff(input);
    if let Sniffed::Stream { path, head_len } = &whole {
        assert!(*head_len <= input.len());
        assert!(
            ["/login", "/ticker/stream", "/stats"].contains(&path.as_str()),
            "{path}"
        );
        assert!(input.starts_with(b"GET "));
        // Bytes after the head (a pipelined request) do not change the verdict.
        assert_eq!(sniff(&input[..*head_len]), whole);
    }
    // Shorter reads (every one for small inputs, a spread for large ones,
    // to keep executions fast): a prefix may be undecided or for hyper (a
    // read cut short only costs the lean path), but it never picks another
    // stream, and once the head is in, it is the same stream.
    let step = (input.len() / 256).max(1);
    for end in (0..input.len()).step_by(step) {
        let prefix = sniff(&input[..end]);
        match (&prefix, &whole) {
            (Sniffed::Stream { .. }, _) => assert_eq!(prefix, whole, "prefix of {end} bytes"),
            (_, Sniffed::Stream { head_len, .. }) => {
                assert!(end < *head_len, "prefix of {end} bytes: {prefix:?}")
            }
            _ => {}
        }
    }
});
