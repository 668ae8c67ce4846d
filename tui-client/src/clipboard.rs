//! Copying to the terminal's clipboard with OSC 52, which works over SSH
//! and in most terminal emulators (in tmux with `set -g set-clipboard on`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The most text one copy sends, in UTF-8 bytes: terminals cap OSC 52
/// payloads (xterm and tmux near 100 KB of base64), and a larger one is
/// dropped whole.
pub const MAX_COPY_BYTES: usize = 64 * 1024;

/// The escape sequence that puts `text` on the clipboard:
/// `ESC ] 52 ; c ; <base64> ESC \`.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x1b\\", STANDARD.encode(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_wraps_base64() {
        assert_eq!(osc52("hi 😀"), "\x1b]52;c;aGkg8J+YgA==\x1b\\");
        assert_eq!(osc52(""), "\x1b]52;c;\x1b\\");
    }
}
