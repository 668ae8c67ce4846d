//! `Delta.transform` and `Delta.transformPosition` of quill-delta 4.2.2.

use super::Delta;
use super::iter::{Kind, OpIter};
use super::op::{self, Op};

impl Delta {
    /// Rebases `other` onto `self` (JavaScript `self.transform(other, priority)`):
    /// both were made against the same document; the result applies after
    /// `self`. With `priority`, `self` is taken to have happened first, so at
    /// an insert–insert tie `self`'s insert comes first and `self`'s
    /// attribute values win.
    ///
    /// rich-text's `transform(a, b, side)` is `b.transform(a, side == "left")`;
    /// a ShareDB server rebases an incoming op with
    /// `committed.transform(&incoming, true)`.
    pub fn transform(&self, other: &Delta, priority: bool) -> Delta {
        let mut this_iter = OpIter::new(&self.ops);
        let mut other_iter = OpIter::new(&other.ops);
        let mut delta = Delta::new();
        // JavaScript walks on until both are exhausted, but once `other` is,
        // every further step pushes a plain retain that the final `chop`
        // drops: stopping there gives the same result without walking the
        // rest of `self` (a whole document, for a server rebasing an op).
        while other_iter.has_next() {
            if this_iter.peek_kind() == Kind::Insert
                && (priority || other_iter.peek_kind() != Kind::Insert)
            {
                let len = this_iter.next(0).len();
                delta.retain(len, None);
            } else if other_iter.peek_kind() == Kind::Insert {
                delta.push(other_iter.next(0));
            } else {
                let length = this_iter.peek_len().min(other_iter.peek_len());
                let this_op = this_iter.next(length);
                let other_op = other_iter.next(length);
                if matches!(this_op, Op::Delete(n) if n > 0) {
                    // Our delete makes their delete redundant or removes their retain.
                    continue;
                } else if matches!(other_op, Op::Delete(n) if n > 0) {
                    delta.push(other_op);
                } else {
                    let attributes = op::transform_attributes(
                        this_op.attributes(),
                        other_op.attributes(),
                        priority,
                    );
                    delta.retain(length, attributes);
                }
            }
        }
        delta.chop();
        delta
    }

    /// Where position `index` moves to when `self` is applied (JavaScript
    /// `transformPosition`). Without `priority` a position exactly at an
    /// insert moves past it; with `priority` it stays in front.
    ///
    /// rich-text's `transformCursor(i, op, own)` is
    /// `op.transform_position(i, !own)`.
    pub fn transform_position(&self, index: usize, priority: bool) -> usize {
        let mut index = index;
        let mut offset = 0usize;
        for op in &self.ops {
            if offset > index {
                break;
            }
            let length = op.len();
            match op {
                Op::Delete(_) => {
                    index -= length.min(index - offset);
                    continue;
                }
                Op::Insert { .. } if offset < index || !priority => index += length,
                _ => {}
            }
            offset += length;
        }
        index
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
    fn insert_insert_tie_goes_to_priority() {
        let a = d(json!([{"insert": "A"}]));
        let b = d(json!([{"insert": "B"}]));
        assert_eq!(
            a.transform(&b, true),
            d(json!([{"retain": 1}, {"insert": "B"}]))
        );
        assert_eq!(a.transform(&b, false), d(json!([{"insert": "B"}])));
    }

    #[test]
    fn rich_text_left_side_check() {
        // §5.4: rich-text transform([ins A], [ins B], 'left') = [retain 1, ins A]
        // which is [ins B].transform([ins A], true).
        let a = d(json!([{"insert": "A"}]));
        let b = d(json!([{"insert": "B"}]));
        assert_eq!(
            b.transform(&a, true),
            d(json!([{"retain": 1}, {"insert": "A"}]))
        );
    }

    #[test]
    fn delete_over_delete_vanishes() {
        let a = d(json!([{"delete": 1}]));
        let b = d(json!([{"delete": 1}]));
        assert_eq!(a.transform(&b, false), Delta::new());
    }

    #[test]
    fn insert_against_delete() {
        let a = d(json!([{"insert": "A"}]));
        let b = d(json!([{"delete": 1}]));
        assert_eq!(
            a.transform(&b, true),
            d(json!([{"retain": 1}, {"delete": 1}]))
        );
    }

    #[test]
    fn attribute_conflicts_follow_priority() {
        let a = d(json!([{"retain": 1, "attributes": {"bold": true, "color": "red"}}]));
        let b = d(json!([{"retain": 1, "attributes": {"bold": false, "font": "serif"}}]));
        assert_eq!(
            a.transform(&b, true),
            d(json!([{"retain": 1, "attributes": {"font": "serif"}}]))
        );
        assert_eq!(
            a.transform(&b, false),
            d(json!([{"retain": 1, "attributes": {"bold": false, "font": "serif"}}]))
        );
        let plain = d(json!([{"retain": 1}]));
        assert_eq!(plain.transform(&b, true), b);
        assert_eq!(a.transform(&plain, true), Delta::new());
    }

    #[test]
    fn positions_move_with_inserts_and_deletes() {
        let op = d(json!([{"retain": 2}, {"insert": "Z"}]));
        assert_eq!(op.transform_position(2, false), 3);
        assert_eq!(op.transform_position(2, true), 2);
        assert_eq!(op.transform_position(1, true), 1);
        assert_eq!(op.transform_position(5, true), 6);
        let del = d(json!([{"retain": 1}, {"delete": 3}]));
        assert_eq!(del.transform_position(0, false), 0);
        assert_eq!(del.transform_position(2, false), 1);
        assert_eq!(del.transform_position(6, false), 3);
        let emoji = d(json!([{"insert": "😀"}]));
        assert_eq!(emoji.transform_position(0, false), 2);
        assert_eq!(emoji.transform_position(0, true), 0);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        // Wire counts reach 2^53 - 1; thousands of them summed exceed usize.
        let big = (1usize << 53) - 1;
        let hostile = Delta::from_ops(vec![Op::retain(big); 4096]);
        let small = d(json!([{"insert": "x"}]));
        assert_eq!(small.transform(&hostile, true), Delta::new());
        assert_eq!(hostile.compose(&small).ops()[0], Op::text("x"));
        assert_eq!(small.compose(&hostile).ops()[0], Op::text("x"));
        assert_eq!(hostile.transform_position(5, true), 5);
        let deletes = Delta::from_ops(vec![Op::Delete(big); 4096]);
        assert_eq!(
            small.transform(&deletes, true).ops()[1],
            Op::Delete(usize::MAX)
        );
    }
}
