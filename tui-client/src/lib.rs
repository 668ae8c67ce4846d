//! rt-tui: the terminal client for rt.
//!
//! - [`net`]: network clients, one task per transport, reporting to the UI
//! - [`app`]: the UI state and its `update(msg) -> Vec<Cmd>` function
//! - [`keymap`]: the key table behind dispatch, help and hints
//! - [`panes`]: the four panes (ticker, canvas, Q&A, text)
//! - [`ui`]: drawing the shell
//! - [`settings`]: the user's settings file (the watchlist)
//! - [`board_png`]: the drawing board rendered as a PNG picture
//! - [`clipboard`]: copying to the terminal's clipboard (OSC 52)
//! - [`bench`]: the load generator behind `rt-tui bench`

#![forbid(unsafe_code)]

pub mod app;
pub mod bench;
pub mod board_png;
pub mod clipboard;
pub mod keymap;
pub mod net;
pub mod panes;
pub mod settings;
pub mod ui;

#[cfg(test)]
pub(crate) mod test_support;
