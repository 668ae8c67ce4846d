//! `Delta.diff`: the change that turns one document into another.
//!
//! Follows quill-delta's algorithm (a character diff where each embed stands
//! for one NUL, then attribute diffs over the equal runs), with the
//! `dissimilar` crate as the character diff, so results are valid but need
//! not match JavaScript's `fast-diff` choice byte for byte.

use super::iter::OpIter;
use super::op::{self, Insert, Op};
use super::{Delta, DeltaError, utf16};

/// Placeholder character for an embed in the character diff.
const EMBED_CHAR: char = '\0';

impl Delta {
    /// The op that turns document `self` into document `other`:
    /// `self.compose(&self.diff(other)?) == other` up to normal form. Both
    /// must be documents (inserts only).
    pub fn diff(&self, other: &Delta) -> Result<Delta, DeltaError> {
        let this_text = diff_text(self)?;
        let other_text = diff_text(other)?;
        let mut this_iter = OpIter::new(&self.ops);
        let mut other_iter = OpIter::new(&other.ops);
        let mut delta = Delta::new();
        for chunk in dissimilar::diff(&this_text, &other_text) {
            match chunk {
                dissimilar::Chunk::Insert(text) => {
                    let mut length = utf16::len(text);
                    while length > 0 {
                        let n = other_iter.peek_len().min(length);
                        delta.push(other_iter.next(n));
                        length -= n;
                    }
                }
                dissimilar::Chunk::Delete(text) => {
                    let mut length = utf16::len(text);
                    while length > 0 {
                        let n = this_iter.peek_len().min(length);
                        this_iter.next(n);
                        delta.delete(n);
                        length -= n;
                    }
                }
                dissimilar::Chunk::Equal(text) => {
                    let mut length = utf16::len(text);
                    while length > 0 {
                        let n = this_iter.peek_len().min(other_iter.peek_len()).min(length);
                        let this_op = this_iter.next(n);
                        let other_op = other_iter.next(n);
                        if same_insert(&this_op, &other_op) {
                            let attributes =
                                op::diff_attributes(this_op.attributes(), other_op.attributes());
                            delta.retain(n, attributes);
                        } else {
                            delta.push(other_op).delete(n);
                        }
                        length -= n;
                    }
                }
            }
        }
        delta.chop();
        Ok(delta)
    }
}

fn diff_text(delta: &Delta) -> Result<String, DeltaError> {
    let mut text = String::new();
    for (index, op) in delta.ops.iter().enumerate() {
        match op {
            Op::Insert {
                insert: Insert::Text(t),
                ..
            } => text.push_str(t),
            Op::Insert {
                insert: Insert::Embed(_),
                ..
            } => text.push(EMBED_CHAR),
            Op::Retain { .. } => {
                return Err(DeltaError::NotADocument {
                    index,
                    found: "retain",
                });
            }
            Op::Delete(_) => {
                return Err(DeltaError::NotADocument {
                    index,
                    found: "delete",
                });
            }
        }
    }
    Ok(text)
}

fn same_insert(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (
            Op::Insert {
                insert: Insert::Text(x),
                ..
            },
            Op::Insert {
                insert: Insert::Text(y),
                ..
            },
        ) => x == y,
        (
            Op::Insert {
                insert: Insert::Embed(x),
                ..
            },
            Op::Insert {
                insert: Insert::Embed(y),
                ..
            },
        ) => op::map_equal(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(v: serde_json::Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    #[test]
    fn diff_of_text_edits() {
        let a = d(json!([{"insert": "Hello 😀 world"}]));
        let b = d(json!([{"insert": "Hello 😀 brave world"}]));
        let change = a.diff(&b).unwrap();
        assert_eq!(change, d(json!([{"retain": 8}, {"insert": " brave"}])));
        assert_eq!(a.compose(&change), b);
    }

    #[test]
    fn diff_of_attributes_and_embeds() {
        let a = d(
            json!([{"insert": "ab"}, {"insert": {"image": "1"}}, {"insert": "c", "attributes": {"bold": true}}]),
        );
        let b = d(
            json!([{"insert": "a"}, {"insert": "b", "attributes": {"italic": true}}, {"insert": {"image": "2"}}, {"insert": "c"}]),
        );
        let change = a.diff(&b).unwrap();
        assert_eq!(a.compose(&change), b);
        assert_eq!(
            change,
            d(json!([
                {"retain": 1},
                {"retain": 1, "attributes": {"italic": true}},
                {"insert": {"image": "2"}},
                {"delete": 1},
                {"retain": 1, "attributes": {"bold": null}}
            ]))
        );
    }

    #[test]
    fn diff_needs_documents() {
        let doc = d(json!([{"insert": "a"}]));
        let op = d(json!([{"retain": 1}]));
        assert_eq!(
            doc.diff(&op),
            Err(DeltaError::NotADocument {
                index: 0,
                found: "retain"
            })
        );
        assert!(op.diff(&doc).is_err());
        assert_eq!(doc.diff(&doc).unwrap(), Delta::new());
    }
}
