//! Drawing the shell: the pane grid, the status bar, the hint bar, the help
//! overlay and the "terminal too small" screen.

pub mod help;
pub mod layout;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};

use crate::app::App;
use crate::net::ConnState;
use crate::panes::RenderCtx;

/// Draws the whole screen for `app`.
pub fn draw(frame: &mut Frame, app: &App) {
    let size = frame.area();
    if layout::too_small(size) {
        too_small(frame, app, size);
        return;
    }
    let shell = layout::shell(size);
    let areas = layout::panes(shell.panes, app.panes().len(), app.focus(), app.expanded());
    for (i, (pane, (outer, inner))) in app.panes().iter().zip(areas).enumerate() {
        if outer.is_empty() {
            continue;
        }
        let focused = i == app.focus();
        let id = pane.id();
        let title = format!(" {} {} ", id.number(), id.title());
        let block = if focused {
            Block::bordered()
                .border_type(BorderType::Thick)
                .border_style(app.theme.focused())
                .title(Span::styled(title, app.theme.focused()))
        } else {
            Block::bordered()
                .border_style(app.theme.dim())
                .title(Span::raw(title))
        };
        frame.render_widget(block, outer);
        let ctx = RenderCtx {
            focused,
            theme: app.theme,
            now: app.now,
            server_url: &app.server.url,
        };
        pane.render(frame, inner, &ctx);
    }
    status_bar(frame, app, shell.status);
    hint_bar(frame, app, shell.hints);
    if app.help_open() {
        help::draw(frame, app, shell.panes);
    }
}

fn too_small(frame: &mut Frame, app: &App, size: Rect) {
    let lines = vec![
        Line::styled("terminal too small", app.theme.error()),
        Line::from(format!(
            "{}×{}, needs at least {}×{}",
            size.width,
            size.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        )),
        Line::styled("q quits", app.theme.dim()),
    ];
    let top = size.height.saturating_sub(lines.len() as u16) / 2;
    let area = Rect::new(size.x, size.y + top, size.width, size.height - top);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn status_bar(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let mut spans = vec![
        Span::styled(" rt ", theme.header()),
        Span::raw(app.server.url.clone()),
    ];
    if app.server.embedded {
        spans.push(Span::styled(
            format!(" (embedded server: open {}/ in a browser)", app.server.url),
            theme.ok(),
        ));
    }
    for (t, state) in app.transports() {
        let (mark, style) = match state {
            ConnState::Connected => ("●", theme.ok()),
            ConnState::Idle => ("○", theme.dim()),
            ConnState::Connecting => ("◌", theme.warn()),
            ConnState::Retrying { .. } => ("✕", theme.error()),
        };
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            format!("{mark} {}: {}", t.name(), app.describe_state(state)),
            style,
        ));
    }
    if let Some(n) = app.notice() {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(n.to_string(), theme.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

fn hint_bar(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let mut spans = vec![Span::raw(" ")];
    for (i, h) in app.hints().iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(h.label, theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::raw(h.description));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}
