//! The `?` overlay: every binding of the keymap, grouped by scope, the
//! focused pane's first. It scrolls when it is taller than the screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::App;
use crate::keymap::{self, Scope};
use crate::panes::PaneId;
use crate::ui::layout;

/// The scopes that belong to a pane, in the order the overlay lists them.
/// The canvas's clear question names its own keys (y / n) where it is asked.
fn pane_scopes(id: PaneId) -> &'static [Scope] {
    match id {
        PaneId::Ticker => &[Scope::Ticker, Scope::TickerInput],
        PaneId::Canvas => &[Scope::Canvas],
        PaneId::Qa => &[Scope::Qa, Scope::QaInput],
        PaneId::Text => &[Scope::Text, Scope::TextEdit],
    }
}

/// The overlay's sections: global keys, the focused pane's, the other
/// panes' in their numbered order, then the overlay's own.
pub fn sections(focused: Option<PaneId>) -> Vec<Scope> {
    let mut out = vec![Scope::Global];
    out.extend(focused.map_or(&[][..], pane_scopes));
    for id in PaneId::ALL {
        if Some(id) != focused {
            out.extend(pane_scopes(id));
        }
    }
    out.push(Scope::Help);
    out
}

/// The widest the overlay's text gets: it never needs more columns.
const MAX_TEXT_WIDTH: usize = 72;

/// Splits `text` into lines of at most `width` characters at spaces (a word
/// longer than `width` gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

/// The overlay's lines, generated from the keymap table, wrapped to `width`
/// columns (descriptions continue under themselves).
pub fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let theme = app.theme;
    let focused = app.focused_id();
    let label_w = keymap::BINDINGS
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let indent = 2 + label_w + 2;
    let description_w = width.saturating_sub(indent).max(8);
    let mut out = Vec::new();
    for scope in sections(focused) {
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        let mut heading = scope.heading().to_string();
        if focused.and_then(|id| pane_scopes(id).first()) == Some(&scope) {
            heading.push_str(" (focused)");
        }
        out.extend(
            wrap(&heading, width)
                .into_iter()
                .map(|l| Line::styled(l, theme.header())),
        );
        for b in keymap::bindings(scope) {
            for (i, part) in wrap(b.description, description_w).into_iter().enumerate() {
                let key = if i == 0 { b.label } else { "" };
                out.push(Line::from(vec![
                    Span::raw("  "),
                    Span::styled(format!("{key:<label_w$}"), theme.key()),
                    Span::raw("  "),
                    Span::raw(part),
                ]));
            }
        }
    }
    out.push(Line::raw(""));
    out.extend(
        wrap(
            "A mouse click on a pane or on its tab focuses it (and selects a ticker row).",
            width,
        )
        .into_iter()
        .map(|l| Line::styled(l, theme.dim())),
    );
    out
}

/// The text width of the overlay on a screen `screen_width` columns wide
/// (the frame and a margin take four).
fn text_width(screen_width: u16) -> usize {
    (screen_width as usize)
        .saturating_sub(4)
        .min(MAX_TEXT_WIDTH)
}

/// How many lines of help fit on a screen of `size` (the overlay covers the
/// pane area, less its frame).
pub fn visible_rows(size: Rect) -> usize {
    layout::shell(size).panes.height.saturating_sub(2) as usize
}

/// The largest useful scroll offset for `app`'s overlay on its screen.
pub fn max_scroll(app: &App) -> usize {
    let size = app.size();
    lines(app, text_width(size.width))
        .len()
        .saturating_sub(visible_rows(size))
}

/// Draws the overlay centred in `area` (the pane area), scrolled to the
/// app's offset; a footer says where the view is when not everything fits.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let lines = lines(app, text_width(area.width));
    let total = lines.len();
    let room = area.height.saturating_sub(2) as usize;
    let scroll = app.help_scroll().min(total.saturating_sub(room));
    let footer = (total > room).then(|| {
        format!(
            " {}–{} of {} · j/k PgUp/PgDn scroll ",
            scroll + 1,
            (scroll + room).min(total),
            total
        )
    });
    let text_w = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    let footer_w = footer.as_ref().map_or(0, |f| f.chars().count() as u16 + 2);
    let want_w = (text_w + 4).max(footer_w);
    let want_h = total.min(room) as u16 + 2;
    let [row] = Layout::vertical([Constraint::Length(want_h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(want_w.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, rect);
    let mut block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(app.theme.focused())
        .title(" Keys (Esc closes) ");
    if let Some(f) = footer {
        block = block.title_bottom(Line::from(f).right_aligned());
    }
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    let offset = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).scroll((offset, 0)), inner);
}
