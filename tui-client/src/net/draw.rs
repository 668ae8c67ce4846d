//! Drawing board client: Socket.IO v5 over Engine.IO v4 on the WebSocket
//! transport (`rt_protocol::engineio` does the framing).
//!
//! [`Session`] is one connection (used directly by `rt-tui draw`);
//! [`DrawClient`] is the UI's task: it keeps a session open, reconnects with
//! backoff, sends at most one `mousemove` per [`MOVE_INTERVAL`] and reports
//! events and its state on the UI's channel.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::draw::{CanvasPart, Cleared, ErrorEvent, Hello, Peer, Undone, event};
use rt_protocol::engineio::{EnginePacket, SocketKind, SocketPacket, event_frame};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::backoff::Backoff;
use super::{ConnState, Endpoint, NetEvent, Transport};

/// At most one `mousemove` per this interval.
pub const MOVE_INTERVAL: Duration = Duration::from_millis(50);
/// How long connecting (through the Socket.IO CONNECT) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Moves waiting for their turn at most; same-pen moves are merged first.
pub const MOVE_QUEUE: usize = 64;
/// Commands from the UI waiting for the task at most.
pub const COMMAND_QUEUE: usize = 256;
/// Largest incoming WebSocket message (one `canvas` part fits well).
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// A `cleared` may have crossed our own moves on the way when we drew this
/// recently: then the canvas is fetched again.
pub const CLEAR_RACE: Duration = Duration::from_secs(2);
/// After the server refused something of ours, resync once it has been
/// quiet this long (it warns about rate at most once a second).
pub const RESYNC_AFTER: Duration = Duration::from_millis(1100);

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot reach {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

/// An event from the board, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum DrawEvent {
    /// Connected with this socket id.
    Connected {
        id: String,
    },
    /// Part of the drawing (part 0 starts over).
    Canvas(CanvasPart),
    /// Who is online (the whole list, on joining).
    Peers(Vec<Peer>),
    /// One participant joined or changed their entry.
    Peer(Peer),
    /// The answer to our `hello`: our own entry, with our author id.
    Welcome(Peer),
    /// Someone's pointer moved (`data` is the object as sent).
    Moving {
        id: String,
        x: f64,
        y: f64,
        drawing: bool,
    },
    ClientDisconnect(String),
    Cleared(Cleared),
    Undone(Undone),
    /// The server refused something we sent.
    Error(ErrorEvent),
    /// A `mousemove` of ours went out (so the pane draws exactly what was sent).
    Sent {
        x: f64,
        y: f64,
        drawing: bool,
    },
    /// We asked for the canvas again (`sync`): our moves reported after this
    /// are not in the canvas that answers it.
    SyncRequested,
    /// The connection ended; the client reconnects.
    Disconnected,
}

impl DrawEvent {
    /// Decodes a Socket.IO event; `None` for events this client ignores or
    /// payloads that do not parse.
    pub fn from_socketio(name: &str, args: &[Value]) -> Option<DrawEvent> {
        let arg = args.first().cloned().unwrap_or(Value::Null);
        let ev = match name {
            event::CANVAS => DrawEvent::Canvas(serde_json::from_value(arg).ok()?),
            event::PEERS => DrawEvent::Peers(serde_json::from_value(arg).ok()?),
            event::PEER => DrawEvent::Peer(serde_json::from_value(arg).ok()?),
            event::WELCOME => DrawEvent::Welcome(serde_json::from_value(arg).ok()?),
            event::MOVING => DrawEvent::Moving {
                id: arg.get("id")?.as_str()?.to_string(),
                x: arg.get("x")?.as_f64()?,
                y: arg.get("y")?.as_f64()?,
                drawing: arg.get("drawing")?.as_bool()?,
            },
            event::CLIENT_DISCONNECT => DrawEvent::ClientDisconnect(arg.as_str()?.to_string()),
            event::CLEARED => DrawEvent::Cleared(serde_json::from_value(arg).ok()?),
            event::UNDONE => DrawEvent::Undone(serde_json::from_value(arg).ok()?),
            event::ERROR => DrawEvent::Error(serde_json::from_value(arg).ok()?),
            _ => return None,
        };
        Some(ev)
    }
}

/// What the UI asks the client to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DrawCommand {
    /// Move the pen to `(x, y)` (board coordinates), drawing or not.
    Move {
        x: f64,
        y: f64,
        drawing: bool,
    },
    /// Name and colour (re-sent after every reconnect; the client adds its
    /// author key).
    Hello(Hello),
    Undo,
    Clear,
}

/// When to ask for the canvas again, from what went out and what came in.
///
/// Our moves are drawn at once, but the server orders them among everyone
/// else's; a clear that crossed them, or a refusal, leaves our board out of
/// step, and a `sync` puts it right.
#[derive(Debug, Default)]
pub struct Resync {
    last_drawn: Option<Instant>,
    /// A sync is on its way (or the join snapshot is).
    pending: bool,
    /// Another is wanted once the pending one is answered.
    again: bool,
    /// A sync is due at this time.
    due: Option<Instant>,
}

impl Resync {
    /// Just connected: the join snapshot plays the part of a sync.
    pub fn joined() -> Resync {
        Resync {
            pending: true,
            ..Resync::default()
        }
    }

    /// A move of ours went out.
    pub fn sent(&mut self, drawing: bool, now: Instant) {
        if drawing {
            self.last_drawn = Some(now);
        }
    }

    /// An event came in; true when a sync should go out now.
    pub fn received(&mut self, ev: &DrawEvent, now: Instant) -> bool {
        match ev {
            DrawEvent::Cleared(_) => {
                let recent = self
                    .last_drawn
                    .is_some_and(|t| now.saturating_duration_since(t) < CLEAR_RACE);
                recent && self.want()
            }
            DrawEvent::Error(e) => {
                let ours = matches!(
                    e.event.as_str(),
                    event::MOUSEMOVE | event::UNDO | event::CLEAR | event::SYNC
                );
                if e.event == event::SYNC {
                    // Refused: no canvas is coming.
                    self.pending = false;
                }
                if ours || e.code == "rate-limited" || e.code == "busy" {
                    self.due = Some(now + RESYNC_AFTER);
                }
                false
            }
            DrawEvent::Canvas(part) if part.part + 1 >= part.parts => {
                self.pending = false;
                std::mem::take(&mut self.again) && self.want()
            }
            _ => false,
        }
    }

    /// The time a delayed sync is due, if any.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// The delayed sync's time has come; true when it should go out now.
    pub fn fire(&mut self) -> bool {
        self.due = None;
        self.want()
    }

    fn want(&mut self) -> bool {
        if self.pending {
            self.again = true;
            false
        } else {
            self.pending = true;
            true
        }
    }
}

/// The Socket.IO WebSocket URL for a server base URL.
pub fn socket_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/socket.io/?EIO=4&transport=websocket")
}

/// One Socket.IO connection on the default namespace.
pub struct Session {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Our socket id.
    pub id: String,
    /// No ping for this long means the server is gone.
    heartbeat: Duration,
    last_ping: Instant,
}

impl Session {
    /// Connects, completes the Engine.IO handshake and the Socket.IO CONNECT.
    pub async fn connect(endpoint: impl Into<Endpoint>) -> Result<Session, SessionError> {
        let endpoint: Endpoint = endpoint.into();
        tokio::time::timeout(CONNECT_TIMEOUT, Session::connect_inner(&endpoint))
            .await
            .map_err(|_| SessionError::Timeout("connecting"))?
    }

    async fn connect_inner(endpoint: &Endpoint) -> Result<Session, SessionError> {
        let base = endpoint.base();
        let url = socket_url(base);
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let mut ws = endpoint
            .ws_connect(&url, Some(config))
            .await
            .map_err(|source| SessionError::Connect {
                url: base.to_string(),
                source,
            })?;
        let heartbeat = loop {
            match read_packet(&mut ws).await? {
                EnginePacket::Open(info) => {
                    break Duration::from_millis(info.ping_interval + info.ping_timeout);
                }
                EnginePacket::Close => return Err(SessionError::Lost("closed".into())),
                _ => {}
            }
        };
        send_text(
            &mut ws,
            EnginePacket::Message(SocketPacket::connect(None).encode()).encode(),
        )
        .await?;
        let id = loop {
            match read_packet(&mut ws).await? {
                EnginePacket::Ping(d) => send_text(&mut ws, EnginePacket::Pong(d).encode()).await?,
                EnginePacket::Message(m) => {
                    let p = SocketPacket::decode(&m)
                        .map_err(|e| SessionError::Protocol(e.to_string()))?;
                    match p.kind {
                        SocketKind::Connect => {
                            let sid = p
                                .data
                                .as_ref()
                                .and_then(|d| d.get("sid"))
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    SessionError::Protocol("CONNECT without sid".into())
                                })?;
                            break sid.to_string();
                        }
                        SocketKind::ConnectError => {
                            let msg = p
                                .data
                                .as_ref()
                                .and_then(|d| d.get("message"))
                                .and_then(Value::as_str)
                                .unwrap_or("no reason given");
                            return Err(SessionError::Refused(msg.to_string()));
                        }
                        _ => {}
                    }
                }
                EnginePacket::Close => return Err(SessionError::Lost("closed".into())),
                _ => {}
            }
        };
        Ok(Session {
            ws,
            id,
            heartbeat,
            last_ping: Instant::now(),
        })
    }

    /// Sends event `name` with `args`.
    pub async fn emit(&mut self, name: &str, args: Vec<Value>) -> Result<(), SessionError> {
        send_text(&mut self.ws, event_frame(name, args)).await
    }

    /// Sends a `mousemove`.
    pub async fn mouse_move(&mut self, x: f64, y: f64, drawing: bool) -> Result<(), SessionError> {
        self.emit(
            event::MOUSEMOVE,
            vec![json!({"x": x, "y": y, "drawing": drawing})],
        )
        .await
    }

    /// The next event (name, arguments), answering pings on the way. Fails
    /// when the connection ends or the server's pings stop.
    pub async fn next_event(&mut self) -> Result<(String, Vec<Value>), SessionError> {
        loop {
            let deadline = self.last_ping + self.heartbeat;
            let packet = tokio::time::timeout_at(deadline, read_packet(&mut self.ws))
                .await
                .map_err(|_| SessionError::Timeout("no ping from the server"))??;
            match packet {
                EnginePacket::Ping(d) => {
                    self.last_ping = Instant::now();
                    send_text(&mut self.ws, EnginePacket::Pong(d).encode()).await?;
                }
                EnginePacket::Message(m) => {
                    let p = SocketPacket::decode(&m)
                        .map_err(|e| SessionError::Protocol(e.to_string()))?;
                    if p.kind == SocketKind::Disconnect {
                        return Err(SessionError::Lost("the server ended the session".into()));
                    }
                    if let Some((name, args)) = p.as_event() {
                        return Ok((name.to_string(), args.to_vec()));
                    }
                }
                EnginePacket::Close => {
                    return Err(SessionError::Lost("closed by the server".into()));
                }
                _ => {}
            }
        }
    }

    /// Leaves politely: Socket.IO DISCONNECT, Engine.IO close, WebSocket close.
    pub async fn close(mut self) {
        let _ = send_text(
            &mut self.ws,
            EnginePacket::Message(
                SocketPacket {
                    kind: SocketKind::Disconnect,
                    nsp: "/".into(),
                    ack: None,
                    data: None,
                }
                .encode(),
            )
            .encode(),
        )
        .await;
        let _ = send_text(&mut self.ws, EnginePacket::Close.encode()).await;
        let _ = self.ws.close(None).await;
    }
}

async fn send_text(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
    text: String,
) -> Result<(), SessionError> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| SessionError::Lost(e.to_string()))
}

async fn read_packet(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> Result<EnginePacket, SessionError> {
    loop {
        let msg = ws
            .next()
            .await
            .ok_or_else(|| SessionError::Lost("closed".into()))?
            .map_err(|e| SessionError::Lost(e.to_string()))?;
        match msg {
            Message::Text(t) => {
                return EnginePacket::decode(&t).map_err(|e| SessionError::Protocol(e.to_string()));
            }
            Message::Close(_) => return Err(SessionError::Lost("closed".into())),
            // Binary attachments are not used by the board.
            _ => {}
        }
    }
}

/// Moves waiting to go out, one per [`MOVE_INTERVAL`]. Consecutive moves
/// with the same pen state merge (the latest position wins); a change of pen
/// state is kept, so strokes start and end where they did.
#[derive(Debug, Default)]
pub struct MoveQueue {
    queue: VecDeque<(f64, f64, bool)>,
}

impl MoveQueue {
    /// Queues a move, merging it into the last one when the pen state is
    /// the same.
    pub fn push(&mut self, x: f64, y: f64, drawing: bool) {
        if let Some(last) = self.queue.back_mut()
            && last.2 == drawing
        {
            *last = (x, y, drawing);
            return;
        }
        if self.queue.len() >= MOVE_QUEUE {
            // Far behind: keep the newest state, drop the oldest point.
            self.queue.pop_front();
        }
        self.queue.push_back((x, y, drawing));
    }

    /// The next move to send.
    pub fn pop(&mut self) -> Option<(f64, f64, bool)> {
        self.queue.pop_front()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// The UI's drawing client. Dropping it stops the task.
pub struct DrawClient {
    commands: mpsc::Sender<DrawCommand>,
    task: JoinHandle<()>,
}

impl DrawClient {
    /// Starts the task; events go to `events`. Without a key in `hello`,
    /// one is made up for this client, so its strokes stay its own across
    /// reconnects.
    pub fn spawn(
        base_url: impl Into<Endpoint>,
        mut hello: Hello,
        events: mpsc::Sender<NetEvent>,
    ) -> DrawClient {
        let base_url: Endpoint = base_url.into();
        if hello.key.is_none() {
            hello.key = Some(new_key());
        }
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let task = tokio::spawn(run(base_url, hello, rx, events));
        DrawClient { commands, task }
    }

    /// Queues a command; dropped if the task is far behind.
    pub fn send(&self, cmd: DrawCommand) {
        let _ = self.commands.try_send(cmd);
    }
}

/// A fresh random author key.
pub fn new_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState is seeded from the operating system's randomness.
    let part = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", part(), part())
}

impl Drop for DrawClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    base: Endpoint,
    mut hello: Hello,
    mut commands: mpsc::Receiver<DrawCommand>,
    events: mpsc::Sender<NetEvent>,
) {
    let mut backoff = Backoff::default();
    let report = |ev: NetEvent| {
        let events = events.clone();
        async move { events.send(ev).await.is_ok() }
    };
    if !report(NetEvent::State(Transport::Draw, ConnState::Connecting)).await {
        return;
    }
    loop {
        let error = match Session::connect(&base).await {
            Ok(mut session) => {
                backoff.reset();
                if !report(NetEvent::State(Transport::Draw, ConnState::Connected)).await
                    || !report(NetEvent::Draw(DrawEvent::Connected {
                        id: session.id.clone(),
                    }))
                    .await
                {
                    return;
                }
                let end = connected(&mut session, &mut hello, &mut commands, &events).await;
                match end {
                    Ok(()) => {
                        session.close().await;
                        return;
                    }
                    Err(e) => {
                        if !report(NetEvent::Draw(DrawEvent::Disconnected)).await {
                            return;
                        }
                        e.to_string()
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        let delay = backoff.next_delay();
        let at = std::time::Instant::now() + delay;
        if !report(NetEvent::State(
            Transport::Draw,
            ConnState::Retrying { at, error },
        ))
        .await
        {
            return;
        }
        // Commands while away are stale (the board will be resent); only the
        // latest hello matters.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = commands.recv() => match cmd {
                    Some(DrawCommand::Hello(h)) => hello = with_key(h, &hello),
                    Some(_) => {}
                    None => return,
                },
            }
        }
    }
}

/// A new hello keeps the key of the one before unless it brings its own.
fn with_key(mut new: Hello, old: &Hello) -> Hello {
    if new.key.is_none() {
        new.key.clone_from(&old.key);
    }
    new
}

/// Serves one session; `Ok` when the UI has gone away. Moves wait until the
/// server has answered our `hello`, so they are drawn under the author it
/// names.
async fn connected(
    session: &mut Session,
    hello: &mut Hello,
    commands: &mut mpsc::Receiver<DrawCommand>,
    events: &mpsc::Sender<NetEvent>,
) -> Result<(), SessionError> {
    session
        .emit(
            event::HELLO,
            vec![serde_json::to_value(&*hello).unwrap_or(Value::Null)],
        )
        .await?;
    let mut moves = MoveQueue::default();
    let mut next_move = Instant::now();
    let mut resync = Resync::joined();
    let mut welcomed = false;
    loop {
        let due = welcomed && !moves.is_empty();
        let resync_at = resync.due();
        let mut sync_now = false;
        tokio::select! {
            ev = session.next_event() => {
                let (name, args) = ev?;
                if let Some(ev) = DrawEvent::from_socketio(&name, &args) {
                    sync_now = resync.received(&ev, Instant::now());
                    welcomed |= matches!(ev, DrawEvent::Welcome(_));
                    if events.send(NetEvent::Draw(ev)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            _ = tokio::time::sleep_until(resync_at.unwrap_or_else(Instant::now)), if resync_at.is_some() => {
                sync_now = resync.fire();
            }
            cmd = commands.recv() => match cmd {
                None => return Ok(()),
                Some(DrawCommand::Move { x, y, drawing }) => moves.push(x, y, drawing),
                Some(DrawCommand::Hello(h)) => {
                    *hello = with_key(h, hello);
                    session.emit(event::HELLO, vec![serde_json::to_value(&*hello).unwrap_or(Value::Null)]).await?;
                }
                Some(DrawCommand::Undo) => session.emit(event::UNDO, vec![]).await?,
                Some(DrawCommand::Clear) => session.emit(event::CLEAR, vec![]).await?,
            },
            _ = tokio::time::sleep_until(next_move), if due => {
                if let Some((x, y, drawing)) = moves.pop() {
                    session.mouse_move(x, y, drawing).await?;
                    next_move = Instant::now() + MOVE_INTERVAL;
                    resync.sent(drawing, Instant::now());
                    if events.send(NetEvent::Draw(DrawEvent::Sent { x, y, drawing })).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if sync_now {
            session.emit(event::SYNC, vec![]).await?;
            if events
                .send(NetEvent::Draw(DrawEvent::SyncRequested))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_from_base() {
        assert_eq!(
            socket_url("http://127.0.0.1:8080/"),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            socket_url("https://h"),
            "wss://h/socket.io/?EIO=4&transport=websocket"
        );
    }

    #[test]
    fn keys_are_valid_distinct_and_kept_across_hellos() {
        let (a, b) = (new_key(), new_key());
        assert!(rt_protocol::draw::is_key(&a), "{a}");
        assert_ne!(a, b);
        let old = Hello {
            key: Some(a.clone()),
            ..Hello::default()
        };
        let new = with_key(
            Hello {
                colour: Some("#112233".into()),
                ..Hello::default()
            },
            &old,
        );
        assert_eq!(new.key, Some(a));
        assert_eq!(new.colour.as_deref(), Some("#112233"));
    }

    #[test]
    fn move_queue_merges_same_pen_moves_and_keeps_pen_changes() {
        let mut q = MoveQueue::default();
        q.push(1.0, 1.0, false);
        q.push(2.0, 2.0, false);
        q.push(3.0, 3.0, true);
        q.push(4.0, 4.0, true);
        q.push(5.0, 5.0, true);
        q.push(6.0, 6.0, false);
        let all: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            all,
            vec![(2.0, 2.0, false), (5.0, 5.0, true), (6.0, 6.0, false)]
        );
    }

    #[test]
    fn move_queue_is_bounded() {
        let mut q = MoveQueue::default();
        for i in 0..1000 {
            q.push(f64::from(i), 0.0, i % 2 == 0);
        }
        assert!(std::iter::from_fn(|| q.pop()).count() <= MOVE_QUEUE);
    }

    fn error(event: &str, code: &str) -> DrawEvent {
        DrawEvent::Error(ErrorEvent {
            code: code.into(),
            message: String::new(),
            event: event.into(),
        })
    }

    fn last_part() -> DrawEvent {
        DrawEvent::Canvas(CanvasPart {
            width: 2000.0,
            height: 1000.0,
            part: 0,
            parts: 1,
            pens: Vec::new(),
            strokes: Vec::new(),
        })
    }

    #[test]
    fn a_clear_soon_after_drawing_asks_for_the_canvas_again() {
        let t0 = Instant::now();
        let cleared = DrawEvent::Cleared(Cleared { by: "x".into() });
        let mut r = Resync::joined();
        assert!(!r.received(&last_part(), t0));
        // Not drawn lately: nothing to put right.
        r.sent(false, t0);
        assert!(!r.received(&cleared, t0));
        r.sent(true, t0);
        assert!(r.received(&cleared, t0 + Duration::from_millis(500)));
        // One at a time: a second clear while waiting asks again afterwards.
        assert!(!r.received(&cleared, t0 + Duration::from_millis(600)));
        assert!(r.received(&last_part(), t0 + Duration::from_millis(700)));
        assert!(!r.received(&last_part(), t0 + Duration::from_millis(800)));
        assert!(!r.received(&cleared, t0 + CLEAR_RACE + Duration::from_millis(1)));
    }

    #[test]
    fn refusals_resync_once_things_are_quiet() {
        let t0 = Instant::now();
        let mut r = Resync::joined();
        r.received(&last_part(), t0);
        assert!(!r.received(&error("hello", "bad-name"), t0));
        assert_eq!(r.due(), None);
        assert!(!r.received(&error("undo", "nothing-to-undo"), t0));
        assert_eq!(r.due(), Some(t0 + RESYNC_AFTER));
        // A later refusal pushes it back.
        let t1 = t0 + Duration::from_millis(300);
        r.received(&error("mousemove", "rate-limited"), t1);
        assert_eq!(r.due(), Some(t1 + RESYNC_AFTER));
        assert!(r.fire());
        assert_eq!(r.due(), None);
        // That sync is refused: the next one goes out when due.
        assert!(!r.received(&error("sync", "busy"), t1));
        assert!(r.fire());
    }

    #[test]
    fn decodes_board_events() {
        let ev = DrawEvent::from_socketio(
            "moving",
            &[json!({"x": 1, "y": 2.5, "drawing": true, "id": "abc", "extra": 1})],
        );
        assert_eq!(
            ev,
            Some(DrawEvent::Moving {
                id: "abc".into(),
                x: 1.0,
                y: 2.5,
                drawing: true
            })
        );
        assert_eq!(
            DrawEvent::from_socketio(
                "peer",
                &[json!({"id": "abc", "name": "Ann", "colour": "#112233"})]
            ),
            Some(DrawEvent::Peer(Peer {
                id: "abc".into(),
                name: "Ann".into(),
                colour: "#112233".into(),
                author: String::new(),
            }))
        );
        assert_eq!(
            DrawEvent::from_socketio("clientdisconnect", &[json!("abc")]),
            Some(DrawEvent::ClientDisconnect("abc".into()))
        );
        assert_eq!(DrawEvent::from_socketio("moving", &[json!({"x": 1})]), None);
        assert_eq!(DrawEvent::from_socketio("other", &[]), None);
    }
}
