//! The tab bar: below the grid size the focused pane takes the body and one
//! line above it names all four panes, each with its live badge (see
//! [`Badge`]). When the line is short of room, badges get their short
//! form, then go, then the panes not focused keep only their number.
//!
//! [`tabs`] places the tabs; drawing and mouse hit-testing both use it.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::panes::Badge;
use crate::ui::theme::Theme;

/// Between two tabs.
const SEPARATOR: &str = "│";

/// How much each tab says, most first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Name and badge in words.
    Long,
    /// Name and a short badge.
    Short,
    /// Names only.
    Names,
    /// The focused pane's name; the others' numbers.
    Numbers,
}

/// The badge as spans, or nothing at `detail`s without badges.
fn badge_spans(badge: Badge, detail: Detail, theme: Theme) -> Vec<Span<'static>> {
    let long = detail == Detail::Long;
    match (badge, detail) {
        (_, Detail::Names | Detail::Numbers) => Vec::new(),
        (Badge::Movers { up, down }, _) => {
            let mut spans = Vec::new();
            if up > 0 {
                spans.push(Span::styled(format!("▲{up}"), theme.up()));
            }
            if down > 0 {
                if up > 0 && long {
                    spans.push(Span::raw(" "));
                }
                spans.push(Span::styled(format!("▼{down}"), theme.down()));
            }
            spans
        }
        (Badge::Unread(n), _) => vec![Span::styled(format!("{n} new"), theme.warn())],
        (Badge::Online(n), _) => {
            let text = if long {
                format!("{n} online")
            } else {
                format!("{n} on")
            };
            vec![Span::styled(text, theme.ok())]
        }
        (Badge::Pending(n), _) => {
            let text = if long {
                format!("{n} pending")
            } else {
                format!("✎{n}")
            };
            vec![Span::styled(text, theme.warn())]
        }
    }
}

/// Pane `i`'s tab at `detail`.
fn tab(app: &App, i: usize, detail: Detail) -> Vec<Span<'static>> {
    let theme = app.theme;
    let pane = &app.panes()[i];
    let id = pane.id();
    let focused = i == app.focus();
    let name = if detail == Detail::Numbers && !focused {
        format!(" {} ", id.number())
    } else {
        format!(" {} {} ", id.number(), id.title())
    };
    let mut spans = vec![Span::raw(name)];
    if let Some(badge) = pane.badge() {
        let badge = badge_spans(badge, detail, theme);
        if !badge.is_empty() {
            spans.extend(badge);
            spans.push(Span::raw(" "));
        }
    }
    if focused {
        // Reversed as well as coloured, so NO_COLOR still shows which.
        let style = theme.focused().add_modifier(Modifier::REVERSED);
        for s in &mut spans {
            s.style = s.style.patch(style);
        }
    }
    spans
}

fn width(spans: &[Span]) -> u16 {
    spans.iter().map(Span::width).sum::<usize>() as u16
}

/// Each pane's tab in `area` (the tab bar), in pane order: where it is and
/// what it shows. Tabs past the right edge (only on a screen narrower than
/// the shell ever draws) get an empty rectangle.
pub fn tabs(app: &App, area: Rect) -> Vec<(Rect, Vec<Span<'static>>)> {
    let n = app.panes().len();
    let details = [Detail::Long, Detail::Short, Detail::Names, Detail::Numbers];
    let mut chosen = Vec::new();
    for detail in details {
        chosen = (0..n).map(|i| tab(app, i, detail)).collect::<Vec<_>>();
        let total = chosen.iter().map(|t| width(t)).sum::<u16>() + n.saturating_sub(1) as u16;
        if total <= area.width {
            break;
        }
    }
    let mut x = area.x;
    chosen
        .into_iter()
        .map(|spans| {
            let w = width(&spans);
            let rect = if x.saturating_add(w) <= area.right() {
                Rect::new(x, area.y, w, area.height.min(1))
            } else {
                Rect::default()
            };
            x = x.saturating_add(w + 1);
            (rect, spans)
        })
        .collect()
}

/// The pane whose tab is at `at`, if any.
pub fn hit(app: &App, area: Rect, at: Position) -> Option<usize> {
    tabs(app, area)
        .iter()
        .position(|(rect, _)| rect.contains(at))
}

/// Draws the tab bar into `area`.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    for (i, (rect, tab)) in tabs(app, area).into_iter().enumerate() {
        if rect.is_empty() {
            break;
        }
        if i > 0 {
            spans.push(Span::styled(SEPARATOR, app.theme.dim()));
        }
        spans.extend(tab);
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(app.theme.bar()),
        area,
    );
}
