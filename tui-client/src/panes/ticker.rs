//! The ticker pane: a watchlist table (price, change, change %, a sparkline,
//! age and next-poll countdown), a line chart of the selected symbol, and a
//! one-line input to add symbols.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table};
use rt_protocol::ticker::{MAX_SYMBOL_LEN, Quote, Symbol};

use super::{Badge, Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::{self, Action, Hint, Scope};
use crate::net::ticker::{NextUpdate, TickerEvent, TickerTransport};
use crate::net::{ConnState, NetEvent, Transport};
use crate::settings::MAX_WATCHLIST;
use crate::ui::theme::Theme;

/// Prices kept per symbol for the sparkline and the chart.
pub const HISTORY_LEN: usize = 120;

/// Sparkline levels, lowest first.
const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One watched symbol.
#[derive(Debug, Clone)]
struct WatchRow {
    symbol: Symbol,
    quote: Option<Quote>,
    /// `(received, price)`, oldest first, at most [`HISTORY_LEN`].
    history: VecDeque<(Instant, f64)>,
    updated: Option<Instant>,
    next: Option<NextUpdate>,
    /// The server's last error answer for this symbol, cleared by a quote.
    error: Option<String>,
    /// The price when the pane was last on screen (or the first price, if
    /// it arrived while the pane was hidden): the tab bar's movers compare
    /// against it.
    seen: Option<f64>,
}

impl WatchRow {
    fn new(symbol: Symbol) -> WatchRow {
        WatchRow {
            symbol,
            quote: None,
            history: VecDeque::new(),
            updated: None,
            next: None,
            error: None,
            seen: None,
        }
    }
}

/// The ticker pane's state.
#[derive(Debug, Clone)]
pub struct TickerPane {
    rows: Vec<WatchRow>,
    selected: usize,
    /// The symbol being typed after `a`.
    input: Option<String>,
    /// Feedback from the last action (a refused symbol, …).
    message: Option<String>,
    conn: ConnState,
    transport: TickerTransport,
}

/// The areas the pane is split into.
struct Areas {
    table: Rect,
    chart: Option<Rect>,
    footer: Rect,
}

impl TickerPane {
    pub fn new(watchlist: Vec<Symbol>, transport: TickerTransport) -> TickerPane {
        TickerPane {
            rows: watchlist.into_iter().map(WatchRow::new).collect(),
            selected: 0,
            input: None,
            message: None,
            conn: ConnState::Idle,
            transport,
        }
    }

    /// The symbols watched, in display order.
    pub fn watchlist(&self) -> Vec<Symbol> {
        self.rows.iter().map(|r| r.symbol.clone()).collect()
    }

    /// The selected symbol.
    pub fn selected(&self) -> Option<&Symbol> {
        self.rows.get(self.selected).map(|r| &r.symbol)
    }

    fn row_mut(&mut self, symbol: &Symbol) -> Option<&mut WatchRow> {
        self.rows.iter_mut().find(|r| &r.symbol == symbol)
    }

    fn watchlist_changed(&self) -> Vec<Cmd> {
        vec![Cmd::Watchlist(self.watchlist())]
    }

    fn submit_input(&mut self) -> Vec<Cmd> {
        let Some(text) = self.input.take() else {
            return Vec::new();
        };
        if text.trim().is_empty() {
            return Vec::new();
        }
        match Symbol::parse(&text) {
            Err(e) => {
                self.message = Some(format!("cannot add {:?}: {e}", text.trim()));
                Vec::new()
            }
            Ok(sym) => {
                if let Some(i) = self.rows.iter().position(|r| r.symbol == sym) {
                    self.selected = i;
                    self.message = Some(format!("{sym} is already in the watchlist"));
                    return Vec::new();
                }
                if self.rows.len() >= MAX_WATCHLIST {
                    self.message = Some(format!(
                        "the watchlist is full ({MAX_WATCHLIST} symbols); remove one with d"
                    ));
                    return Vec::new();
                }
                self.message = Some(format!("added {sym}"));
                self.rows.push(WatchRow::new(sym));
                self.selected = self.rows.len() - 1;
                self.watchlist_changed()
            }
        }
    }

    fn remove_selected(&mut self) -> Vec<Cmd> {
        if self.rows.is_empty() {
            return Vec::new();
        }
        let removed = self.rows.remove(self.selected);
        self.message = Some(format!("removed {}", removed.symbol));
        if self.selected >= self.rows.len() {
            self.selected = self.rows.len().saturating_sub(1);
        }
        self.watchlist_changed()
    }

    fn move_selection(&mut self, down: bool) {
        if self.rows.is_empty() {
            return;
        }
        self.selected = if down {
            (self.selected + 1).min(self.rows.len() - 1)
        } else {
            self.selected.saturating_sub(1)
        };
    }

    fn areas(&self, area: Rect) -> Areas {
        let footer_h = u16::from(area.height >= 2);
        let body_h = area.height - footer_h;
        // Header plus one line per symbol (at least one, for "empty").
        let table_want = self.rows.len().max(1) as u16 + 1;
        let chart_min = 6;
        let (table_h, chart) = if body_h >= table_want + chart_min {
            (table_want, true)
        } else {
            (body_h, false)
        };
        let [table, chart_area, footer] = Layout::vertical([
            Constraint::Length(table_h),
            Constraint::Fill(1),
            Constraint::Length(footer_h),
        ])
        .areas(area);
        Areas {
            table,
            chart: chart.then_some(chart_area),
            footer,
        }
    }

    /// The first row shown when the table has room for `visible` rows.
    fn scroll_offset(&self, visible: usize) -> usize {
        if visible == 0 {
            return 0;
        }
        self.selected.saturating_sub(visible - 1)
    }

    fn render_table(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let theme = ctx.theme;
        if self.rows.is_empty() {
            let p = Paragraph::new(Line::styled(
                "the watchlist is empty: press a to add a symbol",
                theme.dim(),
            ));
            frame.render_widget(p, area);
            return;
        }
        let columns = Columns::for_width(area.width);
        let mut header = vec!["Symbol", "Price", "Change", "Chg %"];
        let mut widths = vec![
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(9),
        ];
        if columns.trend {
            header.push("Trend");
            widths.push(Constraint::Length(TREND_WIDTH));
        }
        header.push("Updated");
        widths.push(Constraint::Length(9));
        if columns.next {
            header.push("Next");
            widths.push(Constraint::Min(8));
        }
        let visible = area.height.saturating_sub(1) as usize;
        let offset = self.scroll_offset(visible);
        let rows = self
            .rows
            .iter()
            .enumerate()
            .skip(offset)
            .take(visible)
            .map(|(i, r)| {
                let mut cells = vec![Cell::from(r.symbol.as_str().to_string())];
                match &r.quote {
                    Some(q) => {
                        let (style, mark) = direction(theme, q.change);
                        cells.push(Cell::from(
                            Line::from(format_price(q.latest_price)).right_aligned(),
                        ));
                        cells.push(Cell::from(
                            Line::from(format!("{mark} {:.2}", q.change.abs()))
                                .style(style)
                                .right_aligned(),
                        ));
                        cells.push(Cell::from(
                            Line::from(format!("{mark} {:.2}%", q.change_percent.abs() * 100.0))
                                .style(style)
                                .right_aligned(),
                        ));
                    }
                    None => {
                        let placeholder = if r.error.is_some() { "error" } else { "…" };
                        cells.push(Cell::from(
                            Line::styled(placeholder, theme.dim()).right_aligned(),
                        ));
                        cells.push(Cell::from(""));
                        cells.push(Cell::from(""));
                    }
                }
                if columns.trend {
                    let prices: Vec<f64> = r.history.iter().map(|(_, p)| *p).collect();
                    cells.push(Cell::from(sparkline(&prices, TREND_WIDTH as usize)));
                }
                cells.push(Cell::from(
                    r.updated
                        .map(|t| format!("{}s ago", secs(ctx.now.saturating_duration_since(t))))
                        .unwrap_or_default(),
                ));
                if columns.next {
                    let (text, style) = next_text(r, ctx.now, theme);
                    cells.push(Cell::from(Span::styled(text, style)));
                }
                let row = Row::new(cells);
                if i == self.selected && ctx.focused {
                    row.style(theme.selected())
                } else if i == self.selected {
                    row.style(theme.header())
                } else {
                    row
                }
            });
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(theme.header()))
            .column_spacing(1);
        frame.render_widget(table, area);
    }

    fn render_chart(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let theme = ctx.theme;
        let Some(row) = self.rows.get(self.selected) else {
            return;
        };
        let name = row
            .quote
            .as_ref()
            .map(|q| q.company_name.as_str())
            .unwrap_or("");
        let title = Line::from(vec![
            Span::styled(row.symbol.as_str().to_string(), theme.header()),
            Span::raw(" "),
            Span::styled(name.to_string(), theme.dim()),
        ]);
        if row.history.len() < 2 {
            let p = Paragraph::new(vec![
                title,
                Line::styled("waiting for quotes to draw a chart…", theme.dim()),
            ]);
            frame.render_widget(p, area);
            return;
        }
        let t0 = row.history.front().map(|(t, _)| *t).unwrap_or(ctx.now);
        let points: Vec<(f64, f64)> = row
            .history
            .iter()
            .map(|(t, p)| (t.saturating_duration_since(t0).as_secs_f64(), *p))
            .collect();
        let (lo, hi) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), (_, p)| {
                (lo.min(*p), hi.max(*p))
            });
        let pad = ((hi - lo) * 0.1).max(0.01);
        let x_max = points.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
        let style = row
            .quote
            .as_ref()
            .map(|q| direction(theme, q.change).0)
            .unwrap_or_default();
        let data = [Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(style)
            .data(&points)];
        let chart = Chart::new(data.to_vec())
            .x_axis(
                Axis::default()
                    .bounds([0.0, x_max])
                    .labels([Line::from("0s"), Line::from(format!("{}s", x_max.round()))])
                    .style(theme.dim()),
            )
            .y_axis(
                Axis::default()
                    .bounds([lo - pad, hi + pad])
                    .labels([Line::from(format_price(lo)), Line::from(format_price(hi))])
                    .style(theme.dim()),
            );
        let [head, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        frame.render_widget(Paragraph::new(title), head);
        frame.render_widget(chart, body);
    }

    /// One line for a collapsed pane: the selected symbol and the list size.
    fn summary_line(&self, ctx: &RenderCtx) -> Line<'static> {
        let theme = ctx.theme;
        let Some(row) = self.rows.get(self.selected) else {
            return Line::styled("the watchlist is empty", theme.dim());
        };
        let mut spans = vec![Span::styled(
            row.symbol.as_str().to_string(),
            theme.header(),
        )];
        if let Some(q) = &row.quote {
            let (style, mark) = direction(theme, q.change);
            spans.push(Span::raw(format!(" {} ", format_price(q.latest_price))));
            spans.push(Span::styled(
                format!(
                    "{mark} {:.2} ({:.2}%)",
                    q.change.abs(),
                    q.change_percent.abs() * 100.0
                ),
                style,
            ));
        }
        spans.push(Span::styled(
            format!("  · {} symbols watched", self.rows.len()),
            theme.dim(),
        ));
        Line::from(spans)
    }

    fn footer_line(&self, ctx: &RenderCtx) -> Line<'static> {
        let theme = ctx.theme;
        if let Some(text) = &self.input {
            return Line::from(vec![
                Span::styled("Add symbol: ", theme.key()),
                Span::raw(text.clone()),
                Span::styled("█", theme.dim()),
            ]);
        }
        if let ConnState::Retrying { at, error } = &self.conn {
            let wait = secs_ceil(at.saturating_duration_since(ctx.now));
            let lead = if error.starts_with("cannot reach") {
                format!("cannot reach {}", ctx.server_url)
            } else {
                error.clone()
            };
            return Line::styled(format!("{lead}, retrying in {wait}s"), theme.error());
        }
        if let Some(m) = &self.message {
            return Line::styled(m.clone(), theme.warn());
        }
        if let Some(row) = self.rows.get(self.selected) {
            match (&row.error, row.next) {
                (Some(e), Some(NextUpdate::At(t))) => {
                    let wait = secs_ceil(t.saturating_duration_since(ctx.now));
                    return Line::styled(
                        format!("{}: {e}; retrying in {wait}s", row.symbol),
                        theme.error(),
                    );
                }
                (Some(e), _) => {
                    return Line::styled(
                        format!("{}: {e}; the server stopped updates", row.symbol),
                        theme.error(),
                    );
                }
                (None, Some(NextUpdate::Stopped)) => {
                    return Line::styled(
                        format!(
                            "{}: the server stopped updates for this symbol (callIn null)",
                            row.symbol
                        ),
                        theme.warn(),
                    );
                }
                _ => {}
            }
        }
        let how = match self.transport {
            TickerTransport::Poll => "polling as the server's callIn says",
            TickerTransport::Sse => "live stream (SSE)",
        };
        Line::styled(how, theme.dim())
    }
}

const TREND_WIDTH: u16 = 12;

/// Which optional columns fit.
struct Columns {
    trend: bool,
    next: bool,
}

impl Columns {
    fn for_width(width: u16) -> Columns {
        // Symbol, price, change, change %, updated, with spacing.
        let base = 6 + 10 + 9 + 9 + 9 + 4;
        Columns {
            next: width >= base + 9,
            trend: width > base + 9 + TREND_WIDTH,
        }
    }
}

/// Style and marker for a change, so direction reads without colour too.
fn direction(theme: Theme, change: f64) -> (Style, &'static str) {
    if change > 0.0 {
        (theme.up(), "▲")
    } else if change < 0.0 {
        (theme.down(), "▼")
    } else {
        (Style::default(), "=")
    }
}

fn next_text(row: &WatchRow, now: Instant, theme: Theme) -> (String, Style) {
    match (row.next, &row.error) {
        (Some(NextUpdate::At(t)), None) => match secs_ceil(t.saturating_duration_since(now)) {
            0 => ("now".to_string(), Style::default()),
            n => (format!("in {n}s"), Style::default()),
        },
        (Some(NextUpdate::At(t)), Some(_)) => (
            format!("retry {}s", secs_ceil(t.saturating_duration_since(now))),
            theme.error(),
        ),
        (Some(NextUpdate::Stopped), _) => ("stopped".to_string(), theme.warn()),
        (Some(NextUpdate::Live), _) => ("live".to_string(), theme.ok()),
        (None, _) => (String::new(), Style::default()),
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Whole seconds, rounded up: a countdown shows 1s until it is due.
fn secs_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// A price with two decimals, or four below one.
pub fn format_price(p: f64) -> String {
    if p.abs() < 1.0 && p != 0.0 {
        format!("{p:.4}")
    } else {
        format!("{p:.2}")
    }
}

/// The last `width` prices as block characters scaled between their min
/// and max (flat prices draw a middle line).
pub fn sparkline(prices: &[f64], width: usize) -> String {
    let tail = &prices[prices.len().saturating_sub(width)..];
    let (lo, hi) = tail
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    tail.iter()
        .map(|p| {
            if (hi - lo).abs() < f64::EPSILON {
                SPARK[3]
            } else {
                let level = ((p - lo) / (hi - lo) * (SPARK.len() - 1) as f64).round() as usize;
                SPARK[level.min(SPARK.len() - 1)]
            }
        })
        .collect()
}

impl Pane for TickerPane {
    fn id(&self) -> PaneId {
        PaneId::Ticker
    }

    fn handle_key(&mut self, key: KeyEvent) -> Handled {
        if let Some(input) = &mut self.input {
            match keymap::lookup(Scope::TickerInput, &key) {
                Some(Action::Submit) => return Handled::Consumed(self.submit_input()),
                Some(Action::Cancel) => {
                    self.input = None;
                    return Handled::Consumed(Vec::new());
                }
                _ => {}
            }
            match key.code {
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) if !c.is_control() && input.chars().count() < MAX_SYMBOL_LEN => {
                    input.push(c.to_ascii_uppercase())
                }
                _ => {}
            }
            return Handled::Consumed(Vec::new());
        }
        let cmds = match keymap::lookup(Scope::Ticker, &key) {
            Some(Action::SelectDown) => {
                self.move_selection(true);
                Vec::new()
            }
            Some(Action::SelectUp) => {
                self.move_selection(false);
                Vec::new()
            }
            Some(Action::AddSymbol) => {
                self.input = Some(String::new());
                self.message = None;
                Vec::new()
            }
            Some(Action::RemoveSymbol) => self.remove_selected(),
            _ => return Handled::Ignored,
        };
        Handled::Consumed(cmds)
    }

    fn handle_mouse(&mut self, event: MouseEvent, area: Rect) -> Vec<Cmd> {
        match event.kind {
            // The one-line summary has no rows to click.
            MouseEventKind::Down(MouseButton::Left) if area.height >= 3 => {
                let table = self.areas(area).table;
                let first_row = table.y + 1;
                if event.row >= first_row && event.row < table.bottom() {
                    let visible = table.height.saturating_sub(1) as usize;
                    let i = self.scroll_offset(visible) + (event.row - first_row) as usize;
                    if i < self.rows.len() {
                        self.selected = i;
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
            NetEvent::State(Transport::Ticker, state) => {
                self.conn = state.clone();
                true
            }
            NetEvent::Ticker(TickerEvent::Quote {
                symbol,
                quote,
                at,
                next,
            }) => {
                let Some(row) = self.row_mut(symbol) else {
                    return false;
                };
                row.quote = Some(quote.clone());
                row.history.push_back((*at, quote.latest_price));
                while row.history.len() > HISTORY_LEN {
                    row.history.pop_front();
                }
                row.updated = Some(*at);
                row.next = Some(*next);
                row.error = None;
                row.seen.get_or_insert(quote.latest_price);
                true
            }
            NetEvent::Ticker(TickerEvent::Error {
                symbol,
                error,
                next,
                ..
            }) => {
                let Some(row) = self.row_mut(symbol) else {
                    return false;
                };
                row.error = Some(error.clone());
                row.next = Some(*next);
                true
            }
            _ => false,
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        if area.is_empty() {
            return;
        }
        if area.height < 3 {
            frame.render_widget(Paragraph::new(self.summary_line(ctx)), area);
            return;
        }
        let areas = self.areas(area);
        self.render_table(frame, areas.table, ctx);
        if let Some(chart) = areas.chart {
            self.render_chart(frame, chart, ctx);
        }
        frame.render_widget(Paragraph::new(self.footer_line(ctx)), areas.footer);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.input.is_some() {
            keymap::hints(Scope::TickerInput)
        } else {
            keymap::hints(Scope::Ticker)
        }
    }

    fn captures_input(&self) -> bool {
        self.input.is_some()
    }

    fn badge(&self) -> Option<Badge> {
        let (mut up, mut down) = (0, 0);
        for row in &self.rows {
            if let (Some(q), Some(seen)) = (&row.quote, row.seen) {
                if q.latest_price > seen {
                    up += 1;
                } else if q.latest_price < seen {
                    down += 1;
                }
            }
        }
        (up + down > 0).then_some(Badge::Movers { up, down })
    }

    fn seen(&mut self) {
        for row in &mut self.rows {
            if let Some(q) = &row.quote {
                row.seen = Some(q.latest_price);
            }
        }
    }

    fn shows_clock(&self) -> bool {
        matches!(self.conn, ConnState::Retrying { .. })
            || self
                .rows
                .iter()
                .any(|r| r.updated.is_some() || r.next.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn code(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn pane() -> TickerPane {
        TickerPane::new(vec![sym("AAPL"), sym("IBM")], TickerTransport::Poll)
    }

    #[test]
    fn adding_validates_and_reports_the_new_watchlist() {
        let mut p = pane();
        assert_eq!(p.handle_key(key('a')), Handled::Consumed(vec![]));
        assert!(p.captures_input());
        for c in "msft".chars() {
            p.handle_key(key(c));
        }
        // q is typed, not a quit: but it makes the symbol longer, so erase it.
        p.handle_key(key('q'));
        p.handle_key(code(KeyCode::Backspace));
        let out = p.handle_key(code(KeyCode::Enter));
        assert_eq!(
            out,
            Handled::Consumed(vec![Cmd::Watchlist(vec![
                sym("AAPL"),
                sym("IBM"),
                sym("MSFT")
            ])])
        );
        assert!(!p.captures_input());
        assert_eq!(p.selected(), Some(&sym("MSFT")));

        // Invalid and duplicate symbols are refused with a message.
        p.handle_key(key('a'));
        p.handle_key(key('<'));
        assert_eq!(
            p.handle_key(code(KeyCode::Enter)),
            Handled::Consumed(vec![])
        );
        assert!(p.message.as_deref().unwrap().contains("cannot add"));
        p.handle_key(key('a'));
        p.handle_key(key('i'));
        p.handle_key(key('b'));
        p.handle_key(key('m'));
        assert_eq!(
            p.handle_key(code(KeyCode::Enter)),
            Handled::Consumed(vec![])
        );
        assert_eq!(p.selected(), Some(&sym("IBM")));

        // Esc cancels.
        p.handle_key(key('a'));
        p.handle_key(key('x'));
        p.handle_key(code(KeyCode::Esc));
        assert!(!p.captures_input());
        assert_eq!(p.watchlist().len(), 3);
    }

    #[test]
    fn input_length_is_bounded() {
        let mut p = pane();
        p.handle_key(key('a'));
        for _ in 0..50 {
            p.handle_key(key('z'));
        }
        assert_eq!(p.input.as_ref().unwrap().len(), MAX_SYMBOL_LEN);
    }

    #[test]
    fn removing_and_selecting() {
        let mut p = pane();
        assert_eq!(p.handle_key(key('j')), Handled::Consumed(vec![]));
        assert_eq!(p.selected(), Some(&sym("IBM")));
        p.handle_key(code(KeyCode::Down));
        assert_eq!(p.selected(), Some(&sym("IBM")));
        let out = p.handle_key(key('d'));
        assert_eq!(
            out,
            Handled::Consumed(vec![Cmd::Watchlist(vec![sym("AAPL")])])
        );
        assert_eq!(p.selected(), Some(&sym("AAPL")));
        p.handle_key(key('d'));
        assert_eq!(p.selected(), None);
        assert_eq!(p.handle_key(key('d')), Handled::Consumed(vec![]));
        assert_eq!(p.handle_key(key('x')), Handled::Ignored);
    }

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 10), "▁▅█");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0, 4.0], 2), "▁█");
        assert_eq!(sparkline(&[], 4), "");
    }

    #[test]
    fn history_is_bounded_and_events_for_unknown_symbols_are_ignored() {
        let mut p = pane();
        let t = Instant::now();
        let q = crate::test_support::quote("AAPL", 10.0, 0.5);
        for i in 0..(HISTORY_LEN + 10) {
            p.apply(&NetEvent::Ticker(TickerEvent::Quote {
                symbol: sym("AAPL"),
                quote: q.clone(),
                at: t + Duration::from_secs(i as u64),
                next: NextUpdate::Live,
            }));
        }
        assert_eq!(p.rows[0].history.len(), HISTORY_LEN);
        let changed = p.apply(&NetEvent::Ticker(TickerEvent::Quote {
            symbol: sym("ZZZ"),
            quote: q,
            at: t,
            next: NextUpdate::Live,
        }));
        assert!(!changed);
    }

    #[test]
    fn the_badge_counts_symbols_that_moved_since_the_pane_was_seen() {
        let mut p = pane();
        let t = Instant::now();
        let price = |p: &mut TickerPane, s: &str, v: f64| {
            p.apply(&NetEvent::Ticker(TickerEvent::Quote {
                symbol: sym(s),
                quote: crate::test_support::quote(s, v, 0.0),
                at: t,
                next: NextUpdate::Live,
            }));
        };
        // First prices are the baseline, not moves.
        price(&mut p, "AAPL", 10.0);
        price(&mut p, "IBM", 20.0);
        assert_eq!(p.badge(), None);
        price(&mut p, "AAPL", 11.0);
        price(&mut p, "IBM", 19.0);
        assert_eq!(p.badge(), Some(Badge::Movers { up: 1, down: 1 }));
        // Back to where it was seen: no longer a mover.
        price(&mut p, "IBM", 20.0);
        assert_eq!(p.badge(), Some(Badge::Movers { up: 1, down: 0 }));
        p.seen();
        assert_eq!(p.badge(), None);
        price(&mut p, "IBM", 20.5);
        assert_eq!(p.badge(), Some(Badge::Movers { up: 1, down: 0 }));
    }
}
