//! The canvas task: owns the drawing and the list of participants, applies
//! every change in one order, and fans events out.
//!
//! # Relay tick
//! Each delivery costs the server one write to the client's socket, and a
//! write's kernel cost hardly depends on how many frames it carries. So
//! `moving` relays can be gathered for up to `--draw-relay-tick` (a few
//! ms; off by default, as it adds that much latency) and then queued on
//! each socket together: its writer wakes once and sends
//! them in one write. Any other command first sends what is gathered, so
//! every event keeps its place in the one order (a joiner's snapshot never
//! contains a move that is still to be relayed to it).
//!
//! # Joining
//! A socket is on the board as soon as it connects: it gets `peers` at once
//! and every live event from then on. Only its `canvas` is paced (the
//! shared `--draw-join-rate` budget): canvases wait in a queue, in join
//! order, and each is built when it is sent. Moves relayed to a joiner
//! before its canvas are therefore in that canvas, whose part 0 replaces
//! what the client drew from them, and every later move comes after it on
//! the same socket. The joiner's `welcome` waits for its canvas too: the
//! clients send no move before `welcome`, so none of their own moves is in
//! the canvas and replayed on top of it as well. Beyond
//! `--draw-canvas-queue` waiting canvases a joiner gets an `error` (`busy`,
//! event `sync`) and its `welcome` at once, stays on the board, and may ask
//! with `sync` later.

use std::collections::{HashMap, VecDeque};

use std::time::{Duration, Instant};

use rt_protocol::draw::{
    Board, Cleared, DrawError, Hello, MouseMove, MoveEffect, PALETTE, Peer, PenEntry, Undone, event,
};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::SendError;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::cluster::{Link, StrokeChange, Wire, xy};
use super::handlers::{RateLimiter, Verdict};
use super::store::{Backend, Change, Persister};
use super::{CANVAS_PART_BYTES, DrawConfig};
use crate::stats::{App, ConnGuard, Stats};
#[cfg(test)]
use rt_protocol::draw::CanvasPart;

/// A participant gets the canvas (by joining or with `sync`) at most once
/// per this interval.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// What the canvas task is asked to do.
pub enum Command {
    /// A socket connected: add it to the board and queue its canvas.
    Join {
        socket: SocketRef,
    },
    /// A validated `mousemove`.
    Move {
        sid: Sid,
        mv: MouseMove,
    },
    /// A validated `hello`.
    Hello {
        sid: Sid,
        hello: Hello,
    },
    Clear {
        sid: Sid,
    },
    Undo {
        sid: Sid,
    },
    /// Send the canvas again to this participant.
    Sync {
        sid: Sid,
    },
    /// The socket is gone.
    Leave {
        sid: Sid,
    },
    /// A copy of the board.
    Inspect {
        reply: oneshot::Sender<Board>,
    },
}

/// How long after a `Resync` the canvas is reloaded: every node hears of
/// a Redis restart at about the same time, and each stores its last
/// changes meanwhile.
const RESYNC_DELAY: Duration = Duration::from_millis(500);
/// How long a reload waits for this node's changes to be stored at most.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// How long before a failed reload is tried again.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// `moving` relays waiting for the tick: the sender (`None`: on another
/// node), and the event's JSON.
struct Gathered {
    from: Option<Sid>,
    json: Box<RawValue>,
}

/// Where new stroke ids come from.
pub enum Ids {
    /// The board's own counter (one node, embedded store).
    Local,
    /// Blocks reserved in PostgreSQL, unique across nodes.
    Blocks {
        pg: Box<crate::cluster::Pg>,
        current: Range<u64>,
        spare: Option<Range<u64>>,
        pending: Option<oneshot::Receiver<Range<u64>>>,
    },
}

impl Ids {
    /// Ids from `first`, refilled from `pg`.
    pub fn blocks(pg: crate::cluster::Pg, first: Range<u64>) -> Ids {
        Ids::Blocks {
            pg: Box::new(pg),
            current: first,
            spare: None,
            pending: None,
        }
    }

    /// Points the board's counter at a free id; false when none is left
    /// (the database has not answered for a new block yet).
    fn prepare(&mut self, board: &mut Board) -> bool {
        let Ids::Blocks {
            pg,
            current,
            spare,
            pending,
        } = self
        else {
            return true;
        };
        if let Some(rx) = pending {
            match rx.try_recv() {
                Ok(block) => {
                    *spare = Some(block);
                    *pending = None;
                }
                Err(oneshot::error::TryRecvError::Closed) => *pending = None,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
        if current.is_empty()
            && let Some(next) = spare.take()
        {
            *current = next;
        }
        let half = super::pg::ID_BLOCK / 2;
        if spare.is_none() && pending.is_none() && (current.end - current.start) < half {
            let (tx, rx) = oneshot::channel();
            let pg = (**pg).clone();
            tokio::spawn(async move {
                match super::pg::reserve_ids(&pg).await {
                    Ok(block) => {
                        let _ = tx.send(block);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reserve stroke ids"),
                }
            });
            *pending = Some(rx);
        }
        if current.is_empty() {
            return false;
        }
        board.set_next_id(current.start);
        true
    }

    /// Stroke `id` was started.
    fn used(&mut self, id: u64) {
        if let Ids::Blocks { current, .. } = self {
            current.start = current.start.max(id + 1);
        }
    }
}

/// A node's place among others: how it talks to them and where it reloads
/// the canvas from.
pub struct Nodes {
    pub link: Link,
    pub bus: crate::cluster::Subscription,
    pub backend: Backend,
}

struct Participant {
    socket: SocketRef,
    /// Whose strokes this socket draws (see `rt_protocol::draw`).
    author: String,
    name: String,
    colour: String,
    /// When this participant last got the canvas (join or sync).
    canvas_at: Instant,
    /// Its join canvas is still in the queue.
    awaiting_canvas: bool,
    /// Its `hello` came while it awaited the canvas: `welcome` goes after it.
    welcome_due: bool,
    _conn: ConnGuard,
}

/// The owner of the drawing.
pub struct Canvas {
    config: DrawConfig,
    board: Board,
    people: HashMap<Sid, Participant>,
    /// Join order, so `peers` lists people in a stable order.
    order: Vec<Sid>,
    /// `moving` relays not sent yet, in order, and when they are due.
    gathered: Vec<Gathered>,
    due: Option<Instant>,
    /// Sockets taken off the board because their queue was full, until
    /// they are gone (their connection still counts until then).
    cut: HashMap<Sid, Participant>,
    guests: u64,
    stats: Arc<Stats>,
    persist: Persister,
    /// Each stroke's snapshot entries as JSON, until the stroke changes: a
    /// join copies bytes rather than formatting the whole drawing again.
    entries: HashMap<u64, Vec<Box<RawValue>>>,
    /// Joins and syncs (each sends the whole canvas), all clients together.
    sends: RateLimiter,
    /// Joiners whose canvas waits for the budget, in join order.
    canvas_queue: VecDeque<Sid>,
    /// When the budget has room for the next queued canvas.
    canvas_due: Option<Instant>,
    ids: Ids,
    /// The other nodes (`None`: this node is alone).
    link: Option<Link>,
    backend: Option<Backend>,
    /// Participants on other nodes, by node, in join order.
    remote: Vec<(Arc<str>, Peer)>,
    /// When the canvas is to be reloaded from the database.
    reload_due: Option<Instant>,
    /// When each other node was last heard from.
    heard: HashMap<Arc<str>, Instant>,
}

/// A `canvas` part on the wire ([`CanvasPart`]'s shape), strokes
/// pre-serialized.
#[derive(Serialize)]
struct PartOut<'a> {
    width: f64,
    height: f64,
    part: usize,
    parts: usize,
    pens: &'a [PenEntry],
    strokes: &'a [&'a RawValue],
}

impl Canvas {
    /// The owner of `board`; `persist` stores its changes.
    pub fn new(
        config: DrawConfig,
        board: Board,
        stats: Arc<Stats>,
        persist: Persister,
        ids: Ids,
    ) -> Canvas {
        Canvas {
            ids,
            link: None,
            backend: None,
            remote: Vec::new(),
            heard: HashMap::new(),
            reload_due: None,
            sends: RateLimiter::new(config.join_rate),
            entries: HashMap::new(),
            config,
            board,
            people: HashMap::new(),
            order: Vec::new(),
            gathered: Vec::new(),
            due: None,
            cut: HashMap::new(),
            canvas_queue: VecDeque::new(),
            canvas_due: None,
            guests: 0,
            stats,
            persist,
        }
    }

    /// Serves commands (and, with `nodes`, the other nodes' messages)
    /// until shutdown.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        nodes: Option<Nodes>,
        shutdown: CancellationToken,
    ) {
        crate::metrics::canvas_segments(self.board.segments());
        let mut bus = None;
        if let Some(nodes) = nodes {
            self.link = Some(nodes.link);
            self.backend = Some(nodes.backend);
            bus = Some(nodes.bus);
            self.publish(&Wire::Roster {
                peers: Vec::new(),
                ask: true,
            });
        }
        let mut alive = tokio::time::interval(super::cluster::ALIVE_EVERY);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.due;
            let canvas_due = self.canvas_due;
            let reload_due = self.reload_due;
            let cmd = tokio::select! {
                cmd = rx.recv() => cmd,
                ev = next_bus_event(&mut bus), if bus.is_some() => {
                    match ev {
                        Some(crate::cluster::BusEvent::Message { from, from_self: false, payload }) => {
                            self.apply_from_node(from, &payload);
                        }
                        Some(crate::cluster::BusEvent::Message { .. }) => {}
                        Some(crate::cluster::BusEvent::Resync) => self.schedule_reload(RESYNC_DELAY),
                        None => bus = None,
                    }
                    self.retry_cuts();
                    crate::metrics::canvas_segments(self.board.segments());
                    continue;
                }
                _ = alive.tick(), if bus.is_some() => {
                    self.publish(&Wire::Alive);
                    self.forget_silent_nodes();
                    self.retry_cuts();
                    continue;
                }
                () = sleep_until(reload_due), if reload_due.is_some() => {
                    self.reload().await;
                    self.retry_cuts();
                    continue;
                }
                () = sleep_until(due), if due.is_some() => {
                    self.send_gathered();
                    self.retry_cuts();
                    continue;
                }
                () = sleep_until(canvas_due), if canvas_due.is_some() => {
                    self.send_queued_canvases();
                    self.retry_cuts();
                    continue;
                }
                _ = shutdown.cancelled() => None,
            };
            let Some(cmd) = cmd else { break };
            self.handle(cmd).await;
            self.retry_cuts();
            crate::metrics::canvas_segments(self.board.segments());
        }
    }

    async fn handle(&mut self, cmd: Command) {
        if !matches!(cmd, Command::Move { .. }) {
            self.send_gathered();
        }
        match cmd {
            Command::Join { socket } => self.join(socket),
            Command::Move { sid, mv } => self.mouse_move(sid, mv).await,
            Command::Hello { sid, hello } => self.hello(sid, hello),
            Command::Clear { sid } => self.clear(sid).await,
            Command::Undo { sid } => self.undo(sid).await,
            Command::Sync { sid } => self.sync(sid),
            Command::Leave { sid } => self.leave(sid),
            Command::Inspect { reply } => {
                let _ = reply.send(self.board.clone());
            }
        }
    }

    fn join(&mut self, socket: SocketRef) {
        if !socket.connected() || self.people.contains_key(&socket.id) {
            return;
        }
        if self.people.len() >= self.config.max_clients {
            crate::metrics::refused("draw_max_clients");
            let err = DrawError::BoardFull {
                max_clients: self.config.max_clients,
            };
            let _ = socket.emit(event::ERROR, &err.to_event("connect"));
            let _ = socket.disconnect();
            return;
        }
        let n = self.guests;
        self.guests += 1;
        let sid = socket.id;
        self.people.insert(
            sid,
            Participant {
                socket,
                author: sid.to_string(),
                name: format!("guest-{}", n + 1),
                colour: PALETTE[(n as usize) % PALETTE.len()].to_string(),
                canvas_at: Instant::now(),
                awaiting_canvas: true,
                welcome_due: false,
                _conn: self.stats.connect(App::Draw),
            },
        );
        self.order.push(sid);
        // The joiner gets the whole list, the others its entry alone: a
        // join costs O(participants), not O(participants²).
        let peers: Vec<Peer> = self
            .remote
            .iter()
            .map(|(_, p)| p.clone())
            .chain(self.order.iter().filter_map(|s| self.peer(*s)))
            .collect();
        if let Some(person) = self.people.get(&sid)
            && let Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) =
                emit_one(&person.socket, event::PEERS, &peers)
        {
            self.cut_off(sid);
            return;
        }
        if let Some(entry) = self.peer(sid) {
            self.broadcast(event::PEER, &entry, Some(sid));
            self.publish(&Wire::Peer { peer: entry });
        }
        if self.canvas_queue.len() >= self.config.canvas_queue {
            self.refuse_canvas(sid);
            return;
        }
        self.canvas_queue.push_back(sid);
        self.send_queued_canvases();
    }

    /// The canvas queue is full: the joiner stays on the board without a
    /// canvas, is told so, and may ask with `sync` later.
    fn refuse_canvas(&mut self, sid: Sid) {
        let Some(person) = self.people.get_mut(&sid) else {
            return;
        };
        tracing::debug!(%sid, "canvas queue full; the joiner may sync later");
        crate::metrics::refused("draw_canvas_queue");
        person.awaiting_canvas = false;
        // No canvas comes, so the first sync may come at once.
        let now = Instant::now();
        person.canvas_at = now.checked_sub(SYNC_INTERVAL).unwrap_or(now);
        let _ = person
            .socket
            .emit(event::ERROR, &DrawError::CanvasBusy.to_event(event::SYNC));
        self.send_welcome_if_due(sid);
    }

    /// Sends the queued canvases the budget has room for, in join order, and
    /// sets when to send the next.
    fn send_queued_canvases(&mut self) {
        self.canvas_due = None;
        let mut flushed = false;
        while let Some(&sid) = self.canvas_queue.front() {
            let waiting = self.people.get(&sid).is_some_and(|p| p.awaiting_canvas);
            if !waiting {
                self.canvas_queue.pop_front();
                continue;
            }
            let now = Instant::now();
            if !matches!(self.sends.take(now), Verdict::Allow) {
                self.canvas_due = Some(now + self.sends.until_next());
                return;
            }
            self.canvas_queue.pop_front();
            if !flushed {
                // The canvas has every move applied so far: relay those
                // still gathered first, so none comes after it again.
                self.send_gathered();
                flushed = true;
            }
            let Some(person) = self.people.get_mut(&sid) else {
                continue;
            };
            person.awaiting_canvas = false;
            person.canvas_at = now;
            let socket = person.socket.clone();
            match self.send_canvas(&socket) {
                Ok(()) => self.send_welcome_if_due(sid),
                Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) => {
                    self.cut_off(sid)
                }
                Err(e) => tracing::debug!(%sid, error = %e, "cannot send the canvas"),
            }
        }
    }

    /// Sends the `welcome` held back while the participant awaited its canvas.
    fn send_welcome_if_due(&mut self, sid: Sid) {
        let Some(person) = self.people.get_mut(&sid) else {
            return;
        };
        if !std::mem::take(&mut person.welcome_due) {
            return;
        }
        let socket = person.socket.clone();
        if let Some(welcome) = self.peer(sid) {
            let _ = socket.emit(event::WELCOME, &welcome);
        }
    }

    /// A participant's entry, as `peers` and `peer` carry it.
    fn peer(&self, sid: Sid) -> Option<Peer> {
        self.people.get(&sid).map(|p| Peer {
            id: sid.to_string(),
            name: p.name.clone(),
            colour: p.colour.clone(),
            author: p.author.clone(),
        })
    }

    /// Takes one canvas send from the shared budget.
    fn may_send_canvas(&mut self) -> bool {
        matches!(self.sends.take(Instant::now()), Verdict::Allow)
    }

    /// Queues the whole drawing on `socket` as `canvas` parts, packed as
    /// [`Board::snapshot`] packs them.
    fn send_canvas(&mut self, socket: &SocketRef) -> Result<(), SendError> {
        let bounds = self.config.bounds();
        for stroke in self.board.strokes() {
            self.entries.entry(stroke.id).or_insert_with(|| {
                stroke
                    .entries()
                    .iter()
                    .filter_map(|e| serde_json::value::to_raw_value(e).ok())
                    .collect()
            });
        }
        let mut parts: Vec<Vec<&RawValue>> = vec![Vec::new()];
        let mut size = 0usize;
        for stroke in self.board.strokes() {
            for entry in self.entries.get(&stroke.id).into_iter().flatten() {
                let len = entry.get().len() + 1;
                let current = parts.last_mut().expect("parts is never empty");
                if !current.is_empty() && size + len > CANVAS_PART_BYTES {
                    parts.push(Vec::new());
                    size = 0;
                }
                size += len;
                parts.last_mut().expect("just pushed").push(entry);
            }
        }
        let pens = self.board.pens();
        for (i, strokes) in parts.iter().enumerate() {
            let part = PartOut {
                width: bounds.width,
                height: bounds.height,
                part: i,
                parts: parts.len(),
                pens: if i == 0 { &pens } else { &[] },
                strokes,
            };
            emit_one(socket, event::CANVAS, &part)?;
        }
        Ok(())
    }

    /// Sends the canvas at once, as of the request, or refuses: a canvas
    /// sent later could hold moves the client sent after asking, which it
    /// replays on top of the answer.
    fn sync(&mut self, sid: Sid) {
        let Some(person) = self.people.get_mut(&sid) else {
            return;
        };
        if person.awaiting_canvas {
            // The join canvas is on its way; it answers this too.
            return;
        }
        let socket = person.socket.clone();
        // One client must not spend the budget every joiner shares.
        let now = Instant::now();
        if now.saturating_duration_since(person.canvas_at) < SYNC_INTERVAL {
            let err = DrawError::RateLimited { per_second: 1 };
            let _ = socket.emit(event::ERROR, &err.to_event(event::SYNC));
            return;
        }
        person.canvas_at = now;
        // Queued joiners come first.
        if !self.canvas_queue.is_empty() || !self.may_send_canvas() {
            crate::metrics::refused("draw_join_rate");
            let _ = socket.emit(event::ERROR, &DrawError::Busy.to_event(event::SYNC));
            return;
        }
        if let Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) =
            self.send_canvas(&socket)
        {
            self.cut_off(sid);
        }
    }

    async fn mouse_move(&mut self, sid: Sid, mv: MouseMove) {
        let Some(person) = self.people.get(&sid) else {
            return;
        };
        let pen = sid.to_string();
        let author = person.author.clone();
        if self.board.adds_segment(&pen, mv.drawing)
            && (!self.persist.healthy() || !self.ids.prepare(&mut self.board))
        {
            let _ = person
                .socket
                .emit(event::ERROR, &DrawError::Unsaved.to_event(event::MOUSEMOVE));
            return;
        }
        if self.board.adds_segment(&pen, mv.drawing)
            && self.board.segments() >= self.config.max_segments
        {
            crate::metrics::refused("draw_max_segments");
            let err = DrawError::CanvasFull {
                max_segments: self.config.max_segments,
            };
            let _ = person
                .socket
                .emit(event::ERROR, &err.to_event(event::MOUSEMOVE));
            return;
        }
        let colour = person.colour.clone();
        let effect = self
            .board
            .apply_move_as(&pen, &author, mv.point, mv.drawing, &colour);
        let mut fields = mv.fields;
        fields.insert("id".into(), Value::String(pen.clone()));
        let json = match serde_json::value::to_raw_value(&fields) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a move");
                return;
            }
        };
        if let MoveEffect::Started { stroke, .. } = effect {
            self.ids.used(stroke);
        }
        if self.link.is_some() {
            let at = mv.point.quantized();
            let stroke = match effect {
                MoveEffect::None => None,
                MoveEffect::Started { stroke, from, to } => Some(StrokeChange::Start {
                    id: stroke,
                    author: author.clone(),
                    colour: colour.clone(),
                    from: xy(from),
                    to: xy(to),
                }),
                MoveEffect::Extended { stroke, to, .. } => Some(StrokeChange::Extend {
                    id: stroke,
                    seq: self
                        .board
                        .stroke(stroke)
                        .map(|s| s.points.len() - 1)
                        .unwrap_or(0),
                    to: xy(to),
                }),
            };
            self.publish(&Wire::Moved {
                pen,
                x: at.x,
                y: at.y,
                drawing: mv.drawing,
                relay: json.clone(),
                stroke,
            });
        }
        self.gather(Some(sid), json);
        let change = match effect {
            MoveEffect::None => None,
            MoveEffect::Started { stroke, from, to } => Some(Change::Start {
                id: stroke,
                author,
                colour,
                from,
                to,
            }),
            MoveEffect::Extended { stroke, to, .. } => {
                let seq = self
                    .board
                    .stroke(stroke)
                    .map(|s| s.points.len() - 1)
                    .unwrap_or(0);
                Some(Change::Extend {
                    id: stroke,
                    seq,
                    to,
                })
            }
        };
        if let Some(change) = change {
            if let Change::Start { id, .. } | Change::Extend { id, .. } = &change {
                self.entries.remove(id);
            }
            self.persist.send(change).await;
        }
    }

    fn hello(&mut self, sid: Sid, hello: Hello) {
        let Some(person) = self.people.get_mut(&sid) else {
            return;
        };
        if let Some(name) = hello.name {
            person.name = name;
        }
        if let Some(colour) = hello.colour {
            person.colour = colour;
        }
        if let Some(key) = hello.key {
            person.author = author_of_key(&key);
        }
        let awaiting = person.awaiting_canvas;
        person.welcome_due = true;
        let Some(entry) = self.peer(sid) else {
            return;
        };
        if !awaiting {
            self.send_welcome_if_due(sid);
        }
        self.broadcast(event::PEER, &entry, None);
        self.publish(&Wire::Peer { peer: entry });
    }

    async fn clear(&mut self, sid: Sid) {
        let Some(person) = self.people.get(&sid) else {
            return;
        };
        if !self.persist.healthy() {
            let _ = person
                .socket
                .emit(event::ERROR, &DrawError::Unsaved.to_event(event::CLEAR));
            return;
        }
        let ids: Vec<u64> = self.board.strokes().map(|s| s.id).collect();
        self.board.clear();
        self.entries.clear();
        let by = sid.to_string();
        self.broadcast(event::CLEARED, &Cleared { by: by.clone() }, None);
        self.publish(&Wire::Cleared {
            by,
            ids: ids.clone(),
        });
        self.persist.send(Change::Clear { ids }).await;
    }

    async fn undo(&mut self, sid: Sid) {
        let Some(person) = self.people.get(&sid) else {
            return;
        };
        if !self.persist.healthy() {
            let _ = person
                .socket
                .emit(event::ERROR, &DrawError::Unsaved.to_event(event::UNDO));
            return;
        }
        let by = sid.to_string();
        let author = person.author.clone();
        let Some(stroke) = self.board.undo_as(&by, &author) else {
            // The client thought it had one: tell it, so it can resync.
            if let Some(person) = self.people.get(&sid) {
                let _ = person.socket.emit(
                    event::ERROR,
                    &DrawError::NothingToUndo.to_event(event::UNDO),
                );
            }
            return;
        };
        self.entries.remove(&stroke.id);
        let undone = Undone {
            by,
            author,
            stroke: stroke.id,
        };
        self.broadcast(event::UNDONE, &undone, None);
        self.publish(&Wire::Undone {
            by: undone.by,
            author: undone.author,
            stroke: undone.stroke,
        });
        self.persist.send(Change::Remove { id: stroke.id }).await;
    }

    fn leave(&mut self, sid: Sid) {
        if self.cut.remove(&sid).is_some() {
            return;
        }
        if let Some(person) = self.remove(sid) {
            drop(person);
            self.announce_departure(sid);
        }
    }

    /// Takes a participant off the board.
    fn remove(&mut self, sid: Sid) -> Option<Participant> {
        let person = self.people.remove(&sid)?;
        self.order.retain(|s| *s != sid);
        if person.awaiting_canvas {
            self.canvas_queue.retain(|s| *s != sid);
        }
        self.board.leave(&sid.to_string());
        Some(person)
    }

    fn announce_departure(&mut self, sid: Sid) {
        self.broadcast(event::CLIENT_DISCONNECT, &sid.to_string(), None);
        self.publish(&Wire::Left {
            id: sid.to_string(),
        });
    }

    /// Tells the other nodes, if any.
    fn publish(&self, wire: &Wire) {
        if let Some(link) = &self.link {
            link.send(wire);
        }
    }

    /// Everyone on this node, as `peers` lists them.
    fn local_peers(&self) -> Vec<Peer> {
        self.order.iter().filter_map(|s| self.peer(*s)).collect()
    }

    /// Applies another node's message.
    /// Participants of nodes not heard from for `NODE_TIMEOUT` leave
    /// (the node stopped, or Redis is unreachable: a resync brings them
    /// back then).
    fn forget_silent_nodes(&mut self) {
        let now = Instant::now();
        let silent: Vec<Arc<str>> = self
            .heard
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > super::cluster::NODE_TIMEOUT)
            .map(|(n, _)| n.clone())
            .collect();
        for node in silent {
            self.heard.remove(&node);
            let gone: Vec<String> = self
                .remote
                .iter()
                .filter(|(n, _)| *n == node)
                .map(|(_, p)| p.id.clone())
                .collect();
            if !gone.is_empty() {
                tracing::info!(%node, participants = gone.len(), "node silent; its participants leave the board");
            }
            for id in gone {
                self.remote_left(&id);
            }
        }
    }

    fn apply_from_node(&mut self, node: Arc<str>, payload: &[u8]) {
        self.heard.insert(node.clone(), Instant::now());
        let wire: Wire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(%node, error = %e, "unreadable drawing message from another node");
                return;
            }
        };
        if !matches!(wire, Wire::Moved { .. } | Wire::Alive) {
            self.send_gathered();
        }
        match wire {
            Wire::Moved {
                pen,
                x,
                y,
                drawing,
                relay,
                stroke,
            } => {
                let to = rt_protocol::draw::Point { x, y };
                let (effect, seq, author, colour) = match &stroke {
                    None => (MoveEffect::None, 0, "", ""),
                    Some(change) => {
                        let (effect, seq) = change.effect();
                        match change {
                            StrokeChange::Start { author, colour, .. } => {
                                (effect, seq, author.as_str(), colour.as_str())
                            }
                            StrokeChange::Extend { .. } => (effect, seq, "", ""),
                        }
                    }
                };
                if let MoveEffect::Started { stroke, .. } | MoveEffect::Extended { stroke, .. } =
                    effect
                {
                    self.entries.remove(&stroke);
                }
                if !self
                    .board
                    .apply_effect(&pen, author, colour, to, drawing, effect, seq)
                {
                    // A point is missing: some message was lost.
                    tracing::debug!(%node, "a stroke from another node has a gap; reloading");
                    self.schedule_reload(RESYNC_DELAY);
                }
                self.gather(None, relay);
            }
            Wire::Undone { by, author, stroke } => {
                self.board.remove(stroke);
                self.entries.remove(&stroke);
                self.broadcast(event::UNDONE, &Undone { by, author, stroke }, None);
            }
            Wire::Cleared { by, ids } => {
                for id in ids {
                    self.board.remove(id);
                    self.entries.remove(&id);
                }
                self.broadcast(event::CLEARED, &Cleared { by }, None);
                if self.board.segments() > 0 {
                    // Strokes started here before the clear reached us
                    // survive it on every node, but clients wiped them on
                    // `cleared`: show them the canvas as it is.
                    self.refresh_everyone();
                }
            }
            Wire::Alive => {}
            Wire::Peer { peer } => self.remote_peer(node, peer),
            Wire::Left { id } => self.remote_left(&id),
            Wire::Roster { peers, ask } => {
                let gone: Vec<String> = self
                    .remote
                    .iter()
                    .filter(|(n, p)| *n == node && !peers.iter().any(|q| q.id == p.id))
                    .map(|(_, p)| p.id.clone())
                    .collect();
                for id in gone {
                    self.remote_left(&id);
                }
                for peer in peers {
                    let known = self.remote.iter().any(|(n, p)| *n == node && *p == peer);
                    if !known {
                        self.remote_peer(node.clone(), peer);
                    }
                }
                if ask {
                    self.publish(&Wire::Roster {
                        peers: self.local_peers(),
                        ask: false,
                    });
                }
            }
        }
    }

    fn remote_peer(&mut self, node: Arc<str>, peer: Peer) {
        match self.remote.iter_mut().find(|(_, p)| p.id == peer.id) {
            Some(entry) => *entry = (node, peer.clone()),
            None => self.remote.push((node, peer.clone())),
        }
        self.broadcast(event::PEER, &peer, None);
    }

    fn remote_left(&mut self, id: &str) {
        let before = self.remote.len();
        self.remote.retain(|(_, p)| p.id != id);
        if self.remote.len() != before {
            self.board.leave(id);
            self.broadcast(event::CLIENT_DISCONNECT, &id, None);
        }
    }

    /// Queues a fresh canvas for every local participant (paced like
    /// joins).
    fn refresh_everyone(&mut self) {
        for sid in self.order.clone() {
            if let Some(person) = self.people.get_mut(&sid)
                && !person.awaiting_canvas
            {
                person.awaiting_canvas = true;
                self.canvas_queue.push_back(sid);
            }
        }
        self.send_queued_canvases();
    }

    fn schedule_reload(&mut self, after: Duration) {
        if self.reload_due.is_none() {
            self.reload_due = Some(Instant::now() + after);
        }
    }

    /// Messages may have been lost: reads the canvas from the database,
    /// gives every local participant a fresh canvas, and asks the other
    /// nodes who is on them.
    async fn reload(&mut self) {
        self.reload_due = None;
        let Some(backend) = self.backend.clone() else {
            return;
        };
        // This node's own changes are in the database before it reads it
        // (others store theirs within the resync delay).
        if !self.persist.settled(SETTLE_LIMIT).await {
            tracing::warn!("reloading the drawing with changes of this node not yet stored");
        }
        match backend.load().await {
            Ok(board) => {
                tracing::info!(
                    segments = board.segments(),
                    "drawing reloaded from the database"
                );
                self.send_gathered();
                self.board = board;
                self.entries.clear();
                self.refresh_everyone();
                self.publish(&Wire::Roster {
                    peers: self.local_peers(),
                    ask: true,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload the drawing; trying again");
                self.schedule_reload(RELOAD_RETRY);
            }
        }
    }

    /// A participant whose queue is full has missed events: take it off the
    /// board (the others see it leave) and end its session. socketioxide
    /// cannot send the disconnect while the queue is full, so it is retried
    /// after every command; a client that does not read at all is closed
    /// sooner by the Engine.IO heartbeat, whose ping no longer fits either.
    /// Either way the client reconnects and gets a fresh snapshot.
    fn cut_off(&mut self, sid: Sid) {
        let Some(person) = self.remove(sid) else {
            return;
        };
        tracing::info!(%sid, "draw client too slow; cutting it off");
        crate::metrics::slow_consumer(App::Draw);
        self.cut.insert(sid, person);
        self.retry_cuts();
        self.announce_departure(sid);
    }

    fn retry_cuts(&mut self) {
        // Kept (and counted as connected) only while the disconnect cannot
        // be queued; once it is, or the socket is gone, the entry goes.
        self.cut.retain(|_, person| {
            matches!(
                person.socket.clone().disconnect(),
                Err(socketioxide::SocketError::InternalChannelFull)
            )
        });
    }

    /// Keeps a `moving` relay for the next tick (sends it at once when the
    /// tick is 0).
    fn gather(&mut self, from: Option<Sid>, json: Box<RawValue>) {
        self.gathered.push(Gathered { from, json });
        let tick = self.config.relay_tick();
        if tick.is_zero() {
            self.send_gathered();
        } else if self.due.is_none() {
            self.due = Some(Instant::now() + tick);
        }
    }

    /// Sends the gathered relays, each socket's in a row so that its writer
    /// finds them together. A socket whose queue is full is cut, as in
    /// [`Canvas::broadcast`].
    fn send_gathered(&mut self) {
        self.due = None;
        if self.gathered.is_empty() {
            return;
        }
        let gathered = std::mem::take(&mut self.gathered);
        let mut slow = Vec::new();
        let mut sent = 0u64;
        for (sid, person) in &self.people {
            for relay in gathered.iter().filter(|g| g.from != Some(*sid)) {
                match emit_one(&person.socket, event::MOVING, &*relay.json) {
                    Ok(()) => sent += 1,
                    Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) => {
                        slow.push(*sid);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        self.stats.delivered(App::Draw, sent);
        for sid in slow {
            self.cut_off(sid);
        }
        // Keep the allocation for the next tick.
        self.gathered = gathered;
        self.gathered.clear();
    }

    /// Serializes `payload` once and queues the same JSON on every
    /// participant's socket but `except`. A socket whose queue is full has
    /// missed state: it is cut, and gets a fresh snapshot when it reconnects.
    fn broadcast<T: Serialize + ?Sized>(&mut self, name: &str, payload: &T, except: Option<Sid>) {
        let raw = match serde_json::value::to_raw_value(payload) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::error!(error = %e, event = name, "cannot serialize an event");
                return;
            }
        };
        let mut slow = Vec::new();
        let mut sent = 0u64;
        for (sid, person) in &self.people {
            if Some(*sid) == except {
                continue;
            }
            match emit_one(&person.socket, name, &*raw) {
                Ok(()) => sent += 1,
                Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) => {
                    slow.push(*sid)
                }
                Err(_) => {}
            }
        }
        self.stats.delivered(App::Draw, sent);
        for sid in slow {
            self.cut_off(sid);
        }
    }
}

/// The public author id for a secret key: a prefix of its SHA-256, so it
/// is the same after a restart and does not give the key away.
fn author_of_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("a-{hex}")
}

/// The next event of the subscription (`None`: never; the caller's
/// `select!` guard keeps that branch off).
async fn next_bus_event(
    bus: &mut Option<crate::cluster::Subscription>,
) -> Option<crate::cluster::BusEvent> {
    match bus {
        Some(sub) => sub.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits until `at` (`None`: never; the caller's `select!` guard keeps that
/// branch off).
async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

fn emit_one<T: Serialize + ?Sized>(
    socket: &SocketRef,
    name: &str,
    payload: &T,
) -> Result<(), SendError> {
    socket.emit(name, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_ids_are_stable_and_do_not_show_the_key() {
        let key = "abcdefghijklmnop";
        let a = author_of_key(key);
        assert_eq!(a, author_of_key(key));
        assert_ne!(a, author_of_key("abcdefghijklmnoq"));
        assert!(!a.contains(key));
        assert_eq!(a.len(), 2 + 24);
        // Never a socket id (16 characters).
        assert_ne!(a.len(), 16);
    }

    #[test]
    fn a_canvas_part_fits_the_payload_limit() {
        // A full default canvas of the worst shape: one segment per stroke,
        // coordinates with the most digits.
        let mut board = Board::new();
        for i in 0..20_000u32 {
            let author = format!("{:020}", i % 1000);
            let x = 1000.0 + f64::from(i % 999) + 0.1;
            board.apply_move(
                &author,
                rt_protocol::draw::Point { x, y: 999.9 },
                false,
                "#123456",
            );
            board.apply_move(
                &author,
                rt_protocol::draw::Point {
                    x: x + 0.5,
                    y: 998.3,
                },
                true,
                "#123456",
            );
        }
        let parts = board.snapshot(rt_protocol::draw::Bounds::default(), CANVAS_PART_BYTES);
        let mut total = 0;
        for part in &parts {
            let len = serde_json::to_string::<CanvasPart>(part).unwrap().len();
            assert!(
                (len as u64) < super::super::MAX_PAYLOAD,
                "part of {len} bytes"
            );
            total += len;
        }
        // Scaled to the default limit of 200,000 segments, the parts still fit
        // the socket buffer with room for live events.
        assert!(total > 1_000_000, "{total} bytes for 20,000 segments");
        let full = parts.len() * 10;
        assert!(
            full < super::super::SOCKET_BUFFER / 2,
            "{full} parts for a full canvas"
        );
    }
}
