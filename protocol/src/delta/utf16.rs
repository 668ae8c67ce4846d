//! UTF-16 arithmetic on Rust strings.
//!
//! Every length and offset of the Delta type counts UTF-16 code units, like
//! JavaScript's `String.prototype.length`. Text is stored as `String`, so a
//! lone surrogate cannot be represented: when an algorithm cuts text between
//! the two halves of a surrogate pair (JavaScript allows that), each half
//! becomes U+FFFD REPLACEMENT CHARACTER. U+FFFD is one UTF-16 unit, exactly
//! like the half it stands for, so lengths and offsets stay identical to
//! JavaScript's. Servers never reach that path: [`super::Document`] rejects
//! ops whose boundaries split a pair.

/// U+FFFD, the stand-in for half of a split surrogate pair.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Length of `s` in UTF-16 code units (JavaScript `s.length`).
pub fn len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Byte offset of UTF-16 offset `units` in `s`, or `None` when `units` falls
/// inside a surrogate pair. Offsets past the end clamp to `s.len()`.
pub fn byte_offset(s: &str, units: usize) -> Option<usize> {
    if s.is_ascii() {
        return Some(units.min(s.len()));
    }
    let mut seen = 0;
    for (byte, c) in s.char_indices() {
        if seen == units {
            return Some(byte);
        }
        seen += c.len_utf16();
        if seen > units {
            return None;
        }
    }
    Some(s.len())
}

/// Whether UTF-16 offset `units` lies between the halves of a surrogate pair.
pub fn splits_pair(s: &str, units: usize) -> bool {
    byte_offset(s, units).is_none()
}

/// A read position inside a string, kept in bytes and UTF-16 units together,
/// which may sit between the halves of a surrogate pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Byte offset of the current character.
    pub byte: usize,
    /// True when the high half of the character at `byte` was already taken.
    pub mid_pair: bool,
}

/// Takes up to `units` UTF-16 units of `s` starting at `cursor`, advancing
/// it. Half pairs come out as U+FFFD (see the module documentation).
pub fn take(s: &str, cursor: &mut Cursor, units: usize) -> String {
    let mut out = String::new();
    let mut left = units;
    if left > 0 && cursor.mid_pair {
        out.push(REPLACEMENT);
        left -= 1;
        let c = s[cursor.byte..].chars().next().map_or(0, char::len_utf8);
        cursor.byte += c;
        cursor.mid_pair = false;
    }
    let rest = &s[cursor.byte..];
    if rest.is_ascii() {
        let n = left.min(rest.len());
        out.push_str(&rest[..n]);
        cursor.byte += n;
        return out;
    }
    let mut end = cursor.byte;
    for c in rest.chars() {
        if left == 0 {
            break;
        }
        let w = c.len_utf16();
        if w <= left {
            left -= w;
            end += c.len_utf8();
        } else {
            out.push_str(&s[cursor.byte..end]);
            out.push(REPLACEMENT);
            cursor.byte = end;
            cursor.mid_pair = true;
            return out;
        }
    }
    out.push_str(&s[cursor.byte..end]);
    cursor.byte = end;
    out
}

/// Rewrites `\uXXXX` escapes of unpaired surrogates in JSON text to
/// `\uFFFD`, leaving everything else alone.
///
/// JavaScript's `JSON.stringify` emits such escapes for text cut inside a
/// surrogate pair, and `serde_json` refuses them; after this rewrite the
/// frame parses and every UTF-16 length is unchanged (one unit each).
pub fn replace_lone_surrogate_escapes(json: &str) -> std::borrow::Cow<'_, str> {
    let bytes = json.as_bytes();
    if !json.contains("\\u") {
        return std::borrow::Cow::Borrowed(json);
    }
    let unit_at = |i: usize| -> Option<u16> {
        if bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u') {
            let hex = json.get(i + 2..i + 6)?;
            u16::from_str_radix(hex, 16).ok()
        } else {
            None
        }
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(unit) = unit_at(i) else {
            i += 2; // some other escape, such as \\ or \"
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        if is_high && unit_at(i + 6).is_some_and(|next| (0xDC00..0xE000).contains(&next)) {
            i += 12;
        } else if is_high || is_low {
            out.push_str(&json[copied..i]);
            out.push_str("\\uFFFD");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(len("abc"), 3);
        assert_eq!(len("é"), 1);
        assert_eq!(len("e\u{301}"), 2);
        assert_eq!(len("😀"), 2);
        assert_eq!(len("中文"), 2);
        assert_eq!(len("👍🏽"), 4);
    }

    #[test]
    fn byte_offsets_refuse_the_middle_of_a_pair() {
        assert_eq!(byte_offset("a😀b", 1), Some(1));
        assert_eq!(byte_offset("a😀b", 2), None);
        assert_eq!(byte_offset("a😀b", 3), Some(5));
        assert_eq!(byte_offset("a😀b", 4), Some(6));
        assert_eq!(byte_offset("a😀b", 9), Some(6));
        assert_eq!(byte_offset("abc", 2), Some(2));
        assert!(splits_pair("😀", 1));
        assert!(!splits_pair("😀", 2));
    }

    #[test]
    fn take_slices_by_units() {
        let s = "a中😀b";
        let mut c = Cursor::default();
        assert_eq!(take(s, &mut c, 2), "a中");
        assert_eq!(take(s, &mut c, 2), "😀");
        assert_eq!(take(s, &mut c, 5), "b");
        assert_eq!(take(s, &mut c, 5), "");
    }

    #[test]
    fn take_replaces_split_halves_keeping_lengths() {
        let s = "😀x";
        let mut c = Cursor::default();
        let first = take(s, &mut c, 1);
        assert_eq!(first, "\u{FFFD}");
        let second = take(s, &mut c, 2);
        assert_eq!(second, "\u{FFFD}x");
        assert_eq!(len(&first) + len(&second), len(s));
    }

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        // What JSON.stringify gives for compose(ins 😀, [retain 1, ins x]).
        let js = r#"{"ops":[{"insert":"\ud83dx\ude00"}]}"#;
        assert!(serde_json::from_str::<serde_json::Value>(js).is_err());
        let fixed = replace_lone_surrogate_escapes(js);
        assert_eq!(fixed, r#"{"ops":[{"insert":"\uFFFDx\uFFFD"}]}"#);
        let value: serde_json::Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(len(value["ops"][0]["insert"].as_str().unwrap()), 3);
    }

    #[test]
    fn valid_escapes_are_left_alone() {
        for json in [
            r#"["\ud83d\ude00"]"#,
            r#"["\\ud83d"]"#,
            r#"["\u00e9\n\"\\"]"#,
            r#"["plain 😀"]"#,
            r#"["\ud83d\u0041"]"#,
        ] {
            let fixed = replace_lone_surrogate_escapes(json);
            if json.contains(r"\ud83d\u0041") {
                assert_eq!(fixed, r#"["\uFFFD\u0041"]"#);
            } else {
                assert!(matches!(fixed, std::borrow::Cow::Borrowed(_)), "{json}");
            }
        }
        assert_eq!(
            replace_lone_surrogate_escapes(r#"["\udc00 \uD800"]"#),
            r#"["\uFFFD \uFFFD"]"#
        );
    }
}
