//! Text helpers shared by the network clients and the panes: whatever
//! reaches the terminal from elsewhere goes through here first.

/// Strips what could act on a terminal or reorder text: C0/C1 controls
/// (ESC among them), bidirectional overrides and zero-width characters.
/// Line breaks and tabs become spaces.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .filter(|&c| {
            !c.is_control()
                && !matches!(c,
                    '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .collect()
}

/// The columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` if it fits in `columns`; otherwise as many of its words as fit
/// followed by "…" (never part of a word); `None` when not even the first
/// word fits.
pub fn fit_words(text: &str, columns: usize) -> Option<String> {
    if width(text) <= columns {
        return Some(text.to_string());
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let candidate = if out.is_empty() {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if width(&candidate) + 1 > columns {
            break;
        }
        out = candidate;
    }
    let out = out.trim_end_matches([',', ';', ':', '·', ' ']).to_string();
    (!out.is_empty()).then(|| format!("{out}…"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_whole_words() {
        let text = "settings: cannot write tui.json, changes are not saved";
        assert_eq!(fit_words(text, 80).as_deref(), Some(text));
        assert_eq!(
            fit_words(text, 31).as_deref(),
            Some("settings: cannot write…")
        );
        assert_eq!(
            fit_words(text, 24).as_deref(),
            Some("settings: cannot write…")
        );
        assert_eq!(
            fit_words(text, 23).as_deref(),
            Some("settings: cannot write…")
        );
        assert_eq!(fit_words(text, 22).as_deref(), Some("settings: cannot…"));
        assert_eq!(fit_words(text, 10).as_deref(), Some("settings…"));
        assert_eq!(fit_words(text, 9).as_deref(), None);
        // Wide characters count as two columns.
        assert_eq!(fit_words("漢字 漢字", 6).as_deref(), Some("漢字…"));
        assert_eq!(width("漢😀a"), 5);
    }

    #[test]
    fn text_from_others_is_inert() {
        assert_eq!(
            inert("\u{1b}[2J\u{1b}]0;owned\u{7}hi\u{9b}31m\r\nthere\u{202E}cba\u{200B}"),
            "[2J]0;ownedhi31m therecba"
        );
        assert_eq!(inert("café 😀"), "café 😀");
    }
}
