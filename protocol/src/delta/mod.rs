//! The rich-text OT type (ShareDB `rich-text` 4.1.0) over Quill Deltas
//! (`quill-delta` 4.2.2), reproduced exactly.
//!
//! - [`Delta`] is a list of [`Op`]s with the JavaScript algorithms:
//!   [`Delta::compose`], [`Delta::transform`], [`Delta::transform_position`],
//!   [`Delta::invert`] (and a valid, not byte-identical, [`Delta::diff`]).
//!   They accept what JavaScript accepts, including retains past the end of a
//!   document, non-normal ops and zero-length ops, and give the same results.
//! - Strict validation lives at the edges: [`Delta::from_value`] (wire JSON),
//!   [`Delta::apply_check`] and [`Document::apply`].
//! - [`Document`] stores a rich-text document in chunks so that one edit costs
//!   time proportional to the edit, not to the document.
//!
//! All lengths and positions count UTF-16 code units, as JavaScript does. On
//! text that JavaScript would cut between the halves of a surrogate pair, see
//! [`utf16`].

mod compose;
mod diff;
mod document;
mod error;
mod invert;
mod iter;
mod json;
mod op;
mod presence;
mod transform;
pub mod utf16;

pub use document::{Document, EMBED_CHAR};
pub use error::DeltaError;
pub use op::{Attributes, Insert, Op};
pub use presence::{Range, transform_presence};

/// The ShareDB name of the type.
pub const TYPE_NAME: &str = "rich-text";
/// The ShareDB URI of the type.
pub const TYPE_URI: &str = "http://sharejs.org/types/rich-text/v1";

/// A Quill Delta: a document (inserts only) or a change (inserts, retains and
/// deletes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    ops: Vec<Op>,
}

/// Where `push` put an op, so compose can tell whether the last op now equals
/// the op it pushed (`lodash.isEqual(delta.ops[last], newOp)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Appended as the new last op.
    Appended,
    /// Merged into the last op, which had length zero before.
    MergedIntoEmpty,
    /// Anywhere else (merged into a non-empty op, or placed before a delete).
    Elsewhere,
}

impl Delta {
    /// An empty delta.
    pub fn new() -> Self {
        Delta::default()
    }

    /// A delta of exactly these ops, as given (JavaScript `new Delta(ops)`):
    /// no normalization, no validation.
    pub fn from_ops(ops: Vec<Op>) -> Self {
        Delta { ops }
    }

    /// The ops.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The ops, by value.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// True when there are no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Inserts text or an embed; empty text is skipped and empty attributes
    /// are dropped.
    pub fn insert(
        &mut self,
        insert: impl Into<Insert>,
        attributes: Option<Attributes>,
    ) -> &mut Self {
        let insert = insert.into();
        if insert.is_empty() {
            return self;
        }
        self.push(Op::Insert {
            insert,
            attributes: attributes.filter(|a| !a.is_empty()),
        })
    }

    /// Retains `n` units (skipped when 0); empty attributes are dropped.
    pub fn retain(&mut self, n: usize, attributes: Option<Attributes>) -> &mut Self {
        if n == 0 {
            return self;
        }
        self.push(Op::Retain {
            n,
            attributes: attributes.filter(|a| !a.is_empty()),
        })
    }

    /// Deletes `n` units (skipped when 0).
    pub fn delete(&mut self, n: usize) -> &mut Self {
        if n == 0 {
            return self;
        }
        self.push(Op::Delete(n))
    }

    /// Appends an op keeping normal form (JavaScript `push`): adjacent deletes
    /// merge, an insert goes before a trailing delete, and adjacent text
    /// inserts or retains with equal attributes merge. Zero-length ops are
    /// not filtered here (use the builders for that).
    pub fn push(&mut self, op: Op) -> &mut Self {
        self.push_tracked(op);
        self
    }

    pub(crate) fn push_tracked(&mut self, new_op: Op) -> Pushed {
        let mut index = self.ops.len();
        if index > 0 {
            if let (Op::Delete(new), Op::Delete(last)) = (&new_op, &mut self.ops[index - 1]) {
                let was_empty = *last == 0;
                *last = last.saturating_add(*new);
                return if was_empty {
                    Pushed::MergedIntoEmpty
                } else {
                    Pushed::Elsewhere
                };
            }
            if self.ops[index - 1].is_delete() && new_op.is_insert() {
                index -= 1;
                if index == 0 {
                    self.ops.insert(0, new_op);
                    return Pushed::Elsewhere;
                }
            }
            let is_last = index == self.ops.len();
            let last = &mut self.ops[index - 1];
            if op::attrs_equal(new_op.attributes(), last.attributes()) {
                match (last, &new_op) {
                    (
                        Op::Insert {
                            insert: Insert::Text(text),
                            attributes,
                        },
                        Op::Insert {
                            insert: Insert::Text(more),
                            attributes: new_attrs,
                        },
                    ) => {
                        let was_empty = text.is_empty();
                        text.push_str(more);
                        *attributes = new_attrs.clone();
                        return if was_empty && is_last {
                            Pushed::MergedIntoEmpty
                        } else {
                            Pushed::Elsewhere
                        };
                    }
                    (
                        Op::Retain { n, attributes },
                        Op::Retain {
                            n: more,
                            attributes: new_attrs,
                        },
                    ) => {
                        let was_empty = *n == 0;
                        *n = n.saturating_add(*more);
                        *attributes = new_attrs.clone();
                        return if was_empty && is_last {
                            Pushed::MergedIntoEmpty
                        } else {
                            Pushed::Elsewhere
                        };
                    }
                    _ => {}
                }
            }
        }
        if index == self.ops.len() {
            self.ops.push(new_op);
            Pushed::Appended
        } else {
            self.ops.insert(index, new_op);
            Pushed::Elsewhere
        }
    }

    /// Removes a final plain retain (JavaScript `chop`).
    pub fn chop(&mut self) -> &mut Self {
        if let Some(Op::Retain {
            n,
            attributes: None,
        }) = self.ops.last()
            && *n > 0
        {
            self.ops.pop();
        }
        self
    }

    /// `concat`: the first op of `other` is pushed, the rest appended as is.
    pub(crate) fn concat(&mut self, other: Vec<Op>) -> &mut Self {
        let mut other = other.into_iter();
        if let Some(first) = other.next() {
            self.push(first);
            self.ops.extend(other);
        }
        self
    }

    /// Total length in UTF-16 units, counting inserts, retains and deletes
    /// (JavaScript `length()`).
    /// Saturates at `usize::MAX` for absurd ops.
    pub fn len(&self) -> usize {
        self.ops
            .iter()
            .fold(0, |sum, op| sum.saturating_add(op.len()))
    }

    /// How much the op changes a document's length (JavaScript `changeLength()`).
    pub fn change_len(&self) -> isize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Insert { insert, .. } => isize::try_from(insert.len()).unwrap_or(isize::MAX),
                Op::Retain { .. } => 0,
                Op::Delete(n) => -isize::try_from(*n).unwrap_or(isize::MAX),
            })
            .fold(0, isize::saturating_add)
    }

    /// True when the delta consists of inserts only.
    pub fn is_document(&self) -> bool {
        self.ops.iter().all(Op::is_insert)
    }

    /// The length of document this op needs: the UTF-16 units its retains and
    /// deletes span (saturating at `usize::MAX`, so a hostile op cannot wrap
    /// around and pass [`Delta::apply_check`]).
    pub fn base_len(&self) -> usize {
        self.ops.iter().fold(0, |sum, op| match op {
            Op::Insert { .. } => sum,
            Op::Retain { n, .. } | Op::Delete(n) => sum.saturating_add(*n),
        })
    }

    /// Checks that the op can be applied to a document of `doc_len` UTF-16
    /// units: no zero-length ops, and retains plus deletes stay within the
    /// document. (Surrogate-pair boundaries need the text: [`Document::apply`]
    /// checks those too.)
    pub fn apply_check(&self, doc_len: usize) -> Result<(), DeltaError> {
        for (index, op) in self.ops.iter().enumerate() {
            if op.is_empty() {
                return Err(DeltaError::InvalidOp {
                    index,
                    reason: "zero-length op".into(),
                });
            }
        }
        let end = self.base_len();
        if end > doc_len {
            return Err(DeltaError::OutOfRange { end, len: doc_len });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(v: serde_json::Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    fn bold() -> Option<Attributes> {
        json!({"bold": true}).as_object().cloned()
    }

    #[test]
    fn builders_keep_normal_form() {
        // The same chain in quill-delta 4.2.2 gives exactly this.
        let mut delta = Delta::new();
        let image = json!({"image": "x"}).as_object().cloned().unwrap();
        delta
            .insert("a", None)
            .insert("b", bold())
            .insert("c", bold())
            .insert(image.clone(), None)
            .insert(image, None)
            .retain(0, None)
            .retain(2, None)
            .retain(3, None)
            .delete(1)
            .delete(2)
            .insert("z", None)
            .retain(1, Some(Attributes::new()))
            .insert("", bold());
        assert_eq!(
            delta,
            d(json!([
                {"insert": "a"},
                {"insert": "bc", "attributes": {"bold": true}},
                {"insert": {"image": "x"}},
                {"insert": {"image": "x"}},
                {"retain": 5},
                {"insert": "z"},
                {"delete": 3},
                {"retain": 1}
            ]))
        );
    }

    #[test]
    fn push_does_not_filter_zero_lengths() {
        let mut delta = Delta::new();
        delta
            .push(Op::retain(0))
            .push(Op::Delete(0))
            .push(Op::text(""));
        assert_eq!(delta.ops(), &[Op::retain(0), Op::text(""), Op::Delete(0)]);
    }

    #[test]
    fn insert_after_a_lone_delete_goes_first() {
        let mut delta = Delta::new();
        delta.delete(2).insert("x", None);
        assert_eq!(delta, d(json!([{"insert": "x"}, {"delete": 2}])));
    }

    #[test]
    fn chop_removes_only_a_plain_positive_retain() {
        let mut plain = d(json!([{"retain": 3}]));
        assert!(plain.chop().is_empty());
        let mut formatted = d(json!([{"retain": 3, "attributes": {"bold": true}}]));
        assert_eq!(formatted.chop().len(), 3);
        let mut zero = Delta::from_ops(vec![Op::retain(0)]);
        assert_eq!(zero.chop().ops().len(), 1);
    }

    #[test]
    fn lengths_count_everything_in_utf16_units() {
        let delta =
            d(json!([{"insert": "😀"}, {"insert": {"image": "x"}}, {"retain": 2}, {"delete": 3}]));
        assert_eq!(delta.len(), 8);
        assert_eq!(delta.change_len(), 0);
        assert_eq!(delta.base_len(), 5);
        assert!(!delta.is_document());
        assert!(d(json!([{"insert": "é"}])).is_document());
        assert_eq!(d(json!([{"insert": "e\u{301}"}])).len(), 2);
    }

    #[test]
    fn zero_length_ops_behave_as_in_javascript() {
        // quill-delta 4.2.2: next(0) takes a whole op, so a leading retain 0
        // swallows the document's first insert into the result.
        let doc = d(json!([{"insert": "abc"}]));
        let op = Delta::from_ops(vec![Op::retain(0), Op::Delete(1)]);
        assert_eq!(
            doc.compose(&op),
            d(json!([{"insert": "abc"}, {"delete": 1}]))
        );
        let base = d(json!([{"retain": 2}]));
        let other = Delta::from_ops(vec![Op::retain(0), Op::text("x")]);
        assert_eq!(base.transform(&other, true), d(json!([{"insert": "x"}])));
        let ins = Delta::from_ops(vec![Op::retain(0), Op::text("xy")]);
        assert_eq!(ins.transform_position(0, true), 0);
        let del = Delta::from_ops(vec![Op::Delete(0), Op::text("xy")]);
        assert_eq!(del.transform_position(0, false), 2);
    }

    #[test]
    fn apply_check_bounds_the_span() {
        let op = d(json!([{"retain": 2}, {"insert": "x"}, {"delete": 1}]));
        assert_eq!(op.apply_check(3), Ok(()));
        assert_eq!(
            op.apply_check(2),
            Err(DeltaError::OutOfRange { end: 3, len: 2 })
        );
        let zero = Delta::from_ops(vec![Op::Delete(0)]);
        assert!(zero.apply_check(5).is_err());
        // Counts that would wrap around when summed.
        let huge = Delta::from_ops(vec![
            Op::retain(usize::MAX - 1),
            Op::retain(3),
            Op::Delete(1),
        ]);
        assert_eq!(huge.base_len(), usize::MAX);
        assert!(huge.apply_check(10).is_err());
        assert_eq!(huge.len(), usize::MAX);
    }
}
