//! The Q&A pane: the question list (newest first or by votes, with vote and
//! answer counts), the answers of the followed question beside it (below it
//! when narrow), and a one-line input for asking and answering.
//!
//! Text from other users is shown inertly: control, escape and
//! direction-override characters are stripped before it reaches the screen.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Badge, Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::{self, Action, Hint, Scope};
use crate::net::qa::{AnswerInfo, QaCommand, QaEvent, QuestionInfo};
use crate::net::{ConnState, NetEvent, Transport};
use crate::text::inert;

/// Longest question the input takes (the server's default limit).
pub const MAX_QUESTION_CHARS: usize = 300;
/// Longest answer the input takes (the server's default limit).
pub const MAX_ANSWER_CHARS: usize = 2000;
/// Below this width the answers go below the questions.
const SIDE_BY_SIDE_MIN_WIDTH: u16 = 70;

/// How the question list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    Top,
}

impl Order {
    fn label(self) -> &'static str {
        match self {
            Order::Newest => "newest first",
            Order::Top => "most votes first",
        }
    }
}

/// What the input line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputKind {
    Ask,
    Answer,
}

/// A one-line text field with a cursor (in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Field {
    text: Vec<char>,
    cursor: usize,
}

impl Field {
    fn insert(&mut self, c: char, max: usize) {
        if self.text.len() < max {
            self.text.insert(self.cursor, c);
            self.cursor += 1;
        }
    }

    fn edit(&mut self, key: KeyCode) {
        match key {
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < self.text.len() => {
                self.text.remove(self.cursor);
            }
            _ => {}
        }
    }

    fn value(&self) -> String {
        self.text.iter().collect()
    }
}

/// The Q&A pane's state.
#[derive(Debug, Clone)]
pub struct QaPane {
    /// In asking order, as the server sends them.
    questions: Vec<QuestionInfo>,
    order: Order,
    /// The highlighted question, by text (stable while the list changes).
    selected: Option<String>,
    followed: Option<String>,
    answers: Vec<AnswerInfo>,
    /// Questions this client voted for (from the server's vote replies).
    voted: HashSet<String>,
    input: Option<(InputKind, Field)>,
    /// Feedback for the last action.
    message: Option<String>,
    conn: ConnState,
    user: Option<String>,
    /// The questions on the board when the pane was last on screen (and
    /// those of the first list, which are not news): the others are unread.
    /// Pruned to the board, so it never outgrows it.
    seen: Option<HashSet<String>>,
}

impl Default for QaPane {
    fn default() -> Self {
        QaPane::new()
    }
}

impl QaPane {
    pub fn new() -> QaPane {
        QaPane {
            questions: Vec::new(),
            order: Order::Newest,
            selected: None,
            followed: None,
            answers: Vec::new(),
            voted: HashSet::new(),
            input: None,
            message: None,
            conn: ConnState::Connecting,
            user: None,
            seen: None,
        }
    }

    /// The questions in display order.
    pub fn ordered(&self) -> Vec<&QuestionInfo> {
        let mut list: Vec<(usize, &QuestionInfo)> = self.questions.iter().enumerate().collect();
        // Newest: later asked first (asking order breaks equal times).
        list.sort_by(|(ia, a), (ib, b)| {
            let newest = b.meta.time.cmp(&a.meta.time).then(ib.cmp(ia));
            match self.order {
                Order::Newest => newest,
                Order::Top => b.meta.votes.cmp(&a.meta.votes).then(newest),
            }
        });
        list.into_iter().map(|(_, q)| q).collect()
    }

    fn selected_index(&self, list: &[&QuestionInfo]) -> usize {
        self.selected
            .as_ref()
            .and_then(|s| list.iter().position(|q| &q.text == s))
            .unwrap_or(0)
    }

    fn move_selection(&mut self, down: bool) {
        let list = self.ordered();
        if list.is_empty() {
            return;
        }
        let i = self.selected_index(&list);
        let j = if down {
            (i + 1).min(list.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        self.selected = Some(list[j].text.clone());
    }

    fn current(&self) -> Option<String> {
        let list = self.ordered();
        list.get(self.selected_index(&list)).map(|q| q.text.clone())
    }

    fn open_input(&mut self, kind: InputKind) {
        self.message = None;
        if kind == InputKind::Answer && self.followed.is_none() {
            self.message = Some("Follow a question first (Enter), then answer it".into());
            return;
        }
        self.input = Some((kind, Field::default()));
    }

    fn submit(&mut self) -> Vec<Cmd> {
        let Some((kind, field)) = self.input.take() else {
            return Vec::new();
        };
        let text = field.value().trim().to_string();
        if text.is_empty() {
            self.message = Some("Nothing to send".into());
            return Vec::new();
        }
        self.message = None;
        match kind {
            InputKind::Ask => vec![Cmd::Qa(QaCommand::Ask(text))],
            InputKind::Answer => vec![Cmd::Qa(QaCommand::Answer(text))],
        }
    }

    /// Splits the pane: questions, answers, and the footer line.
    fn areas(&self, area: Rect) -> (Rect, Rect, Rect) {
        let [body, footer] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
        let [questions, answers] = if area.width >= SIDE_BY_SIDE_MIN_WIDTH {
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .spacing(1)
                .areas(body)
        } else {
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
        };
        (questions, answers, footer)
    }

    /// First visible row so that the selection stays on screen.
    fn scroll(&self, rows: usize, selected: usize) -> usize {
        if rows == 0 {
            return 0;
        }
        selected.saturating_sub(rows - 1)
    }

    fn render_questions(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let theme = ctx.theme;
        let list = self.ordered();
        let mut lines = vec![Line::from(vec![
            Span::styled(
                match list.len() {
                    1 => "1 question".to_string(),
                    n => format!("{n} questions"),
                },
                theme.header(),
            ),
            Span::styled(format!(" · {}", self.order.label()), theme.dim()),
        ])];
        if list.is_empty() {
            let hint = match self.conn {
                ConnState::Connected => "No questions yet: press a to ask one.",
                _ => "Waiting for the board…",
            };
            lines.push(Line::styled(hint, theme.dim()));
        }
        let rows = area.height.saturating_sub(1) as usize;
        let sel = self.selected_index(&list);
        let first = self.scroll(rows, sel);
        for (i, q) in list.iter().enumerate().skip(first).take(rows) {
            let is_sel = i == sel;
            let followed = self.followed.as_deref() == Some(q.text.as_str());
            let mark = if followed { "●" } else { " " };
            let voted = self.voted.contains(&q.text);
            let vote_style = if voted { theme.ok() } else { theme.dim() };
            let mut spans = vec![
                Span::styled(mark, theme.ok()),
                Span::styled(format!("▲{:<3}", q.meta.votes), vote_style),
                Span::styled(format!("✎{:<3}", q.meta.answers), theme.dim()),
                Span::raw(inert(&q.text)),
            ];
            if is_sel && ctx.focused {
                for s in &mut spans {
                    s.style = s.style.patch(theme.selected());
                }
            }
            lines.push(Line::from(spans));
        }
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn render_answers(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let theme = ctx.theme;
        let mut head = Vec::new();
        let mut lines = Vec::new();
        match &self.followed {
            None => {
                head.push(Line::styled("Answers", theme.header()));
                lines.push(Line::styled(
                    "Select a question and press Enter to follow it.",
                    theme.dim(),
                ));
            }
            Some(q) => {
                let mut title = vec![Span::styled(inert(q), theme.header())];
                if let Some(meta) = self.questions.iter().find(|x| &x.text == q) {
                    title.push(Span::styled(
                        format!(" — asked by {}", inert(&meta.meta.author)),
                        theme.dim(),
                    ));
                }
                head.push(Line::from(title));
                if self.answers.is_empty() {
                    lines.push(Line::styled(
                        "No answers yet: press r to answer.",
                        theme.dim(),
                    ));
                }
                for a in &self.answers {
                    let mut spans = vec![Span::raw("• "), Span::raw(inert(&a.text))];
                    if let Some(m) = &a.meta {
                        spans.push(Span::styled(
                            format!(" — {}", inert(&m.author)),
                            theme.dim(),
                        ));
                    }
                    lines.push(Line::from(spans));
                }
            }
        }
        // The followed question stays on top; below it the newest answers
        // when they do not all fit.
        let head_rows = head
            .iter()
            .map(|l| (l.width().max(1) as u16).div_ceil(area.width.max(1)))
            .sum::<u16>()
            .min(area.height);
        let [head_area, area] =
            Layout::vertical([Constraint::Length(head_rows), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(head).wrap(Wrap { trim: false }), head_area);
        let width = area.width.max(1) as usize;
        let total: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
        let skip = total.saturating_sub(area.height as usize) as u16;
        let text = Paragraph::new(lines).wrap(Wrap { trim: false });
        frame.render_widget(text.scroll((skip, 0)), area);
    }

    fn render_footer(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let theme = ctx.theme;
        let line = match &self.input {
            Some((kind, field)) => {
                let label = match kind {
                    InputKind::Ask => "Ask: ",
                    InputKind::Answer => "Answer: ",
                };
                // Keep the cursor in view on long input.
                let room = (area.width as usize).saturating_sub(label.len() + 1).max(1);
                let start = field.cursor.saturating_sub(room);
                let before: String = field.text[start..field.cursor].iter().collect();
                let at: String = field
                    .text
                    .get(field.cursor)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| " ".into());
                let after: String = field.text.iter().skip(field.cursor + 1).collect();
                Line::from(vec![
                    Span::styled(label, theme.key()),
                    Span::raw(inert(&before)),
                    Span::styled(inert(&at), theme.selected()),
                    Span::raw(inert(&after)),
                ])
            }
            None => match &self.message {
                Some(m) => Line::styled(inert(m), theme.warn()),
                None => Line::raw(""),
            },
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

impl Pane for QaPane {
    fn id(&self) -> PaneId {
        PaneId::Qa
    }

    fn handle_key(&mut self, key: KeyEvent) -> Handled {
        if let Some((_, field)) = &mut self.input {
            match keymap::lookup(Scope::QaInput, &key) {
                Some(Action::Submit) => return Handled::Consumed(self.submit()),
                Some(Action::Cancel) => {
                    self.input = None;
                    return Handled::Consumed(Vec::new());
                }
                Some(_) => field.edit(key.code),
                None => {
                    if let KeyCode::Char(c) = key.code
                        && !c.is_control()
                    {
                        let max = match self.input.as_ref().map(|(k, _)| *k) {
                            Some(InputKind::Answer) => MAX_ANSWER_CHARS,
                            _ => MAX_QUESTION_CHARS,
                        };
                        if let Some((_, field)) = &mut self.input {
                            field.insert(c, max);
                        }
                    }
                }
            }
            return Handled::Consumed(Vec::new());
        }
        let cmds = match keymap::lookup(Scope::Qa, &key) {
            Some(Action::SelectDown) => {
                self.move_selection(true);
                Vec::new()
            }
            Some(Action::SelectUp) => {
                self.move_selection(false);
                Vec::new()
            }
            Some(Action::Follow) => match self.current() {
                Some(q) => {
                    self.selected = Some(q.clone());
                    if self.followed.as_ref() != Some(&q) {
                        self.answers.clear();
                    }
                    self.followed = Some(q.clone());
                    vec![Cmd::Qa(QaCommand::Select(q))]
                }
                None => Vec::new(),
            },
            Some(Action::ToggleOrder) => {
                self.order = match self.order {
                    Order::Newest => Order::Top,
                    Order::Top => Order::Newest,
                };
                Vec::new()
            }
            Some(Action::Ask) => {
                self.open_input(InputKind::Ask);
                Vec::new()
            }
            Some(Action::Answer) => {
                self.open_input(InputKind::Answer);
                Vec::new()
            }
            Some(Action::Vote) => match self.current() {
                Some(q) => vec![Cmd::Qa(QaCommand::Vote(q))],
                None => Vec::new(),
            },
            _ => return Handled::Ignored,
        };
        Handled::Consumed(cmds)
    }

    fn handle_mouse(&mut self, event: MouseEvent, area: Rect) -> Vec<Cmd> {
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let (questions, _, _) = self.areas(area);
                let first_row = questions.y + 1;
                if event.column >= questions.x
                    && event.column < questions.right()
                    && event.row >= first_row
                    && event.row < questions.bottom()
                {
                    let list = self.ordered();
                    let rows = questions.height.saturating_sub(1) as usize;
                    let first = self.scroll(rows, self.selected_index(&list));
                    let i = first + (event.row - first_row) as usize;
                    if let Some(q) = list.get(i) {
                        self.selected = Some(q.text.clone());
                    }
                }
            }
            MouseEventKind::ScrollDown => self.move_selection(true),
            MouseEventKind::ScrollUp => self.move_selection(false),
            _ => {}
        }
        Vec::new()
    }

    fn apply(&mut self, event: &NetEvent) -> bool {
        match event {
            NetEvent::State(Transport::Qa, state) => {
                // The list stays as it is while reconnecting.
                self.conn = state.clone();
                true
            }
            NetEvent::Qa(ev) => {
                match ev {
                    QaEvent::Login { user } => {
                        if self.user.as_ref().is_some_and(|u| u != user) {
                            // A new identity: the server forgot what we followed.
                            self.followed = None;
                            self.answers.clear();
                            self.voted.clear();
                        }
                        self.user = Some(user.clone());
                    }
                    QaEvent::Reset => self.answers.clear(),
                    QaEvent::Questions(list) => {
                        self.questions = list.clone();
                        let seen = self
                            .seen
                            .get_or_insert_with(|| list.iter().map(|q| q.text.clone()).collect());
                        let on_board: HashSet<&str> =
                            list.iter().map(|q| q.text.as_str()).collect();
                        seen.retain(|t| on_board.contains(t.as_str()));
                        if let Some(f) = &self.followed
                            && !self.questions.iter().any(|q| &q.text == f)
                        {
                            self.followed = None;
                            self.answers.clear();
                        }
                    }
                    QaEvent::Answers { question, answers } => {
                        self.followed = Some(question.clone());
                        self.answers = answers.clone();
                    }
                    QaEvent::Meta(update) => {
                        if let Some(q) = self
                            .questions
                            .iter_mut()
                            .find(|q| q.text == update.question)
                        {
                            q.meta = update.meta.clone();
                        }
                    }
                    QaEvent::Notification(text) => self.message = Some(text.clone()),
                    QaEvent::Voted(reply) => {
                        if reply.voted {
                            self.voted.insert(reply.question.clone());
                        } else {
                            self.voted.remove(&reply.question);
                        }
                        if let Some(q) =
                            self.questions.iter_mut().find(|q| q.text == reply.question)
                        {
                            q.meta.votes = reply.votes;
                        }
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        if area.is_empty() {
            return;
        }
        let (questions, answers, footer) = self.areas(area);
        self.render_questions(frame, questions, ctx);
        self.render_answers(frame, answers, ctx);
        self.render_footer(frame, footer, ctx);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.input.is_some() {
            keymap::hints(Scope::QaInput)
        } else {
            keymap::hints(Scope::Qa)
        }
    }

    fn captures_input(&self) -> bool {
        self.input.is_some()
    }

    fn badge(&self) -> Option<Badge> {
        let seen = self.seen.as_ref()?;
        let unread = self
            .questions
            .iter()
            .filter(|q| !seen.contains(&q.text))
            .count();
        (unread > 0).then_some(Badge::Unread(unread))
    }

    fn seen(&mut self) {
        self.seen = Some(self.questions.iter().map(|q| q.text.clone()).collect());
    }

    fn title_suffix(&self) -> Option<String> {
        Some(
            match self.conn {
                ConnState::Idle => "idle",
                ConnState::Connecting => "connecting…",
                ConnState::Connected => "live",
                ConnState::Retrying { .. } => "reconnecting…",
            }
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossterm::event::KeyModifiers;
    use insta::assert_snapshot;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use rt_protocol::qa::{AnswerMeta, MetaUpdate, QuestionMeta, VoteReply};

    use super::*;
    use crate::app::{App, Msg, ServerInfo};
    use crate::panes::title::TitlePane;
    use crate::ui::theme::Theme;

    fn q(text: &str, author: &str, time: u64, votes: u32, answers: u32) -> QuestionInfo {
        QuestionInfo {
            text: text.into(),
            meta: QuestionMeta {
                author: author.into(),
                time,
                votes,
                answers,
            },
        }
    }

    fn board() -> Vec<QuestionInfo> {
        vec![
            q("Why is the sky blue?", "user-1a2b3c4d", 1000, 3, 2),
            q("How do SSE reconnects work?", "user-5e6f7a8b", 2000, 5, 0),
            q("Is Rust fast?", "user-1a2b3c4d", 3000, 0, 1),
        ]
    }

    fn key(p: &mut QaPane, code: KeyCode) -> Vec<Cmd> {
        match p.handle_key(KeyEvent::new(code, KeyModifiers::NONE)) {
            Handled::Consumed(c) => c,
            Handled::Ignored => panic!("{code:?} ignored"),
        }
    }

    fn typed(p: &mut QaPane, s: &str) {
        for c in s.chars() {
            key(p, KeyCode::Char(c));
        }
    }

    fn net(p: &mut QaPane, ev: QaEvent) {
        p.apply(&NetEvent::Qa(ev));
    }

    fn loaded() -> QaPane {
        let mut p = QaPane::new();
        p.apply(&NetEvent::State(Transport::Qa, ConnState::Connected));
        net(&mut p, QaEvent::Login { user: "u1".into() });
        net(&mut p, QaEvent::Questions(board()));
        p
    }

    fn texts(p: &QaPane) -> Vec<String> {
        p.ordered().iter().map(|q| q.text.clone()).collect()
    }

    #[test]
    fn order_is_newest_first_or_by_votes() {
        let mut p = loaded();
        assert_eq!(
            texts(&p),
            [
                "Is Rust fast?",
                "How do SSE reconnects work?",
                "Why is the sky blue?"
            ]
        );
        key(&mut p, KeyCode::Char('o'));
        assert_eq!(
            texts(&p),
            [
                "How do SSE reconnects work?",
                "Why is the sky blue?",
                "Is Rust fast?"
            ]
        );
    }

    #[test]
    fn keys_select_follow_and_vote() {
        let mut p = loaded();
        assert_eq!(
            key(&mut p, KeyCode::Char('+')),
            [Cmd::Qa(QaCommand::Vote("Is Rust fast?".into()))]
        );
        key(&mut p, KeyCode::Char('j'));
        key(&mut p, KeyCode::Down);
        key(&mut p, KeyCode::Down);
        key(&mut p, KeyCode::Char('k'));
        assert_eq!(
            key(&mut p, KeyCode::Enter),
            [Cmd::Qa(QaCommand::Select(
                "How do SSE reconnects work?".into()
            ))]
        );
        assert_eq!(p.followed.as_deref(), Some("How do SSE reconnects work?"));
        // The selection stays on its question when a newer one arrives.
        let mut more = board();
        more.push(q("Newest", "user-9", 4000, 0, 0));
        net(&mut p, QaEvent::Questions(more));
        assert_eq!(
            key(&mut p, KeyCode::Char('+')),
            [Cmd::Qa(QaCommand::Vote(
                "How do SSE reconnects work?".into()
            ))]
        );
        assert_eq!(
            p.handle_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE)),
            Handled::Ignored
        );
    }

    #[test]
    fn the_input_edits_and_submits() {
        let mut p = loaded();
        key(&mut p, KeyCode::Char('a'));
        assert!(p.captures_input());
        typed(&mut p, "hello q");
        key(&mut p, KeyCode::Left);
        key(&mut p, KeyCode::Backspace);
        key(&mut p, KeyCode::Home);
        key(&mut p, KeyCode::Delete);
        typed(&mut p, "H");
        key(&mut p, KeyCode::End);
        typed(&mut p, "?");
        assert_eq!(
            key(&mut p, KeyCode::Enter),
            [Cmd::Qa(QaCommand::Ask("Helloq?".into()))]
        );
        assert!(!p.captures_input());
        // Esc cancels; an empty input sends nothing.
        key(&mut p, KeyCode::Char('a'));
        typed(&mut p, "gone");
        key(&mut p, KeyCode::Esc);
        key(&mut p, KeyCode::Char('a'));
        typed(&mut p, "   ");
        assert_eq!(key(&mut p, KeyCode::Enter), []);
        // Questions stop at the server's limit.
        key(&mut p, KeyCode::Char('a'));
        typed(&mut p, &"x".repeat(MAX_QUESTION_CHARS + 5));
        let cmds = key(&mut p, KeyCode::Enter);
        let [Cmd::Qa(QaCommand::Ask(text))] = &cmds[..] else {
            panic!("{cmds:?}")
        };
        assert_eq!(text.chars().count(), MAX_QUESTION_CHARS);
    }

    #[test]
    fn answering_needs_a_followed_question() {
        let mut p = loaded();
        key(&mut p, KeyCode::Char('r'));
        assert!(!p.captures_input());
        assert!(p.message.as_deref().unwrap().contains("Follow a question"));
        key(&mut p, KeyCode::Enter);
        key(&mut p, KeyCode::Char('r'));
        typed(&mut p, "Yes.");
        assert_eq!(
            key(&mut p, KeyCode::Enter),
            [Cmd::Qa(QaCommand::Answer("Yes.".into()))]
        );
    }

    #[test]
    fn events_update_counts_votes_and_answers() {
        let mut p = loaded();
        net(
            &mut p,
            QaEvent::Meta(MetaUpdate {
                question: "Is Rust fast?".into(),
                meta: QuestionMeta {
                    author: "user-1a2b3c4d".into(),
                    time: 3000,
                    votes: 9,
                    answers: 4,
                },
            }),
        );
        key(&mut p, KeyCode::Char('o'));
        assert_eq!(texts(&p)[0], "Is Rust fast?");
        net(
            &mut p,
            QaEvent::Voted(VoteReply {
                question: "Is Rust fast?".into(),
                votes: 10,
                voted: true,
            }),
        );
        assert!(p.voted.contains("Is Rust fast?"));
        net(
            &mut p,
            QaEvent::Answers {
                question: "Is Rust fast?".into(),
                answers: vec![AnswerInfo {
                    text: "Yes".into(),
                    meta: None,
                }],
            },
        );
        assert_eq!(p.followed.as_deref(), Some("Is Rust fast?"));
        assert_eq!(p.answers.len(), 1);
    }

    #[test]
    fn reconnecting_keeps_the_list_and_a_new_identity_forgets_the_follow() {
        let mut p = loaded();
        key(&mut p, KeyCode::Enter);
        let retry = ConnState::Retrying {
            at: Instant::now(),
            error: "cannot reach".into(),
        };
        p.apply(&NetEvent::State(Transport::Qa, retry));
        assert_eq!(p.title_suffix().as_deref(), Some("reconnecting…"));
        assert_eq!(p.ordered().len(), 3);
        assert!(p.followed.is_some());
        // Same identity after the reconnect: nothing changes.
        net(&mut p, QaEvent::Login { user: "u1".into() });
        assert!(p.followed.is_some());
        net(&mut p, QaEvent::Login { user: "u2".into() });
        assert!(p.followed.is_none());
        assert_eq!(p.ordered().len(), 3, "the list stays until the snapshot");
    }

    #[test]
    fn the_badge_counts_questions_that_arrived_since_the_pane_was_seen() {
        // The first list is the board as found, not news.
        let mut p = loaded();
        assert_eq!(p.badge(), None);
        let mut list = board();
        list.push(q("New one?", "user-9", 4000, 0, 0));
        list.push(q("Another?", "user-9", 5000, 0, 0));
        net(&mut p, QaEvent::Questions(list.clone()));
        assert_eq!(p.badge(), Some(Badge::Unread(2)));
        // A removed question is no longer unread, nor remembered.
        list.retain(|q| q.text != "Another?");
        net(&mut p, QaEvent::Questions(list.clone()));
        assert_eq!(p.badge(), Some(Badge::Unread(1)));
        p.seen();
        assert_eq!(p.badge(), None);
        list.push(q("Third?", "user-9", 6000, 0, 0));
        net(&mut p, QaEvent::Questions(list));
        assert_eq!(p.badge(), Some(Badge::Unread(1)));
        assert_eq!(p.seen.as_ref().map(HashSet::len), Some(4));
    }

    fn shell(pane: QaPane, w: u16, h: u16) -> App {
        let panes: Vec<Box<dyn Pane>> = vec![
            Box::new(TitlePane::new(PaneId::Ticker)),
            Box::new(TitlePane::new(PaneId::Canvas)),
            Box::new(pane),
            Box::new(TitlePane::new(PaneId::Text)),
        ];
        let mut app = App::new(
            ServerInfo {
                url: "http://127.0.0.1:8080".into(),
                embedded: false,
            },
            panes,
            &[Transport::Qa],
            Theme::COLOR,
            Instant::now(),
        );
        app.update(Msg::Resize(w, h));
        app.update(Msg::Net(NetEvent::State(
            Transport::Qa,
            ConnState::Connected,
        )));
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('3'),
            KeyModifiers::NONE,
        )));
        app
    }

    fn render(app: &App) -> String {
        let size = app.size();
        let mut t = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
        t.draw(|f| crate::ui::draw(f, app)).unwrap();
        format!("{:?}", t.backend())
    }

    fn followed_pane() -> QaPane {
        let mut p = loaded();
        key(&mut p, KeyCode::Char('j'));
        key(&mut p, KeyCode::Enter);
        net(
            &mut p,
            QaEvent::Answers {
                question: "How do SSE reconnects work?".into(),
                answers: vec![
                    AnswerInfo {
                        text: "The browser sends Last-Event-ID.".into(),
                        meta: Some(AnswerMeta {
                            author: "user-1a2b3c4d".into(),
                            time: 2500,
                        }),
                    },
                    AnswerInfo {
                        text: "\u{1b}[31mAnd the server replays\u{1b}[0m what was missed.".into(),
                        meta: Some(AnswerMeta {
                            author: "user-5e6f7a8b".into(),
                            time: 2600,
                        }),
                    },
                ],
            },
        );
        p
    }

    #[test]
    fn snapshot_board_with_a_followed_question() {
        let mut app = shell(followed_pane(), 120, 30);
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('e'),
            KeyModifiers::NONE,
        )));
        app.update(Msg::Net(NetEvent::Qa(QaEvent::Notification(
            "Please select a question to answer".into(),
        ))));
        assert_snapshot!(render(&app));
    }

    #[test]
    fn snapshot_narrow_with_answer_input_while_reconnecting() {
        let mut app = shell(followed_pane(), 64, 24);
        // `e` expands the pane; once the input is open it is typed instead.
        for c in "erAlso: ids only grow, e".chars() {
            app.update(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        let retry = ConnState::Retrying {
            at: app.now,
            error: "cannot reach http://127.0.0.1:8080: connection refused".into(),
        };
        app.update(Msg::Net(NetEvent::State(Transport::Qa, retry)));
        assert_snapshot!(render(&app));
    }

    #[test]
    fn snapshot_empty_board_in_the_grid() {
        let app = shell(QaPane::new(), 140, 40);
        assert_snapshot!(render(&app));
    }
}
