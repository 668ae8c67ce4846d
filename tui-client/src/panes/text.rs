//! The text pane: the collaborative document as plain text. Typing sends
//! inserts and deletes only, so formatting set by other clients (Quill) is
//! kept. The pane owns the document's [`DocSession`]; what it must send goes
//! out as [`Cmd::Doc`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use rt_protocol::delta::{Delta, Insert};
use serde_json::Value;

use super::{Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::{self, Action, Hint, Scope};
use crate::net::doc::{DocChange, DocEvent, DocSession};
use crate::net::{ConnState, NetEvent, Transport};

/// Where the cursor is: a char index into the text.
type CharPos = usize;

/// The text pane's state.
#[derive(Debug, Clone)]
pub struct TextPane {
    session: DocSession,
    cursor: CharPos,
    editing: bool,
    conn: ConnState,
    error: Option<String>,
    out: Vec<Value>,
    /// The name shown to other users next to our cursor.
    name: String,
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

impl TextPane {
    /// A pane for `collection/id` (not connected yet).
    pub fn new(collection: &str, id: &str) -> TextPane {
        TextPane {
            session: DocSession::new(collection, id),
            cursor: 0,
            editing: false,
            conn: ConnState::Connecting,
            error: None,
            out: Vec::new(),
            name: std::env::var("USER")
                .map(|u| format!("{u} (tui)"))
                .unwrap_or_else(|_| "rt-tui".to_string()),
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
        let text = self.text();
        let mut op = Delta::new();
        op.retain(to_utf16(&text, self.cursor), None);
        op.insert(Insert::from(s), None);
        self.cursor += s.chars().count();
        self.submit(op)
    }

    /// Deletes the char at `pos` (never Quill's final newline).
    fn delete_at(&mut self, pos: CharPos) -> Vec<Cmd> {
        let text = self.text();
        let Some(c) = text.chars().nth(pos) else {
            return Vec::new();
        };
        let mut op = Delta::new();
        op.retain(to_utf16(&text, pos), None);
        op.delete(c.len_utf16());
        self.submit(op)
    }

    /// (line, column) of the cursor, in chars.
    fn cursor_line_col(&self) -> (usize, usize) {
        let text = self.text();
        let before: String = text.chars().take(self.cursor).collect();
        let line = before.matches('\n').count();
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        (line, col)
    }

    /// The char index of (line, col), clamped to the line.
    fn position_of(&self, line: usize, col: usize) -> CharPos {
        let text = self.text();
        let mut pos = 0;
        for (i, l) in text.split('\n').enumerate() {
            let n = l.chars().count();
            if i == line {
                return pos + col.min(n);
            }
            pos += n + 1;
        }
        text.chars().count()
    }

    fn move_cursor(&mut self, action: Action) {
        let (line, col) = self.cursor_line_col();
        let len = self.text().chars().count();
        self.cursor = match action {
            Action::CursorLeft => self.cursor.saturating_sub(1),
            Action::CursorRight => (self.cursor + 1).min(len),
            Action::CursorUp if line > 0 => self.position_of(line - 1, col),
            Action::CursorUp => 0,
            Action::CursorDown => self.position_of(line + 1, col),
            Action::LineStart => self.position_of(line, 0),
            Action::LineEnd => self.position_of(line, usize::MAX),
            _ => self.cursor,
        };
    }

    fn handle_key_inner(&mut self, key: KeyEvent) -> Handled {
        if self.editing {
            let cmds = match keymap::lookup(Scope::TextEdit, &key) {
                Some(Action::Cancel) => {
                    self.editing = false;
                    Vec::new()
                }
                Some(Action::Newline) => self.insert("\n"),
                Some(Action::DeleteBack) if self.cursor > 0 => {
                    self.cursor -= 1;
                    self.delete_at(self.cursor)
                }
                Some(Action::DeleteBack) => Vec::new(),
                Some(Action::DeleteForward) => self.delete_at(self.cursor),
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
                    KeyCode::Tab => self.insert("\t"),
                    _ => Vec::new(),
                },
            };
            return Handled::Consumed(cmds);
        }
        match keymap::lookup(Scope::Text, &key) {
            Some(Action::EditText) => {
                if self.session.document().is_some() {
                    self.editing = true;
                    self.clamp();
                }
                Handled::Consumed(Vec::new())
            }
            Some(a) => {
                self.move_cursor(a);
                Handled::Consumed(Vec::new())
            }
            None => Handled::Ignored,
        }
    }

    fn status_line(&self, ctx: &RenderCtx) -> Line<'static> {
        let name = format!("{}/{}", self.session.collection, self.session.id);
        let state = match (&self.conn, self.session.version()) {
            (ConnState::Retrying { .. }, _) => "offline".to_string(),
            (_, None) => "loading…".to_string(),
            (_, Some(v)) if self.session.has_pending() => format!("v{v} · saving…"),
            (_, Some(v)) => format!("v{v}"),
        };
        let mode = if self.editing {
            "editing · Esc to stop"
        } else {
            "i to edit"
        };
        let mut spans = vec![
            Span::styled(name, ctx.theme.dim()),
            Span::raw("  "),
            Span::raw(state),
            Span::raw("  "),
            Span::styled(mode, ctx.theme.dim()),
        ];
        let others: Vec<String> = self
            .session
            .remote_cursors()
            .into_iter()
            .map(|c| c.name)
            .collect();
        if !others.is_empty() {
            spans.push(Span::raw("  with "));
            spans.push(Span::styled(others.join(", "), ctx.theme.warn()));
        }
        Line::from(spans)
    }
}

impl Pane for TextPane {
    fn id(&self) -> PaneId {
        PaneId::Text
    }

    fn handle_key(&mut self, key: KeyEvent) -> Handled {
        match self.handle_key_inner(key) {
            Handled::Consumed(mut cmds) => {
                let at = to_utf16(&self.text(), self.cursor);
                let msgs = self.session.set_presence(at, 0, &self.name);
                if !msgs.is_empty() {
                    cmds.push(Cmd::Doc(msgs));
                }
                Handled::Consumed(cmds)
            }
            Handled::Ignored => Handled::Ignored,
        }
    }

    fn handle_mouse(&mut self, event: MouseEvent, _area: Rect) -> Vec<Cmd> {
        match event.kind {
            MouseEventKind::ScrollDown => self.move_cursor(Action::CursorDown),
            MouseEventKind::ScrollUp => self.move_cursor(Action::CursorUp),
            _ => {}
        }
        Vec::new()
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
                    Some(DocChange::Reset) => {
                        if self.session.document().is_none() {
                            self.editing = false;
                        }
                        self.clamp();
                    }
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

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        if area.is_empty() {
            return;
        }
        let [status, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(self.status_line(ctx)), status);
        let mut body = body;
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
        let text = self.text();
        let (cursor_line, cursor_col) = self.cursor_line_col();
        let height = body.height as usize;
        let top = cursor_line.saturating_sub(height.saturating_sub(1));
        let show_cursor = ctx.focused && self.session.document().is_some();
        let cursor_style = Style::default().add_modifier(Modifier::REVERSED);
        let remote_style = ctx.theme.warn().add_modifier(Modifier::UNDERLINED);
        // Other users' carets as (line, column) in chars.
        let remote: Vec<(usize, usize)> = self
            .session
            .remote_cursors()
            .iter()
            .map(|c| {
                let before: String = text.chars().take(from_utf16(&text, c.index)).collect();
                let line = before.matches('\n').count();
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
                (line, col)
            })
            .collect();
        let lines: Vec<Line> = text
            .split('\n')
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, l)| {
                let mut chars: Vec<char> = l.chars().collect();
                let mine = (show_cursor && i == cursor_line).then_some(cursor_col);
                let theirs: Vec<usize> = remote
                    .iter()
                    .filter(|(rl, _)| *rl == i)
                    .map(|(_, c)| *c)
                    .collect();
                let last = theirs.iter().copied().chain(mine).max();
                if let Some(last) = last
                    && last >= chars.len()
                {
                    chars.resize(last + 1, ' ');
                }
                let spans: Vec<Span> = chars
                    .iter()
                    .enumerate()
                    .map(|(col, c)| {
                        let shown = match c {
                            '\t' => "    ".to_string(),
                            '\u{FFFC}' => "□".to_string(),
                            c => c.to_string(),
                        };
                        if mine == Some(col) {
                            Span::styled(shown, cursor_style)
                        } else if theirs.contains(&col) {
                            Span::styled(shown, remote_style)
                        } else {
                            Span::raw(shown)
                        }
                    })
                    .collect();
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

    #[test]
    fn renders_text_status_and_cursor() {
        let mut p = pane("first line\nsecond 漢字 line\n");
        p.handle_key(key(KeyCode::Down));
        p.handle_key(key(KeyCode::Right));
        p.apply(&NetEvent::Doc(DocEvent::Message(
            json!({"a": "p", "ch": "examples.richtext",
            "src": "other", "id": "b1", "pv": 0, "p": {"index": 3, "length": 0, "name": "bob"},
            "c": "examples", "d": "richtext", "v": 4, "t": RICH_TEXT_URI}),
        )));
        assert_eq!(p.session().remote_cursors().len(), 1);
        let mut terminal = Terminal::new(TestBackend::new(48, 5)).unwrap();
        terminal
            .draw(|f| {
                let ctx = RenderCtx {
                    focused: true,
                    theme: Theme::NO_COLOR,
                    now: Instant::now(),
                    server_url: "http://127.0.0.1:8080",
                };
                p.render(f, f.area(), &ctx);
            })
            .unwrap();
        insta::assert_snapshot!(terminal.backend());
    }
}
