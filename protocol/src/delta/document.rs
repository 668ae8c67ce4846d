//! A stored rich-text document, cheap to edit when large.
//!
//! The document is a list of chunks of about [`CHUNK_TARGET`] UTF-16 units,
//! each a short list of pieces (text with attributes, or an embed). An edit
//! finds its chunk by walking the chunk lengths and changes only that chunk,
//! so a one-character edit costs a scan of the chunk list plus a copy of at
//! most one chunk, never a copy of the document.

use super::op::{self, Attributes, Insert, Op};
use super::{Delta, DeltaError, utf16};

/// The character [`Document::text`] shows for an embed (one UTF-16 unit, so
/// positions in the text equal positions in the document).
pub const EMBED_CHAR: char = '\u{FFFC}';

/// Size chunks are cut to, in UTF-16 units.
const CHUNK_TARGET: usize = 1024;
/// A chunk that grows past this is cut again.
const CHUNK_MAX: usize = 2 * CHUNK_TARGET;
/// A chunk that shrinks below this is merged into a neighbour when they fit.
const CHUNK_MIN: usize = CHUNK_TARGET / 4;

/// Text with attributes, or an embed; never empty.
#[derive(Debug, Clone)]
struct Piece {
    insert: Insert,
    attributes: Option<Attributes>,
    /// Length in UTF-16 units.
    len: usize,
}

impl Piece {
    fn new(insert: Insert, attributes: Option<Attributes>) -> Piece {
        let len = insert.len();
        Piece {
            insert,
            attributes,
            len,
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match &mut self.insert {
            Insert::Text(text) => Some(text),
            Insert::Embed(_) => None,
        }
    }

    /// Byte offset of UTF-16 offset `units` in a text piece (`None` inside a
    /// surrogate pair).
    fn byte_offset(&self, units: usize) -> Option<usize> {
        match &self.insert {
            // Byte length equals UTF-16 length exactly when the text is ASCII.
            Insert::Text(text) if text.len() == self.len => Some(units),
            Insert::Text(text) => utf16::byte_offset(text, units),
            Insert::Embed(_) => Some(units),
        }
    }

    /// Splits a text piece at UTF-16 offset `units` (strictly inside it),
    /// which must be a character boundary; returns the second half.
    fn split_off(&mut self, units: usize) -> Piece {
        let byte = self
            .byte_offset(units)
            .expect("split on a character boundary");
        let rest = self
            .text_mut()
            .expect("only text pieces are split")
            .split_off(byte);
        self.len = units;
        Piece::new(Insert::Text(rest), self.attributes.clone())
    }

    /// Appends `next` when both are text with equal attributes.
    fn try_merge(&mut self, next: &Piece) -> bool {
        if !op::attrs_equal(self.attributes.as_ref(), next.attributes.as_ref()) {
            return false;
        }
        match (&mut self.insert, &next.insert) {
            (Insert::Text(text), Insert::Text(more)) => {
                text.push_str(more);
                self.len += next.len;
                true
            }
            _ => false,
        }
    }

    fn to_op(&self) -> Op {
        Op::Insert {
            insert: self.insert.clone(),
            attributes: self.attributes.clone(),
        }
    }
}

/// A run of pieces; never empty inside a [`Document`].
#[derive(Debug, Clone, Default)]
struct Chunk {
    pieces: Vec<Piece>,
    len: usize,
}

impl Chunk {
    /// Makes `offset` a piece boundary; returns the index of the piece that
    /// starts there (`pieces.len()` at the end).
    fn boundary(&mut self, offset: usize) -> usize {
        let mut start = 0;
        for i in 0..self.pieces.len() {
            if offset == start {
                return i;
            }
            let len = self.pieces[i].len;
            if offset < start + len {
                let rest = self.pieces[i].split_off(offset - start);
                self.pieces.insert(i + 1, rest);
                return i + 1;
            }
            start += len;
        }
        self.pieces.len()
    }

    /// The piece holding UTF-16 offset `offset` and the offset inside it.
    fn locate(&self, offset: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            if offset < start + piece.len {
                return Some((i, offset - start));
            }
            start += piece.len;
        }
        None
    }

    /// Merges adjacent text pieces with equal attributes in `from..to`
    /// (indices clamped, one neighbour either side included).
    fn merge_around(&mut self, from: usize, to: usize) {
        let mut i = from.saturating_sub(1);
        let mut end = (to + 1).min(self.pieces.len());
        while i + 1 < end {
            let (left, right) = self.pieces.split_at_mut(i + 1);
            if left[i].try_merge(&right[0]) {
                self.pieces.remove(i + 1);
                end -= 1;
            } else {
                i += 1;
            }
        }
    }
}

/// A rich-text document: the result of composing ops onto an empty
/// document.
///
/// It is kept as a list of chunks of about a thousand UTF-16 units, each a
/// short list of pieces (text with attributes, or an embed). An edit finds
/// its chunk by walking the chunk lengths and changes only that chunk, so a
/// one-character edit never copies the document.
///
/// [`Document::apply`] gives exactly the document that rich-text's
/// `apply` (`doc.compose(op)`) gives, and [`Document::to_delta`] returns it in
/// normal form, but unlike JavaScript it first rejects ops that do not fit
/// the document. Two documents are equal when their Deltas are.
#[derive(Debug, Clone, Default)]
pub struct Document {
    chunks: Vec<Chunk>,
    len: usize,
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.to_delta() == other.to_delta()
    }
}

impl Document {
    /// An empty document.
    pub fn new() -> Self {
        Document::default()
    }

    /// A document holding `delta`, which must consist of non-empty inserts.
    /// Non-normal input is accepted ([`Document::to_delta`] returns it in
    /// normal form).
    pub fn from_delta(delta: &Delta) -> Result<Document, DeltaError> {
        let mut pieces: Vec<Piece> = Vec::with_capacity(delta.ops().len());
        for (index, op) in delta.ops().iter().enumerate() {
            match op {
                Op::Insert { insert, .. } if insert.is_empty() => {
                    return Err(DeltaError::InvalidOp {
                        index,
                        reason: "zero-length op".into(),
                    });
                }
                Op::Insert { insert, attributes } => {
                    let piece = Piece::new(insert.clone(), attributes.clone());
                    if !pieces.last_mut().is_some_and(|last| last.try_merge(&piece)) {
                        pieces.push(piece);
                    }
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
        let chunks = rechunk(pieces);
        let len = chunks.iter().map(|c| c.len).sum();
        Ok(Document { chunks, len })
    }

    /// Length in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.len
    }

    /// True when the document is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The document as a Delta of inserts, in normal form.
    pub fn to_delta(&self) -> Delta {
        let mut delta = Delta::new();
        for piece in self.chunks.iter().flat_map(|c| &c.pieces) {
            delta.push(piece.to_op());
        }
        delta
    }

    /// The plain text, each embed shown as U+FFFC OBJECT REPLACEMENT
    /// CHARACTER ([`EMBED_CHAR`]), so UTF-16 positions in the text are
    /// positions in the document.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.len);
        for piece in self.chunks.iter().flat_map(|c| &c.pieces) {
            match &piece.insert {
                Insert::Text(t) => text.push_str(t),
                Insert::Embed(_) => text.push(EMBED_CHAR),
            }
        }
        text
    }

    /// The attributes of the unit at `position` (`None` past the end, or
    /// where the content has none): what an editor copies onto text typed
    /// next to it.
    pub fn attributes_at(&self, position: usize) -> Option<&Attributes> {
        if position >= self.len {
            return None;
        }
        let (c, offset) = self.find(position)?;
        let (p, _) = self.chunks[c].locate(offset)?;
        self.chunks[c].pieces[p].attributes.as_ref()
    }

    /// The content in order, as (insert, attributes) runs, without copying
    /// it (neighbouring runs may have equal attributes).
    pub fn runs(&self) -> impl Iterator<Item = (&Insert, Option<&Attributes>)> {
        self.chunks
            .iter()
            .flat_map(|c| &c.pieces)
            .map(|p| (&p.insert, p.attributes.as_ref()))
    }

    /// Checks that `op` can be applied: no zero-length ops, retains and
    /// deletes within the document, and no op boundary between the halves
    /// of a surrogate pair.
    pub fn check(&self, op: &Delta) -> Result<(), DeltaError> {
        op.apply_check(self.len)?;
        let mut position = 0;
        for op in op.ops() {
            self.check_position(position)?;
            if let Op::Retain { n, .. } | Op::Delete(n) = op {
                position += n;
            }
        }
        self.check_position(position)
    }

    fn check_position(&self, position: usize) -> Result<(), DeltaError> {
        let Some((c, offset)) = self.find(position) else {
            return Ok(());
        };
        let Some((p, inside)) = self.chunks[c].locate(offset) else {
            return Ok(());
        };
        if inside > 0 && self.chunks[c].pieces[p].byte_offset(inside).is_none() {
            return Err(DeltaError::SplitsSurrogatePair { position });
        }
        Ok(())
    }

    /// Applies `op` (rich-text `apply`, i.e. `doc.compose(op)`) after
    /// [`Document::check`]ing it; on error the document is unchanged.
    pub fn apply(&mut self, op: &Delta) -> Result<(), DeltaError> {
        self.check(op)?;
        let mut position = 0;
        for op in op.ops() {
            match op {
                Op::Insert { insert, attributes } => {
                    let piece = Piece::new(insert.clone(), attributes.clone());
                    position += piece.len;
                    self.insert(position - piece.len, piece);
                }
                Op::Retain {
                    n,
                    attributes: None,
                } => position += n,
                Op::Retain {
                    n,
                    attributes: Some(attributes),
                } => {
                    self.format(position, *n, attributes);
                    position += n;
                }
                Op::Delete(n) => self.delete(position, *n),
            }
        }
        Ok(())
    }

    /// The chunk holding the unit at `position` and the offset in it (the
    /// last chunk and its length at the end); `None` for an empty document.
    fn find(&self, position: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if position < start + chunk.len {
                return Some((i, position - start));
            }
            start += chunk.len;
        }
        let last = self.chunks.len().checked_sub(1)?;
        Some((last, self.chunks[last].len))
    }

    /// Where to insert at `position`: at a chunk boundary, the end of the
    /// earlier chunk (typing usually extends what is before the caret).
    fn find_insert(&self, position: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if position <= start + chunk.len {
                return Some((i, position - start));
            }
            start += chunk.len;
        }
        None
    }

    fn insert(&mut self, position: usize, piece: Piece) {
        let len = piece.len;
        if self.chunks.is_empty() {
            self.chunks = rechunk(vec![piece]);
            self.len = len;
            return;
        }
        let (c, offset) = self
            .find_insert(position)
            .expect("a position within the document");
        let chunk = &mut self.chunks[c];
        // Fast path: text into (or at the end of) a text piece with the same
        // attributes.
        let fast = match chunk.locate(offset.saturating_sub(1)) {
            Some((p, inside)) if offset > 0 => {
                let target = &mut chunk.pieces[p];
                let same = op::attrs_equal(target.attributes.as_ref(), piece.attributes.as_ref());
                match (&piece.insert, same) {
                    (Insert::Text(text), true) if target.text_mut().is_some() => {
                        let byte = target.byte_offset(inside + 1).expect("checked boundary");
                        target
                            .text_mut()
                            .expect("text piece")
                            .insert_str(byte, text);
                        target.len += len;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !fast {
            let at = chunk.boundary(offset);
            chunk.pieces.insert(at, piece);
            chunk.merge_around(at, at + 1);
        }
        chunk.len += len;
        self.len += len;
        if chunk.len > CHUNK_MAX {
            let pieces = std::mem::take(&mut chunk.pieces);
            self.chunks.splice(c..=c, rechunk(pieces));
        }
    }

    fn delete(&mut self, position: usize, mut n: usize) {
        while n > 0 {
            let (c, offset) = self.find(position).expect("a position within the document");
            let chunk = &mut self.chunks[c];
            let take = n.min(chunk.len - offset);
            let fast = match chunk.locate(offset) {
                Some((p, inside))
                    if take < chunk.pieces[p].len && inside + take <= chunk.pieces[p].len =>
                {
                    let piece = &mut chunk.pieces[p];
                    match (piece.byte_offset(inside), piece.byte_offset(inside + take)) {
                        (Some(from), Some(to)) if piece.text_mut().is_some() => {
                            piece
                                .text_mut()
                                .expect("text piece")
                                .replace_range(from..to, "");
                            piece.len -= take;
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if !fast {
                let from = chunk.boundary(offset);
                let to = chunk.boundary(offset + take);
                chunk.pieces.drain(from..to);
                chunk.merge_around(from, from);
            }
            chunk.len -= take;
            self.len -= take;
            n -= take;
            self.tidy(c);
        }
    }

    fn format(&mut self, position: usize, n: usize, attributes: &Attributes) {
        let mut done = 0;
        while done < n {
            let (c, offset) = self
                .find(position + done)
                .expect("a position within the document");
            let chunk = &mut self.chunks[c];
            let take = (n - done).min(chunk.len - offset);
            let from = chunk.boundary(offset);
            let to = chunk.boundary(offset + take);
            for piece in &mut chunk.pieces[from..to] {
                // Formatting a document's insert drops null values
                // (AttributeMap.compose with keepNull = false).
                piece.attributes =
                    op::compose_attributes(piece.attributes.as_ref(), Some(attributes), false);
            }
            chunk.merge_around(from, to);
            done += take;
        }
    }

    /// Drops chunk `c` when empty, or merges it into a neighbour when small.
    fn tidy(&mut self, c: usize) {
        if self.chunks[c].len == 0 {
            self.chunks.remove(c);
            return;
        }
        if self.chunks[c].len >= CHUNK_MIN {
            return;
        }
        let neighbour = if c + 1 < self.chunks.len() {
            c + 1
        } else if c > 0 {
            c - 1
        } else {
            return;
        };
        let (first, second) = (c.min(neighbour), c.max(neighbour));
        if self.chunks[first].len + self.chunks[second].len > CHUNK_MAX {
            return;
        }
        let moved = self.chunks.remove(second);
        let chunk = &mut self.chunks[first];
        let at = chunk.pieces.len();
        chunk.pieces.extend(moved.pieces);
        chunk.len += moved.len;
        chunk.merge_around(at, at);
    }
}

/// Cuts pieces into chunks of about [`CHUNK_TARGET`] units, splitting long
/// text pieces on character boundaries.
fn rechunk(pieces: Vec<Piece>) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current = Chunk::default();
    for mut piece in pieces {
        loop {
            let room = CHUNK_TARGET.saturating_sub(current.len);
            if piece.len <= room || piece.text_mut().is_none() {
                current.len += piece.len;
                current.pieces.push(piece);
                break;
            }
            // Cut at `room`, or just before it inside a surrogate pair.
            let mut cut = room;
            if cut > 0 && piece.byte_offset(cut).is_none() {
                cut -= 1;
            }
            if cut == 0 {
                // Only a non-empty chunk can lack room for one character.
                chunks.push(std::mem::take(&mut current));
                continue;
            }
            let rest = piece.split_off(cut);
            current.len += piece.len;
            current.pieces.push(piece);
            chunks.push(std::mem::take(&mut current));
            piece = rest;
        }
        if current.len >= CHUNK_TARGET {
            chunks.push(std::mem::take(&mut current));
        }
    }
    if current.len > 0 {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(v: serde_json::Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    fn doc(v: serde_json::Value) -> Document {
        Document::from_delta(&d(v)).unwrap()
    }

    #[test]
    fn applies_like_compose() {
        let mut document =
            doc(json!([{"insert": "Hello "}, {"insert": "world", "attributes": {"bold": true}}]));
        let op = d(json!([
            {"retain": 5},
            {"insert": ",", "attributes": {"italic": true}},
            {"retain": 1},
            {"retain": 2, "attributes": {"bold": null, "color": "red"}},
            {"delete": 2}
        ]));
        let expected = document.to_delta().compose(&op);
        document.apply(&op).unwrap();
        assert_eq!(document.to_delta(), expected);
        assert_eq!(
            expected,
            d(json!([
                {"insert": "Hello"},
                {"insert": ",", "attributes": {"italic": true}},
                {"insert": " "},
                {"insert": "wo", "attributes": {"color": "red"}},
                {"insert": "d", "attributes": {"bold": true}}
            ]))
        );
        assert_eq!(document.text(), "Hello, wod");
        assert_eq!(document.len_utf16(), 10);
    }

    #[test]
    fn attributes_at_and_runs_follow_the_content() {
        let d = doc(json!([
            {"insert": "ab"},
            {"insert": "😀c", "attributes": {"bold": true}},
            {"insert": {"image": "x"}, "attributes": {"width": "9"}},
            {"insert": "\n", "attributes": {"header": 1}}
        ]));
        assert_eq!(d.attributes_at(0), None);
        assert_eq!(d.attributes_at(2).unwrap()["bold"], json!(true));
        assert_eq!(
            d.attributes_at(4).unwrap()["bold"],
            json!(true),
            "c, after the pair"
        );
        assert_eq!(d.attributes_at(5).unwrap()["width"], json!("9"));
        assert_eq!(d.attributes_at(6).unwrap()["header"], json!(1));
        assert_eq!(d.attributes_at(7), None, "past the end");
        let mut rebuilt = Delta::new();
        for (insert, attributes) in d.runs() {
            rebuilt.insert(insert.clone(), attributes.cloned());
        }
        assert_eq!(rebuilt, d.to_delta());
        assert_eq!(Document::new().runs().count(), 0);
        assert_eq!(Document::new().attributes_at(0), None);
    }

    #[test]
    fn embeds_show_as_object_replacement_characters() {
        let document =
            doc(json!([{"insert": "a😀"}, {"insert": {"image": "x.png"}}, {"insert": "b"}]));
        assert_eq!(document.text(), "a😀\u{FFFC}b");
        assert_eq!(document.len_utf16(), 5);
        assert_eq!(utf16::len(&document.text()), document.len_utf16());
    }

    #[test]
    fn from_delta_wants_non_empty_inserts() {
        assert_eq!(
            Document::from_delta(&d(json!([{"insert": "a"}, {"retain": 1}]))),
            Err(DeltaError::NotADocument {
                index: 1,
                found: "retain"
            })
        );
        assert!(Document::from_delta(&d(json!([{"delete": 1}]))).is_err());
        let empty = Delta::from_ops(vec![Op::text("")]);
        assert!(Document::from_delta(&empty).is_err());
        // Non-normal input comes back normal.
        let split = Delta::from_ops(vec![Op::text("a"), Op::text("b")]);
        assert_eq!(
            Document::from_delta(&split).unwrap().to_delta(),
            d(json!([{"insert": "ab"}]))
        );
    }

    #[test]
    fn rejects_ops_past_the_end_and_leaves_the_document_alone() {
        let mut document = doc(json!([{"insert": "ab"}]));
        // JavaScript would store [ins ab, retain 3, ins x] (§5.4).
        let err = document
            .apply(&d(json!([{"retain": 5}, {"insert": "x"}])))
            .unwrap_err();
        assert_eq!(err, DeltaError::OutOfRange { end: 5, len: 2 });
        let err = document
            .apply(&d(json!([{"insert": "x"}, {"retain": 1}, {"delete": 2}])))
            .unwrap_err();
        assert_eq!(err, DeltaError::OutOfRange { end: 3, len: 2 });
        assert_eq!(document.to_delta(), d(json!([{"insert": "ab"}])));
        // A retain exactly to the end is fine.
        document
            .apply(&d(json!([{"retain": 2}, {"insert": "c"}])))
            .unwrap();
        assert_eq!(document.text(), "abc");
    }

    #[test]
    fn quill_formatting_the_last_line_needs_the_trailing_newline() {
        // §5.6: with a "Hi!" seed, Quill formats the last line one past the end.
        let op = d(json!([{"retain": 3}, {"retain": 1, "attributes": {"header": 1}}]));
        let mut bare = doc(json!([{"insert": "Hi!"}]));
        assert!(bare.apply(&op).is_err());
        let mut seeded = doc(json!([{"insert": "Hi!\n"}]));
        seeded.apply(&op).unwrap();
        assert_eq!(
            seeded.to_delta(),
            d(json!([{"insert": "Hi!"}, {"insert": "\n", "attributes": {"header": 1}}]))
        );
    }

    #[test]
    fn rejects_zero_length_ops() {
        let mut document = doc(json!([{"insert": "ab"}]));
        let op = Delta::from_ops(vec![Op::retain(0), Op::Delete(1)]);
        assert!(matches!(
            document.apply(&op),
            Err(DeltaError::InvalidOp { index: 0, .. })
        ));
        assert_eq!(document.text(), "ab");
    }

    #[test]
    fn rejects_boundaries_inside_surrogate_pairs() {
        let mut document = doc(json!([{"insert": "a😀b"}]));
        for op in [
            json!([{"retain": 2}, {"insert": "x"}]),
            json!([{"retain": 1}, {"delete": 1}]),
            json!([{"retain": 2}, {"delete": 1}]),
            json!([{"retain": 2, "attributes": {"bold": true}}]),
        ] {
            assert_eq!(
                document.apply(&d(op)),
                Err(DeltaError::SplitsSurrogatePair { position: 2 })
            );
        }
        assert_eq!(document.text(), "a😀b");
        document
            .apply(&d(json!([{"retain": 1}, {"delete": 2}, {"insert": "中"}])))
            .unwrap();
        assert_eq!(document.text(), "a中b");
    }

    #[test]
    fn formatting_drops_null_values() {
        let mut document =
            doc(json!([{"insert": "abc", "attributes": {"bold": true, "color": "red"}}]));
        document
            .apply(&d(json!([{"retain": 3, "attributes": {"bold": null}}])))
            .unwrap();
        assert_eq!(
            document.to_delta(),
            d(json!([{"insert": "abc", "attributes": {"color": "red"}}]))
        );
        document
            .apply(&d(json!([{"retain": 3, "attributes": {"color": null}}])))
            .unwrap();
        assert_eq!(document.to_delta(), d(json!([{"insert": "abc"}])));
    }

    #[test]
    fn large_documents_are_chunked_and_edited_in_place() {
        let line = "The quick brown fox jumps over the lazy dog 😀 中文.\n";
        let text = line.repeat(2000);
        let mut document = Document::from_delta(&d(json!([{"insert": text}]))).unwrap();
        assert!(
            document.chunks.len() > 50,
            "{} chunks",
            document.chunks.len()
        );
        assert!(
            document
                .chunks
                .iter()
                .all(|c| c.len > 0 && c.len <= CHUNK_MAX)
        );
        let mut expected = document.to_delta();
        let len = document.len_utf16();
        // Edits at and across every kind of position, including chunk edges.
        let mut edges = Vec::new();
        let mut start = 0;
        for chunk in &document.chunks {
            start += chunk.len;
            edges.push(start);
        }
        for (i, &edge) in edges.iter().enumerate().step_by(7) {
            let at = edge.min(len - 3000);
            let op = match i % 3 {
                0 => d(json!([{"retain": at}, {"insert": "XY", "attributes": {"bold": true}}])),
                1 => d(json!([{"retain": at}, {"delete": 2500}])),
                _ => d(json!([{"retain": at}, {"retain": 2000, "attributes": {"italic": true}}])),
            };
            let fits = document.check(&op).is_ok();
            if !fits {
                continue;
            }
            document.apply(&op).unwrap();
            expected = expected.compose(&op);
            assert_eq!(document.len_utf16(), expected.len());
        }
        assert_eq!(document.to_delta(), expected);
        assert!(
            document
                .chunks
                .iter()
                .all(|c| c.len > 0 && c.len <= CHUNK_MAX)
        );
    }

    #[test]
    fn typing_and_deleting_one_character_at_a_time() {
        let mut document = Document::new();
        let mut expected = Delta::new();
        for i in 0..5000usize {
            let len = document.len_utf16();
            let at = (i * 7919) % (len + 1);
            let mut op = Delta::new();
            op.retain(at, None);
            if i % 4 == 3 && at < len {
                op.delete(1);
            } else {
                op.insert(if i % 10 == 0 { "😀" } else { "x" }, None);
            }
            if let Err(err) = document.check(&op) {
                assert!(
                    matches!(err, DeltaError::SplitsSurrogatePair { .. }),
                    "{err}"
                );
                assert!(document.apply(&op).is_err());
                continue;
            }
            document.apply(&op).unwrap();
            expected = expected.compose(&op);
        }
        assert_eq!(document.to_delta(), expected);
        assert!(document.chunks.len() > 1);
    }
}
