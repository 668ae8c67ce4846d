//! Drawing the shell: the panes (a 2×2 grid, or one at a time under a tab
//! bar), the status bar, the hint bar, the help overlay and the "terminal
//! too small" screen. [`layout`] decides where everything goes.

pub mod help;
pub mod hints;
pub mod layout;
pub mod status;
pub mod tabs;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};

use crate::app::App;
use crate::panes::RenderCtx;

/// Draws the whole screen for `app`.
pub fn draw(frame: &mut Frame, app: &App) {
    let size = frame.area();
    if layout::too_small(size) {
        too_small(frame, app, size);
        return;
    }
    let shell = layout::shell(size);
    if !shell.tabs.is_empty() {
        tabs::draw(frame, app, shell.tabs);
    }
    let areas = layout::panes(size, app.panes().len(), app.focus(), app.expanded());
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
    status::draw(frame, app, shell.status);
    hints::draw(frame, app, shell.hints);
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossterm::event::{
        KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
    };
    use insta::assert_snapshot;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;

    use super::*;
    use crate::app::Msg;
    use crate::net::ConnState;
    use crate::test_support::{app, feed_everything, feed_market, feed_news};
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
        // The text pane types on focus: Esc first, or ? is typed.
        key(&mut a, KeyCode::Esc);
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
            (60, " rt http://127.0.0.1:8080/ ← open in a browser ◌ ◌ ◌ ◌"),
        ] {
            let mut a = app(Theme::COLOR, width, 30, t0);
            a.server.embedded = true;
            let screen = rows(&render(&a));
            let bar = &screen[screen.len() - 2];
            assert!(bar.starts_with(want), "{width}: {bar:?}");
        }
    }

    /// The bar's text as drawn, and as built before drawing: equal when
    /// nothing was clipped.
    fn bar_texts(a: &App, line: &Line, row_from_bottom: usize) -> (String, String) {
        let screen = rows(&render(a));
        let drawn = screen[screen.len() - 1 - row_from_bottom]
            .trim_end()
            .to_string();
        let built: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        (drawn, built.trim_end().to_string())
    }

    /// Apps in states that make the bars long: every pane focused, a text
    /// field open, help open, a server that cannot be reached with a long
    /// notice, an embedded server.
    fn busy_apps(width: u16) -> Vec<App> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for pane in ['1', '2', '3', '4'] {
            let mut a = app(Theme::COLOR, width, 30, t0);
            feed_everything(&mut a, t0);
            key(&mut a, KeyCode::Char(pane));
            out.push(a);
        }
        let mut a = app(Theme::COLOR, width, 30, t0);
        a.server.embedded = true;
        a.update(Msg::Net(crate::net::NetEvent::State(
            crate::net::Transport::Qa,
            ConnState::Retrying {
                at: t0 + Duration::from_secs(9),
                error: "cannot reach http://127.0.0.1:8080: Connection refused".into(),
            },
        )));
        a.update(Msg::Notice(
            "cannot write the settings file /home/someone/.config/rt/tui.json: \
             permission denied; using the default watchlist (changes are not saved)"
                .into(),
        ));
        out.push(a);
        let mut a = app(Theme::COLOR, width, 30, t0);
        key(&mut a, KeyCode::Char('3'));
        key(&mut a, KeyCode::Char('a'));
        out.push(a);
        let mut a = app(Theme::COLOR, width, 30, t0);
        key(&mut a, KeyCode::Char('?'));
        out.push(a);
        out
    }

    #[test]
    fn hint_and_status_bars_fit_whole_words_at_60_80_120_and_200_columns() {
        for width in [60, 80, 120, 200] {
            for a in busy_apps(width) {
                let hints = a.hints();
                let line = hints::line(a.theme, &hints, width as usize);
                assert!(line.width() <= width as usize, "{width}: {line:?}");
                let (drawn, built) = bar_texts(&a, &line, 0);
                assert_eq!(drawn, built, "{width}: the hint bar was clipped");
                // Every entry is a whole hint (full or short label).
                for entry in built.trim().split(" · ").filter(|e| !e.is_empty()) {
                    let whole = hints.iter().any(|h| {
                        entry == format!("{} {}", h.label, h.description)
                            || entry == format!("{} {}", h.short, h.description)
                    }) || entry == "? more keys";
                    assert!(whole, "{width}: {entry:?} is not a whole hint in {built:?}");
                }
                let line = status::line(&a, width as usize);
                assert!(line.width() <= width as usize, "{width}: {line:?}");
                let (drawn, built) = bar_texts(&a, &line, 1);
                assert_eq!(drawn, built, "{width}: the status bar was clipped");
                // A shortened notice ends at a word, marked with "…".
                if let Some(n) = a.notice() {
                    let shown = built.split("  ").last().unwrap_or_default();
                    if !n.contains(shown) {
                        let head = shown.strip_suffix('…').expect("marked as shortened");
                        assert!(n.starts_with(head), "{shown:?}");
                        let rest = &n[head.len()..];
                        assert!(
                            rest.starts_with([' ', ';', ',', ':']),
                            "{width}: cut mid-word: {shown:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_long_notice_keeps_whole_words_and_its_share_of_the_status_bar() {
        let line = |w: u16| {
            let a = busy_apps(w).swap_remove(4);
            let l = status::line(&a, w as usize);
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        };
        assert_eq!(
            line(120),
            " rt http://127.0.0.1:8080/ ← open in a browser ◌ ticker ◌ draw ✕ qa ◌ doc  \
             cannot write the settings file…"
        );
        assert_eq!(
            line(60),
            " rt http://127.0.0.1:8080 ◌ ◌ ✕ ◌  cannot write the…"
        );
        assert!(line(200).ends_with("(changes are not saved)"));
    }

    #[test]
    fn the_hint_bar_drops_the_lowest_priority_first() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 200, 60, t0);
        key(&mut a, KeyCode::Char('3'));
        let bar = |a: &App, w: usize| -> String {
            let line = hints::line(a.theme, &a.hints(), w);
            line.spans.iter().map(|s| s.content.as_ref()).collect()
        };
        assert_eq!(
            bar(&a, 200),
            " j/↓ down · k/↑ up · Enter follow · o order · a ask · r answer · + vote · \
             q C-c quit · ? help · Tab next · 1-4 focus · e expand"
        );
        // Short of room: short labels first…
        assert_eq!(
            bar(&a, 120),
            " j down · k up · Enter follow · o order · a ask · r answer · + vote · \
             q quit · ? help · Tab next · 1-4 focus · e expand"
        );
        // …then the low ones go (the last first), help last as "more keys"…
        assert_eq!(
            bar(&a, 110),
            " j down · k up · Enter follow · o order · a ask · r answer · + vote · \
             q quit · Tab next · ? more keys"
        );
        assert_eq!(
            bar(&a, 80),
            " Enter follow · a ask · r answer · + vote · q quit · Tab next · ? more keys"
        );
        // …then the normal ones, then the high ones; quitting stays longest.
        assert_eq!(
            bar(&a, 60),
            " Enter follow · a ask · r answer · q quit · ? more keys"
        );
        assert_eq!(bar(&a, 40), " Enter follow · q quit · ? more keys");
        assert_eq!(bar(&a, 12), " ? more keys");
        assert_eq!(bar(&a, 5), " ");
    }

    #[test]
    fn a_narrow_hint_bar_keeps_the_help_key() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 60, 24, t0);
        key(&mut a, KeyCode::Char('3'));
        let screen = rows(&render(&a));
        let bar = screen.last().unwrap();
        assert!(bar.starts_with(" Enter follow · a ask · "), "{bar:?}");
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
        let a = app(Theme::COLOR, 59, 16, t0);
        assert_snapshot!(render(&a).backend());
    }

    /// Focuses pane `n` (1-4) with keys, leaving the text pane's typing
    /// first if it has the keys and is not pane `n` already.
    fn focus(a: &mut App, n: char) {
        if n.to_digit(10) == Some(a.focus() as u32 + 1) {
            return;
        }
        if a.panes()[a.focus()].captures_input() {
            key(a, KeyCode::Esc);
        }
        key(a, KeyCode::Char(n));
    }

    /// The shell at every size the snapshots cover, with each pane focused.
    /// The ticker moved, a question arrived and an edit waits for the
    /// server while the panes were out of view, so badges show.
    #[test]
    fn every_size_with_each_pane_focused() {
        let t0 = Instant::now();
        for (w, h) in [(60, 16), (80, 24), (120, 40), (200, 60)] {
            for n in ['1', '2', '3', '4'] {
                let mut a = app(Theme::COLOR, w, h, t0);
                feed_everything(&mut a, t0);
                // An edit the server has not acknowledged.
                focus(&mut a, '4');
                key(&mut a, KeyCode::End);
                key(&mut a, KeyCode::Char('!'));
                focus(&mut a, n);
                feed_news(&mut a, t0);
                let title = a.focused_id().unwrap().title().replace('&', "");
                let name = format!("layout_{w}x{h}_{n}_{}", title.to_lowercase());
                assert_snapshot!(name, render(&a).backend());
            }
        }
    }

    #[test]
    fn tab_badges_count_news_until_the_pane_is_seen() {
        let t0 = Instant::now();
        let mut a = app(Theme::NO_COLOR, 80, 24, t0);
        feed_everything(&mut a, t0);
        focus(&mut a, '4');
        key(&mut a, KeyCode::Char('x'));
        focus(&mut a, '2');
        feed_news(&mut a, t0);
        let tab_row = |a: &App| rows(&render(a))[0].trim_end().to_string();
        assert_eq!(
            tab_row(&a),
            " 1 Ticker ▲1 ▼1 │ 2 Canvas 2 online │ 3 Q&A 1 new │ 4 Text 1 pending"
        );
        // Seeing the panes clears their news; the live counts stay.
        focus(&mut a, '1');
        focus(&mut a, '3');
        assert_eq!(
            tab_row(&a),
            " 1 Ticker │ 2 Canvas 2 online │ 3 Q&A │ 4 Text 1 pending"
        );
        // The server acknowledges the edit: nothing is pending.
        a.update(Msg::Net(crate::net::NetEvent::Doc(
            crate::net::doc::DocEvent::Message(serde_json::json!(
                {"a": "op", "c": "examples", "d": "richtext", "v": 4, "src": "me", "seq": 1}
            )),
        )));
        assert_eq!(
            tab_row(&a),
            " 1 Ticker │ 2 Canvas 2 online │ 3 Q&A │ 4 Text"
        );
        // In the grid every pane is in view: nothing is news.
        a.update(Msg::Resize(200, 60));
        feed_news(&mut a, t0);
        a.update(Msg::Resize(80, 24));
        assert_eq!(
            tab_row(&a),
            " 1 Ticker │ 2 Canvas 2 online │ 3 Q&A │ 4 Text"
        );
    }

    #[test]
    fn a_narrow_tab_bar_shortens_badges_then_names_but_keeps_the_focused_name() {
        let t0 = Instant::now();
        let mut a = app(Theme::NO_COLOR, 60, 16, t0);
        feed_everything(&mut a, t0);
        focus(&mut a, '4');
        key(&mut a, KeyCode::Char('x'));
        focus(&mut a, '2');
        feed_news(&mut a, t0);
        let row = |a: &App| rows(&render(a))[0].trim_end().to_string();
        assert_eq!(
            row(&a),
            " 1 Ticker ▲1▼1 │ 2 Canvas 2 on │ 3 Q&A 1 new │ 4 Text ✎1"
        );
        // The tabs are where the mouse finds them.
        let bar = layout::shell(a.size()).tabs;
        let placed = tabs::tabs(&a, bar);
        assert_eq!(placed.len(), 4);
        let text = row(&a);
        for (i, (rect, _)) in placed.iter().enumerate() {
            let label: String = text
                .chars()
                .skip(rect.x as usize)
                .take(rect.width as usize)
                .collect();
            assert!(
                label.starts_with(&format!(" {} ", i + 1)),
                "tab {i} at {rect:?}: {label:?}"
            );
        }
    }

    #[test]
    fn a_click_on_a_tab_focuses_its_pane() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 80, 24, t0);
        feed_everything(&mut a, t0);
        let bar = layout::shell(a.size()).tabs;
        let click = |a: &mut App, column: u16| {
            a.update(Msg::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column,
                row: bar.y,
                modifiers: KeyModifiers::NONE,
            }));
        };
        for target in [2, 1, 3, 0] {
            let (rect, _) = tabs::tabs(&a, bar)[target];
            click(&mut a, rect.x + rect.width - 1);
            assert_eq!(a.focus(), target);
        }
        // A click between tabs (on a separator) or past them changes nothing.
        let (first, _) = tabs::tabs(&a, bar)[0];
        click(&mut a, first.right());
        assert_eq!(a.focus(), 0);
        click(&mut a, bar.right() - 1);
        assert_eq!(a.focus(), 0);
    }

    #[test]
    fn resizing_moves_between_layouts_and_keeps_every_pane_s_state() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 200, 60, t0);
        feed_everything(&mut a, t0);
        // State in every pane: a selected ticker row, a followed question,
        // a canvas cursor moved with the pen down, typed text, and a
        // half-typed symbol in the ticker's input, which has the focus.
        focus(&mut a, '3');
        key(&mut a, KeyCode::Char('j'));
        key(&mut a, KeyCode::Enter);
        focus(&mut a, '2');
        key(&mut a, KeyCode::Char(' '));
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Down);
        focus(&mut a, '4');
        for c in "typed ".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        focus(&mut a, '1');
        key(&mut a, KeyCode::Char('j'));
        key(&mut a, KeyCode::Char('a'));
        key(&mut a, KeyCode::Char('T'));
        let grid = format!("{:?}", render(&a).backend());
        a.update(Msg::Resize(80, 24));
        let tabs_before = format!("{:?}", render(&a).backend());
        for (w, h) in [
            (60, 16),
            (40, 12),
            (139, 60),
            (120, 40),
            (200, 60),
            (80, 24),
        ] {
            a.update(Msg::Resize(w, h));
            let _ = render(&a);
        }
        assert_eq!(format!("{:?}", render(&a).backend()), tabs_before);
        a.update(Msg::Resize(200, 60));
        assert_eq!(format!("{:?}", render(&a).backend()), grid);
        assert!(grid.contains("Add symbol: T"), "{grid}");
        assert!(grid.contains("typed Shared notes"), "{grid}");
        assert!(grid.contains("asked by"), "{grid}");
        // Expanding is the grid's: it survives the tabs too.
        key(&mut a, KeyCode::Esc);
        key(&mut a, KeyCode::Char('e'));
        assert!(a.expanded());
        a.update(Msg::Resize(80, 24));
        key(&mut a, KeyCode::Char('e'));
        assert!(a.expanded(), "e does nothing with tabs");
        a.update(Msg::Resize(200, 60));
        assert!(a.expanded());
    }

    #[test]
    fn ticker_expanded_with_a_stopped_symbol_selected_and_input_open() {
        let t0 = Instant::now();
        let mut a = app(Theme::COLOR, 140, 40, t0);
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
