//! The application state and its update function.
//!
//! [`App::update`] takes one [`Msg`] (a key, a mouse event, a resize, a
//! network event, a clock tick) and returns the [`Cmd`]s the runtime must
//! carry out. It touches neither the terminal nor the network, so tests drive
//! it directly.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use rt_protocol::ticker::Symbol;

use crate::keymap::{self, Action, Hint, Scope};
use crate::net::{ConnState, NetEvent, Transport};
use crate::panes::{Handled, Pane, PaneId};
use crate::ui::theme::Theme;
use crate::ui::{help, layout, tabs};

/// How often clocks on screen ("3s ago", "in 2s") are refreshed.
pub const CLOCK_STEP: Duration = Duration::from_millis(250);

/// An input to [`App::update`].
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// The terminal's new size in columns and rows.
    Resize(u16, u16),
    Net(NetEvent),
    /// Time passed.
    Tick(Instant),
    /// Something for the status bar (a settings file that could not be
    /// written, …).
    Notice(String),
}

/// Work for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    /// The ticker watchlist changed: follow it and save it.
    Watchlist(Vec<Symbol>),
    /// An action on the Q&A board.
    Qa(crate::net::qa::QaCommand),
    /// Messages for the document's server connection.
    Doc(Vec<serde_json::Value>),
    /// For the drawing board client.
    Draw(crate::net::draw::DrawCommand),
}

/// The server the client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The server runs inside this process.
    pub embedded: bool,
}

/// The whole UI state.
pub struct App {
    panes: Vec<Box<dyn Pane>>,
    focus: usize,
    expanded: bool,
    help: bool,
    /// First line of the help overlay on screen.
    help_scroll: usize,
    size: Rect,
    pub server: ServerInfo,
    transports: Vec<(Transport, ConnState)>,
    pub now: Instant,
    pub theme: Theme,
    notice: Option<String>,
    dirty: bool,
    clock_bucket: u128,
    start: Instant,
}

impl App {
    /// `panes` in their numbered order; `transports` lists the connections
    /// shown in the status bar.
    pub fn new(
        server: ServerInfo,
        panes: Vec<Box<dyn Pane>>,
        transports: &[Transport],
        theme: Theme,
        now: Instant,
    ) -> App {
        App {
            panes,
            focus: 0,
            expanded: false,
            help: false,
            help_scroll: 0,
            size: Rect::default(),
            server,
            transports: transports
                .iter()
                .map(|t| (*t, ConnState::Connecting))
                .collect(),
            now,
            theme,
            notice: None,
            dirty: true,
            clock_bucket: 0,
            start: now,
        }
    }

    pub fn panes(&self) -> &[Box<dyn Pane>] {
        &self.panes
    }

    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn focused_id(&self) -> Option<PaneId> {
        self.panes.get(self.focus).map(|p| p.id())
    }

    pub fn expanded(&self) -> bool {
        self.expanded
    }

    pub fn help_open(&self) -> bool {
        self.help
    }

    /// How far the help overlay is scrolled, in lines.
    pub fn help_scroll(&self) -> usize {
        self.help_scroll
    }

    pub fn size(&self) -> Rect {
        self.size
    }

    pub fn transports(&self) -> &[(Transport, ConnState)] {
        &self.transports
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// True once after anything visible changed.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The keys valid now, for the hint bar.
    pub fn hints(&self) -> Vec<Hint> {
        if self.help {
            // Only the directions that still move the view.
            let (up, down) = (
                self.help_scroll > 0,
                self.help_scroll < help::max_scroll(self),
            );
            return keymap::bindings(Scope::Help)
                .filter(|b| match b.action {
                    Action::ScrollUp | Action::PageUp => up,
                    Action::ScrollDown | Action::PageDown => down,
                    _ => true,
                })
                .filter_map(keymap::Binding::hint)
                .collect();
        }
        let pane = self.panes.get(self.focus);
        if let Some(p) = pane.filter(|p| p.captures_input()) {
            return p.hints();
        }
        let mut hints = pane.map(|p| p.hints()).unwrap_or_default();
        let grid = self.layout() == layout::Mode::Grid;
        // Expanding is for the grid: with tabs the pane has the body already.
        hints.extend(
            keymap::bindings(Scope::Global)
                .filter(|b| grid || b.action != Action::ToggleExpand)
                .filter_map(keymap::Binding::hint),
        );
        hints
    }

    /// The layout the current size gets.
    pub fn layout(&self) -> layout::Mode {
        layout::mode(self.size)
    }

    /// Applies one message; returns what the runtime must do.
    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        let focus = self.focus;
        let cmds = self.on_msg(msg);
        if self.focus != focus
            && let Some(p) = self.panes.get_mut(self.focus)
        {
            p.focus_gained();
        }
        // What is on screen is seen: the tab bar's badges count from here.
        let areas = self.pane_areas();
        for (p, (outer, _)) in self.panes.iter_mut().zip(areas) {
            if !outer.is_empty() {
                p.seen();
            }
        }
        cmds
    }

    fn on_msg(&mut self, msg: Msg) -> Vec<Cmd> {
        match msg {
            Msg::Key(key) => {
                self.dirty = true;
                self.on_key(key)
            }
            Msg::Paste(text) => {
                if self.help {
                    return Vec::new();
                }
                self.dirty = true;
                match self.panes.get_mut(self.focus) {
                    Some(p) => p.paste(&text),
                    None => Vec::new(),
                }
            }
            Msg::Mouse(ev) => self.on_mouse(ev),
            Msg::Resize(w, h) => {
                self.size = Rect::new(0, 0, w, h);
                self.help_scroll = self.help_scroll.min(help::max_scroll(self));
                self.dirty = true;
                Vec::new()
            }
            Msg::Net(ev) => {
                if let NetEvent::State(t, s) = &ev {
                    for (tt, ss) in &mut self.transports {
                        if tt == t {
                            *ss = s.clone();
                        }
                    }
                    self.dirty = true;
                }
                // The board's notifications belong in the status line.
                if let NetEvent::Qa(crate::net::qa::QaEvent::Notification(text)) = &ev {
                    // Server text: shown inertly, like the board's.
                    self.notice = Some(crate::text::inert(text));
                    self.dirty = true;
                }
                let mut cmds = Vec::new();
                for p in &mut self.panes {
                    self.dirty |= p.apply(&ev);
                    cmds.extend(p.take_cmds());
                }
                cmds
            }
            Msg::Tick(now) => {
                self.now = now;
                let bucket =
                    now.saturating_duration_since(self.start).as_millis() / CLOCK_STEP.as_millis();
                if bucket != self.clock_bucket {
                    self.clock_bucket = bucket;
                    let retrying = self
                        .transports
                        .iter()
                        .any(|(_, s)| matches!(s, ConnState::Retrying { .. }));
                    if retrying || self.panes.iter().any(|p| p.shows_clock()) {
                        self.dirty = true;
                    }
                }
                Vec::new()
            }
            Msg::Notice(text) => {
                self.notice = Some(text);
                self.dirty = true;
                Vec::new()
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Cmd> {
        if keymap::is_interrupt(&key) {
            return vec![Cmd::Quit];
        }
        if self.help {
            if let Some(action) = keymap::lookup(Scope::Help, &key) {
                self.on_help(action);
            }
            return Vec::new();
        }
        let captures = self
            .panes
            .get(self.focus)
            .is_some_and(|p| p.captures_input());
        if captures {
            // Tab is not printable: it moves focus even out of a text input,
            // so a typing pane never traps the user.
            if let Some(action @ (Action::FocusNext | Action::FocusPrev)) =
                keymap::lookup(Scope::Global, &key)
            {
                return self.on_global(action, &key);
            }
            return match self.panes[self.focus].handle_key(key) {
                Handled::Consumed(cmds) => cmds,
                Handled::Ignored => Vec::new(),
            };
        }
        if let Some(action) = keymap::lookup(Scope::Global, &key) {
            return self.on_global(action, &key);
        }
        match self.panes.get_mut(self.focus).map(|p| p.handle_key(key)) {
            Some(Handled::Consumed(cmds)) => cmds,
            _ => Vec::new(),
        }
    }

    fn on_global(&mut self, action: Action, key: &KeyEvent) -> Vec<Cmd> {
        let n = self.panes.len();
        match action {
            Action::Quit => return vec![Cmd::Quit],
            Action::ToggleHelp => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Action::FocusNext if n > 0 => self.focus = (self.focus + 1) % n,
            Action::FocusPrev if n > 0 => self.focus = (self.focus + n - 1) % n,
            Action::FocusNumber => {
                if let KeyCode::Char(c) = key.code
                    && let Some(d) = c.to_digit(10)
                    && (1..=n).contains(&(d as usize))
                {
                    self.focus = d as usize - 1;
                }
            }
            Action::ToggleExpand if self.layout() == layout::Mode::Grid => {
                self.expanded = !self.expanded;
            }
            _ => {}
        }
        Vec::new()
    }

    /// A key of the help overlay.
    fn on_help(&mut self, action: Action) {
        let max = help::max_scroll(self);
        let page = help::visible_rows(self.size).saturating_sub(1).max(1);
        let at = self.help_scroll;
        self.help_scroll = match action {
            Action::CloseHelp => {
                self.help = false;
                0
            }
            Action::ScrollDown => at + 1,
            Action::ScrollUp => at.saturating_sub(1),
            Action::PageDown => at + page,
            Action::PageUp => at.saturating_sub(page),
            _ => at,
        }
        .min(max);
    }

    /// Where each pane's inner area is on the current screen.
    pub fn pane_areas(&self) -> Vec<(Rect, Rect)> {
        layout::panes(self.size, self.panes.len(), self.focus, self.expanded)
    }

    fn on_mouse(&mut self, ev: MouseEvent) -> Vec<Cmd> {
        if self.help {
            let scroll = match ev.kind {
                MouseEventKind::ScrollDown => Some(Action::ScrollDown),
                MouseEventKind::ScrollUp => Some(Action::ScrollUp),
                _ => None,
            };
            if let Some(action) = scroll {
                self.on_help(action);
                self.dirty = true;
            }
            return Vec::new();
        }
        if layout::too_small(self.size) {
            return Vec::new();
        }
        // Drags and releases go to the focused canvas wherever they happen,
        // so a stroke that leaves the pane still ends.
        if matches!(ev.kind, MouseEventKind::Drag(_) | MouseEventKind::Up(_))
            && self.focused_id() == Some(PaneId::Canvas)
        {
            let inner = self.pane_areas()[self.focus].1;
            self.dirty = true;
            return self.panes[self.focus].handle_mouse(ev, inner);
        }
        let at = Position::new(ev.column, ev.row);
        let bar = layout::shell(self.size).tabs;
        if bar.contains(at) {
            if matches!(ev.kind, MouseEventKind::Down(MouseButton::Left))
                && let Some(i) = tabs::hit(self, bar, at)
                && i != self.focus
            {
                self.focus = i;
                self.dirty = true;
            }
            return Vec::new();
        }
        let Some(i) = self
            .pane_areas()
            .iter()
            .position(|(outer, _)| outer.contains(at))
        else {
            return Vec::new();
        };
        if matches!(ev.kind, MouseEventKind::Down(MouseButton::Left)) && self.focus != i {
            self.focus = i;
            self.dirty = true;
        }
        let inner = self.pane_areas()[i].1;
        if !inner.contains(at)
            && !matches!(
                ev.kind,
                MouseEventKind::ScrollDown | MouseEventKind::ScrollUp
            )
        {
            return Vec::new();
        }
        if matches!(
            ev.kind,
            MouseEventKind::Moved | MouseEventKind::Drag(_) | MouseEventKind::Up(_)
        ) {
            return Vec::new();
        }
        self.dirty = true;
        self.panes[i].handle_mouse(ev, inner)
    }

    /// The status bar's text for a transport state.
    pub fn describe_state(&self, state: &ConnState) -> String {
        match state {
            ConnState::Idle => "idle".to_string(),
            ConnState::Connecting => "connecting…".to_string(),
            ConnState::Connected => "connected".to_string(),
            ConnState::Retrying { at, error } => {
                let wait = at
                    .saturating_duration_since(self.now)
                    .as_millis()
                    .div_ceil(1000);
                if error.starts_with("cannot reach") {
                    format!("cannot reach {}, retrying in {wait}s", self.server.url)
                } else {
                    format!("{error}, retrying in {wait}s")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TRANSPORTS, panes};
    use crossterm::event::KeyModifiers;

    pub(crate) fn app() -> App {
        let watch = vec![
            Symbol::parse("AAPL").unwrap(),
            Symbol::parse("IBM").unwrap(),
        ];
        let mut app = App::new(
            ServerInfo {
                url: "http://127.0.0.1:8080".into(),
                embedded: false,
            },
            panes(watch),
            &TRANSPORTS,
            Theme::COLOR,
            Instant::now(),
        );
        // The grid: tests of tabs are in `ui`.
        app.update(Msg::Resize(200, 40));
        app
    }

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn code(c: KeyCode, m: KeyModifiers) -> Msg {
        Msg::Key(KeyEvent::new(c, m))
    }

    #[test]
    fn focus_moves_with_tab_digits_and_wraps() {
        let mut a = app();
        assert_eq!(a.focus(), 0);
        a.update(code(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(a.focused_id(), Some(PaneId::Canvas));
        a.update(code(KeyCode::BackTab, KeyModifiers::SHIFT));
        a.update(code(KeyCode::BackTab, KeyModifiers::SHIFT));
        assert_eq!(a.focused_id(), Some(PaneId::Text));
        // The text pane types on focus: digits are text until Esc.
        a.update(key('3'));
        assert_eq!(a.focused_id(), Some(PaneId::Text));
        a.update(code(KeyCode::Esc, KeyModifiers::NONE));
        a.update(key('3'));
        assert_eq!(a.focused_id(), Some(PaneId::Qa));
        a.update(key('9'));
        assert_eq!(a.focused_id(), Some(PaneId::Qa));
        a.update(key('1'));
        assert_eq!(a.focused_id(), Some(PaneId::Ticker));
    }

    #[test]
    fn quit_help_and_expand() {
        let mut a = app();
        assert_eq!(a.update(key('q')), vec![Cmd::Quit]);
        assert_eq!(
            a.update(code(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            vec![Cmd::Quit]
        );
        a.update(key('?'));
        assert!(a.help_open());
        // While help is open other keys do nothing, q closes it.
        a.update(key('2'));
        assert_eq!(a.focus(), 0);
        assert_eq!(a.update(key('q')), vec![]);
        assert!(!a.help_open());
        a.update(key('e'));
        assert!(a.expanded());
        a.update(key('e'));
        assert!(!a.expanded());
    }

    #[test]
    fn a_text_field_takes_every_printable_key_until_esc() {
        let mut a = app();
        a.update(key('a'));
        assert_eq!(a.update(key('q')), vec![]);
        a.update(key('2'));
        assert_eq!(a.focus(), 0, "digits are typed, not focus keys");
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["Enter", "Esc"]);
        a.update(code(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(a.update(key('q')), vec![Cmd::Quit]);
        // Ctrl-C quits even from the field.
        a.update(key('a'));
        assert_eq!(
            a.update(code(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            vec![Cmd::Quit]
        );
    }

    #[test]
    fn pane_keys_produce_commands() {
        let mut a = app();
        a.update(key('a'));
        for c in "msft".chars() {
            a.update(key(c));
        }
        let cmds = a.update(code(KeyCode::Enter, KeyModifiers::NONE));
        let syms = |v: &[&str]| v.iter().map(|s| Symbol::parse(s).unwrap()).collect();
        assert_eq!(cmds, vec![Cmd::Watchlist(syms(&["AAPL", "IBM", "MSFT"]))]);
        let cmds = a.update(key('d'));
        assert_eq!(cmds, vec![Cmd::Watchlist(syms(&["AAPL", "IBM"]))]);
    }

    #[test]
    fn hints_follow_focus_and_mode() {
        let mut a = app();
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(
            labels,
            ["j/↓", "k/↑", "a", "d", "q C-c", "?", "Tab", "1-4", "e"]
        );
        a.update(key('2'));
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(
            labels,
            [
                "←↑→↓",
                "Space",
                "c",
                "u",
                "C",
                "q C-c",
                "?",
                "Tab",
                "1-4",
                "e"
            ]
        );
        // The help overlay is taller than the screen: it scrolls down only.
        a.update(key('?'));
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["Esc ? q", "j/↓", "PgDn Space"]);
        // On a screen tall enough for all of it, closing is the only key.
        a.update(Msg::Resize(120, 100));
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["Esc ? q"]);
    }

    #[test]
    fn help_scrolls_within_its_bounds() {
        let mut a = app();
        a.update(key('?'));
        let max = help::max_scroll(&a);
        assert!(max > 0, "every pane's keys do not fit 40 rows");
        a.update(key('k'));
        assert_eq!(a.help_scroll(), 0, "cannot scroll above the top");
        a.update(key('j'));
        a.update(code(KeyCode::Down, KeyModifiers::NONE));
        assert_eq!(a.help_scroll(), 2);
        a.update(code(KeyCode::PageDown, KeyModifiers::NONE));
        let page = help::visible_rows(a.size()) - 1;
        assert_eq!(a.help_scroll(), (2 + page).min(max));
        for _ in 0..10 {
            a.update(code(KeyCode::PageDown, KeyModifiers::NONE));
        }
        assert_eq!(a.help_scroll(), max, "stops at the last page");
        let labels: Vec<_> = a.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["Esc ? q", "k/↑", "PgUp"]);
        a.update(code(KeyCode::PageUp, KeyModifiers::NONE));
        assert_eq!(a.help_scroll(), max.saturating_sub(page));
        // The mouse wheel scrolls too.
        a.update(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 10,
            row: 10,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(a.help_scroll(), (max.saturating_sub(page) + 1).min(max));
        // A taller screen needs less scrolling: the offset follows.
        a.update(Msg::Resize(120, 60));
        assert!(a.help_scroll() <= help::max_scroll(&a));
        // Closing and reopening starts at the top, without moving focus.
        a.update(code(KeyCode::Esc, KeyModifiers::NONE));
        assert!(!a.help_open());
        a.update(key('?'));
        assert_eq!(a.help_scroll(), 0);
        assert_eq!(a.focus(), 0);
    }

    #[test]
    fn a_click_focuses_the_pane_under_the_mouse() {
        let mut a = app();
        let areas = a.pane_areas();
        let (outer, _) = areas[3];
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: outer.x + 2,
            row: outer.y + 1,
            modifiers: KeyModifiers::NONE,
        };
        a.update(Msg::Mouse(click));
        assert_eq!(a.focused_id(), Some(PaneId::Text));
        // A click on a ticker row selects it as well as focusing the pane.
        let (_, inner) = areas[0];
        let click = MouseEvent {
            row: inner.y + 2,
            column: inner.x + 1,
            ..click
        };
        a.take_dirty();
        a.update(Msg::Mouse(click));
        assert_eq!(a.focused_id(), Some(PaneId::Ticker));
        assert!(a.take_dirty());
        // IBM (second row) was selected, so d removes it.
        let cmds = a.update(key('d'));
        assert_eq!(
            cmds,
            vec![Cmd::Watchlist(vec![Symbol::parse("AAPL").unwrap()])]
        );
    }

    #[test]
    fn state_events_reach_the_status_bar_and_ticks_redraw_only_with_clocks() {
        let mut a = app();
        let t0 = a.now;
        a.take_dirty();
        a.update(Msg::Tick(t0 + Duration::from_secs(1)));
        assert!(!a.take_dirty(), "nothing on screen depends on time yet");
        let at = t0 + Duration::from_secs(4);
        a.update(Msg::Net(NetEvent::State(
            Transport::Ticker,
            ConnState::Retrying {
                at,
                error: "cannot reach http://127.0.0.1:8080: refused".into(),
            },
        )));
        assert!(a.take_dirty());
        assert_eq!(
            a.describe_state(&a.transports()[0].1),
            "cannot reach http://127.0.0.1:8080, retrying in 3s"
        );
        a.update(Msg::Tick(t0 + Duration::from_millis(1100)));
        assert!(!a.take_dirty(), "same clock step");
        a.update(Msg::Tick(t0 + Duration::from_millis(1300)));
        assert!(a.take_dirty());
    }

    #[test]
    fn board_notifications_reach_the_status_line_inertly() {
        let mut a = app();
        a.update(Msg::Net(NetEvent::Qa(
            crate::net::qa::QaEvent::Notification(
                "No such \u{1b}[2J\u{1b}]0;owned\u{7}question\u{202e}".into(),
            ),
        )));
        assert_eq!(a.notice(), Some("No such [2J]0;ownedquestion"));
    }
}
