//! `Delta.invert` and `Delta.slice` of quill-delta 4.2.2.

use super::Delta;
use super::iter::OpIter;
use super::op::{self, Op};

impl Delta {
    /// The ops between UTF-16 positions `start` and `end` (JavaScript
    /// `slice`), as they are (not normalized).
    pub fn slice(&self, start: usize, end: usize) -> Delta {
        let mut ops = Vec::new();
        let mut iter = OpIter::new(&self.ops);
        let mut index = 0;
        while index < end && iter.has_next() {
            let next = if index < start {
                iter.next(start - index)
            } else {
                let next = iter.next(end - index);
                ops.push(next.clone());
                next
            };
            index = index.saturating_add(next.len());
        }
        Delta::from_ops(ops)
    }

    /// The op that undoes `self` when applied after it to `base` (the
    /// document `self` was applied to): `base.compose(self).compose(inverse)
    /// == base`. rich-text does not expose it; provided for clients (undo).
    pub fn invert(&self, base: &Delta) -> Delta {
        let mut inverted = Delta::new();
        let mut base_index = 0usize;
        for op in &self.ops {
            match op {
                Op::Insert { insert, .. } => {
                    inverted.delete(insert.len());
                }
                Op::Retain {
                    n,
                    attributes: None,
                } if *n > 0 => {
                    inverted.retain(*n, None);
                    base_index = base_index.saturating_add(*n);
                }
                Op::Retain {
                    n,
                    attributes: Some(attributes),
                } if *n > 0 => {
                    for base_op in base.slice(base_index, base_index.saturating_add(*n)).ops {
                        let undo = op::invert_attributes(Some(attributes), base_op.attributes());
                        inverted.retain(base_op.len(), Some(undo));
                    }
                    base_index = base_index.saturating_add(*n);
                }
                Op::Delete(n) if *n > 0 => {
                    for base_op in base.slice(base_index, base_index.saturating_add(*n)).ops {
                        inverted.push(base_op);
                    }
                    base_index = base_index.saturating_add(*n);
                }
                _ => {}
            }
        }
        inverted.chop();
        inverted
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
    fn invert_insert_is_delete() {
        let base = d(json!([{"insert": "123456"}]));
        let op = d(json!([{"retain": 2}, {"insert": "A"}]));
        assert_eq!(op.invert(&base), d(json!([{"retain": 2}, {"delete": 1}])));
    }

    #[test]
    fn invert_delete_reinserts_the_base() {
        let base = d(json!([{"insert": "123"}, {"insert": "456", "attributes": {"bold": true}}]));
        let op = d(json!([{"retain": 2}, {"delete": 3}]));
        let inverse = op.invert(&base);
        assert_eq!(
            inverse,
            d(
                json!([{"retain": 2}, {"insert": "3"}, {"insert": "45", "attributes": {"bold": true}}])
            )
        );
        assert_eq!(base.compose(&op).compose(&inverse), base);
    }

    #[test]
    fn invert_attributed_retain_restores_and_nulls() {
        let base = d(json!([{"insert": "12", "attributes": {"color": "red"}}, {"insert": "34"}]));
        let op = d(json!([{"retain": 4, "attributes": {"bold": true, "color": "blue"}}]));
        assert_eq!(
            op.invert(&base),
            d(json!([
                {"retain": 2, "attributes": {"bold": null, "color": "red"}},
                {"retain": 2, "attributes": {"bold": null, "color": null}}
            ]))
        );
        assert_eq!(base.compose(&op).compose(&op.invert(&base)), base);
    }

    #[test]
    fn slice_cuts_by_units() {
        let delta = d(json!([{"insert": "ab😀"}, {"insert": {"image": "x"}}, {"retain": 3}]));
        assert_eq!(
            delta.slice(1, 5),
            d(json!([{"insert": "b😀"}, {"insert": {"image": "x"}}]))
        );
    }
}
