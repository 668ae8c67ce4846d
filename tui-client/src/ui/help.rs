//! The `?` overlay: every binding of the keymap, grouped by scope.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::App;
use crate::keymap::{self, Scope};

/// The scopes in the order the overlay lists them (arranged so the two
/// columns balance on a 120×36 terminal). The canvas's clear question names
/// its own keys (y / n) where it is asked.
const SECTIONS: [Scope; 9] = [
    Scope::Global,
    Scope::Help,
    Scope::Text,
    Scope::TextEdit,
    Scope::Ticker,
    Scope::TickerInput,
    Scope::Canvas,
    Scope::Qa,
    Scope::QaInput,
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

/// Draws the overlay centred in `area`, in two columns when one would not
/// fit the height.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let lines = lines(app);
    let room = area.height.saturating_sub(2) as usize;
    let columns = if lines.len() <= room {
        vec![lines]
    } else {
        // Break at the section boundary nearest the middle, preferring one
        // that lets both columns fit.
        let mid = lines.len() / 2;
        let fits = |i: usize| i <= room && lines.len() - i - 1 <= room;
        let split = (0..lines.len())
            .filter(|&i| lines[i].width() == 0)
            .min_by_key(|&i| (!fits(i), i.abs_diff(mid)))
            .unwrap_or(mid);
        let mut left = lines;
        let right: Vec<Line> = left.split_off(split).into_iter().skip(1).collect();
        vec![left, right]
    };
    let widths: Vec<u16> = columns
        .iter()
        .map(|c| c.iter().map(|l| l.width()).max().unwrap_or(0) as u16)
        .collect();
    let gap = 3;
    let want_w = widths.iter().sum::<u16>() + gap * (widths.len() as u16 - 1) + 4;
    let want_h = columns.iter().map(Vec::len).max().unwrap_or(0) as u16 + 2;
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
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    let constraints = widths.iter().map(|&w| Constraint::Length(w));
    let cells = Layout::horizontal(constraints).spacing(gap).split(inner);
    for (col, cell) in columns.into_iter().zip(cells.iter()) {
        frame.render_widget(Paragraph::new(col), *cell);
    }
}
