//! Search in the text pane: every match of a query, case-insensitively, as
//! char ranges of the text.

use std::ops::Range;

/// The longest query the prompt takes, in chars.
pub const MAX_QUERY_CHARS: usize = 200;

/// A char folded for comparison: its lower case when that is one char.
fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Every non-overlapping match of `query` in `text`, as char ranges, in
/// order; none for an empty query.
pub fn matches(text: &str, query: &str) -> Vec<Range<usize>> {
    let needle: Vec<char> = query.chars().map(fold).collect();
    if needle.is_empty() {
        return Vec::new();
    }
    let hay: Vec<char> = text.chars().map(fold).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i..i + needle.len()] == needle[..] {
            out.push(i..i + needle.len());
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

/// The index of the first match starting at or after `pos`, wrapping to the
/// first match.
pub fn at_or_after(found: &[Range<usize>], pos: usize) -> Option<usize> {
    if found.is_empty() {
        return None;
    }
    Some(found.iter().position(|m| m.start >= pos).unwrap_or(0))
}

/// The index of the last match starting before `pos`, wrapping to the last
/// match.
pub fn before(found: &[Range<usize>], pos: usize) -> Option<usize> {
    if found.is_empty() {
        return None;
    }
    Some(
        found
            .iter()
            .rposition(|m| m.start < pos)
            .unwrap_or(found.len() - 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ignore_case_and_count_chars() {
        assert_eq!(matches("Foo foo FOO", "foo"), vec![0..3, 4..7, 8..11]);
        assert_eq!(
            matches("😀Straße straße", "STRASSE"),
            Vec::<Range<usize>>::new()
        );
        assert_eq!(matches("😀Éa éa", "éA"), vec![1..3, 4..6]);
        assert_eq!(matches("aaaa", "aa"), vec![0..2, 2..4], "no overlaps");
        assert!(matches("abc", "").is_empty());
        assert!(matches("ab", "abc").is_empty());
    }

    #[test]
    fn next_and_previous_wrap() {
        let found = vec![2..4, 10..12];
        assert_eq!(at_or_after(&found, 0), Some(0));
        assert_eq!(at_or_after(&found, 2), Some(0));
        assert_eq!(at_or_after(&found, 3), Some(1));
        assert_eq!(at_or_after(&found, 11), Some(0), "wraps");
        assert_eq!(before(&found, 10), Some(0));
        assert_eq!(before(&found, 2), Some(1), "wraps");
        assert_eq!(at_or_after(&[], 0), None);
        assert_eq!(before(&[], 0), None);
    }
}
