//! The `?` overlay: every binding of the keymap, grouped by scope.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::App;
use crate::keymap::{self, Scope};

/// The scopes in the order the overlay lists them. The canvas's clear
/// question names its own keys (y / n) where it is asked.
const SECTIONS: [Scope; 5] = [
    Scope::Global,
    Scope::Ticker,
    Scope::TickerInput,
    Scope::Canvas,
    Scope::Help,
];

/// The overlay's lines, generated from the keymap table.
pub fn lines(app: &App) -> Vec<Line<'static>> {
    let theme = app.theme;
    let width = keymap::BINDINGS
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    for scope in SECTIONS {
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(scope.heading(), theme.header()));
        for b in keymap::bindings(scope) {
            out.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(format!("{:<width$}", b.label), theme.key()),
                Span::raw("  "),
                Span::raw(b.description),
            ]));
        }
    }
    out.push(Line::raw(""));
    out.push(Line::styled(
        "A mouse click focuses a pane (and selects a ticker row).",
        theme.dim(),
    ));
    out
}

/// Draws the overlay centred in `area`.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let lines = lines(app);
    let want_w = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16 + 4;
    let want_h = lines.len() as u16 + 2;
    let [row] = Layout::vertical([Constraint::Length(want_h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(want_w.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(app.theme.focused())
        .title(" Keys (Esc closes) ");
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
