//! The panes of the shell. Every pane has the same shape ([`Pane`]): it
//! handles keys and mouse events, applies network events, renders itself
//! into the area inside its frame and lists the keys valid now.

pub mod canvas;
pub mod qa;
pub mod text;
pub mod ticker;
#[cfg(test)]
pub mod title;

use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

use crate::app::Cmd;
use crate::keymap::Hint;
use crate::net::NetEvent;
use crate::ui::theme::Theme;

/// The four panes, in their numbered order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaneId {
    Ticker,
    Canvas,
    Qa,
    Text,
}

impl PaneId {
    pub const ALL: [PaneId; 4] = [PaneId::Ticker, PaneId::Canvas, PaneId::Qa, PaneId::Text];

    /// 1-based number shown in the frame and typed to focus it.
    pub fn number(self) -> usize {
        match self {
            PaneId::Ticker => 1,
            PaneId::Canvas => 2,
            PaneId::Qa => 3,
            PaneId::Text => 4,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Ticker => "Ticker",
            PaneId::Canvas => "Canvas",
            PaneId::Qa => "Q&A",
            PaneId::Text => "Text",
        }
    }

    /// One line about what the pane is for.
    pub fn description(self) -> &'static str {
        match self {
            PaneId::Ticker => "stock quotes from the server",
            PaneId::Canvas => "the shared drawing board",
            PaneId::Qa => "the question and answer board",
            PaneId::Text => "the collaborative document",
        }
    }
}

/// Live news about a pane for the tab bar, beside the pane's name (the
/// tab bar, `ui::tabs`, decides how it reads at each width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// Symbols whose price rose or fell since the pane was last on screen.
    Movers { up: usize, down: usize },
    /// Questions that arrived since the pane was last on screen.
    Unread(usize),
    /// People on the drawing board.
    Online(usize),
    /// Own edits the server has not acknowledged yet.
    Pending(usize),
}

/// What a pane needs to know to draw itself.
#[derive(Debug, Clone, Copy)]
pub struct RenderCtx<'a> {
    pub focused: bool,
    pub theme: Theme,
    pub now: Instant,
    /// The server's base URL (for messages such as "cannot reach …").
    pub server_url: &'a str,
}

/// Whether a pane used a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Not a key for this pane; the shell may use it.
    Ignored,
    /// Used, with follow-up commands for the runtime.
    Consumed(Vec<Cmd>),
}

/// One pane of the shell.
pub trait Pane {
    fn id(&self) -> PaneId;

    /// A key while the pane has focus. Global keys have been tried first,
    /// unless [`Pane::captures_input`] is true.
    fn handle_key(&mut self, key: KeyEvent) -> Handled;

    /// A mouse event inside `area` (the pane's inner area, as last rendered).
    fn handle_mouse(&mut self, event: MouseEvent, area: Rect) -> Vec<Cmd>;

    /// A network event; returns whether anything visible changed.
    fn apply(&mut self, event: &NetEvent) -> bool;

    /// Draws the pane inside `area` (the shell draws the frame and title).
    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx);

    /// The keys valid in the pane's current mode, for the hint bar.
    fn hints(&self) -> Vec<Hint>;

    /// True while the pane takes every printable key (a text field is open):
    /// global keys such as `q` then go to the pane and `Esc` leaves the field.
    fn captures_input(&self) -> bool {
        false
    }

    /// Extra text for the pane's frame title (for example a connection
    /// state), after the pane's name.
    fn title_suffix(&self) -> Option<String> {
        None
    }

    /// More of the frame title, styled, after [`Pane::title_suffix`] (for
    /// example who else is here, in their colours).
    fn title_extra(&self, _theme: Theme) -> Vec<Span<'static>> {
        Vec::new()
    }

    /// The pane just got the focus.
    fn focus_gained(&mut self) {}

    /// News for the tab bar, if there is any (see [`Badge`]).
    fn badge(&self) -> Option<Badge> {
        None
    }

    /// The pane is on screen: whatever its badge counted as new since it
    /// was last seen has now been seen.
    fn seen(&mut self) {}

    /// Text pasted into the terminal (bracketed paste) while the pane has
    /// focus.
    fn paste(&mut self, _text: &str) -> Vec<Cmd> {
        Vec::new()
    }

    /// Commands the pane wants carried out after a network event (a reply
    /// to send, …).
    fn take_cmds(&mut self) -> Vec<Cmd> {
        Vec::new()
    }

    /// True while the pane shows clocks (ages, countdowns) that must be
    /// redrawn as time passes.
    fn shows_clock(&self) -> bool {
        false
    }
}
