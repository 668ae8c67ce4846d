//! The text pane: the collaborative document as plain text. Typing sends
//! inserts and deletes only, so formatting set by other clients (Quill) is
//! kept. The pane owns the document's [`DocSession`]; what it must send goes
//! out as [`Cmd::Doc`].
//!
//! Focusing the pane starts typing: every printable key (`q` and digits
//! too) goes into the document until `Esc`. The text is laid out in grapheme
//! clusters with their terminal widths (CJK and emoji take two columns) and
//! soft-wrapped; offsets sent to the server are UTF-16 code units.

use std::cell::Cell;
use std::ops::Range;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use rt_protocol::delta::{Delta, Insert};
use serde_json::Value;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use super::{Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::{self, Action, Hint, Scope};
use crate::net::doc::{DocChange, DocEvent, DocSession};
use crate::net::{ConnState, NetEvent, Transport};
use crate::ui::theme::Theme;

/// Where the cursor is: a char index into the text.
type CharPos = usize;

/// Columns a tab takes on screen.
const TAB_WIDTH: usize = 4;

/// The largest paste accepted, in UTF-8 bytes; it goes out as one op, which
/// must stay well under the server's op size limit (256 KiB by default).
pub const MAX_PASTE_BYTES: usize = 64 * 1024;

/// Rows a page key moves when the pane has not been drawn yet.
const DEFAULT_PAGE: usize = 10;

/// Colours other users' carets and names are drawn in, picked by their
/// presence id.
const PALETTE: [Color; 8] = [
    Color::Magenta,
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::LightBlue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
];

/// The colour of the user with presence id `id` (stable across runs).
fn colour_of(id: &str) -> Color {
    // FNV-1a: small, stable and good enough to spread ids over the palette.
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    PALETTE[h as usize % PALETTE.len()]
}

/// The UTF-16 offset of char index `pos` in `text`.
fn to_utf16(text: &str, pos: CharPos) -> usize {
    text.chars().take(pos).map(char::len_utf16).sum()
}

/// The char index at UTF-16 offset `units` (rounded down to a char).
fn from_utf16(text: &str, units: usize) -> CharPos {
    let mut at = 0;
    for (i, c) in text.chars().enumerate() {
        if at + c.len_utf16() > units {
            return i;
        }
        at += c.len_utf16();
    }
    text.chars().count()
}

/// How a grapheme is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Tab,
    Newline,
    /// An embed (U+FFFC in the text).
    Embed,
    /// A control or zero-width character, shown as a placeholder so the
    /// caret on it stays visible and nothing reaches the terminal raw.
    Hidden,
}

/// One grapheme cluster of the text.
#[derive(Debug, Clone)]
struct Grapheme {
    start: CharPos,
    end: CharPos,
    bytes: Range<usize>,
    width: usize,
    kind: Kind,
    word: bool,
}

/// One screen row: graphemes `first..last` (never a newline), chars
/// `start..end`.
#[derive(Debug, Clone, Copy)]
struct Row {
    first: usize,
    last: usize,
    start: CharPos,
    end: CharPos,
}

/// The text cut into graphemes and soft-wrapped rows.
#[derive(Debug)]
struct TextLayout {
    text: String,
    graphemes: Vec<Grapheme>,
    rows: Vec<Row>,
    chars: usize,
}

impl TextLayout {
    /// Lays `text` out in rows at most `width` columns wide.
    fn new(text: String, width: usize) -> TextLayout {
        let width = width.max(1);
        let mut graphemes = Vec::new();
        let mut at = 0;
        for (i, g) in text.grapheme_indices(true) {
            let n = g.chars().count();
            let first = g.chars().next().unwrap_or(' ');
            let (kind, w) = if g.contains('\n') {
                (Kind::Newline, 0)
            } else if g == "\t" {
                (Kind::Tab, TAB_WIDTH)
            } else if g == "\u{FFFC}" {
                (Kind::Embed, 1)
            } else if g.chars().any(char::is_control) || g.width() == 0 {
                (Kind::Hidden, 1)
            } else {
                (Kind::Text, g.width())
            };
            graphemes.push(Grapheme {
                start: at,
                end: at + n,
                bytes: i..i + g.len(),
                width: w,
                kind,
                word: first.is_alphanumeric() || first == '_',
            });
            at += n;
        }
        let chars = at;
        let start_of = |gs: &[Grapheme], i: usize| gs.get(i).map_or(chars, |g| g.start);
        let mut rows = Vec::new();
        let mut first = 0;
        let mut col = 0;
        for (i, g) in graphemes.iter().enumerate() {
            if g.kind == Kind::Newline {
                rows.push(Row {
                    first,
                    last: i,
                    start: start_of(&graphemes, first),
                    end: g.start,
                });
                first = i + 1;
                col = 0;
                continue;
            }
            if col > 0 && col + g.width > width {
                rows.push(Row {
                    first,
                    last: i,
                    start: start_of(&graphemes, first),
                    end: g.start,
                });
                first = i;
                col = 0;
            }
            col += g.width;
        }
        rows.push(Row {
            first,
            last: graphemes.len(),
            start: start_of(&graphemes, first),
            end: chars,
        });
        TextLayout {
            text,
            graphemes,
            rows,
            chars,
        }
    }

    /// The row showing char position `pos`.
    fn row_of(&self, pos: CharPos) -> usize {
        self.rows
            .partition_point(|r| r.start <= pos)
            .saturating_sub(1)
    }

    /// Does row `row` wrap into the next one (no newline between them)?
    fn wraps(&self, row: usize) -> bool {
        self.rows
            .get(row + 1)
            .is_some_and(|next| next.start == self.rows[row].end)
    }

    /// The screen column of `pos` on row `row`.
    fn col_of(&self, row: usize, pos: CharPos) -> usize {
        let r = self.rows[row];
        self.graphemes[r.first..r.last]
            .iter()
            .take_while(|g| g.end <= pos)
            .map(|g| g.width)
            .sum()
    }

    /// The position on row `row` nearest to screen column `col`.
    fn pos_at(&self, row: usize, col: usize) -> CharPos {
        let r = self.rows[row];
        let mut pos = r.start;
        let mut at = 0;
        for g in &self.graphemes[r.first..r.last] {
            if at + g.width > col {
                break;
            }
            at += g.width;
            pos = g.end;
        }
        // The end of a wrapped row is the start of the next one.
        if self.wraps(row) && pos == r.end && r.last > r.first {
            pos = self.graphemes[r.last - 1].start;
        }
        pos
    }

    /// Index of the first grapheme at or after `pos`.
    fn index_at(&self, pos: CharPos) -> usize {
        self.graphemes.partition_point(|g| g.start < pos)
    }

    fn start_of(&self, i: usize) -> CharPos {
        self.graphemes.get(i).map_or(self.chars, |g| g.start)
    }

    /// The grapheme boundary before `pos`.
    fn prev(&self, pos: CharPos) -> CharPos {
        self.start_of(self.index_at(pos).saturating_sub(1))
    }

    /// The grapheme boundary after `pos`.
    fn next(&self, pos: CharPos) -> CharPos {
        self.graphemes
            .iter()
            .find(|g| g.end > pos)
            .map_or(self.chars, |g| g.end)
    }

    /// The start of the word before `pos`.
    fn word_left(&self, pos: CharPos) -> CharPos {
        let mut i = self.index_at(pos);
        while i > 0 && !self.graphemes[i - 1].word {
            i -= 1;
        }
        while i > 0 && self.graphemes[i - 1].word {
            i -= 1;
        }
        self.start_of(i)
    }

    /// The end of the word after `pos`.
    fn word_right(&self, pos: CharPos) -> CharPos {
        let n = self.graphemes.len();
        let mut i = self.index_at(pos);
        while i < n && !self.graphemes[i].word {
            i += 1;
        }
        while i < n && self.graphemes[i].word {
            i += 1;
        }
        self.start_of(i)
    }

    /// What grapheme `g` looks like on screen.
    fn shown(&self, g: &Grapheme) -> &str {
        match g.kind {
            Kind::Text => &self.text[g.bytes.clone()],
            Kind::Tab => "    ",
            Kind::Embed => "□",
            Kind::Hidden => "·",
            Kind::Newline => "",
        }
    }
}

/// What the last render saw, for page keys, mouse clicks and scrolling.
#[derive(Debug, Clone, Copy, Default)]
struct View {
    /// Where the text was drawn (empty before the first render).
    body: Rect,
    /// The first row shown.
    top: usize,
}

impl View {
    /// Columns text may take (one is kept free for a caret at a line end).
    fn text_width(self) -> usize {
        if self.body.width == 0 {
            usize::MAX
        } else {
            usize::from(self.body.width).saturating_sub(1).max(1)
        }
    }

    fn page(self) -> usize {
        match self.body.height {
            0 => DEFAULT_PAGE,
            h => usize::from(h).saturating_sub(1).max(1),
        }
    }
}

/// The text pane's state.
#[derive(Debug, Clone)]
pub struct TextPane {
    session: DocSession,
    cursor: CharPos,
    /// The screen column vertical moves aim for (kept across a run of them).
    goal: Option<usize>,
    /// Typing mode: every printable key goes into the document.
    editing: bool,
    conn: ConnState,
    error: Option<String>,
    out: Vec<Value>,
    /// The name shown to other users next to our cursor.
    name: String,
    view: Cell<View>,
}

impl TextPane {
    /// A pane for `collection/id` (not connected yet).
    pub fn new(collection: &str, id: &str) -> TextPane {
        TextPane {
            session: DocSession::new(collection, id),
            cursor: 0,
            goal: None,
            editing: false,
            conn: ConnState::Connecting,
            error: None,
            out: Vec::new(),
            name: std::env::var("USER")
                .map(|u| format!("{u} (tui)"))
                .unwrap_or_else(|_| "rt-tui".to_string()),
            view: Cell::new(View::default()),
        }
    }

    /// Sets the name shown to other users.
    pub fn with_name(mut self, name: impl Into<String>) -> TextPane {
        self.name = name.into();
        self
    }

    /// The document's text as shown (without Quill's final newline).
    pub fn text(&self) -> String {
        let mut t = self.session.text();
        if t.ends_with('\n') {
            t.pop();
        }
        t
    }

    /// The cursor as a char index.
    pub fn cursor(&self) -> CharPos {
        self.cursor
    }

    pub fn session(&self) -> &DocSession {
        &self.session
    }

    fn layout(&self) -> TextLayout {
        TextLayout::new(self.text(), self.view.get().text_width())
    }

    fn clamp(&mut self) {
        self.cursor = self.cursor.min(self.text().chars().count());
    }

    fn submit(&mut self, op: Delta) -> Vec<Cmd> {
        match self.session.submit(op) {
            Ok(msgs) if msgs.is_empty() => Vec::new(),
            Ok(msgs) => vec![Cmd::Doc(msgs)],
            Err(e) => {
                self.error = Some(e.to_string());
                Vec::new()
            }
        }
    }

    fn insert(&mut self, s: &str) -> Vec<Cmd> {
        if s.is_empty() {
            return Vec::new();
        }
        if self.session.document().is_none() {
            self.error = Some(match self.session.version() {
                None => "the document is not loaded yet; nothing was typed".to_string(),
                Some(_) => "this document does not exist; nothing was typed".to_string(),
            });
            return Vec::new();
        }
        let text = self.text();
        let mut op = Delta::new();
        op.retain(to_utf16(&text, self.cursor), None);
        op.insert(Insert::from(s), None);
        self.cursor += s.chars().count();
        self.submit(op)
    }

    /// Deletes chars `range` (never Quill's final newline, which is not in
    /// [`TextPane::text`]).
    fn delete(&mut self, range: Range<CharPos>) -> Vec<Cmd> {
        if range.is_empty() {
            return Vec::new();
        }
        let text = self.text();
        let start = to_utf16(&text, range.start);
        let len: usize = text
            .chars()
            .skip(range.start)
            .take(range.len())
            .map(char::len_utf16)
            .sum();
        if len == 0 {
            return Vec::new();
        }
        let mut op = Delta::new();
        op.retain(start, None);
        op.delete(len);
        self.cursor = range.start;
        self.submit(op)
    }

    fn move_cursor(&mut self, action: Action) {
        let layout = self.layout();
        let pos = self.cursor.min(layout.chars);
        let row = layout.row_of(pos);
        let vertical = |goal: &mut Option<usize>, target: usize| {
            let col = *goal.get_or_insert_with(|| layout.col_of(row, pos));
            layout.pos_at(target, col)
        };
        let last_row = layout.rows.len() - 1;
        let mut goal = self.goal.take();
        let page = self.view.get().page();
        self.cursor = match action {
            Action::CursorLeft => layout.prev(pos),
            Action::CursorRight => layout.next(pos),
            Action::WordLeft => layout.word_left(pos),
            Action::WordRight => layout.word_right(pos),
            Action::CursorUp if row > 0 => vertical(&mut goal, row - 1),
            Action::CursorUp => 0,
            Action::CursorDown if row < last_row => vertical(&mut goal, row + 1),
            Action::CursorDown => layout.chars,
            Action::PageUp if row > 0 => vertical(&mut goal, row.saturating_sub(page)),
            Action::PageUp => 0,
            Action::PageDown if row < last_row => vertical(&mut goal, (row + page).min(last_row)),
            Action::PageDown => layout.chars,
            Action::LineStart => layout.rows[row].start,
            Action::LineEnd if layout.wraps(row) => layout.pos_at(row, usize::MAX),
            Action::LineEnd => layout.rows[row].end,
            _ => pos,
        };
        if matches!(
            action,
            Action::CursorUp | Action::CursorDown | Action::PageUp | Action::PageDown
        ) {
            self.goal = goal;
        }
        // A page key scrolls the view by a page as well.
        let mut view = self.view.get();
        match action {
            Action::PageUp => view.top = view.top.saturating_sub(page),
            Action::PageDown => view.top += page,
            _ => {}
        }
        self.view.set(view);
    }

    fn handle_key_inner(&mut self, key: KeyEvent) -> Handled {
        if self.editing {
            let cmds = match keymap::lookup(Scope::TextEdit, &key) {
                Some(Action::Cancel) => {
                    self.editing = false;
                    Vec::new()
                }
                Some(Action::Newline) => self.insert("\n"),
                Some(Action::DeleteBack) => {
                    let layout = self.layout();
                    let pos = self.cursor.min(layout.chars);
                    self.delete(layout.prev(pos)..pos)
                }
                Some(Action::DeleteForward) => {
                    let layout = self.layout();
                    let pos = self.cursor.min(layout.chars);
                    self.delete(pos..layout.next(pos))
                }
                Some(a) => {
                    self.move_cursor(a);
                    Vec::new()
                }
                None => match key.code {
                    KeyCode::Char(c)
                        if !key
                            .modifiers
                            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                    {
                        self.insert(&c.to_string())
                    }
                    _ => Vec::new(),
                },
            };
            if !matches!(
                keymap::lookup(Scope::TextEdit, &key),
                Some(Action::CursorUp | Action::CursorDown | Action::PageUp | Action::PageDown)
            ) {
                self.goal = None;
            }
            return Handled::Consumed(cmds);
        }
        let action = match keymap::lookup(Scope::Text, &key) {
            // Reading moves the cursor as typing does.
            Some(Action::Edit) => keymap::lookup(Scope::TextEdit, &key),
            other => other,
        };
        match action {
            Some(Action::EditText) => {
                self.editing = true;
                self.goal = None;
                self.clamp();
                Handled::Consumed(Vec::new())
            }
            Some(a) => {
                if !matches!(
                    a,
                    Action::CursorUp | Action::CursorDown | Action::PageUp | Action::PageDown
                ) {
                    self.goal = None;
                }
                self.move_cursor(a);
                Handled::Consumed(Vec::new())
            }
            None => Handled::Ignored,
        }
    }

    /// Publishes our caret after a key or a paste.
    fn with_presence(&mut self, mut cmds: Vec<Cmd>) -> Vec<Cmd> {
        let at = to_utf16(&self.text(), self.cursor);
        let msgs = self.session.set_presence(at, 0, &self.name);
        if !msgs.is_empty() {
            cmds.push(Cmd::Doc(msgs));
        }
        cmds
    }

    /// The footer: version and sync state, then the cursor's line and column.
    fn footer(&self, ctx: &RenderCtx, width: u16) -> Line<'static> {
        let pending = self.session.pending_edits();
        let sync = match pending {
            0 => "synced".to_string(),
            n => format!("{n} pending"),
        };
        let state = match (&self.conn, self.session.version()) {
            (ConnState::Retrying { .. }, _) if pending > 0 => format!("offline · {sync}"),
            (ConnState::Retrying { .. }, _) => "offline".to_string(),
            (_, None) => "loading…".to_string(),
            (_, Some(v)) => format!("v{v} · {sync}"),
        };
        let text = self.text();
        let before: String = text.chars().take(self.cursor).collect();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let place = format!("Ln {line}, Col {col}");
        let gap = usize::from(width).saturating_sub(state.chars().count() + place.chars().count());
        let style = if pending > 0 {
            ctx.theme.warn()
        } else {
            ctx.theme.dim()
        };
        Line::from(vec![
            Span::styled(state, style),
            Span::raw(" ".repeat(gap.max(1))),
            Span::styled(place, ctx.theme.dim()),
        ])
    }
}

/// The style of another user's caret.
fn caret_style(theme: Theme, colour: Color) -> Style {
    if theme.color {
        Style::new().bg(colour).fg(Color::Black)
    } else {
        Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
    }
}

/// The style of another user's name.
fn name_style(theme: Theme, colour: Color) -> Style {
    if theme.color {
        Style::new().fg(colour).add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// Another user's selection on screen.
struct Remote {
    name: String,
    colour: Color,
    caret: CharPos,
    range: Range<CharPos>,
}

impl Pane for TextPane {
    fn id(&self) -> PaneId {
        PaneId::Text
    }

    fn handle_key(&mut self, key: KeyEvent) -> Handled {
        self.error = None;
        match self.handle_key_inner(key) {
            Handled::Consumed(cmds) => Handled::Consumed(self.with_presence(cmds)),
            Handled::Ignored => Handled::Ignored,
        }
    }

    fn handle_mouse(&mut self, event: MouseEvent, _area: Rect) -> Vec<Cmd> {
        match event.kind {
            MouseEventKind::ScrollDown => self.move_cursor(Action::CursorDown),
            MouseEventKind::ScrollUp => self.move_cursor(Action::CursorUp),
            MouseEventKind::Down(MouseButton::Left) => {
                let view = self.view.get();
                let (x, y) = (event.column, event.row);
                if view.body.contains(ratatui::layout::Position::new(x, y)) {
                    let layout = self.layout();
                    let row = (view.top + usize::from(y - view.body.y)).min(layout.rows.len() - 1);
                    self.cursor = layout.pos_at(row, usize::from(x - view.body.x));
                    self.goal = None;
                }
            }
            _ => return Vec::new(),
        }
        self.with_presence(Vec::new())
    }

    fn focus_gained(&mut self) {
        self.editing = true;
        self.goal = None;
    }

    fn paste(&mut self, text: &str) -> Vec<Cmd> {
        if !self.editing {
            return Vec::new();
        }
        if text.len() > MAX_PASTE_BYTES {
            self.error = Some(format!(
                "paste too large: {} KiB (at most {} KiB at once)",
                text.len().div_ceil(1024),
                MAX_PASTE_BYTES / 1024
            ));
            return Vec::new();
        }
        self.error = None;
        // Terminals send line ends as CR; other control characters would
        // only garble the document.
        let clean: String = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .collect();
        self.goal = None;
        let cmds = self.insert(&clean);
        self.with_presence(cmds)
    }

    fn apply(&mut self, event: &NetEvent) -> bool {
        match event {
            NetEvent::State(Transport::Doc, state) => {
                self.conn = state.clone();
                true
            }
            NetEvent::Doc(DocEvent::Open) => {
                self.out.extend(self.session.on_open());
                true
            }
            NetEvent::Doc(DocEvent::Closed) => {
                self.session.on_close();
                true
            }
            NetEvent::Doc(DocEvent::Message(msg)) => {
                let before = self.text();
                let cursor16 = to_utf16(&before, self.cursor);
                let (out, change) = self.session.on_message(msg);
                self.out.extend(out);
                match change {
                    Some(DocChange::Remote(op)) => {
                        let moved = op.transform_position(cursor16, true);
                        self.cursor = from_utf16(&self.text(), moved);
                    }
                    Some(DocChange::Reset) => self.clamp(),
                    Some(DocChange::Error(e)) => self.error = Some(e),
                    Some(DocChange::Acked | DocChange::Presence) | None => {}
                }
                self.clamp();
                true
            }
            _ => false,
        }
    }

    fn take_cmds(&mut self) -> Vec<Cmd> {
        if self.out.is_empty() {
            Vec::new()
        } else {
            vec![Cmd::Doc(std::mem::take(&mut self.out))]
        }
    }

    fn title_suffix(&self) -> Option<String> {
        Some(format!("{}/{}", self.session.collection, self.session.id))
    }

    fn badge(&self) -> Option<super::Badge> {
        let pending = self.session.pending_edits();
        (pending > 0).then_some(super::Badge::Pending(pending))
    }

    fn title_extra(&self, theme: Theme) -> Vec<Span<'static>> {
        let online = self.session.online();
        let mut spans = vec![Span::raw(" · online: you")];
        for (id, name) in online {
            spans.push(Span::raw(", "));
            spans.push(Span::styled(name, name_style(theme, colour_of(&id))));
        }
        spans
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        if area.is_empty() {
            return;
        }
        let [mut body, footer] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
        frame.render_widget(Paragraph::new(self.footer(ctx, footer.width)), footer);
        if let Some(e) = &self.error
            && body.height > 1
        {
            let [err, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
            frame.render_widget(
                Paragraph::new(Line::styled(e.clone(), ctx.theme.error())),
                err,
            );
            body = rest;
        }
        if body.is_empty() {
            return;
        }
        if self.session.version().is_some() && self.session.document().is_none() {
            frame.render_widget(
                Paragraph::new(Line::styled(
                    "this document does not exist",
                    ctx.theme.dim(),
                )),
                body,
            );
            return;
        }
        let mut view = self.view.get();
        view.body = body;
        let layout = TextLayout::new(self.text(), view.text_width());
        let height = usize::from(body.height);
        let cursor = self.cursor.min(layout.chars);
        let cursor_row = layout.row_of(cursor);
        // Scroll as little as keeps the cursor on screen.
        view.top = view
            .top
            .min(layout.rows.len().saturating_sub(height))
            .min(cursor_row)
            .max((cursor_row + 1).saturating_sub(height));
        self.view.set(view);

        let show_cursor = ctx.focused && self.session.document().is_some();
        let cursor_style = if self.editing {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED)
        };
        let remote: Vec<Remote> = self
            .session
            .remote_cursors()
            .into_iter()
            .map(|c| {
                let start = from_utf16(&layout.text, c.index);
                let end = from_utf16(&layout.text, c.index + c.length);
                Remote {
                    colour: colour_of(&c.id),
                    name: c.name,
                    caret: end,
                    range: start..end,
                }
            })
            .collect();
        let lines: Vec<Line> = (view.top..layout.rows.len().min(view.top + height))
            .map(|r| {
                let row = layout.rows[r];
                let mut spans = Vec::new();
                let mut used = 0;
                let mut cell = |pos: CharPos, shown: &str, width: usize| {
                    let mut style = Style::new();
                    if let Some(o) = remote.iter().find(|o| o.range.contains(&pos)) {
                        style = style.add_modifier(Modifier::UNDERLINED);
                        if ctx.theme.color {
                            style = style.fg(o.colour);
                        }
                    }
                    if let Some(o) = remote.iter().find(|o| o.caret == pos) {
                        style = caret_style(ctx.theme, o.colour);
                    }
                    if show_cursor && pos == cursor {
                        style = cursor_style;
                    }
                    used += width;
                    Span::styled(shown.to_string(), style)
                };
                for g in &layout.graphemes[row.first..row.last] {
                    spans.push(cell(g.start, layout.shown(g), g.width));
                }
                // A caret at the end of a line sits on the free column.
                let at_end = row.end;
                let on_end =
                    (show_cursor && cursor == at_end) || remote.iter().any(|o| o.caret == at_end);
                if on_end && layout.row_of(at_end) == r {
                    spans.push(cell(at_end, " ", 1));
                }
                // Other users' names after the line their caret is on.
                let here: Vec<&Remote> = remote
                    .iter()
                    .filter(|o| layout.row_of(o.caret.min(layout.chars)) == r)
                    .collect();
                let tag_width: usize = here.iter().map(|o| o.name.width() + 2).sum();
                if !here.is_empty() && used + tag_width <= usize::from(body.width) {
                    for o in here {
                        spans.push(Span::raw(" "));
                        spans.push(Span::styled(
                            format!("◂{}", o.name),
                            name_style(ctx.theme, o.colour),
                        ));
                    }
                }
                Line::from(spans)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.editing {
            keymap::hints(Scope::TextEdit)
        } else {
            keymap::hints(Scope::Text)
        }
    }

    fn captures_input(&self) -> bool {
        self.editing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::theme::Theme;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use rt_protocol::sharedb::RICH_TEXT_URI;
    use serde_json::json;
    use std::time::Instant;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    /// A pane subscribed to a document holding `text`.
    fn pane(text: &str) -> TextPane {
        let mut p = TextPane::new("examples", "richtext");
        p.apply(&NetEvent::State(Transport::Doc, ConnState::Connected));
        p.apply(&NetEvent::Doc(DocEvent::Open));
        let hs = p.take_cmds();
        assert!(matches!(&hs[..], [Cmd::Doc(m)] if m[0]["a"] == "hs"));
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "hs", "id": "me"}),
        )));
        p.take_cmds();
        p.apply(&NetEvent::Doc(DocEvent::Message(json!({"a": "s", "c": "examples", "d": "richtext",
            "data": {"v": 4, "type": RICH_TEXT_URI, "data": {"ops": [
                {"insert": text.trim_end_matches('\n'), "attributes": {"bold": true}}, {"insert": "\n"}]}}}))));
        p
    }

    fn sent(cmds: &[Cmd]) -> Vec<Value> {
        cmds.iter()
            .flat_map(|c| match c {
                Cmd::Doc(m) => m.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn typing_sends_inserts_and_deletes_in_utf16_units() {
        let mut p = pane("a😀b\n");
        assert_eq!(p.handle_key(key(KeyCode::Char('x'))), Handled::Ignored);
        p.handle_key(key(KeyCode::Char('i')));
        assert!(p.captures_input());
        p.handle_key(key(KeyCode::End));
        let Handled::Consumed(cmds) = p.handle_key(key(KeyCode::Char('q'))) else {
            panic!("typed");
        };
        let msgs = sent(&cmds);
        assert_eq!(
            msgs[0]["op"],
            json!({"ops": [{"retain": 4}, {"insert": "q"}]})
        );
        assert_eq!(msgs[0]["v"], 4);
        // The ack lets the next edit go.
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "op", "c": "examples", "d": "richtext", "src": "me", "seq": 1, "v": 4}),
        )));
        p.handle_key(key(KeyCode::Left));
        p.handle_key(key(KeyCode::Left));
        let Handled::Consumed(cmds) = p.handle_key(key(KeyCode::Backspace)) else {
            panic!("deleted");
        };
        assert_eq!(
            sent(&cmds)[0]["op"],
            json!({"ops": [{"retain": 1}, {"delete": 2}]})
        );
        assert_eq!(p.text(), "abq");
        // The bold text stays bold in the local copy; typed text is plain.
        assert_eq!(
            p.session().document().unwrap().to_delta().to_value(),
            json!({"ops": [{"insert": "ab", "attributes": {"bold": true}}, {"insert": "q\n"}]})
        );
        p.handle_key(key(KeyCode::Esc));
        assert!(!p.captures_input());
    }

    #[test]
    fn remote_ops_move_the_cursor() {
        let mut p = pane("hello\n");
        p.handle_key(key(KeyCode::Right));
        p.handle_key(key(KeyCode::Right));
        assert_eq!(p.cursor(), 2);
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "op", "c": "examples", "d": "richtext",
            "src": "other", "seq": 1, "v": 4, "op": {"ops": [{"insert": "😀😀"}]}}),
        )));
        assert_eq!(p.text(), "😀😀hello");
        assert_eq!(p.cursor(), 4);
    }

    fn ctx(theme: Theme) -> RenderCtx<'static> {
        RenderCtx {
            focused: true,
            theme,
            now: Instant::now(),
            server_url: "http://127.0.0.1:8080",
        }
    }

    fn draw(p: &TextPane, theme: Theme, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|f| p.render(f, f.area(), &ctx(theme)))
            .unwrap();
        terminal
    }

    fn row_text(t: &Terminal<TestBackend>, y: u16) -> String {
        // A wide symbol's second cell is skipped, as a terminal shows it.
        let buf = t.backend().buffer();
        let mut out = String::new();
        let mut x = 0;
        while x < buf.area.width {
            let sym = buf[(x, y)].symbol();
            out.push_str(sym);
            x += (sym.width() as u16).max(1);
        }
        out
    }

    fn presence(p: &mut TextPane, id: &str, name: &str, index: usize, length: usize) {
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "p", "ch": "examples.richtext",
            "src": format!("src-{id}"), "id": id, "pv": 0,
            "p": {"index": index, "length": length, "name": name},
            "c": "examples", "d": "richtext", "v": 4, "t": RICH_TEXT_URI}),
        )));
    }

    fn press(p: &mut TextPane, code: KeyCode, mods: KeyModifiers) -> Vec<Value> {
        match p.handle_key(KeyEvent::new(code, mods)) {
            Handled::Consumed(cmds) => sent(&cmds),
            Handled::Ignored => Vec::new(),
        }
    }

    #[test]
    fn renders_text_remote_cursors_names_and_footer() {
        let mut p = pane("first line\nsecond 漢字 line\nthird 😀 line\n");
        p.focus_gained();
        p.handle_key(key(KeyCode::Down));
        p.handle_key(key(KeyCode::Right));
        // bob's caret in "first", carol's selection over 漢字.
        presence(&mut p, "b1", "bob", 3, 0);
        presence(&mut p, "c1", "carol", 18, 2);
        assert_eq!(p.session().remote_cursors().len(), 2);
        let t = draw(&p, Theme::NO_COLOR, 48, 5);
        insta::assert_snapshot!(t.backend());
        // In colour each user has their own colour on the caret and name.
        let t = draw(&p, Theme::COLOR, 48, 5);
        let buf = t.backend().buffer();
        let bob = colour_of("b1");
        let carol = colour_of("c1");
        assert_eq!(buf[(3, 0)].bg, bob, "bob's caret on the 't' of first");
        assert_eq!(buf[(1, 1)].modifier, Modifier::REVERSED, "my cursor");
        assert_eq!(buf[(7, 1)].fg, carol, "carol's selection");
        assert_eq!(buf[(11, 1)].bg, carol, "carol's caret after 漢字");
        let names = p.title_extra(Theme::COLOR);
        let text: String = names.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, " · online: you, bob, carol");
        assert_eq!(names[2].style.fg, Some(bob));
        assert_eq!(p.title_suffix().as_deref(), Some("examples/richtext"));
    }

    #[test]
    fn footer_shows_version_and_pending_edits_and_offline() {
        let mut p = pane("ab\n");
        p.focus_gained();
        assert!(row_text(&draw(&p, Theme::NO_COLOR, 30, 3), 2).starts_with("v4 · synced"));
        for c in "xyz".chars() {
            p.handle_key(key(KeyCode::Char(c)));
        }
        assert_eq!(p.session().pending_edits(), 3);
        assert!(row_text(&draw(&p, Theme::NO_COLOR, 30, 3), 2).starts_with("v4 · 3 pending"));
        p.apply(&NetEvent::State(
            Transport::Doc,
            ConnState::Retrying {
                at: Instant::now(),
                error: "cannot reach".into(),
            },
        ));
        let footer = row_text(&draw(&p, Theme::NO_COLOR, 40, 3), 2);
        assert!(footer.starts_with("offline · 3 pending"), "{footer}");
        assert!(footer.trim_end().ends_with("Ln 1, Col 4"), "{footer}");
    }

    #[test]
    fn focusing_starts_typing_and_esc_leaves_it() {
        use crate::app::{App, Msg, ServerInfo};
        use crate::panes::title::TitlePane;
        let panes: Vec<Box<dyn Pane>> = vec![
            Box::new(TitlePane::new(PaneId::Ticker)),
            Box::new(pane("hi\n")),
        ];
        let mut app = App::new(
            ServerInfo {
                url: "http://127.0.0.1:8080".into(),
                embedded: false,
            },
            panes,
            &[],
            Theme::NO_COLOR,
            Instant::now(),
        );
        app.update(Msg::Resize(200, 40));
        let k = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        app.update(k('2'));
        assert!(app.panes()[1].captures_input(), "focused means typing");
        // q and digits are typed, not global keys.
        let cmds = app.update(k('q'));
        assert!(
            matches!(&cmds[..], [Cmd::Doc(m), ..] if m[0]["op"] == json!({"ops": [{"insert": "q"}]}))
        );
        app.update(k('1'));
        assert_eq!(app.focus(), 1);
        // Tab is not printable: it leaves the pane even while typing, and
        // coming back types again.
        app.update(Msg::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        assert_eq!(app.focus(), 0, "Tab moves focus out of the typing pane");
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::BackTab,
            KeyModifiers::SHIFT,
        )));
        assert_eq!(app.focus(), 1);
        assert!(app.panes()[1].captures_input());
        let labels: Vec<_> = app.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["Esc"]);
        app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(!app.panes()[1].captures_input());
        let labels: Vec<_> = app.hints().iter().map(|h| h.label).collect();
        assert_eq!(labels, ["i Enter", "q C-c", "?", "Tab", "1-4", "e"]);
        app.update(k('1'));
        assert_eq!(app.focus(), 0, "global keys work again");
        // Focusing again types again.
        app.update(Msg::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        assert!(app.panes()[1].captures_input());
        // A paste reaches the focused pane as one insert (once the typed q
        // and 1 are acknowledged).
        let ack = |seq: u64, v: u64| {
            Msg::Net(NetEvent::Doc(DocEvent::Message(
                json!({"a": "op", "c": "examples", "d": "richtext", "src": "me", "seq": seq, "v": v}),
            )))
        };
        let cmds = app.update(ack(1, 4));
        assert!(
            matches!(&cmds[..], [Cmd::Doc(m)] if m[0]["op"] == json!({"ops": [{"retain": 1}, {"insert": "1"}]}))
        );
        app.update(ack(2, 5));
        let cmds = app.update(Msg::Paste("a\r\nb".into()));
        assert!(
            matches!(&cmds[..], [Cmd::Doc(m), ..] if m[0]["op"] == json!({"ops": [{"retain": 2}, {"insert": "a\nb"}]})),
            "{cmds:?}"
        );
    }

    #[test]
    fn word_jumps_home_end_and_grapheme_steps() {
        let mut p = pane("foo, bar_baz  qux\ne\u{301}👨\u{200d}👩\u{200d}👧x\n");
        p.focus_gained();
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        press(&mut p, KeyCode::Right, ctrl);
        assert_eq!(p.cursor(), 3, "end of foo");
        press(&mut p, KeyCode::Right, alt);
        assert_eq!(p.cursor(), 12, "end of bar_baz");
        press(&mut p, KeyCode::Char('f'), alt);
        assert_eq!(p.cursor(), 17, "end of qux");
        press(&mut p, KeyCode::Left, ctrl);
        assert_eq!(p.cursor(), 14, "start of qux");
        press(&mut p, KeyCode::Char('b'), alt);
        assert_eq!(p.cursor(), 5, "start of bar_baz");
        press(&mut p, KeyCode::Left, alt);
        assert_eq!(p.cursor(), 0);
        press(&mut p, KeyCode::End, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 17);
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 18, "over the newline");
        // é (e + combining accent) and the family emoji are one step each.
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 20);
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 25);
        press(&mut p, KeyCode::Home, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 18);
        // Deleting forward removes the whole cluster: 2 UTF-16 units for é.
        let msgs = press(&mut p, KeyCode::Delete, KeyModifiers::NONE);
        assert_eq!(
            msgs[0]["op"],
            json!({"ops": [{"retain": 18}, {"delete": 2}]})
        );
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "op", "c": "examples", "d": "richtext", "src": "me", "seq": 1, "v": 4}),
        )));
        // Backspace after the family removes all 8 of its units.
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        let msgs = press(&mut p, KeyCode::Backspace, KeyModifiers::NONE);
        assert_eq!(
            msgs[0]["op"],
            json!({"ops": [{"retain": 18}, {"delete": 8}]})
        );
        assert_eq!(p.text(), "foo, bar_baz  qux\nx");
    }

    #[test]
    fn wide_text_wraps_at_its_width_and_vertical_moves_keep_the_column() {
        // 8 columns of text per row at width 9 (one is kept for the caret).
        let mut p = pane("漢字漢字漢字ab\nshort\n😀😀😀😀😀\n");
        p.focus_gained();
        let t = draw(&p, Theme::NO_COLOR, 9, 8);
        assert_eq!(row_text(&t, 0).trim_end(), "漢字漢字");
        assert_eq!(row_text(&t, 1).trim_end(), "漢字ab");
        assert_eq!(row_text(&t, 2).trim_end(), "short");
        assert_eq!(row_text(&t, 3).trim_end(), "😀😀😀😀");
        assert_eq!(row_text(&t, 4).trim_end(), "😀");
        // Column 4 (after 漢字) on each row going down.
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        press(&mut p, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 6, "second row, after 漢字");
        press(&mut p, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 13, "short: col 4");
        press(&mut p, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 17, "after two emoji");
        press(&mut p, KeyCode::Down, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 20, "the last row is shorter: its end");
        press(&mut p, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 17, "the goal column is kept");
        // End on a wrapped row stays on it; Home goes to its start.
        press(&mut p, KeyCode::Up, KeyModifiers::NONE);
        press(&mut p, KeyCode::Up, KeyModifiers::NONE);
        press(&mut p, KeyCode::Up, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 2);
        press(&mut p, KeyCode::End, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 3, "before the last char of the wrapped row");
        // Typing at a UTF-16 offset past the emoji.
        press(&mut p, KeyCode::PageDown, KeyModifiers::NONE);
        assert_eq!(p.cursor(), 20, "PgDn to the last row");
        let msgs = press(&mut p, KeyCode::Char('!'), KeyModifiers::NONE);
        assert_eq!(
            msgs[0]["op"],
            json!({"ops": [{"retain": 25}, {"insert": "!"}]})
        );
    }

    #[test]
    fn page_keys_and_scrolling_keep_the_cursor_on_screen() {
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let mut p = pane(&text);
        p.focus_gained();
        // 5 rows of text, a footer.
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(row_text(&t, 0).trim_end(), "line 1");
        press(&mut p, KeyCode::PageDown, KeyModifiers::NONE);
        assert_eq!(p.cursor(), p.text().find("line 5").unwrap());
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(row_text(&t, 0).trim_end(), "line 5", "scrolled a page");
        for _ in 0..20 {
            press(&mut p, KeyCode::Down, KeyModifiers::NONE);
        }
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(
            row_text(&t, 4).trim_end(),
            "line 25",
            "cursor row at the bottom"
        );
        assert!(row_text(&t, 5).contains("Ln 25"));
        press(&mut p, KeyCode::Up, KeyModifiers::NONE);
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(
            row_text(&t, 0).trim_end(),
            "line 21",
            "no scroll while visible"
        );
        press(&mut p, KeyCode::PageUp, KeyModifiers::NONE);
        press(&mut p, KeyCode::PageUp, KeyModifiers::NONE);
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(row_text(&t, 0).trim_end(), "line 13");
        assert!(row_text(&t, 5).contains("Ln 16"));
        for _ in 0..10 {
            press(&mut p, KeyCode::PageUp, KeyModifiers::NONE);
        }
        assert_eq!(p.cursor(), 0);
        // A click puts the cursor where it lands.
        let t = draw(&p, Theme::NO_COLOR, 20, 6);
        assert_eq!(row_text(&t, 0).trim_end(), "line 1");
        p.handle_mouse(
            MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 3,
                row: 2,
                modifiers: KeyModifiers::NONE,
            },
            Rect::new(0, 0, 20, 6),
        );
        assert_eq!(p.cursor(), p.text().find("line 3").unwrap() + 3);
    }

    #[test]
    fn typing_before_the_document_loads_says_so() {
        let mut p = TextPane::new("examples", "richtext");
        p.focus_gained();
        assert_eq!(
            p.handle_key(key(KeyCode::Char('x'))),
            Handled::Consumed(Vec::new())
        );
        assert!(p.error.as_deref().unwrap().contains("not loaded yet"));
        let t = draw(&p, Theme::NO_COLOR, 60, 3);
        assert!(row_text(&t, 0).starts_with("the document is not loaded yet"));
        assert!(row_text(&t, 2).starts_with("loading…"));
    }

    #[test]
    fn a_paste_is_one_insert_with_unix_line_ends() {
        let mut p = pane("ab\n");
        assert!(p.paste("ignored").is_empty(), "not typing");
        p.focus_gained();
        press(&mut p, KeyCode::Right, KeyModifiers::NONE);
        let msgs = sent(&p.paste("x\r\ny\rz\u{1b}[31m😀"));
        assert_eq!(
            msgs[0]["op"],
            json!({"ops": [{"retain": 1}, {"insert": "x\ny\nz[31m😀"}]})
        );
        assert_eq!(p.cursor(), 11);
        assert_eq!(p.text(), "ax\ny\nz[31m😀b");
        let big = "x".repeat(MAX_PASTE_BYTES + 1);
        assert!(sent(&p.paste(&big)).iter().all(|m| m["a"] != "op"));
        assert!(p.error.as_deref().unwrap().starts_with("paste too large"));
        assert_eq!(p.session().pending_edits(), 1, "the big paste was refused");
    }
}
