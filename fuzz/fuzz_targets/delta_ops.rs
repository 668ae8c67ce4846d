//! Rich-text Delta OT on valid inputs built from the fuzzer's bytes: a
//! document and ops that fit it. Asserts the OT properties the editor
//! relies on:
//! - both sides of a transform converge (a∘b' == b∘a');
//! - compose agrees with sequential apply, on Deltas and on the chunked
//!   Document;
//! - invert undoes;
//! - transform_position stays in the document;
//! - an op that does not fit (past the end) is rejected and changes nothing.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rt_protocol::delta::{Attributes, Delta, Document, Op};
use serde_json::{Map, Value, json};

/// Ops per delta and characters per insert: small, so that executions stay
/// fast; the algorithms' cases show up at these sizes.
const MAX_STEPS: usize = 12;
const MAX_CHARS: usize = 24;

#[derive(Debug, Arbitrary)]
enum Step {
    Insert(String, u8),
    Embed(u8, u8),
    Retain(u16, u8),
    Delete(u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    doc: Vec<(String, u8, bool)>,
    a: Vec<Step>,
    b: Vec<Step>,
    c: Vec<Step>,
    position: u16,
    priority: bool,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Attributes an op may carry (`null` removes one).
fn attrs(choice: u8) -> Option<Attributes> {
    let value = match choice % 8 {
        0..=2 => return None,
        3 => json!({"bold": true}),
        4 => json!({"bold": null}),
        5 => json!({"color": "red"}),
        6 => json!({"color": "blue", "italic": true}),
        _ => json!({"link": null, "size": 12}),
    };
    Some(object(value))
}

/// Attributes as a document holds them: no `null` values.
fn doc_attrs(choice: u8) -> Option<Attributes> {
    attrs(choice).filter(|a| a.values().all(|v| !v.is_null()))
}

fn embed(choice: u8) -> Map<String, Value> {
    if choice.is_multiple_of(2) {
        object(json!({"image": "a.png"}))
    } else {
        object(json!({"formula": "x"}))
    }
}

fn short(text: &str) -> String {
    text.chars().take(MAX_CHARS).collect()
}

fn document(pieces: &[(String, u8, bool)]) -> Delta {
    let mut doc = Delta::new();
    for (text, a, is_embed) in pieces.iter().take(MAX_STEPS) {
        if *is_embed {
            doc.insert(embed(*a), doc_attrs(*a));
        } else {
            doc.insert(short(text), doc_attrs(*a));
        }
    }
    doc
}

/// UTF-16 units of a document's text (embeds are one unit).
fn units(doc: &Delta) -> Vec<u16> {
    let document = Document::from_delta(doc).expect("built documents are valid");
    document.text().encode_utf16().collect()
}

/// Builds an op that fits `doc`: retains and deletes stay inside it and end
/// on character boundaries (never between the halves of a surrogate pair).
fn build(doc: &Delta, steps: &[Step]) -> Delta {
    let units = units(doc);
    let len = units.len();
    let boundary = |p: usize| {
        p == 0
            || p == len
            || !((0xD800..0xDC00).contains(&units[p - 1]) && (0xDC00..0xE000).contains(&units[p]))
    };
    let mut op = Delta::new();
    let mut pos = 0;
    for step in steps.iter().take(MAX_STEPS) {
        match step {
            Step::Insert(text, a) => {
                op.insert(short(text), attrs(*a));
            }
            Step::Embed(e, a) => {
                op.insert(embed(*e), attrs(*a));
            }
            Step::Retain(n, _) | Step::Delete(n) => {
                if pos == len {
                    continue;
                }
                let mut k = 1 + *n as usize % (len - pos);
                while !boundary(pos + k) {
                    k += 1;
                }
                match step {
                    Step::Retain(_, a) => op.retain(k, attrs(*a)),
                    _ => op.delete(k),
                };
                pos += k;
            }
        }
    }
    op.chop();
    op
}

/// Applies through the chunked Document the server stores documents in.
fn apply(doc: &Delta, op: &Delta) -> Delta {
    let mut document = Document::from_delta(doc).expect("built documents are valid");
    document.apply(op).expect("an op built to fit is accepted");
    document.to_delta()
}

fuzz_target!(|input: Input| {
    let doc = document(&input.doc);
    let document = Document::from_delta(&doc).expect("built documents are valid");
    assert_eq!(document.to_delta(), doc);
    let a = build(&doc, &input.a);
    let b = build(&doc, &input.b);

    // Apply: the Document and compose agree.
    let doc_a = doc.compose(&a);
    assert_eq!(apply(&doc, &a), doc_a);

    // Transform: `a` commits first; both orders reach the same document.
    let b_prime = a.transform(&b, true);
    let a_prime = b.transform(&a, false);
    let left = doc_a.compose(&b_prime);
    let right = doc.compose(&b).compose(&a_prime);
    assert_eq!(left, right, "a={a:?} b={b:?}");
    assert_eq!(apply(&apply(&doc, &a), &b_prime), left);
    assert_eq!(apply(&apply(&doc, &b), &a_prime), left);
    assert_eq!(
        doc.compose(&a.compose(&b_prime)),
        doc.compose(&b.compose(&a_prime))
    );

    // Compose agrees with sequential apply.
    let c = build(&doc_a, &input.c);
    let ac = a.compose(&c);
    assert_eq!(doc.compose(&ac), doc_a.compose(&c));
    assert_eq!(apply(&doc, &ac), apply(&doc_a, &c));

    // Invert undoes.
    assert_eq!(doc_a.compose(&a.invert(&doc)), doc);

    // A position moves with the text and stays inside the new document.
    let p = input.position as usize % (doc.len() + 1);
    assert!(a.transform_position(p, input.priority) <= doc_a.len());

    // An op reaching past the end is refused, and the document is unchanged.
    let mut document = Document::from_delta(&doc_a).expect("valid");
    let mut past_end = Delta::new();
    past_end
        .retain(doc_a.len(), None)
        .insert("x", None)
        .delete(1 + input.position as usize % 3);
    assert!(document.apply(&past_end).is_err());
    assert_eq!(document.to_delta(), doc_a);
    let zero = Delta::from_ops(vec![Op::retain(0)]);
    assert!(document.apply(&zero).is_err());
    assert_eq!(document.to_delta(), doc_a);
});
