//! The op iterator of quill-delta 4.2.2 (`Iterator.js`), reproduced exactly.
//!
//! It walks ops with an offset and yields up to `n` units of the current op.
//! Text is sliced by UTF-16 units, embeds and deletes are never split, and
//! past the end it yields `retain ∞` ([`INFINITY`]). Like JavaScript,
//! `next(0)` takes the whole rest of the current op.

use super::op::{Insert, Op};
use super::utf16::{self, Cursor};

/// JavaScript's `Infinity` as a length.
pub const INFINITY: usize = usize::MAX;

/// The coarse kind of the next op; `Retain` past the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An insert.
    Insert,
    /// A retain (also what lies past the end).
    Retain,
    /// A delete.
    Delete,
}

/// Cursor over a slice of ops.
#[derive(Debug, Clone)]
pub struct OpIter<'a> {
    ops: &'a [Op],
    index: usize,
    offset: usize,
    text: Cursor,
    /// Length of `ops[index]`, computed once per op (text lengths cost a scan).
    current_len: Option<usize>,
}

impl<'a> OpIter<'a> {
    /// An iterator at the start of `ops`.
    pub fn new(ops: &'a [Op]) -> Self {
        OpIter {
            ops,
            index: 0,
            offset: 0,
            text: Cursor::default(),
            current_len: None,
        }
    }

    fn op_len(&mut self) -> usize {
        match self.current_len {
            Some(len) => len,
            None => {
                let len = self.ops[self.index].len();
                self.current_len = Some(len);
                len
            }
        }
    }

    /// `hasNext()`: true while an op remains.
    pub fn has_next(&self) -> bool {
        self.index < self.ops.len()
    }

    /// `peek()`: the current op, whole.
    pub fn peek(&self) -> Option<&'a Op> {
        self.ops.get(self.index)
    }

    /// `peekLength()`: units left in the current op, [`INFINITY`] past the end.
    pub fn peek_len(&mut self) -> usize {
        if self.has_next() {
            self.op_len() - self.offset
        } else {
            INFINITY
        }
    }

    /// `peekType()`.
    pub fn peek_kind(&self) -> Kind {
        match self.ops.get(self.index) {
            Some(Op::Insert { .. }) => Kind::Insert,
            Some(Op::Delete(_)) => Kind::Delete,
            Some(Op::Retain { .. }) | None => Kind::Retain,
        }
    }

    /// `next(length)`: up to `length` units of the current op (`0` or
    /// [`INFINITY`] for all that is left of it).
    pub fn next(&mut self, length: usize) -> Op {
        let mut length = if length == 0 { INFINITY } else { length };
        if !self.has_next() {
            return Op::Retain {
                n: INFINITY,
                attributes: None,
            };
        }
        let op_len = self.op_len();
        let op = &self.ops[self.index];
        let offset = self.offset;
        let whole = length >= op_len - offset;
        if whole {
            length = op_len - offset;
        }
        let result = match op {
            Op::Delete(_) => Op::Delete(length),
            Op::Retain { attributes, .. } => Op::Retain {
                n: length,
                attributes: attributes.clone(),
            },
            Op::Insert {
                insert: Insert::Text(text),
                attributes,
            } => {
                let sliced = if offset == 0 && whole {
                    text.clone()
                } else {
                    utf16::take(text, &mut self.text, length)
                };
                Op::Insert {
                    insert: Insert::Text(sliced),
                    attributes: attributes.clone(),
                }
            }
            Op::Insert {
                insert: embed,
                attributes,
            } => Op::Insert {
                insert: embed.clone(),
                attributes: attributes.clone(),
            },
        };
        if whole {
            self.index += 1;
            self.offset = 0;
            self.text = Cursor::default();
            self.current_len = None;
        } else {
            self.offset += length;
        }
        result
    }

    /// `rest()`: the remaining ops, the current one cut at the offset.
    pub fn rest(&mut self) -> Vec<Op> {
        if !self.has_next() {
            return Vec::new();
        }
        if self.offset == 0 {
            return self.ops[self.index..].to_vec();
        }
        let saved = self.clone();
        let mut rest = vec![self.next(INFINITY)];
        rest.extend_from_slice(&self.ops[self.index..]);
        *self = saved;
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_pieces_and_infinity_past_the_end() {
        let ops = vec![Op::text("hello"), Op::retain(3), Op::Delete(2)];
        let mut it = OpIter::new(&ops);
        assert_eq!(it.peek_len(), 5);
        assert_eq!(it.next(2), Op::text("he"));
        assert_eq!(it.peek_len(), 3);
        assert_eq!(
            it.rest(),
            vec![Op::text("llo"), Op::retain(3), Op::Delete(2)]
        );
        assert_eq!(it.next(10), Op::text("llo"));
        assert_eq!(it.next(1), Op::retain(1));
        assert_eq!(it.next(0), Op::retain(2));
        assert_eq!(it.peek_kind(), Kind::Delete);
        assert_eq!(it.next(5), Op::Delete(2));
        assert!(!it.has_next());
        assert_eq!(it.peek_kind(), Kind::Retain);
        assert_eq!(it.peek_len(), INFINITY);
        assert_eq!(
            it.next(4),
            Op::Retain {
                n: INFINITY,
                attributes: None
            }
        );
    }

    #[test]
    fn slices_text_by_utf16_units() {
        let ops = vec![Op::text("a😀中")];
        let mut it = OpIter::new(&ops);
        assert_eq!(it.next(1), Op::text("a"));
        assert_eq!(it.next(2), Op::text("😀"));
        assert_eq!(it.next(1), Op::text("中"));
    }
}
