//! `Delta.compose` of quill-delta 4.2.2.

use super::iter::{Kind, OpIter};
use super::op::{self, Op};
use super::{Delta, Pushed};

impl Delta {
    /// The delta equivalent to applying `self` and then `other`. Applying an
    /// op to a document is `doc.compose(op)` (rich-text `apply`).
    ///
    /// Reproduces JavaScript exactly, including its handling of inputs that
    /// are not in normal form, retains past the end (copied into the result)
    /// and zero-length ops.
    pub fn compose(&self, other: &Delta) -> Delta {
        let mut this_iter = OpIter::new(&self.ops);
        let mut other_iter = OpIter::new(&other.ops);
        let mut ops = Vec::new();
        // Fast path: copy the leading inserts that a leading plain retain of
        // `other` keeps whole (appended as they are, without normalizing).
        if let Some(Op::Retain {
            n: first_retain,
            attributes: None,
        }) = other_iter.peek()
        {
            let mut first_left = *first_retain;
            while this_iter.peek_kind() == Kind::Insert && this_iter.peek_len() <= first_left {
                first_left -= this_iter.peek_len();
                ops.push(this_iter.next(0));
            }
            if first_retain - first_left > 0 {
                other_iter.next(first_retain - first_left);
            }
        }
        let mut delta = Delta::from_ops(ops);
        while this_iter.has_next() || other_iter.has_next() {
            if other_iter.peek_kind() == Kind::Insert {
                delta.push(other_iter.next(0));
            } else if this_iter.peek_kind() == Kind::Delete {
                delta.push(this_iter.next(0));
            } else {
                let length = this_iter.peek_len().min(other_iter.peek_len());
                let this_op = this_iter.next(length);
                let other_op = other_iter.next(length);
                match other_op {
                    Op::Retain {
                        attributes: other_attrs,
                        ..
                    } => {
                        let keep_null = this_op.is_retain();
                        let attributes = op::compose_attributes(
                            this_op.attributes(),
                            other_attrs.as_ref(),
                            keep_null,
                        );
                        let new_op = match this_op {
                            Op::Insert { insert, .. } => Op::Insert { insert, attributes },
                            _ => Op::Retain {
                                n: length,
                                attributes,
                            },
                        };
                        let pushed = delta.push_tracked(new_op);
                        // The rest of `other` is one big retain: copy the rest
                        // of `self` as it is.
                        if !other_iter.has_next() && pushed != Pushed::Elsewhere {
                            let rest = this_iter.rest();
                            delta.concat(rest).chop();
                            return delta;
                        }
                    }
                    Op::Delete(_) if this_op.is_retain() => {
                        delta.push(other_op);
                    }
                    // An insert then deleted: both vanish.
                    _ => {}
                }
            }
        }
        delta.chop();
        delta
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
    fn insert_then_insert() {
        let a = d(json!([{"insert": "A"}]));
        let b = d(json!([{"insert": "B"}]));
        assert_eq!(a.compose(&b), d(json!([{"insert": "BA"}])));
    }

    #[test]
    fn insert_then_retain_with_attributes() {
        let a = d(json!([{"insert": "A"}]));
        let b =
            d(json!([{"retain": 1, "attributes": {"bold": true, "color": "red", "font": null}}]));
        assert_eq!(
            a.compose(&b),
            d(json!([{"insert": "A", "attributes": {"bold": true, "color": "red"}}]))
        );
    }

    #[test]
    fn retain_then_retain_keeps_nulls() {
        let a = d(json!([{"retain": 1, "attributes": {"color": "blue"}}]));
        let b =
            d(json!([{"retain": 1, "attributes": {"bold": true, "color": "red", "font": null}}]));
        assert_eq!(
            a.compose(&b),
            d(json!([{"retain": 1, "attributes": {"bold": true, "color": "red", "font": null}}]))
        );
    }

    #[test]
    fn insert_then_delete_vanishes() {
        let a = d(json!([{"insert": "A"}]));
        let b = d(json!([{"delete": 1}]));
        assert_eq!(a.compose(&b), Delta::new());
    }

    #[test]
    fn delete_then_insert_puts_the_insert_first() {
        let a = d(json!([{"delete": 1}]));
        let b = d(json!([{"insert": "B"}]));
        assert_eq!(a.compose(&b), d(json!([{"insert": "B"}, {"delete": 1}])));
    }

    #[test]
    fn retain_past_the_end_is_copied_like_javascript() {
        // §5.4: apply("ab", [retain 5, ins x]) = [ins ab, retain 3, ins x]
        let doc = d(json!([{"insert": "ab"}]));
        let op = d(json!([{"retain": 5}, {"insert": "x"}]));
        assert_eq!(
            doc.compose(&op),
            d(json!([{"insert": "ab"}, {"retain": 3}, {"insert": "x"}]))
        );
    }

    #[test]
    fn splitting_a_surrogate_pair_keeps_lengths() {
        // JavaScript gives "\ud83dx\ude00"; each half becomes U+FFFD here.
        let doc = d(json!([{"insert": "😀"}]));
        let op = d(json!([{"retain": 1}, {"insert": "x"}]));
        let out = doc.compose(&op);
        assert_eq!(out, d(json!([{"insert": "\u{FFFD}x\u{FFFD}"}])));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn fast_path_copies_inserts_without_merging() {
        // Non-normal input stays non-normal, as in JavaScript.
        let a = Delta::from_ops(vec![Op::text("a"), Op::text("b"), Op::text("c")]);
        let b = d(json!([{"retain": 2}, {"delete": 1}]));
        assert_eq!(
            a.compose(&b),
            Delta::from_ops(vec![Op::text("a"), Op::text("b")])
        );
    }

    #[test]
    fn trailing_retain_copies_the_rest() {
        let a = d(json!([{"insert": "abc", "attributes": {"bold": true}}, {"insert": "def"}]));
        let b = d(json!([{"retain": 1}, {"retain": 1, "attributes": {"bold": null}}]));
        assert_eq!(
            a.compose(&b),
            d(json!([
                {"insert": "a", "attributes": {"bold": true}},
                {"insert": "b"},
                {"insert": "c", "attributes": {"bold": true}},
                {"insert": "def"}
            ]))
        );
    }

    #[test]
    fn rest_is_copied_raw_after_a_merge_into_an_empty_op() {
        // quill-delta: [abc, d] ∘ [ins "", retain 2] = [abc, d] (the rest is
        // concatenated as is once `other` is used up).
        let a = Delta::from_ops(vec![Op::text("abc"), Op::text("d")]);
        let b = Delta::from_ops(vec![Op::text(""), Op::retain(2)]);
        assert_eq!(a.compose(&b), a);
    }
}
