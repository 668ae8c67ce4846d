//! rt-tui: the terminal client for rt.
//!
//! - [`net`]: network clients, one task per transport, reporting to the UI
//! - [`app`]: the UI state and its `update(msg) -> Vec<Cmd>` function
//! - [`keymap`]: the key table behind dispatch, help and hints
//! - [`panes`]: the four panes (ticker, canvas, Q&A, text)
//! - [`ui`]: drawing the shell
//! - [`settings`]: the user's settings file (the watchlist)
//! - [`text`]: text helpers shared by `net` and `panes` (making foreign text inert)

#![forbid(unsafe_code)]

pub mod app;
pub mod keymap;
pub mod net;
pub mod panes;
pub mod settings;
pub mod text;
pub mod ui;

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod layering {
    /// The network clients stand below the panes: nothing in `src/net/`
    /// may name `panes` (shared helpers live in [`crate::text`]).
    #[test]
    fn net_imports_nothing_from_panes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/net");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("src/net is readable") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("a source file");
                assert!(
                    !source.contains("panes::"),
                    "{} uses the panes module",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "no sources found in {}", dir.display());
    }
}
