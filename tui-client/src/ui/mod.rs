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
use crate::keymap::{self, Hint};
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
        let title = match pane.title_suffix() {
            Some(extra) => format!(" {} {} · {extra} ", id.number(), id.title()),
            None => format!(" {} {} ", id.number(), id.title()),
        };
        let extra = pane.title_extra(app.theme);
        let title = if extra.is_empty() {
            title
        } else {
            title.trim_end().to_string()
        };
        let mut title_line = if focused {
            Line::from(Span::styled(title, app.theme.focused()))
        } else {
            Line::from(Span::raw(title))
        };
        if !extra.is_empty() {
            title_line.spans.extend(extra);
            title_line.spans.push(Span::raw(" "));
        }
        let block = if focused {
            Block::bordered()
                .border_type(BorderType::Thick)
                .border_style(app.theme.focused())
                .title(title_line)
        } else {
            Block::bordered()
                .border_style(app.theme.dim())
                .title(title_line)
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
    // Narrower terminals get short transport states, then a short browser
    // hint, so the URL, every transport and any notice stay on screen.
    let fits = |l: &Line| l.width() <= area.width as usize;
    let line = [(false, false), (true, false)]
        .into_iter()
        .map(|(short_states, short_hint)| status_line(app, short_states, short_hint))
        .find(fits)
        .unwrap_or_else(|| status_line(app, true, true));
    frame.render_widget(Paragraph::new(line).style(app.theme.bar()), area);
}

fn status_line(app: &App, short_states: bool, short_hint: bool) -> Line<'static> {
    let theme = app.theme;
    let mut spans = vec![
        Span::styled(" rt ", theme.header()),
        Span::raw(app.server.url.clone()),
    ];
    if app.server.embedded {
        let text = if short_hint {
            "/ ← open in a browser".to_string()
        } else {
            format!(" (embedded server: open {}/ in a browser)", app.server.url)
        };
        spans.push(Span::styled(text, theme.ok()));
    }
    for (t, state) in app.transports() {
        let (mark, style) = match state {
            ConnState::Connected => ("●", theme.ok()),
            ConnState::Idle => ("○", theme.dim()),
            ConnState::Connecting => ("◌", theme.warn()),
            ConnState::Retrying { .. } => ("✕", theme.error()),
        };
        spans.push(Span::raw(if short_states { " " } else { "  " }));
        let text = if short_states {
            format!("{mark} {}", t.name())
        } else {
            format!("{mark} {}: {}", t.name(), app.describe_state(state))
        };
        spans.push(Span::styled(text, style));
    }
    if let Some(n) = app.notice() {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(n.to_string(), theme.warn()));
    }
    Line::from(spans)
}

/// The hint-bar entry that opens the help overlay when the bar is too
/// narrow for every hint.
const MORE_KEYS: Hint = Hint {
    label: "?",
    description: "more keys",
};

fn hint_bar(frame: &mut Frame, app: &App, area: Rect) {
    let line = hint_line(app, &app.hints(), area.width as usize);
    frame.render_widget(Paragraph::new(line).style(app.theme.bar()), area);
}

/// The hints that fit in `width` columns. When some must go, the help key
/// stays, last, as "more keys": everything else is listed behind it.
fn hint_line(app: &App, hints: &[Hint], width: usize) -> Line<'static> {
    let theme = app.theme;
    let entry = |h: &Hint, first: bool| {
        let mut spans = Vec::with_capacity(4);
        if !first {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(h.label, theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::raw(h.description));
        spans
    };
    let spans_width = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
    let all: Vec<Span> = std::iter::once(Span::raw(" "))
        .chain(hints.iter().enumerate().flat_map(|(i, h)| entry(h, i == 0)))
        .collect();
    if spans_width(&all) <= width {
        return Line::from(all);
    }
    let help = keymap::bindings(keymap::Scope::Global)
        .find(|b| b.action == keymap::Action::ToggleHelp)
        .and_then(keymap::Binding::hint);
    let has_help = help.is_some_and(|h| hints.contains(&h));
    let tail = if has_help {
        entry(&MORE_KEYS, false)
    } else {
        Vec::new()
    };
    let room = width.saturating_sub(spans_width(&tail));
    let mut spans = vec![Span::raw(" ")];
    for h in hints.iter().filter(|h| Some(**h) != help) {
        let next = entry(h, spans.len() == 1);
        if spans_width(&spans) + spans_width(&next) > room {
            break;
        }
        spans.extend(next);
    }
    if spans.len() == 1 && has_help {
        spans.extend(entry(&MORE_KEYS, true));
    } else {
        spans.extend(tail);
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use insta::assert_snapshot;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;

    use super::*;
    use crate::app::Msg;
    use crate::test_support::{app, feed_market};
    use crate::ui::theme::Theme;

    fn render(app: &App) -> Terminal<TestBackend> {
        let size = app.size();
        let mut t = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        t
    }

    fn key(app: &mut App, code: KeyCode) {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    #[test]
    fn shell_before_any_data() {
        let t0 = Instant::now();
        let a = app(Theme::COLOR, 120, 36, t0);
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn shell_with_quotes() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 120, 36, t0);
        feed_market(&mut a, t0);
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn help_overlay() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 120, 36, t0);
        key(&mut a, KeyCode::Char('?'));
        assert_snapshot!(render(&a).backend());
    }

    /// The screen's rows as text.
    fn rows(t: &Terminal<TestBackend>) -> Vec<String> {
        let buf = t.backend().buffer();
        (0..buf.area.height)
            .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
            .collect()
    }

    #[test]
    fn help_overlay_scrolled_to_the_end_shows_the_last_keys() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 120, 36, t0);
        key(&mut a, KeyCode::Char('3'));
        key(&mut a, KeyCode::Char('?'));
        for _ in 0..5 {
            key(&mut a, KeyCode::PageDown);
        }
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn paging_through_help_shows_every_binding_whole_at_any_width() {
        let t0 = Instant::now();
        // A common small terminal, and the smallest one the shell draws.
        for (w, h) in [(80, 24), (layout::MIN_WIDTH, layout::MIN_HEIGHT)] {
            let mut a = app(Theme::COLOR, w, h, t0);
            key(&mut a, KeyCode::Char('?'));
            // The overlay's text, page after page, lines joined by spaces.
            let mut seen = String::new();
            for _ in 0..60 {
                for row in rows(&render(&a)) {
                    let inside: Vec<&str> = row.split('║').collect();
                    if inside.len() == 3 {
                        seen.push_str(inside[1].trim());
                        seen.push(' ');
                    }
                }
                key(&mut a, KeyCode::PageDown);
            }
            let seen = seen.split_whitespace().collect::<Vec<_>>().join(" ");
            for b in crate::keymap::BINDINGS {
                if b.scope == crate::keymap::Scope::CanvasConfirm {
                    continue;
                }
                assert!(
                    seen.contains(b.description),
                    "{w}×{h}: {:?} never on screen whole",
                    b.description
                );
            }
        }
    }

    #[test]
    fn help_overlay_at_the_smallest_size_wraps() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, layout::MIN_WIDTH, layout::MIN_HEIGHT, t0);
        key(&mut a, KeyCode::Char('4'));
        key(&mut a, KeyCode::Char('?'));
        key(&mut a, KeyCode::PageDown);
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn help_lines_fit_their_width() {
        let a = app(Theme::COLOR, 120, 36, Instant::now());
        for width in [30, 36, 50, 72] {
            for line in help::lines(&a, width) {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn the_status_bar_shows_the_browser_url_and_every_transport_at_any_width() {
        let t0 = Instant::now();
        for (width, want) in [
            (
                200,
                " rt http://127.0.0.1:8080 (embedded server: open http://127.0.0.1:8080/ in a browser)  ◌ ticker: connecting…",
            ),
            (
                120,
                " rt http://127.0.0.1:8080 (embedded server: open http://127.0.0.1:8080/ in a browser) ◌ ticker ◌ draw ◌ qa ◌ doc",
            ),
            (
                80,
                " rt http://127.0.0.1:8080/ ← open in a browser ◌ ticker ◌ draw ◌ qa ◌ doc",
            ),
        ] {
            let mut a = app(Theme::COLOR, width, 30, t0);
            a.server.embedded = true;
            let screen = rows(&render(&a));
            let bar = &screen[screen.len() - 2];
            assert!(bar.starts_with(want), "{width}: {bar:?}");
        }
    }

    #[test]
    fn a_narrow_hint_bar_keeps_the_help_key() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 60, 24, t0);
        key(&mut a, KeyCode::Char('3'));
        let screen = rows(&render(&a));
        let bar = screen.last().unwrap();
        assert!(bar.starts_with(" j/↓ down · "), "{bar:?}");
        assert!(bar.trim_end().ends_with("· ? more keys"), "{bar:?}");
        // While a field takes the keys, ? is typed, so it is not offered.
        key(&mut a, KeyCode::Char('a'));
        let screen = rows(&render(&a));
        assert_eq!(
            screen.last().unwrap().trim_end(),
            " Enter send · Esc cancel"
        );
    }

    #[test]
    fn too_small() {
        let t0 = Instant::now();
        let a = app(Theme::COLOR, 36, 10, t0);
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn stacked_when_narrow_with_focus_on_q_and_a() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 80, 30, t0);
        feed_market(&mut a, t0);
        key(&mut a, KeyCode::Char('3'));
        assert_snapshot!(render(&a).backend());
    }

    #[test]
    fn ticker_expanded_with_a_stopped_symbol_selected_and_input_open() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 100, 24, t0);
        feed_market(&mut a, t0);
        key(&mut a, KeyCode::Char('e'));
        key(&mut a, KeyCode::Char('j'));
        let first = render(&a);
        assert_snapshot!("ticker_expanded_msft_selected", first.backend());
        key(&mut a, KeyCode::Char('a'));
        key(&mut a, KeyCode::Char('t'));
        key(&mut a, KeyCode::Char('s'));
        assert_snapshot!("ticker_expanded_input", render(&a).backend());
    }

    #[test]
    fn unreachable_server_says_so_and_counts_down() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 120, 36, t0);
        a.update(Msg::Net(crate::net::NetEvent::State(
            crate::net::Transport::Ticker,
            ConnState::Retrying {
                at: t0 + Duration::from_secs(4),
                error: "cannot reach http://127.0.0.1:8080: Connection refused".into(),
            },
        )));
        a.update(Msg::Tick(t0 + Duration::from_millis(1500)));
        assert_snapshot!(render(&a).backend());
    }

    /// Finds the cell where `needle` starts and returns its foreground colour.
    fn fg_at(t: &Terminal<TestBackend>, needle: &str) -> Color {
        let buf = t.backend().buffer();
        let area = buf.area;
        for y in 0..area.height {
            let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
            if let Some(byte) = line.find(needle) {
                let x = line[..byte].chars().count() as u16;
                return buf[(x, y)].fg;
            }
        }
        panic!("{needle:?} not on screen");
    }

    #[test]
    fn direction_is_coloured_and_marked_but_no_color_drops_colours() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 120, 36, t0);
        feed_market(&mut a, t0);
        let t = render(&a);
        assert_eq!(fg_at(&t, "▲ 1.60"), Color::Green);
        assert_eq!(fg_at(&t, "▼ 6.10"), Color::Red);

        let mut a = app(Theme::NO_COLOR, 120, 36, t0);
        feed_market(&mut a, t0);
        let plain = render(&a);
        assert_eq!(fg_at(&plain, "▲ 1.60"), Color::Reset);
        assert_eq!(fg_at(&plain, "▼ 6.10"), Color::Reset);
        let buf = plain.backend().buffer();
        assert!(
            buf.content()
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "NO_COLOR draws no colour at all"
        );
        // The text is the same either way: the markers carry the direction.
        assert_eq!(format!("{}", plain.backend()), format!("{}", t.backend()));
    }
}
