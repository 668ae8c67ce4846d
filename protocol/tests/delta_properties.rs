//! Property tests of the rich-text Delta type and the chunked Document.

use proptest::prelude::*;
use rt_protocol::delta::{Attributes, Delta, Document, Op};
use serde_json::{Value, json};

const PIECES: &[&str] = &[
    "a", "b", " ", "\n", "é", "中", "😀", "👍🏽", "e\u{301}", "xyz",
];

fn attrs(choice: u8) -> Option<Attributes> {
    let value = match choice % 8 {
        0..=2 => return None,
        3 => json!({"bold": true}),
        4 => json!({"bold": null}),
        5 => json!({"color": "red"}),
        6 => json!({"color": "blue", "italic": true}),
        _ => json!({"link": null, "size": 12}),
    };
    match value {
        Value::Object(map) => Some(map),
        _ => unreachable!("object literal"),
    }
}

/// Attributes as documents hold them: no `null` values (a `null` in a
/// document is legal but makes `invert` and `diff` lossy, in JavaScript too).
fn doc_attrs(choice: u8) -> Option<Attributes> {
    attrs(choice).filter(|a| a.values().all(|v| !v.is_null()))
}

fn embed(choice: u8) -> serde_json::Map<String, Value> {
    let value = if choice.is_multiple_of(2) {
        json!({"image": "a.png"})
    } else {
        json!({"formula": "x"})
    };
    value.as_object().cloned().unwrap_or_default()
}

fn text(seeds: &[u8]) -> String {
    seeds
        .iter()
        .map(|s| PIECES[*s as usize % PIECES.len()])
        .collect()
}

/// A recipe for an op, read against a document so that it fits it.
#[derive(Debug, Clone)]
enum Step {
    Insert(Vec<u8>, u8),
    Embed(u8, u8),
    Retain(u16, u8),
    Delete(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (prop::collection::vec(any::<u8>(), 1..5), any::<u8>()).prop_map(|(t, a)| Step::Insert(t, a)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(e, a)| Step::Embed(e, a)),
        3 => (any::<u16>(), any::<u8>()).prop_map(|(n, a)| Step::Retain(n, a)),
        2 => any::<u16>().prop_map(Step::Delete),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 0..8)
}

fn doc_strategy() -> impl Strategy<Value = Delta> {
    prop::collection::vec(
        prop_oneof![
            4 => (prop::collection::vec(any::<u8>(), 1..8), any::<u8>()).prop_map(|(t, a)| Step::Insert(t, a)),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(e, a)| Step::Embed(e, a)),
        ],
        0..8,
    )
    .prop_map(|steps| {
        let mut doc = Delta::new();
        for step in steps {
            match step {
                Step::Insert(t, a) => doc.insert(text(&t), doc_attrs(a)),
                Step::Embed(e, a) => doc.insert(embed(e), doc_attrs(a)),
                _ => unreachable!("documents are inserts"),
            };
        }
        doc
    })
}

/// Positions of `doc` that do not split a surrogate pair (`valid[len]` too).
fn valid_positions(doc: &Delta) -> Vec<bool> {
    let units: Vec<u16> = Document::from_delta(doc)
        .unwrap()
        .text()
        .encode_utf16()
        .collect();
    (0..=units.len())
        .map(|p| {
            p == 0
                || p == units.len()
                || !((0xD800..0xDC00).contains(&units[p - 1])
                    && (0xDC00..0xE000).contains(&units[p]))
        })
        .collect()
}

/// Builds an op on document `doc` from a recipe: retains and deletes stay in
/// the document and end on character boundaries.
fn build(doc: &Delta, steps: &[Step]) -> Delta {
    let valid = valid_positions(doc);
    let len = valid.len() - 1;
    let mut op = Delta::new();
    let mut pos = 0;
    for step in steps {
        match step {
            Step::Insert(t, a) => {
                op.insert(text(t), attrs(*a));
            }
            Step::Embed(e, a) => {
                op.insert(embed(*e), attrs(*a));
            }
            Step::Retain(n, _) | Step::Delete(n) => {
                if pos == len {
                    continue;
                }
                let mut k = 1 + *n as usize % (len - pos);
                while !valid[pos + k] {
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

fn apply(doc: &Delta, op: &Delta) -> Delta {
    let mut document = Document::from_delta(doc).unwrap();
    document.apply(op).unwrap();
    document.to_delta()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn transform_converges(doc in doc_strategy(), a in steps(), b in steps()) {
        let a = build(&doc, &a);
        let b = build(&doc, &b);
        // `a` is committed first: b' = a.transform(b, true), a' = b.transform(a, false).
        let b_prime = a.transform(&b, true);
        let a_prime = b.transform(&a, false);
        let left = doc.compose(&a).compose(&b_prime);
        let right = doc.compose(&b).compose(&a_prime);
        prop_assert_eq!(&left, &right);
        prop_assert_eq!(apply(&apply(&doc, &a), &b_prime), left);
        // Also as ops: a∘b' and b∘a' do the same to the document.
        prop_assert_eq!(doc.compose(&a.compose(&b_prime)), doc.compose(&b.compose(&a_prime)));
    }

    #[test]
    fn compose_is_associative(doc in doc_strategy(), a in steps(), b in steps(), c in steps()) {
        let a = build(&doc, &a);
        let doc_a = doc.compose(&a);
        let b = build(&doc_a, &b);
        let doc_ab = doc_a.compose(&b);
        let c = build(&doc_ab, &c);
        let left = a.compose(&b).compose(&c);
        let right = a.compose(&b.compose(&c));
        prop_assert_eq!(doc.compose(&left), doc.compose(&right));
        prop_assert_eq!(doc.compose(&left), doc_ab.compose(&c));
    }

    #[test]
    fn apply_of_compose_is_apply_of_apply(doc in doc_strategy(), a in steps(), b in steps()) {
        let a = build(&doc, &a);
        let b = build(&doc.compose(&a), &b);
        prop_assert_eq!(doc.compose(&a.compose(&b)), doc.compose(&a).compose(&b));
        prop_assert_eq!(apply(&doc, &a.compose(&b)), apply(&apply(&doc, &a), &b));
    }

    #[test]
    fn invert_undoes(doc in doc_strategy(), a in steps()) {
        let a = build(&doc, &a);
        let inverse = a.invert(&doc);
        prop_assert_eq!(doc.compose(&a).compose(&inverse), doc.clone());
        prop_assert_eq!(apply(&apply(&doc, &a), &inverse), doc);
    }

    #[test]
    fn document_apply_equals_compose(doc in doc_strategy(), a in steps()) {
        let a = build(&doc, &a);
        let mut document = Document::from_delta(&doc).unwrap();
        prop_assert_eq!(document.to_delta(), doc.clone());
        document.apply(&a).unwrap();
        let expected = doc.compose(&a);
        prop_assert_eq!(document.len_utf16(), expected.len());
        prop_assert_eq!(document.to_delta(), expected);
    }

    #[test]
    fn transform_position_follows_the_character(doc in doc_strategy(), a in steps(), p in any::<u16>()) {
        let a = build(&doc, &a);
        let before: Vec<u16> = Document::from_delta(&doc).unwrap().text().encode_utf16().collect();
        prop_assume!(!before.is_empty());
        let p = p as usize % before.len();
        let after: Vec<u16> = Document::from_delta(&doc.compose(&a)).unwrap().text().encode_utf16().collect();
        // Is the unit at p deleted by `a`?
        let mut offset = 0;
        let mut deleted = false;
        for op in a.ops() {
            match op {
                Op::Delete(n) => {
                    deleted |= (offset..offset + n).contains(&p);
                    offset += n;
                }
                Op::Retain { n, .. } => offset += n,
                Op::Insert { .. } => {}
            }
        }
        let moved = a.transform_position(p, false);
        let caret = a.transform_position(p, true);
        prop_assert!(caret <= moved);
        if !deleted {
            prop_assert_eq!(before[p], after[moved]);
        }
        prop_assert!(moved <= after.len());
    }

    #[test]
    fn diff_turns_one_document_into_the_other(a in doc_strategy(), b in doc_strategy()) {
        let change = a.diff(&b).unwrap();
        prop_assert_eq!(apply(&a, &change), b.clone());
        prop_assert_eq!(a.compose(&change), b);
    }

    #[test]
    fn wire_form_round_trips(doc in doc_strategy(), a in steps()) {
        let a = build(&doc, &a);
        prop_assert_eq!(Delta::from_value(&a.to_value()).unwrap(), a.clone());
        prop_assert_eq!(Delta::from_value(&a.ops_value()).unwrap(), a);
    }
}

/// Long documents span many chunks: random edits anywhere, including ones
/// that cross chunk boundaries, must still equal compose.
fn long_doc() -> impl Strategy<Value = Delta> {
    (prop::collection::vec(
        (prop::collection::vec(any::<u8>(), 50..400), any::<u8>()),
        10..30,
    ))
    .prop_map(|runs| {
        let mut doc = Delta::new();
        for (t, a) in runs {
            doc.insert(text(&t), attrs(a));
        }
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn long_document_edits_equal_compose(doc in long_doc(), ops in prop::collection::vec(steps(), 1..12)) {
        let mut document = Document::from_delta(&doc).unwrap();
        let mut expected = doc;
        for recipe in &ops {
            let op = build(&expected, recipe);
            document.apply(&op).unwrap();
            expected = expected.compose(&op);
            prop_assert_eq!(document.len_utf16(), expected.len());
        }
        prop_assert_eq!(document.to_delta(), expected);
    }
}
