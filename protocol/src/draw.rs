//! The drawing board's events (Socket.IO, default namespace) and the board
//! model every participant replays.
//!
//! Classic events: `mousemove` `{x, y, drawing}` in; `moving` (the same
//! object plus the sender's `id`) out to everyone else; `clientdisconnect`
//! `id` when a socket leaves. rt adds: `canvas` (the drawing, in parts, sent
//! on join), `hello` `{name, colour, key}` (answered by `welcome`), `peers`
//! (who is online: the whole list, to the joiner only, at once; its canvas
//! may come later, and part 0 replaces what it drew from the live events
//! before it; a joiner's `welcome` comes after its canvas),
//! `peer` (one participant's entry, replacing any with the same id: to the
//! others when someone joins, to everyone when a `hello` changes someone's
//! name, colour or author; leaving is `clientdisconnect`), `clear` →
//! `cleared` `{by}`, `undo` → `undone`
//! `{by, author, stroke}`, `sync` (send me the canvas again: the sender's
//! moves before it are in that canvas, those after it are not), and `error`.
//!
//! # Strokes
//! A participant's pen has a last point. A `mousemove` with `drawing: true`
//! adds the segment from that last point to the new one (the classic page
//! draws exactly this). A *stroke* is the run of segments between pen-down
//! (the first drawing move after a non-drawing one) and pen-up (a
//! non-drawing move, an undo, or leaving). `undo` removes the caller's most
//! recent stroke, so every participant that replays the same events in the
//! same order ([`Board`]) agrees on what was removed.
//!
//! # Authors
//! A pen belongs to a socket (its id is the `id` of `moving`); a stroke
//! belongs to an *author*. A socket's author is its socket id, unless its
//! `hello` carries a `key` (a secret the client keeps across reconnects):
//! then the server derives a public author id from it, so strokes drawn
//! before a reconnect (or a server restart) can still be undone by whoever
//! holds the key. `peers`, `peer` and `welcome` say each socket's author.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Event names (each documented in the module header).
pub mod event {
    pub const MOUSEMOVE: &str = "mousemove";
    pub const MOVING: &str = "moving";
    pub const CLIENT_DISCONNECT: &str = "clientdisconnect";
    pub const CANVAS: &str = "canvas";
    pub const HELLO: &str = "hello";
    pub const PEERS: &str = "peers";
    pub const PEER: &str = "peer";
    pub const CLEAR: &str = "clear";
    pub const CLEARED: &str = "cleared";
    pub const UNDO: &str = "undo";
    pub const UNDONE: &str = "undone";
    pub const SYNC: &str = "sync";
    pub const WELCOME: &str = "welcome";
    pub const ERROR: &str = "error";
}

/// The classic canvas is 2000 × 1000.
pub const DEFAULT_WIDTH: f64 = 2000.0;
/// The classic canvas is 2000 × 1000.
pub const DEFAULT_HEIGHT: f64 = 1000.0;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Shortest and longest author key, in characters (`A-Z a-z 0-9 _ -`).
pub const KEY_CHARS: std::ops::RangeInclusive<usize> = 16..=64;
/// Points of one stroke per snapshot entry at most; longer strokes are sent
/// as several entries with the same id (each continues from the last point
/// of the one before), so no single entry outgrows a snapshot part.
pub const MAX_POINTS_PER_ENTRY: usize = 1024;
/// Largest `mousemove` object, as JSON: it is relayed to everyone, so extra
/// fields are kept only within this size.
pub const MAX_MOVE_BYTES: usize = 1024;
/// Stored coordinates are rounded to this step (a tenth of a board pixel).
pub const COORD_STEP: f64 = 0.1;

/// Colours handed out to participants who do not choose one.
pub const PALETTE: [&str; 10] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#800000", "#000075",
];

/// The board's size: valid coordinates are `0..=width` × `0..=height`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub width: f64,
    pub height: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
        }
    }
}

/// A point on the board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    /// The point rounded to [`COORD_STEP`], as stored and sent in snapshots.
    pub fn quantized(self) -> Point {
        let q = |v: f64| (v / COORD_STEP).round() * COORD_STEP;
        Point {
            x: round_repr(q(self.x)),
            y: round_repr(q(self.y)),
        }
    }
}

/// `q * 0.1` can print as `12.300000000000001`; go through the decimal
/// text so the stored value prints short.
fn round_repr(v: f64) -> f64 {
    format!("{v:.1}").parse().unwrap_or(v)
}

/// A validated `mousemove`: the point, the pen state, and the whole object
/// as sent (unknown fields are kept and relayed).
#[derive(Debug, Clone, PartialEq)]
pub struct MouseMove {
    pub point: Point,
    pub drawing: bool,
    pub fields: Map<String, Value>,
}

/// Why an event was refused; sent back to its sender as `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error("{event}: expected one object argument")]
    NotAnObject { event: &'static str },
    #[error(
        "{event}: unreadable argument (plain JSON only: finite numbers, no binary attachments)"
    )]
    Unreadable { event: &'static str },
    #[error("mousemove: {field} must be a finite number between 0 and {max}")]
    OutOfBounds { field: &'static str, max: String },
    #[error("mousemove: drawing must be true or false")]
    BadDrawing,
    #[error("mousemove: the object is larger than {MAX_MOVE_BYTES} bytes")]
    TooLarge,
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("hello: name must be 1 to {MAX_NAME_CHARS} printable characters")]
    BadName,
    #[error("hello: colour must look like #rrggbb")]
    BadColour,
    #[error("hello: key must be 16 to 64 characters of A-Z, a-z, 0-9, _ and -")]
    BadKey,
    #[error("too many events: at most {per_second} per second; the rest were dropped")]
    RateLimited { per_second: u32 },
    #[error("the canvas is full ({max_segments} segments); clear it to draw more")]
    CanvasFull { max_segments: usize },
    #[error("undo: you have no stroke on the board to undo")]
    NothingToUndo,
    #[error("the server is busy; event dropped")]
    Busy,
    /// Too many joiners wait for their canvas: this one gets none for now.
    #[error("too many joiners are waiting for the canvas; ask for it again later (sync)")]
    CanvasBusy,
    #[error("the board has {max_clients} participants, the most it takes; try again later")]
    BoardFull { max_clients: usize },
    #[error(
        "the board cannot save drawing right now (storage failing); nothing was changed, try again shortly"
    )]
    Unsaved,
}

impl DrawError {
    /// A short stable code for programs.
    pub fn code(&self) -> &'static str {
        match self {
            DrawError::NotAnObject { .. } | DrawError::Unreadable { .. } => "bad-payload",
            DrawError::OutOfBounds { .. } => "out-of-bounds",
            DrawError::BadDrawing => "bad-drawing",
            DrawError::TooLarge => "too-large",
            DrawError::UnknownEvent(_) => "unknown-event",
            DrawError::BadName => "bad-name",
            DrawError::BadColour => "bad-colour",
            DrawError::BadKey => "bad-key",
            DrawError::RateLimited { .. } => "rate-limited",
            DrawError::CanvasFull { .. } => "canvas-full",
            DrawError::NothingToUndo => "nothing-to-undo",
            DrawError::Busy | DrawError::CanvasBusy => "busy",
            DrawError::BoardFull { .. } => "board-full",
            DrawError::Unsaved => "unsaved",
        }
    }

    /// The `error` event's payload: `{code, message, event}`.
    pub fn to_event(&self, event: &str) -> ErrorEvent {
        ErrorEvent {
            code: self.code().to_string(),
            message: self.to_string(),
            event: event.to_string(),
        }
    }
}

/// Payload of `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub code: String,
    pub message: String,
    pub event: String,
}

/// Checks a `mousemove` argument: `x`, `y` finite numbers inside `bounds`,
/// `drawing` a boolean.
pub fn parse_mousemove(arg: Value, bounds: Bounds) -> Result<MouseMove, DrawError> {
    let Value::Object(fields) = arg else {
        return Err(DrawError::NotAnObject {
            event: event::MOUSEMOVE,
        });
    };
    let coord = |field: &'static str, max: f64| {
        fields
            .get(field)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && (0.0..=max).contains(v))
            .ok_or(DrawError::OutOfBounds {
                field,
                max: max.to_string(),
            })
    };
    let x = coord("x", bounds.width)?;
    let y = coord("y", bounds.height)?;
    let drawing = fields
        .get("drawing")
        .and_then(Value::as_bool)
        .ok_or(DrawError::BadDrawing)?;
    if serde_json::to_vec(&fields).map_or(true, |v| v.len() > MAX_MOVE_BYTES) {
        return Err(DrawError::TooLarge);
    }
    Ok(MouseMove {
        point: Point { x, y },
        drawing,
        fields,
    })
}

/// `hello` `{name?, colour?, key?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// The client's secret author key (see the module header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Checks a `hello` argument (a missing argument means "assign both").
pub fn parse_hello(arg: Value) -> Result<Hello, DrawError> {
    let fields = match arg {
        Value::Object(f) => f,
        Value::Null => Map::new(),
        _ => {
            return Err(DrawError::NotAnObject {
                event: event::HELLO,
            });
        }
    };
    let name = match fields.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(valid_name(s)?),
        Some(_) => return Err(DrawError::BadName),
    };
    let colour = match fields.get("colour") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_colour(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(DrawError::BadColour),
    };
    let key = match fields.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if is_key(k) => Some(k.clone()),
        Some(_) => return Err(DrawError::BadKey),
    };
    Ok(Hello { name, colour, key })
}

/// An author key: [`KEY_CHARS`] characters of `A-Z a-z 0-9 _ -`.
pub fn is_key(k: &str) -> bool {
    KEY_CHARS.contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_name(raw: &str) -> Result<String, DrawError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(DrawError::BadName);
    }
    Ok(name.to_string())
}

/// Format characters that would let a name hide or reorder text around it
/// (bidirectional overrides, zero-width characters, the BOM).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// `#rrggbb`.
pub fn is_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// One online participant, as listed by `peers`; also the payload of
/// `peer` (one entry added or replaced) and of `welcome` (the sender's own
/// entry, in answer to its `hello`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    pub id: String,
    pub name: String,
    pub colour: String,
    /// Whose strokes this socket draws (its id unless it sent a key).
    #[serde(default)]
    pub author: String,
}

impl Peer {
    /// The author, for payloads that leave it out.
    pub fn author(&self) -> &str {
        if self.author.is_empty() {
            &self.id
        } else {
            &self.author
        }
    }
}

/// Applies a `peer` event to a client's list of who is online: replaces the
/// entry with the same id, or adds it at the end (join order, as `peers`
/// lists them).
pub fn upsert_peer(peers: &mut Vec<Peer>, peer: Peer) {
    match peers.iter_mut().find(|p| p.id == peer.id) {
        Some(entry) => *entry = peer,
        None => peers.push(peer),
    }
}

/// Payload of `cleared`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleared {
    pub by: String,
}

/// Payload of `undone`: the socket that undid (its pen is lifted), the
/// author whose last stroke was removed, and the server's id of that stroke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undone {
    pub by: String,
    #[serde(default)]
    pub author: String,
    pub stroke: u64,
}

impl Undone {
    /// The author, for payloads that leave it out.
    pub fn author(&self) -> &str {
        if self.author.is_empty() {
            &self.by
        } else {
            &self.author
        }
    }
}

/// One stroke (or a piece of a long one) in a `canvas` part. `points` is
/// flat: `[x0, y0, x1, y1, …]`; a stroke of n segments has n + 1 points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrokeEntry {
    pub id: u64,
    pub by: String,
    pub colour: String,
    pub points: Vec<f64>,
}

/// A participant's pen, so a joiner continues open strokes exactly as the
/// server does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenEntry {
    pub id: String,
    pub x: f64,
    pub y: f64,
    /// The stroke the next drawing move extends, when the pen is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stroke: Option<u64>,
}

/// Payload of `canvas`. The drawing is sent as `parts` events numbered
/// `part` = 0, 1, …; part 0 replaces whatever the receiver had and carries
/// the pens; the others add strokes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanvasPart {
    pub width: f64,
    pub height: f64,
    pub part: usize,
    pub parts: usize,
    #[serde(default)]
    pub pens: Vec<PenEntry>,
    pub strokes: Vec<StrokeEntry>,
}

/// A stroke on the board.
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub id: u64,
    pub by: String,
    pub colour: String,
    pub points: Vec<Point>,
}

impl Stroke {
    /// Segments in this stroke.
    pub fn segments(&self) -> usize {
        self.points.len().saturating_sub(1)
    }

    /// The stroke as snapshot entries of at most [`MAX_POINTS_PER_ENTRY`]
    /// points, each starting where the one before ended.
    pub fn entries(&self) -> Vec<StrokeEntry> {
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + MAX_POINTS_PER_ENTRY).min(self.points.len());
            out.push(StrokeEntry {
                id: self.id,
                by: self.by.clone(),
                colour: self.colour.clone(),
                points: self.points[start..end]
                    .iter()
                    .flat_map(|p| [p.x, p.y])
                    .collect(),
            });
            if end >= self.points.len() {
                return out;
            }
            start = end - 1;
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Pen {
    last: Option<Point>,
    open: Option<u64>,
}

/// What a move did to the board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MoveEffect {
    /// No segment (pen up, or the first point ever seen from this author).
    None,
    /// A stroke was started with its first segment `from → to`.
    Started { stroke: u64, from: Point, to: Point },
    /// The open stroke grew by `from → to`.
    Extended { stroke: u64, from: Point, to: Point },
}

/// The shared drawing, replayed identically by the server and by clients.
#[derive(Debug, Clone, Default)]
pub struct Board {
    strokes: BTreeMap<u64, Stroke>,
    by_author: HashMap<String, Vec<u64>>,
    pens: HashMap<String, Pen>,
    segments: usize,
    next_id: u64,
}

impl Board {
    /// An empty board.
    pub fn new() -> Board {
        Board::default()
    }

    /// A board holding `strokes` (ids must be distinct), e.g. from the store.
    pub fn from_strokes(strokes: impl IntoIterator<Item = Stroke>) -> Board {
        let mut board = Board::new();
        for s in strokes {
            board.insert(s);
        }
        board
    }

    fn insert(&mut self, stroke: Stroke) {
        self.next_id = self.next_id.max(stroke.id + 1);
        self.segments += stroke.segments();
        self.by_author
            .entry(stroke.by.clone())
            .or_default()
            .push(stroke.id);
        self.strokes.insert(stroke.id, stroke);
    }

    /// Total segments on the board.
    pub fn segments(&self) -> usize {
        self.segments
    }

    /// Strokes in creation order.
    pub fn strokes(&self) -> impl Iterator<Item = &Stroke> {
        self.strokes.values()
    }

    /// The stroke with this id.
    pub fn stroke(&self, id: u64) -> Option<&Stroke> {
        self.strokes.get(&id)
    }

    /// Whether `author` has a stroke on the board.
    pub fn has_strokes(&self, author: &str) -> bool {
        self.by_author
            .get(author)
            .is_some_and(|ids| ids.iter().any(|id| self.strokes.contains_key(id)))
    }

    /// The author's last point, if any.
    pub fn pen(&self, author: &str) -> Option<Point> {
        self.pens.get(author).and_then(|p| p.last)
    }

    /// Authors whose pen is known, with their last point and open stroke.
    pub fn pens(&self) -> Vec<PenEntry> {
        let mut v: Vec<PenEntry> = self
            .pens
            .iter()
            .filter_map(|(id, pen)| {
                pen.last.map(|p| PenEntry {
                    id: id.clone(),
                    x: p.x,
                    y: p.y,
                    stroke: pen.open,
                })
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Would this move add a segment?
    pub fn adds_segment(&self, author: &str, drawing: bool) -> bool {
        drawing && self.pen(author).is_some()
    }

    /// Applies a move of `author`'s own pen (pen and author share the id).
    pub fn apply_move(
        &mut self,
        author: &str,
        to: Point,
        drawing: bool,
        colour: &str,
    ) -> MoveEffect {
        self.apply_move_as(author, author, to, drawing, colour)
    }

    /// Moves pen `pen` to `to` (down when `drawing`); a new stroke belongs
    /// to `author` and takes `colour`.
    pub fn apply_move_as(
        &mut self,
        pen: &str,
        author: &str,
        to: Point,
        drawing: bool,
        colour: &str,
    ) -> MoveEffect {
        let to = to.quantized();
        let pen = self.pens.entry(pen.to_string()).or_default();
        let from = pen.last.replace(to);
        if !drawing {
            pen.open = None;
            return MoveEffect::None;
        }
        let Some(from) = from else {
            return MoveEffect::None;
        };
        if let Some(id) = pen.open
            && let Some(stroke) = self.strokes.get_mut(&id)
        {
            stroke.points.push(to);
            self.segments += 1;
            return MoveEffect::Extended {
                stroke: id,
                from,
                to,
            };
        }
        let id = self.next_id;
        pen.open = Some(id);
        self.insert(Stroke {
            id,
            by: author.to_string(),
            colour: colour.to_string(),
            points: vec![from, to],
        });
        MoveEffect::Started {
            stroke: id,
            from,
            to,
        }
    }

    /// Sets the id the next new stroke takes. A node of a cluster draws
    /// with ids from a block of its own, so ids never collide across nodes.
    pub fn set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// Replays a move another node applied, whose effect it reports: pen
    /// `pen` moves to `to` (down when `drawing`) and the stroke of `effect`
    /// is started or extended here with the same id. A stroke removed
    /// meanwhile stays removed, and a point that does not continue the
    /// stroke (`seq`, the point's index, is not the next one) is skipped.
    /// Returns false when the stroke here does not match (a gap).
    #[allow(clippy::too_many_arguments)] // one move's fields, as sent
    pub fn apply_effect(
        &mut self,
        pen: &str,
        author: &str,
        colour: &str,
        to: Point,
        drawing: bool,
        effect: MoveEffect,
        seq: usize,
    ) -> bool {
        let p = self.pens.entry(pen.to_string()).or_default();
        p.last = Some(to);
        match effect {
            MoveEffect::None => {
                if !drawing {
                    p.open = None;
                }
                true
            }
            MoveEffect::Started { stroke, from, to } => {
                p.open = Some(stroke);
                if !self.strokes.contains_key(&stroke) {
                    self.insert(Stroke {
                        id: stroke,
                        by: author.to_string(),
                        colour: colour.to_string(),
                        points: vec![from, to],
                    });
                }
                true
            }
            MoveEffect::Extended { stroke, to, .. } => {
                p.open = Some(stroke);
                let Some(s) = self.strokes.get_mut(&stroke) else {
                    return true;
                };
                if s.points.len() == seq {
                    s.points.push(to);
                    self.segments += 1;
                    true
                } else {
                    s.points.len() > seq
                }
            }
        }
    }

    /// Removes stroke `id` wherever it came from (undone or cleared on
    /// another node); pens that drew it are lifted.
    pub fn remove(&mut self, id: u64) -> Option<Stroke> {
        let stroke = self.strokes.remove(&id)?;
        self.segments -= stroke.segments();
        if let Some(ids) = self.by_author.get_mut(&stroke.by) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_author.remove(&stroke.by);
            }
        }
        for pen in self.pens.values_mut() {
            if pen.open == Some(id) {
                pen.open = None;
            }
        }
        Some(stroke)
    }

    /// Removes `author`'s most recent stroke (and lifts their pen).
    pub fn undo(&mut self, author: &str) -> Option<Stroke> {
        self.undo_as(author, author)
    }

    /// Removes `author`'s most recent stroke and lifts pen `pen` (the
    /// socket that asked).
    pub fn undo_as(&mut self, pen: &str, author: &str) -> Option<Stroke> {
        if let Some(pen) = self.pens.get_mut(pen) {
            pen.open = None;
        }
        let ids = self.by_author.get_mut(author)?;
        while let Some(id) = ids.pop() {
            if let Some(stroke) = self.strokes.remove(&id) {
                self.segments -= stroke.segments();
                if ids.is_empty() {
                    self.by_author.remove(author);
                }
                return Some(stroke);
            }
        }
        self.by_author.remove(author);
        None
    }

    /// Removes every stroke and lifts every pen (pens keep their position).
    pub fn clear(&mut self) {
        self.strokes.clear();
        self.by_author.clear();
        self.segments = 0;
        for pen in self.pens.values_mut() {
            pen.open = None;
        }
    }

    /// Forgets a participant's pen (they left); their strokes stay.
    pub fn leave(&mut self, author: &str) {
        self.pens.remove(author);
    }

    /// The drawing as `canvas` parts: stroke entries packed so that each
    /// part's `strokes` JSON stays under about `part_bytes` (one entry
    /// never exceeds [`MAX_POINTS_PER_ENTRY`] points).
    pub fn snapshot(&self, bounds: Bounds, part_bytes: usize) -> Vec<CanvasPart> {
        let mut parts: Vec<Vec<StrokeEntry>> = vec![Vec::new()];
        let mut size = 0usize;
        for entry in self.strokes.values().flat_map(Stroke::entries) {
            let entry_size = entry_json_len(&entry);
            let current = parts.last_mut().expect("parts is never empty");
            if !current.is_empty() && size + entry_size > part_bytes {
                parts.push(Vec::new());
                size = 0;
            }
            size += entry_size;
            parts.last_mut().expect("just pushed").push(entry);
        }
        let n = parts.len();
        let pens = self.pens();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, strokes)| CanvasPart {
                width: bounds.width,
                height: bounds.height,
                part: i,
                parts: n,
                pens: if i == 0 { pens.clone() } else { Vec::new() },
                strokes,
            })
            .collect()
    }

    /// Takes in one `canvas` part (part 0 resets the board). Entries that
    /// share an id with the previous one continue it.
    pub fn load_part(&mut self, part: &CanvasPart) {
        if part.part == 0 {
            *self = Board::new();
            for pen in &part.pens {
                self.pens.insert(
                    pen.id.clone(),
                    Pen {
                        last: Some(Point { x: pen.x, y: pen.y }),
                        open: pen.stroke,
                    },
                );
            }
        }
        for entry in &part.strokes {
            let points: Vec<Point> = entry
                .points
                .chunks_exact(2)
                .map(|c| Point { x: c[0], y: c[1] })
                .collect();
            if let Some(existing) = self.strokes.get_mut(&entry.id) {
                let added = points.len().saturating_sub(1);
                existing.points.extend(points.into_iter().skip(1));
                self.segments += added;
            } else if !points.is_empty() {
                self.insert(Stroke {
                    id: entry.id,
                    by: entry.by.clone(),
                    colour: entry.colour.clone(),
                    points,
                });
            }
        }
    }
}

fn entry_json_len(entry: &StrokeEntry) -> usize {
    serde_json::to_vec(entry).map(|v| v.len() + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_event_adds_or_replaces_one_entry() {
        let peer = |id: &str, name: &str| Peer {
            id: id.into(),
            name: name.into(),
            colour: "#000000".into(),
            author: String::new(),
        };
        let mut list = vec![peer("a", "Ann"), peer("b", "Bob")];
        upsert_peer(&mut list, peer("c", "Cy"));
        upsert_peer(&mut list, peer("a", "Anna"));
        assert_eq!(
            list,
            vec![peer("a", "Anna"), peer("b", "Bob"), peer("c", "Cy")]
        );
    }
    use serde_json::json;

    fn p(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    #[test]
    fn mousemove_keeps_unknown_fields() {
        let m = parse_mousemove(
            json!({"x": 1, "y": 2.5, "drawing": true, "tool": "pen"}),
            Bounds::default(),
        )
        .unwrap();
        assert_eq!(m.point, p(1.0, 2.5));
        assert!(m.drawing);
        assert_eq!(m.fields["tool"], "pen");
    }

    #[test]
    fn mousemove_rejects_bad_input() {
        let b = Bounds::default();
        let bad = [
            json!([1, 2]),
            json!("x"),
            json!({"x": -1, "y": 2, "drawing": true}),
            json!({"x": 2000.5, "y": 2, "drawing": true}),
            json!({"x": 1, "y": 1000.1, "drawing": true}),
            json!({"x": "1", "y": 2, "drawing": true}),
            json!({"y": 2, "drawing": true}),
            json!({"x": 1, "y": 2, "drawing": "yes"}),
            json!({"x": 1, "y": 2}),
            json!({"x": null, "y": 2, "drawing": false}),
            json!({"x": 1, "y": 2, "drawing": false, "pad": "x".repeat(MAX_MOVE_BYTES)}),
        ];
        for v in bad {
            assert!(parse_mousemove(v.clone(), b).is_err(), "accepted {v}");
        }
        assert!(parse_mousemove(json!({"x": 2000, "y": 1000, "drawing": false}), b).is_ok());
        assert!(parse_mousemove(json!({"x": 0, "y": 0, "drawing": false}), b).is_ok());
    }

    #[test]
    fn hello_validates_name_and_colour() {
        assert_eq!(parse_hello(Value::Null).unwrap(), Hello::default());
        let h = parse_hello(json!({"name": " ann ", "colour": "#A0b0C0"})).unwrap();
        assert_eq!(h.name.as_deref(), Some("ann"));
        assert_eq!(h.colour.as_deref(), Some("#a0b0c0"));
        assert_eq!(parse_hello(json!({"name": ""})), Err(DrawError::BadName));
        assert_eq!(
            parse_hello(json!({"name": "x".repeat(33)})),
            Err(DrawError::BadName)
        );
        assert_eq!(
            parse_hello(json!({"name": "a\nb"})),
            Err(DrawError::BadName)
        );
        for sneaky in ["\u{202e}evil", "a\u{200b}b", "\u{feff}x", "x\u{2066}"] {
            assert_eq!(
                parse_hello(json!({ "name": sneaky })),
                Err(DrawError::BadName),
                "{sneaky:?}"
            );
        }
        assert!(parse_hello(json!({"name": "Zoë 李"})).is_ok());
        assert_eq!(
            parse_hello(json!({"colour": "red"})),
            Err(DrawError::BadColour)
        );
        assert!(parse_hello(json!(3)).is_err());
    }

    #[test]
    fn strokes_run_from_pen_down_to_pen_up() {
        let mut b = Board::new();
        assert_eq!(
            b.apply_move("a", p(1.0, 1.0), false, "#000000"),
            MoveEffect::None
        );
        let e = b.apply_move("a", p(2.0, 2.0), true, "#000000");
        assert!(matches!(e, MoveEffect::Started { stroke: 0, .. }));
        let e = b.apply_move("a", p(3.0, 3.0), true, "#000000");
        assert!(matches!(e, MoveEffect::Extended { stroke: 0, .. }));
        b.apply_move("a", p(4.0, 4.0), false, "#000000");
        let e = b.apply_move("a", p(5.0, 5.0), true, "#111111");
        assert!(matches!(e, MoveEffect::Started { stroke: 1, .. }));
        assert_eq!(b.segments(), 3);
        assert_eq!(b.stroke(0).unwrap().points.len(), 3);
        assert_eq!(b.stroke(1).unwrap().points[0], p(4.0, 4.0));
    }

    #[test]
    fn first_drawing_move_without_a_previous_point_draws_nothing() {
        let mut b = Board::new();
        assert_eq!(
            b.apply_move("a", p(1.0, 1.0), true, "#000000"),
            MoveEffect::None
        );
        assert_eq!(b.segments(), 0);
        assert!(b.adds_segment("a", true));
        assert!(!b.adds_segment("b", true));
    }

    #[test]
    fn undo_removes_only_the_callers_last_stroke() {
        let mut b = Board::new();
        for (who, x) in [("a", 0.0), ("b", 10.0)] {
            b.apply_move(who, p(x, 0.0), false, "#000000");
            b.apply_move(who, p(x + 1.0, 0.0), true, "#000000");
            b.apply_move(who, p(x + 2.0, 0.0), false, "#000000");
            b.apply_move(who, p(x + 3.0, 0.0), true, "#000000");
        }
        let undone = b.undo("a").unwrap();
        assert_eq!(undone.by, "a");
        assert_eq!(undone.points[1], p(3.0, 0.0));
        assert_eq!(b.strokes().filter(|s| s.by == "b").count(), 2);
        assert_eq!(b.undo("a").unwrap().points[1], p(1.0, 0.0));
        assert_eq!(b.undo("a"), None);
        assert!(!b.has_strokes("a"));
        assert!(b.has_strokes("b"));
        assert_eq!(b.segments(), 2);
    }

    #[test]
    fn undo_lifts_the_pen_so_drawing_continues_in_a_new_stroke() {
        let mut b = Board::new();
        b.apply_move("a", p(0.0, 0.0), false, "#000000");
        b.apply_move("a", p(1.0, 0.0), true, "#000000");
        b.undo("a");
        let e = b.apply_move("a", p(2.0, 0.0), true, "#000000");
        assert!(matches!(e, MoveEffect::Started { .. }));
        assert_eq!(b.segments(), 1);
    }

    #[test]
    fn strokes_belong_to_authors_and_pens_to_sockets() {
        let mut b = Board::new();
        // One author, two sockets (before and after a reconnect).
        b.apply_move_as("s1", "ann", p(0.0, 0.0), false, "#000000");
        b.apply_move_as("s1", "ann", p(1.0, 0.0), true, "#000000");
        b.leave("s1");
        b.apply_move_as("s2", "ann", p(5.0, 0.0), false, "#000000");
        b.apply_move_as("s2", "ann", p(6.0, 0.0), true, "#000000");
        assert!(b.has_strokes("ann"));
        assert!(!b.has_strokes("s1"));
        assert_eq!(b.undo_as("s2", "ann").unwrap().points[0], p(5.0, 0.0));
        // The stroke from before the reconnect is still the author's.
        assert_eq!(b.undo_as("s2", "ann").unwrap().points[0], p(0.0, 0.0));
        assert_eq!(b.segments(), 0);
        // The asking pen was lifted: its next drawing move starts afresh.
        assert!(matches!(
            b.apply_move_as("s2", "ann", p(7.0, 0.0), true, "#000000"),
            MoveEffect::Started { .. }
        ));
    }

    #[test]
    fn keys_are_checked() {
        let h = parse_hello(json!({"key": "abcdefghijklmnop_-09"})).unwrap();
        assert_eq!(h.key.as_deref(), Some("abcdefghijklmnop_-09"));
        for bad in [
            json!("short"),
            json!("x".repeat(65)),
            json!("abcdefghijklmnop!"),
            json!(5),
        ] {
            assert_eq!(parse_hello(json!({ "key": bad })), Err(DrawError::BadKey));
        }
    }

    #[test]
    fn clear_empties_the_board() {
        let mut b = Board::new();
        b.apply_move("a", p(0.0, 0.0), false, "#000000");
        b.apply_move("a", p(1.0, 0.0), true, "#000000");
        b.clear();
        assert_eq!(b.segments(), 0);
        assert_eq!(b.strokes().count(), 0);
        assert_eq!(b.undo("a"), None);
        assert!(matches!(
            b.apply_move("a", p(2.0, 0.0), true, "#000000"),
            MoveEffect::Started { .. }
        ));
    }

    #[test]
    fn coordinates_are_stored_to_a_tenth() {
        assert_eq!(p(12.34, 0.06).quantized(), p(12.3, 0.1));
        assert_eq!(p(1999.99, 999.95).quantized(), p(2000.0, 1000.0));
    }

    #[test]
    fn snapshot_round_trips_through_parts() {
        let mut b = Board::new();
        b.apply_move("a", p(0.0, 0.0), false, "#000000");
        // One long stroke that must be split into several entries.
        for i in 1..8000 {
            b.apply_move("a", p((i % 2000) as f64, (i % 7) as f64), true, "#000000");
        }
        b.apply_move("b", p(5.0, 5.0), false, "#ffffff");
        b.apply_move("b", p(6.0, 6.0), true, "#ffffff");
        let parts = b.snapshot(Bounds::default(), 32 * 1024);
        assert!(parts.len() > 2, "{} parts", parts.len());
        for part in &parts {
            let json = serde_json::to_string(part).unwrap();
            assert!(
                json.len() < 32 * 1024 + 1024,
                "part of {} bytes",
                json.len()
            );
            assert!(
                part.strokes
                    .iter()
                    .all(|s| s.points.len() <= 2 * MAX_POINTS_PER_ENTRY)
            );
        }
        let mut copy = Board::new();
        for part in &parts {
            let wire: CanvasPart =
                serde_json::from_str(&serde_json::to_string(part).unwrap()).unwrap();
            copy.load_part(&wire);
        }
        assert_eq!(copy.segments(), b.segments());
        let a: Vec<_> = copy.strokes().cloned().collect();
        let e: Vec<_> = b.strokes().cloned().collect();
        assert_eq!(a, e);
        // Pens travel too: b's open stroke continues on both boards.
        let on_server = b.apply_move("b", p(7.0, 7.0), true, "#ffffff");
        let on_client = copy.apply_move("b", p(7.0, 7.0), true, "#ffffff");
        assert_eq!(on_server, on_client);
    }

    #[test]
    fn empty_board_is_one_empty_part() {
        let parts = Board::new().snapshot(Bounds::default(), 1024);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].parts, 1);
        assert!(parts[0].strokes.is_empty());
    }

    #[test]
    fn effects_from_another_node_converge_in_any_order() {
        let p = |x: f64| Point { x, y: x };
        // Node A draws stroke 1024 of three points; node B undoes it after
        // the second point, before the third reaches it.
        let mut origin = Board::new();
        origin.set_next_id(1024);
        origin.apply_move("s", p(1.0), false, "#000000");
        let start = origin.apply_move("s", p(2.0), true, "#000000");
        assert!(matches!(start, MoveEffect::Started { stroke: 1024, .. }));
        let extend = origin.apply_move("s", p(3.0), true, "#000000");

        let mut other = Board::new();
        assert!(other.apply_effect("s", "s", "#000000", p(2.0), true, start, 1));
        assert_eq!(other.segments(), 1);
        // The same message twice changes nothing.
        assert!(other.apply_effect("s", "s", "#000000", p(2.0), true, start, 1));
        assert_eq!(other.segments(), 1);
        assert_eq!(other.remove(1024).map(|s| s.id), Some(1024));
        // A late point of a removed stroke does not bring it back.
        assert!(other.apply_effect("s", "", "", p(3.0), true, extend, 2));
        assert_eq!(other.segments(), 0);
        origin.remove(1024);
        assert_eq!(origin.segments(), 0);
        assert!(!origin.has_strokes("s") && !other.has_strokes("s"));

        // A point beyond the next one is a gap.
        let mut gap = Board::new();
        assert!(gap.apply_effect("s", "s", "#000000", p(2.0), true, start, 1));
        assert!(!gap.apply_effect("s", "", "", p(9.0), true, extend, 5));
        assert_eq!(gap.segments(), 1);
    }
}
