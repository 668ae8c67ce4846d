//! A stored rich-text document.

use super::op::{Insert, Op};
use super::{Delta, DeltaError, utf16};

/// The character [`Document::text`] shows for an embed (one UTF-16 unit, so
/// positions in the text equal positions in the document).
pub const EMBED_CHAR: char = '\u{FFFC}';

/// A rich-text document: the result of composing ops onto an empty
/// document, always in normal form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    delta: Delta,
    len: usize,
}

impl Document {
    /// An empty document.
    pub fn new() -> Self {
        Document::default()
    }

    /// A document holding `delta`, which must contain inserts only (no
    /// empty text). The result is in normal form.
    pub fn from_delta(delta: &Delta) -> Result<Document, DeltaError> {
        let mut normal = Delta::new();
        for (index, op) in delta.ops().iter().enumerate() {
            match op {
                Op::Insert { insert, .. } if insert.is_empty() => {
                    return Err(DeltaError::InvalidOp {
                        index,
                        reason: "zero-length op".into(),
                    });
                }
                Op::Insert { .. } => {
                    normal.push(op.clone());
                }
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
        let len = normal.len();
        Ok(Document { delta: normal, len })
    }

    /// Applies `op` (rich-text `apply`, i.e. `doc.compose(op)`), after
    /// checking it: no zero-length ops, retains and deletes within the
    /// document, and no op boundary between the halves of a surrogate pair.
    /// On error the document is unchanged.
    pub fn apply(&mut self, op: &Delta) -> Result<(), DeltaError> {
        op.apply_check(self.len)?;
        self.check_boundaries(op)?;
        self.delta = self.delta.compose(op);
        self.len = self.delta.len();
        Ok(())
    }

    fn check_boundaries(&self, op: &Delta) -> Result<(), DeltaError> {
        let mut position = 0;
        for op in op.ops() {
            self.check_position(position)?;
            position += match op {
                Op::Insert { .. } => 0,
                Op::Retain { n, .. } | Op::Delete(n) => *n,
            };
        }
        self.check_position(position)
    }

    fn check_position(&self, position: usize) -> Result<(), DeltaError> {
        let mut start = 0;
        for op in self.delta.ops() {
            let len = op.len();
            if position < start + len {
                if let Op::Insert {
                    insert: Insert::Text(text),
                    ..
                } = op
                    && utf16::splits_pair(text, position - start)
                {
                    return Err(DeltaError::SplitsSurrogatePair { position });
                }
                return Ok(());
            }
            start += len;
        }
        Ok(())
    }

    /// The document as a Delta of inserts, in normal form.
    pub fn to_delta(&self) -> Delta {
        self.delta.clone()
    }

    /// Length in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.len
    }

    /// True when the document is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The plain text, each embed shown as U+FFFC OBJECT REPLACEMENT
    /// CHARACTER ([`EMBED_CHAR`]), so UTF-16 positions match the document's.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for op in self.delta.ops() {
            match op {
                Op::Insert {
                    insert: Insert::Text(t),
                    ..
                } => text.push_str(t),
                Op::Insert {
                    insert: Insert::Embed(_),
                    ..
                } => text.push(EMBED_CHAR),
                _ => {}
            }
        }
        text
    }
}
