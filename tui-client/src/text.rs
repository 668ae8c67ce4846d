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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_others_is_inert() {
        assert_eq!(
            inert("\u{1b}[2J\u{1b}]0;owned\u{7}hi\u{9b}31m\r\nthere\u{202E}cba\u{200B}"),
            "[2J]0;ownedhi31m therecba"
        );
        assert_eq!(inert("café 😀"), "café 😀");
    }
}
