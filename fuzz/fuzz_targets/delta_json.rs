//! Deltas from raw wire JSON, as clients send them: `[doc, op, other]`.
//! Parsing rejects malformed ops with an error; the Document refuses ops
//! that do not fit and is unchanged when it does; compose, transform,
//! transform_position and invert accept whatever parses (as JavaScript does)
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_protocol::delta::{Delta, Document};
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let Ok(Value::Array(values)) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let deltas: Vec<Delta> = values
        .iter()
        .filter_map(|v| Delta::from_value(v).ok())
        .collect();
    for delta in &deltas {
        // The wire form parses back to the same delta (floats up to the
        // last bit: see rt_fuzz::same_value).
        let back = Delta::from_value(&delta.to_value()).expect("the wire form parses");
        assert!(rt_fuzz::same_value(&back.to_value(), &delta.to_value()));
    }
    let [doc, op, rest @ ..] = deltas.as_slice() else {
        return;
    };
    let other = rest.first().unwrap_or(op);

    // Whatever parses goes through the algorithms without a panic.
    let composed = doc.compose(op);
    let _ = op.transform(other, true);
    let _ = other.transform(op, false);
    let _ = op.compose(other);
    let _ = op.invert(doc);
    let _ = op.transform_position(doc.len(), true);
    let _ = doc.diff(&composed);

    let Ok(mut document) = Document::from_delta(doc) else {
        assert!(!doc.is_document() || doc.ops().iter().any(|o| o.is_empty()));
        return;
    };
    let before = document.to_delta();
    match document.apply(op) {
        Err(_) => assert_eq!(
            document.to_delta(),
            before,
            "a refused op changed the document"
        ),
        Ok(()) => {
            // Document::apply is compose, in normal form.
            let expected = Document::from_delta(&before.compose(op)).map(|d| d.to_delta());
            assert_eq!(Ok(document.to_delta()), expected, "op {op:?}");
        }
    }
});
