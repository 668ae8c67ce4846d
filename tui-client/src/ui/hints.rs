//! The hint bar: the keys valid now, shortened by priority to fit.
//!
//! Every hint that fits is shown whole; when some must go the bar first
//! uses the short key labels, then drops the lowest-priority hints (the
//! last of equals first) and ends with "? more keys", which opens the help
//! overlay where everything is listed. A hint is never cut.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::keymap::{self, Hint, Priority};
use crate::ui::theme::Theme;

/// The hint-bar entry that opens the help overlay when the bar is too
/// narrow for every hint.
const MORE_KEYS: Hint = Hint {
    label: "?",
    description: "more keys",
    priority: Priority::Essential,
    short: "?",
};

/// Draws the hint bar for `app` into `area`.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let line = line(app.theme, &app.hints(), area.width as usize);
    frame.render_widget(Paragraph::new(line).style(app.theme.bar()), area);
}

fn spans(theme: Theme, shown: &[(&'static str, &'static str)]) -> Vec<Span<'static>> {
    let mut out = vec![Span::raw(" ")];
    for (i, (label, description)) in shown.iter().enumerate() {
        if i > 0 {
            out.push(Span::styled(" · ", theme.dim()));
        }
        out.push(Span::styled(*label, theme.key()));
        out.push(Span::raw(" "));
        out.push(Span::raw(*description));
    }
    out
}

fn width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

/// The hint bar for `hints` in `width` columns: at most `width` wide.
pub fn line(theme: Theme, hints: &[Hint], width: usize) -> Line<'static> {
    let full: Vec<_> = hints.iter().map(|h| (h.label, h.description)).collect();
    let all = spans(theme, &full);
    if self::width(&all) <= width {
        return Line::from(all);
    }
    let short: Vec<_> = hints.iter().map(|h| (h.short, h.description)).collect();
    let all = spans(theme, &short);
    if self::width(&all) <= width {
        return Line::from(all);
    }
    let help = keymap::bindings(keymap::Scope::Global)
        .find(|b| b.action == keymap::Action::ToggleHelp)
        .and_then(keymap::Binding::hint);
    let has_help = help.is_some_and(|h| hints.contains(&h));
    let mut kept: Vec<usize> = (0..hints.len())
        .filter(|&i| Some(hints[i]) != help)
        .collect();
    // The order hints go in: lowest priority first, later before earlier.
    let mut drop_order = kept.clone();
    drop_order.sort_by_key(|&i| (hints[i].priority, std::cmp::Reverse(i)));
    let mut drop_order = drop_order.into_iter();
    loop {
        let mut shown: Vec<_> = kept
            .iter()
            .map(|&i| (hints[i].short, hints[i].description))
            .collect();
        if has_help {
            shown.push((MORE_KEYS.short, MORE_KEYS.description));
        }
        let line = spans(theme, &shown);
        if self::width(&line) <= width || shown.is_empty() {
            return Line::from(line);
        }
        match drop_order.next() {
            Some(gone) => kept.retain(|&i| i != gone),
            // Not even "? more keys" fits: better nothing than half a word.
            None => return Line::from(vec![Span::raw(" ")]),
        }
    }
}
