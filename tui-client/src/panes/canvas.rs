//! The shared drawing board, scaled to the pane in Braille dots.
//!
//! Draw with a mouse drag, or with the arrow keys after Space puts the pen
//! down. Own moves are drawn when the client reports them sent
//! ([`DrawEvent::Sent`]), so the pane shows exactly what the server got.
//! Other people's pointers are coloured markers with their names.

use std::cell::Cell;
use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::widgets::canvas::{Canvas, Line as Segment};
use rt_protocol::draw::{Board, Bounds, Hello, PALETTE, Peer, Point, upsert_peer};

use super::{Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::{self, Action, Hint, Scope};
use crate::net::draw::{DrawCommand, DrawEvent};
use crate::net::{ConnState, NetEvent, Transport};

/// Own moves kept for replay over a requested canvas at most.
const SYNC_LOG_LIMIT: usize = 10_000;

/// Where to print a label for board point `p` (canvas coordinates, y up)
/// so that it lands in the cell holding the Braille dot for `p`: ratatui
/// maps labels (truncating over `cells - 1`) and dots (rounding over
/// `cells × dots - 1`) differently, which puts markers a cell off at many
/// pane sizes.
fn label_at(p: Point, bounds: Bounds, area: Rect) -> (f64, f64) {
    fn along(v: f64, size: f64, cells: u16, dots: f64) -> f64 {
        if cells <= 1 {
            return 0.0;
        }
        let dot = ((v / size).clamp(0.0, 1.0) * (f64::from(cells) * dots - 1.0)).round();
        let cell = (dot / dots).floor();
        ((cell + 0.5) / f64::from(cells - 1)).min(1.0) * size
    }
    let x = along(p.x, bounds.width, area.width, 2.0);
    let from_top = along(p.y, bounds.height, area.height, 4.0);
    (x, bounds.height - from_top)
}

/// The canvas pane.
pub struct CanvasPane {
    board: Board,
    bounds: Bounds,
    me: Option<String>,
    /// Our author id, from `welcome`.
    my_author: Option<String>,
    peers: Vec<Peer>,
    pointers: HashMap<String, Point>,
    cursor: Point,
    pen: bool,
    /// Index into [`PALETTE`] once the user picked a colour with `c`.
    colour: Option<usize>,
    confirm: bool,
    /// Our moves sent since the canvas was last asked for (the join or a
    /// `sync`): the canvas that answers does not have them, so they are
    /// replayed on top of it.
    sync_log: Option<Vec<(Point, bool, String)>>,
    conn: ConnState,
    error: Option<String>,
    /// Where the board was last drawn, for mouse mapping and cursor steps.
    board_area: Cell<Rect>,
}

impl Default for CanvasPane {
    fn default() -> Self {
        CanvasPane::new()
    }
}

impl CanvasPane {
    /// An empty board, connecting.
    pub fn new() -> CanvasPane {
        let bounds = Bounds::default();
        CanvasPane {
            board: Board::new(),
            bounds,
            me: None,
            my_author: None,
            peers: Vec::new(),
            pointers: HashMap::new(),
            cursor: Point {
                x: bounds.width / 2.0,
                y: bounds.height / 2.0,
            },
            pen: false,
            colour: None,
            confirm: false,
            sync_log: None,
            conn: ConnState::Connecting,
            error: None,
            board_area: Cell::new(Rect::default()),
        }
    }

    /// The board as this pane knows it.
    pub fn board(&self) -> &Board {
        &self.board
    }

    fn peer(&self, id: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.id == id)
    }

    fn colour_of(&self, id: &str) -> String {
        if self.me.as_deref() == Some(id)
            && let Some(i) = self.colour
        {
            return PALETTE[i].to_string();
        }
        self.peer(id)
            .map(|p| p.colour.clone())
            .unwrap_or_else(|| "#808080".to_string())
    }

    /// The author of the strokes a socket draws.
    fn author_of(&self, id: &str) -> String {
        if self.me.as_deref() == Some(id)
            && let Some(a) = &self.my_author
        {
            return a.clone();
        }
        self.peer(id)
            .map_or_else(|| id.to_string(), |p| p.author().to_string())
    }

    fn my_colour(&self) -> String {
        match (&self.me, self.colour) {
            (_, Some(i)) => PALETTE[i].to_string(),
            (Some(me), None) => self.colour_of(me),
            (None, None) => "#808080".to_string(),
        }
    }

    fn send_move(&self, drawing: bool) -> Vec<Cmd> {
        vec![Cmd::Draw(DrawCommand::Move {
            x: self.cursor.x,
            y: self.cursor.y,
            drawing,
        })]
    }

    /// One cell of the last drawn board, in board units (a sensible step
    /// before the first draw).
    fn step(&self) -> (f64, f64) {
        let a = self.board_area.get();
        let cols = if a.width == 0 {
            80.0
        } else {
            f64::from(a.width)
        };
        let rows = if a.height == 0 {
            24.0
        } else {
            f64::from(a.height)
        };
        (self.bounds.width / cols, self.bounds.height / rows)
    }

    fn move_cursor(&mut self, code: KeyCode) -> Vec<Cmd> {
        let (dx, dy) = self.step();
        let (x, y) = (self.cursor.x, self.cursor.y);
        let (x, y) = match code {
            KeyCode::Left => (x - dx, y),
            KeyCode::Right => (x + dx, y),
            KeyCode::Up => (x, y - dy),
            KeyCode::Down => (x, y + dy),
            _ => (x, y),
        };
        self.cursor = self.clamp(x, y);
        self.send_move(self.pen)
    }

    fn clamp(&self, x: f64, y: f64) -> Point {
        Point {
            x: x.clamp(0.0, self.bounds.width),
            y: y.clamp(0.0, self.bounds.height),
        }
    }

    /// The board point under a terminal cell (its centre), if on the board.
    fn point_at(&self, column: u16, row: u16) -> Option<Point> {
        let a = self.board_area.get();
        if a.width == 0 || a.height == 0 {
            return None;
        }
        // A drag that leaves the board keeps drawing along its edge.
        let fx = (f64::from(column.saturating_sub(a.x)) + 0.5) / f64::from(a.width);
        let fy = (f64::from(row.saturating_sub(a.y)) + 0.5) / f64::from(a.height);
        Some(self.clamp(fx * self.bounds.width, fy * self.bounds.height))
    }

    fn status_line(&self, ctx: &RenderCtx) -> Line<'static> {
        let theme = ctx.theme;
        if self.confirm {
            return Line::from(vec![
                Span::styled("Clear the board for everyone? ", theme.warn()),
                Span::styled("y", theme.key()),
                Span::raw(" clear · "),
                Span::styled("n", theme.key()),
                Span::raw(" keep"),
            ]);
        }
        let (mark, style, text) = match &self.conn {
            ConnState::Connected => ("●", theme.ok(), "connected".to_string()),
            ConnState::Idle => ("○", theme.dim(), "idle".to_string()),
            ConnState::Connecting => ("◌", theme.warn(), "connecting…".to_string()),
            ConnState::Retrying { .. } => ("✕", theme.error(), "reconnecting…".to_string()),
        };
        let mut spans = vec![
            Span::styled(format!("{mark} {text}"), style),
            Span::raw(format!(" · {} online · ", self.peers.len())),
        ];
        let me = self
            .me
            .as_deref()
            .and_then(|id| self.peer(id))
            .map(|p| p.name.clone())
            .unwrap_or_default();
        if !me.is_empty() {
            spans.push(Span::raw(format!("{me} ")));
        }
        spans.push(Span::styled("■", self.fg(&self.my_colour(), ctx)));
        spans.push(Span::raw(if self.pen { " pen down" } else { " pen up" }));
        if let Some(e) = &self.error {
            spans.push(Span::raw(" · "));
            spans.push(Span::styled(e.clone(), theme.error()));
        }
        Line::from(spans)
    }

    fn fg(&self, hex: &str, ctx: &RenderCtx) -> Style {
        if ctx.theme.color {
            Style::default().fg(parse_colour(hex))
        } else {
            Style::default()
        }
    }
}

/// `#rrggbb` as a terminal colour (grey when malformed).
pub fn parse_colour(hex: &str) -> Color {
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|s| u8::from_str_radix(s, 16).ok())
    };
    match (hex.len(), channel(1), channel(3), channel(5)) {
        (7, Some(r), Some(g), Some(b)) => Color::Rgb(r, g, b),
        _ => Color::Gray,
    }
}

impl Pane for CanvasPane {
    fn id(&self) -> PaneId {
        PaneId::Canvas
    }

    fn handle_key(&mut self, key: KeyEvent) -> Handled {
        if self.confirm {
            return match keymap::lookup(Scope::CanvasConfirm, &key) {
                Some(Action::Confirm) => {
                    self.confirm = false;
                    // Applied when the server says `cleared`, in its order.
                    Handled::Consumed(vec![Cmd::Draw(DrawCommand::Clear)])
                }
                Some(Action::Cancel) => {
                    self.confirm = false;
                    Handled::Consumed(Vec::new())
                }
                // The question stays until it is answered.
                _ => Handled::Consumed(Vec::new()),
            };
        }
        let cmds = match keymap::lookup(Scope::Canvas, &key) {
            Some(Action::MoveCursor) => self.move_cursor(key.code),
            Some(Action::TogglePen) => {
                self.pen = !self.pen;
                // Pen-down starts at the cursor, pen-up ends the stroke there.
                self.send_move(false)
            }
            Some(Action::NextColour) => {
                let next = match self.colour {
                    Some(i) => (i + 1) % PALETTE.len(),
                    None => {
                        let current = self.my_colour();
                        PALETTE
                            .iter()
                            .position(|c| *c == current)
                            .map_or(0, |i| (i + 1) % PALETTE.len())
                    }
                };
                self.colour = Some(next);
                vec![Cmd::Draw(DrawCommand::Hello(Hello {
                    name: None,
                    colour: Some(PALETTE[next].to_string()),
                    key: None,
                }))]
            }
            Some(Action::UndoMine) => {
                // Applied at once: it follows our own moves in order, and
                // nobody else's events change which stroke is our last.
                match &self.me {
                    Some(me) if self.board.has_strokes(&self.author_of(me)) => {
                        let author = self.author_of(me);
                        self.board.undo_as(me, &author);
                        vec![Cmd::Draw(DrawCommand::Undo)]
                    }
                    _ => {
                        self.error = Some("nothing of yours to undo".into());
                        Vec::new()
                    }
                }
            }
            Some(Action::ClearBoard) => {
                self.confirm = true;
                Vec::new()
            }
            _ => return Handled::Ignored,
        };
        Handled::Consumed(cmds)
    }

    fn handle_mouse(&mut self, event: MouseEvent, _area: Rect) -> Vec<Cmd> {
        if self.confirm {
            return Vec::new();
        }
        let Some(p) = self.point_at(event.column, event.row) else {
            return Vec::new();
        };
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.cursor = p;
                self.pen = true;
                self.send_move(false)
            }
            MouseEventKind::Drag(MouseButton::Left) => {
                self.cursor = p;
                self.pen = true;
                self.send_move(true)
            }
            MouseEventKind::Up(MouseButton::Left) => {
                self.cursor = p;
                let cmds = if self.pen {
                    // The last stretch, then pen-up.
                    let mut c = self.send_move(true);
                    c.extend(self.send_move(false));
                    c
                } else {
                    Vec::new()
                };
                self.pen = false;
                cmds
            }
            _ => Vec::new(),
        }
    }

    fn apply(&mut self, event: &NetEvent) -> bool {
        match event {
            NetEvent::State(Transport::Draw, state) => {
                self.conn = state.clone();
                true
            }
            NetEvent::Draw(ev) => {
                match ev {
                    DrawEvent::Connected { id } => {
                        self.me = Some(id.clone());
                        self.my_author = None;
                        self.error = None;
                        self.sync_log = Some(Vec::new());
                    }
                    DrawEvent::SyncRequested => self.sync_log = Some(Vec::new()),
                    DrawEvent::Canvas(part) => {
                        self.board.load_part(part);
                        if part.part + 1 >= part.parts
                            && let (Some(log), Some(me)) = (self.sync_log.take(), self.me.clone())
                        {
                            let author = self.author_of(&me);
                            for (p, drawing, colour) in log {
                                self.board.apply_move_as(&me, &author, p, drawing, &colour);
                            }
                        }
                        self.bounds = Bounds {
                            width: part.width,
                            height: part.height,
                        };
                        if part.part == 0 {
                            self.pointers = part
                                .pens
                                .iter()
                                .filter(|p| Some(&p.id) != self.me.as_ref())
                                .map(|p| (p.id.clone(), Point { x: p.x, y: p.y }))
                                .collect();
                        }
                    }
                    DrawEvent::Peers(list) => self.peers = list.clone(),
                    DrawEvent::Peer(peer) => upsert_peer(&mut self.peers, peer.clone()),
                    DrawEvent::Welcome(me) => self.my_author = Some(me.author().to_string()),
                    DrawEvent::Moving { id, x, y, drawing } => {
                        let colour = self.colour_of(id);
                        let author = self.author_of(id);
                        let p = Point { x: *x, y: *y };
                        self.board.apply_move_as(id, &author, p, *drawing, &colour);
                        self.pointers.insert(id.clone(), p);
                    }
                    DrawEvent::ClientDisconnect(id) => {
                        self.board.leave(id);
                        self.pointers.remove(id);
                        self.peers.retain(|p| &p.id != id);
                    }
                    // Ours too: the server's order decides what it wiped.
                    DrawEvent::Cleared(_) => self.board.clear(),
                    // Our own undo was applied when asked.
                    DrawEvent::Undone(u) => {
                        if Some(&u.by) != self.me.as_ref() {
                            self.board.undo_as(&u.by, u.author());
                        }
                    }
                    DrawEvent::Error(e) => self.error = Some(e.message.clone()),
                    DrawEvent::Sent { x, y, drawing } => {
                        if let Some(me) = self.me.clone() {
                            let colour = self.my_colour();
                            let author = self.author_of(&me);
                            let p = Point { x: *x, y: *y };
                            self.board.apply_move_as(&me, &author, p, *drawing, &colour);
                            if let Some(log) = &mut self.sync_log {
                                if log.len() < SYNC_LOG_LIMIT {
                                    log.push((p, *drawing, colour));
                                } else {
                                    // Far behind; the next canvas puts it right.
                                    self.sync_log = None;
                                }
                            }
                        }
                    }
                    DrawEvent::Disconnected => {
                        self.pointers.clear();
                        self.me = None;
                        self.my_author = None;
                        self.sync_log = None;
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
        let status = Rect::new(area.x, area.y, area.width, 1);
        frame.render_widget(Paragraph::new(self.status_line(ctx)), status);
        let board_area = Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(1),
        );
        self.board_area.set(board_area);
        if board_area.is_empty() {
            return;
        }
        let (w, h) = (self.bounds.width, self.bounds.height);
        let colour = |hex: &str| {
            if ctx.theme.color {
                parse_colour(hex)
            } else {
                Color::Reset
            }
        };
        let canvas = Canvas::default()
            .marker(Marker::Braille)
            .x_bounds([0.0, w])
            .y_bounds([0.0, h])
            .paint(|c| {
                for stroke in self.board.strokes() {
                    let col = colour(&stroke.colour);
                    for pair in stroke.points.windows(2) {
                        c.draw(&Segment::new(
                            pair[0].x,
                            h - pair[0].y,
                            pair[1].x,
                            h - pair[1].y,
                            col,
                        ));
                    }
                }
                c.layer();
                let mut ids: Vec<&String> = self.pointers.keys().collect();
                ids.sort();
                for id in ids {
                    let p = self.pointers[id];
                    let name = self.peer(id).map_or("?", |p| p.name.as_str()).to_string();
                    let style = self.fg(&self.colour_of(id), ctx);
                    let (x, y) = label_at(p, self.bounds, board_area);
                    c.print(x, y, Line::styled(format!("●{name}"), style));
                }
                if ctx.focused {
                    let mark = if self.pen { "✚" } else { "+" };
                    let style = self.fg(&self.my_colour(), ctx);
                    let (x, y) = label_at(self.cursor, self.bounds, board_area);
                    c.print(x, y, Line::styled(mark, style));
                }
            });
        frame.render_widget(canvas, board_area);
    }

    fn hints(&self) -> Vec<Hint> {
        if self.confirm {
            keymap::hints(Scope::CanvasConfirm)
        } else {
            keymap::hints(Scope::Canvas)
        }
    }

    fn captures_input(&self) -> bool {
        self.confirm
    }

    fn badge(&self) -> Option<super::Badge> {
        let online = self.peers.len();
        (matches!(self.conn, ConnState::Connected) && online > 0)
            .then_some(super::Badge::Online(online))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;
    use rt_protocol::draw::{CanvasPart, PenEntry, StrokeEntry};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn connected(pane: &mut CanvasPane) {
        pane.apply(&NetEvent::Draw(DrawEvent::Connected { id: "me".into() }));
        pane.apply(&NetEvent::Draw(DrawEvent::Peers(vec![
            Peer {
                id: "me".into(),
                name: "guest-1".into(),
                colour: "#e6194b".into(),
                author: "a-me".into(),
            },
            // A classic client: no author given, its socket id is used.
            Peer {
                id: "ann".into(),
                name: "Ann".into(),
                colour: "#3cb44b".into(),
                author: String::new(),
            },
        ])));
        pane.apply(&NetEvent::Draw(DrawEvent::Welcome(Peer {
            id: "me".into(),
            name: "guest-1".into(),
            colour: "#e6194b".into(),
            author: "a-me".into(),
        })));
    }

    #[test]
    fn keys_move_the_cursor_and_draw_with_the_pen_down() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        pane.board_area.set(Rect::new(0, 1, 100, 20));
        let Handled::Consumed(cmds) = pane.handle_key(key(KeyCode::Char(' '))) else {
            panic!("space not used")
        };
        assert_eq!(
            cmds,
            vec![Cmd::Draw(DrawCommand::Move {
                x: 1000.0,
                y: 500.0,
                drawing: false
            })]
        );
        let Handled::Consumed(cmds) = pane.handle_key(key(KeyCode::Right)) else {
            panic!("arrow not used")
        };
        assert_eq!(
            cmds,
            vec![Cmd::Draw(DrawCommand::Move {
                x: 1020.0,
                y: 500.0,
                drawing: true
            })]
        );
        // What was sent is drawn.
        for (x, drawing) in [(1000.0, false), (1020.0, true)] {
            pane.apply(&NetEvent::Draw(DrawEvent::Sent {
                x,
                y: 500.0,
                drawing,
            }));
        }
        assert_eq!(pane.board().segments(), 1);
        assert_eq!(pane.board().strokes().next().unwrap().colour, "#e6194b");
        // Undo removes our stroke at once.
        let Handled::Consumed(cmds) = pane.handle_key(key(KeyCode::Char('u'))) else {
            panic!()
        };
        assert_eq!(cmds, vec![Cmd::Draw(DrawCommand::Undo)]);
        assert_eq!(pane.board().segments(), 0);
        assert_eq!(pane.handle_key(key(KeyCode::Char('x'))), Handled::Ignored);
    }

    #[test]
    fn clear_asks_first() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        let shift_c = KeyEvent::new(KeyCode::Char('C'), KeyModifiers::SHIFT);
        assert_eq!(pane.handle_key(shift_c), Handled::Consumed(vec![]));
        assert!(pane.captures_input());
        assert_eq!(
            pane.handle_key(key(KeyCode::Char('q'))),
            Handled::Consumed(vec![])
        );
        assert_eq!(
            pane.handle_key(key(KeyCode::Esc)),
            Handled::Consumed(vec![])
        );
        assert!(!pane.captures_input());
        pane.handle_key(shift_c);
        assert_eq!(
            pane.handle_key(key(KeyCode::Char('y'))),
            Handled::Consumed(vec![Cmd::Draw(DrawCommand::Clear)])
        );
    }

    fn sent(pane: &mut CanvasPane, x: f64, drawing: bool) {
        pane.apply(&NetEvent::Draw(DrawEvent::Sent {
            x,
            y: 10.0,
            drawing,
        }));
    }

    fn canvas(strokes: Vec<StrokeEntry>, pens: Vec<PenEntry>) -> DrawEvent {
        DrawEvent::Canvas(CanvasPart {
            width: 2000.0,
            height: 1000.0,
            part: 0,
            parts: 1,
            pens,
            strokes,
        })
    }

    #[test]
    fn a_clear_takes_effect_when_the_server_says_so() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        sent(&mut pane, 1.0, false);
        sent(&mut pane, 2.0, true);
        pane.handle_key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::SHIFT));
        pane.handle_key(key(KeyCode::Char('y')));
        // Asked, not yet done: the server orders it among everyone's moves.
        assert_eq!(pane.board().segments(), 1);
        pane.apply(&NetEvent::Draw(DrawEvent::Cleared(
            rt_protocol::draw::Cleared { by: "me".into() },
        )));
        assert_eq!(pane.board().segments(), 0);
    }

    #[test]
    fn moves_after_a_sync_request_are_replayed_over_the_canvas_that_answers_it() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        sent(&mut pane, 1.0, false);
        sent(&mut pane, 2.0, true);
        // Another user's clear crossed our stroke: the server kept it, we
        // wiped it, and the client asked for the canvas again.
        pane.apply(&NetEvent::Draw(DrawEvent::Cleared(
            rt_protocol::draw::Cleared { by: "other".into() },
        )));
        assert_eq!(pane.board().segments(), 0);
        pane.apply(&NetEvent::Draw(DrawEvent::SyncRequested));
        sent(&mut pane, 3.0, true);
        // The canvas as of the request: our first segment, pen open on it.
        pane.apply(&NetEvent::Draw(canvas(
            vec![StrokeEntry {
                id: 7,
                by: "me".into(),
                colour: PALETTE[0].into(),
                points: vec![1.0, 10.0, 2.0, 10.0],
            }],
            vec![PenEntry {
                id: "me".into(),
                x: 2.0,
                y: 10.0,
                stroke: Some(7),
            }],
        )));
        // …plus the move sent after the request, continuing that stroke.
        assert_eq!(pane.board().segments(), 2);
        let strokes: Vec<_> = pane.board().strokes().collect();
        assert_eq!(strokes.len(), 1);
        assert_eq!(strokes[0].points.last(), Some(&Point { x: 3.0, y: 10.0 }));
        // The log is done with: a later canvas does not replay it again.
        pane.apply(&NetEvent::Draw(canvas(Vec::new(), Vec::new())));
        assert_eq!(pane.board().segments(), 0);
    }

    #[test]
    fn undo_with_nothing_of_ones_own_says_so_and_sends_nothing() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        pane.apply(&NetEvent::Draw(DrawEvent::Moving {
            id: "other".into(),
            x: 1.0,
            y: 1.0,
            drawing: false,
        }));
        pane.apply(&NetEvent::Draw(DrawEvent::Moving {
            id: "other".into(),
            x: 5.0,
            y: 1.0,
            drawing: true,
        }));
        assert_eq!(
            pane.handle_key(key(KeyCode::Char('u'))),
            Handled::Consumed(vec![])
        );
        assert_eq!(pane.board().segments(), 1);
        assert!(pane.error.is_some());
    }

    #[test]
    fn colour_cycles_through_the_palette() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        let Handled::Consumed(cmds) = pane.handle_key(key(KeyCode::Char('c'))) else {
            panic!()
        };
        assert_eq!(
            cmds,
            vec![Cmd::Draw(DrawCommand::Hello(Hello {
                name: None,
                colour: Some(PALETTE[1].to_string()),
                key: None,
            }))]
        );
    }

    #[test]
    fn a_mouse_drag_draws_in_board_coordinates() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        pane.board_area.set(Rect::new(10, 5, 20, 10));
        let ev = |kind, column, row| MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        };
        let down = pane.handle_mouse(
            ev(MouseEventKind::Down(MouseButton::Left), 10, 5),
            Rect::default(),
        );
        assert_eq!(
            down,
            vec![Cmd::Draw(DrawCommand::Move {
                x: 50.0,
                y: 50.0,
                drawing: false
            })]
        );
        let drag = pane.handle_mouse(
            ev(MouseEventKind::Drag(MouseButton::Left), 29, 14),
            Rect::default(),
        );
        assert_eq!(
            drag,
            vec![Cmd::Draw(DrawCommand::Move {
                x: 1950.0,
                y: 950.0,
                drawing: true
            })]
        );
        let up = pane.handle_mouse(
            ev(MouseEventKind::Up(MouseButton::Left), 29, 14),
            Rect::default(),
        );
        assert_eq!(up.len(), 2);
    }

    #[test]
    fn remote_events_update_the_board_and_pointers() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        pane.apply(&NetEvent::Draw(DrawEvent::Canvas(CanvasPart {
            width: 2000.0,
            height: 1000.0,
            part: 0,
            parts: 1,
            pens: vec![PenEntry {
                id: "ann".into(),
                x: 20.0,
                y: 20.0,
                stroke: Some(7),
            }],
            strokes: vec![StrokeEntry {
                id: 7,
                by: "ann".into(),
                colour: "#3cb44b".into(),
                points: vec![10.0, 10.0, 20.0, 20.0],
            }],
        })));
        assert_eq!(pane.pointers["ann"], Point { x: 20.0, y: 20.0 });
        pane.apply(&NetEvent::Draw(DrawEvent::Moving {
            id: "ann".into(),
            x: 30.0,
            y: 30.0,
            drawing: true,
        }));
        assert_eq!(pane.board().strokes().count(), 1);
        assert_eq!(pane.board().segments(), 2);
        pane.apply(&NetEvent::Draw(DrawEvent::Undone(
            rt_protocol::draw::Undone {
                by: "ann".into(),
                author: String::new(),
                stroke: 7,
            },
        )));
        assert_eq!(pane.board().segments(), 0);
        pane.apply(&NetEvent::Draw(DrawEvent::ClientDisconnect("ann".into())));
        assert!(pane.pointers.is_empty());
    }

    #[test]
    fn peer_events_add_rename_and_leaving_removes() {
        let mut pane = CanvasPane::new();
        connected(&mut pane);
        assert_eq!(pane.peers.len(), 2);
        let bob = Peer {
            id: "bob".into(),
            name: "guest-3".into(),
            colour: "#4363d8".into(),
            author: "bob".into(),
        };
        pane.apply(&NetEvent::Draw(DrawEvent::Peer(bob.clone())));
        pane.apply(&NetEvent::Draw(DrawEvent::Peer(Peer {
            name: "Bob".into(),
            ..bob
        })));
        let names: Vec<&str> = pane.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["guest-1", "Ann", "Bob"]);
        assert_eq!(pane.colour_of("bob"), "#4363d8");
        pane.apply(&NetEvent::Draw(DrawEvent::ClientDisconnect("bob".into())));
        assert_eq!(pane.peers.len(), 2);
    }

    fn render(
        pane: &CanvasPane,
        w: u16,
        h: u16,
    ) -> ratatui::Terminal<ratatui::backend::TestBackend> {
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        t.draw(|f| {
            let ctx = RenderCtx {
                focused: true,
                theme: crate::ui::theme::Theme::COLOR,
                now: std::time::Instant::now(),
                server_url: "http://127.0.0.1:8080",
            };
            pane.render(f, f.area(), &ctx);
        })
        .unwrap();
        t
    }

    /// A board with a frame drawn by Ann, a diagonal of ours, and Ann's
    /// pointer near the top right.
    fn drawn() -> CanvasPane {
        let mut pane = CanvasPane::new();
        pane.apply(&NetEvent::State(Transport::Draw, ConnState::Connected));
        connected(&mut pane);
        pane.apply(&NetEvent::Draw(DrawEvent::Canvas(CanvasPart {
            width: 2000.0,
            height: 1000.0,
            part: 0,
            parts: 1,
            pens: vec![],
            strokes: vec![StrokeEntry {
                id: 1,
                by: "ann".into(),
                colour: "#3cb44b".into(),
                points: vec![
                    100.0, 100.0, 1900.0, 100.0, 1900.0, 900.0, 100.0, 900.0, 100.0, 100.0,
                ],
            }],
        })));
        for (x, y, drawing) in [
            (300.0, 300.0, false),
            (1000.0, 700.0, true),
            (1000.0, 700.0, false),
        ] {
            pane.apply(&NetEvent::Draw(DrawEvent::Sent { x, y, drawing }));
        }
        pane.apply(&NetEvent::Draw(DrawEvent::Moving {
            id: "ann".into(),
            x: 1500.0,
            y: 250.0,
            drawing: false,
        }));
        pane
    }

    #[test]
    fn the_cursor_sits_on_the_end_of_its_stroke_at_every_size() {
        for (w, h) in [(88, 29), (60, 16), (150, 44), (33, 9), (121, 37)] {
            for (x, y) in [
                (1000.0, 700.0),
                (1999.0, 999.0),
                (3.0, 990.0),
                (1234.5, 456.7),
            ] {
                let mut pane = CanvasPane::new();
                connected(&mut pane);
                pane.cursor = Point { x, y };
                // A stroke straight down onto the cursor.
                for (y0, drawing) in [(0.0, false), (y, true)] {
                    pane.apply(&NetEvent::Draw(DrawEvent::Sent { x, y: y0, drawing }));
                }
                let t = render(&pane, w, h);
                let buf = t.backend().buffer();
                let cursor = (0..h)
                    .flat_map(|r| (0..w).map(move |c| (c, r)))
                    .find(|&cell| buf[cell].symbol() == "+")
                    .expect("the cursor on screen");
                // No ink below the cursor, nor beside it.
                for r in (cursor.1 + 1)..h {
                    for c in 0..w {
                        let s = buf[(c, r)].symbol();
                        assert!(
                            !s.chars().any(|ch| ('\u{2801}'..='\u{28ff}').contains(&ch)),
                            "{w}x{h} at ({x}, {y}): ink at {c},{r} below the cursor at {cursor:?}"
                        );
                    }
                }
                let above = buf[(cursor.0, cursor.1.saturating_sub(1))].symbol();
                assert!(
                    cursor.1 <= 1
                        || above
                            .chars()
                            .any(|ch| ('\u{2801}'..='\u{28ff}').contains(&ch)),
                    "{w}x{h} at ({x}, {y}): no ink just above the cursor at {cursor:?}"
                );
            }
        }
    }

    #[test]
    fn snapshot_of_a_drawn_canvas_with_a_remote_pointer() {
        let pane = drawn();
        let t = render(&pane, 60, 16);
        insta::assert_snapshot!("canvas_drawn_60x16", t.backend());
        // Ann's marker is drawn in her colour.
        let buf = t.backend().buffer();
        let cell = (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .find(|&(x, y)| buf[(x, y)].symbol() == "●" && buf[(x + 1, y)].symbol() == "A")
            .expect("Ann's pointer on screen");
        assert_eq!(buf[cell].fg, Color::Rgb(0x3c, 0xb4, 0x4b));
    }

    #[test]
    fn snapshot_after_a_resize() {
        let pane = drawn();
        render(&pane, 60, 16);
        let t = render(&pane, 36, 9);
        insta::assert_snapshot!("canvas_drawn_36x9", t.backend());
        // The mouse maps to the new size: the bottom-right cell is the
        // board's bottom-right corner.
        let mut pane = pane;
        let cmds = pane.handle_mouse(
            MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 35,
                row: 8,
                modifiers: KeyModifiers::NONE,
            },
            Rect::default(),
        );
        let Cmd::Draw(DrawCommand::Move { x, y, .. }) = cmds[0] else {
            panic!("{cmds:?}")
        };
        assert!(x > 1940.0 && y > 870.0, "({x}, {y})");
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_colour("#ff8000"), Color::Rgb(255, 128, 0));
        assert_eq!(parse_colour("red"), Color::Gray);
        assert_eq!(parse_colour("#ff80"), Color::Gray);
    }
}
