//! `bench draw`: N Socket.IO clients over WebSocket on the drawing board,
//! K of them drawing at 20 Hz. Every `mousemove` carries two extra fields the
//! server relays untouched (`t`: send time, `s`: sender), so each receiver
//! knows the delivery latency. Reports deliveries/s, latency and server CPU
//! per delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rt_protocol::draw::event;
use rt_protocol::engineio::{EnginePacket, SocketKind, SocketPacket};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::net::Connector;
use super::report::{Counters, CpuMark, Latencies, Progress, Summary};
use super::ws::{Message, WsConn};
use super::{Common, MAX_CONNECTIONS, MAX_SECONDS, Target};

/// Engine.IO over WebSocket only, protocol 4.
const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
/// The classic page's pace: one move per 50 ms.
const DRAW_HZ: u64 = 20;

/// `bench draw` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Socket.IO clients on the board.
    #[arg(long, default_value_t = 500, value_name = "N",
          value_parser = clap::value_parser!(u64).range(2..=MAX_CONNECTIONS))]
    pub clients: u64,

    /// Clients drawing (20 moves/s each); every other client receives them.
    #[arg(long, default_value_t = 10, value_name = "K",
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub drawers: u64,

    /// Seconds of measurement (after the warm-up).
    #[arg(long, default_value_t = 10, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub duration: u64,

    /// Seconds of drawing before measuring.
    #[arg(long, default_value_t = 2, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,

    /// Every Nth client decodes each message fully with the Engine.IO and
    /// Socket.IO codecs; the others only read the fields they measure.
    #[arg(long, default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub verify_every: u64,

    /// Clients connecting at once.
    #[arg(long, default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connect_concurrency: u64,

    /// Give up when the clients are not all connected after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,

    #[command(flatten)]
    pub common: Common,
}

/// What the client tasks share.
struct Shared {
    base: Instant,
    ready: AtomicUsize,
    /// Drawers start once every client is connected.
    go: CancellationToken,
    measuring: AtomicBool,
    /// Drawers in the run: their phases are spread evenly over the period.
    drawers: u64,
    /// Every frame received, measured or not (to see the join traffic end).
    frames: AtomicU64,
    counters: Arc<Counters>,
    stop: CancellationToken,
}

/// One client's tally over the measured phase.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    delivered: u64,
    latencies: Latencies,
    errors: Vec<String>,
}

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        args.drawers < args.clients,
        "--drawers must be fewer than --clients (drawers do not receive their own moves)"
    );
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        base: Instant::now(),
        ready: AtomicUsize::new(0),
        go: CancellationToken::new(),
        measuring: AtomicBool::new(false),
        drawers: args.drawers,
        frames: AtomicU64::new(0),
        counters: counters.clone(),
        stop: CancellationToken::new(),
    });
    let connector = Arc::new(Connector::to_nodes(&target.addrs, args.common.sources));
    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let progress = Progress::start("draw", counters.clone(), !args.common.quiet);
    let mut summary = Summary::new("draw", "delivery");
    summary.param("clients", args.clients);
    summary.param("drawers", args.drawers);
    summary.param("hz", DRAW_HZ);
    summary.param("duration_s", args.duration);
    summary.param("threads", args.common.threads);

    let mut tasks = JoinSet::new();
    for i in 0..args.clients {
        tasks.spawn(client(
            i,
            i < args.drawers,
            i % args.verify_every == 0,
            connector.clone(),
            shared.clone(),
            gate.clone(),
        ));
    }
    let n = args.clients as usize;
    let deadline = Instant::now() + Duration::from_secs(args.connect_timeout);
    while shared.ready.load(Ordering::Relaxed) < n && Instant::now() < deadline && tasks.len() == n
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = shared.ready.load(Ordering::Relaxed);
    summary.figure("clients_connected", ready as u64);
    if ready < n {
        summary.errors.push(format!(
            "only {ready} of {n} clients connected within {} s",
            args.connect_timeout
        ));
        shared.stop.cancel();
    } else {
        // Joins make the server send to everyone (the peer list); start
        // drawing once that traffic has stopped.
        let quiet_start = Instant::now();
        let mut last = shared.frames.load(Ordering::Relaxed);
        let mut still = 0;
        while still < 3 && quiet_start.elapsed() < Duration::from_secs(args.connect_timeout) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = shared.frames.load(Ordering::Relaxed);
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        summary.figure("join_traffic_frames", last);
        summary.figure(
            "join_traffic_drain_s",
            (quiet_start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        );
        shared.go.cancel();
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let server_mark = target.cpu_mark();
        let own_mark = CpuMark::take(std::process::id());
        let before = counters.messages.load(Ordering::Relaxed);
        let start = Instant::now();
        shared.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
        shared.measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let delivered = counters.messages.load(Ordering::Relaxed) - before;
        summary.server = server_mark.and_then(|m| m.figures(delivered));
        summary.generator = own_mark.and_then(|m| m.figures(delivered));
        summary.elapsed_s = elapsed.as_secs_f64();
        shared.stop.cancel();
    }

    let mut total = Tally::default();
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(t) = r {
                total.sent += t.sent;
                total.delivered += t.delivered;
                total.latencies.extend(t.latencies);
                if total.errors.len() < 20 {
                    total.errors.extend(t.errors);
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        summary
            .errors
            .push("clients did not stop within 30 s".into());
    }
    progress.finish();
    let secs = summary.elapsed_s.max(1e-9);
    let receivers = args.clients - 1;
    summary.figure("moves_sent", total.sent);
    summary.figure("deliveries", total.delivered);
    summary.figure("deliveries_per_s", (total.delivered as f64 / secs).round());
    // Each move goes to every client but its sender.
    summary.figure("deliveries_expected", total.sent * receivers);
    summary.latency("delivery", total.latencies);
    summary.errors.extend(total.errors);
    Ok(summary)
}

/// One client: connect, then receive (and draw, for a drawer) until stop.
async fn client(
    i: u64,
    drawer: bool,
    verify: bool,
    connector: Arc<Connector>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) -> Tally {
    let mut tally = Tally {
        latencies: Latencies::with_capacity(if drawer { 0 } else { 4096 }),
        ..Tally::default()
    };
    let mut conn = loop {
        let permit = gate.acquire().await;
        let conn = tokio::select! {
            c = join(&connector) => c,
            _ = shared.stop.cancelled() => return tally,
        };
        drop(permit);
        match conn {
            Ok(c) => break c,
            Err(JoinError::Busy) => {
                // Spread the retries so they do not arrive as one burst.
                let pause = Duration::from_millis(500 + (i % 20) * 50);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = shared.stop.cancelled() => return tally,
                }
            }
            Err(JoinError::Failed(e)) => {
                shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                tally.errors.push(format!("client {i}: {e}"));
                return tally;
            }
        }
    };
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    shared.ready.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = session(i, drawer, verify, &mut conn, &shared, &mut tally).await {
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        tally.errors.push(format!("client {i}: {e}"));
    }
    conn.close(1000).await;
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    tally
}

/// Why a join did not succeed.
pub(crate) enum JoinError {
    /// The board has no canvas for us for now (`busy`: too many joiners
    /// wait for theirs); try again later.
    Busy,
    Failed(String),
}

impl From<String> for JoinError {
    fn from(e: String) -> Self {
        JoinError::Failed(e)
    }
}

/// WebSocket upgrade, Engine.IO open, Socket.IO connect to `/`, then the
/// board's answer: the whole canvas (joined: the board sends it after the
/// participant list, paced by its join rate) or an error (`busy` when too
/// many joiners wait for their canvas).
pub(crate) async fn join(connector: &Connector) -> Result<WsConn, JoinError> {
    let mut conn = WsConn::connect(connector, PATH)
        .await
        .map_err(|e| e.to_string())?;
    match next_text(&mut conn).await? {
        t if matches!(EnginePacket::decode(&t), Ok(EnginePacket::Open(_))) => {}
        t => return Err(format!("expected the open packet, got {t:?}").into()),
    }
    let connect = EnginePacket::Message(SocketPacket::connect(None).encode()).encode();
    conn.send_text(connect.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let t = next_text(&mut conn).await?;
        let m = match EnginePacket::decode(&t) {
            Ok(EnginePacket::Message(m)) => m,
            // The server pings at once; unanswered, it closes the session
            // after its ping timeout (20 s).
            Ok(EnginePacket::Ping(d)) => {
                conn.send_text(EnginePacket::Pong(d).encode().as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            _ => continue,
        };
        let Ok(p) = SocketPacket::decode(&m) else {
            continue;
        };
        if p.kind == SocketKind::ConnectError {
            return Err(format!("connection refused: {:?}", p.data).into());
        }
        match p.as_event() {
            Some((name, args)) if name == event::CANVAS => {
                let part = |key: &str| args.first().and_then(|a| a.get(key)?.as_u64());
                if let (Some(part), Some(parts)) = (part("part"), part("parts"))
                    && part + 1 >= parts
                {
                    return Ok(conn);
                }
            }
            Some((name, args)) if name == event::ERROR => {
                let code = args
                    .first()
                    .and_then(|a| a.get("code"))
                    .and_then(|c| c.as_str());
                if code == Some("busy") {
                    conn.close(1000).await;
                    return Err(JoinError::Busy);
                }
                return Err(format!("join refused: {args:?}").into());
            }
            _ => {}
        }
    }
}

async fn next_text(conn: &mut WsConn) -> Result<String, String> {
    match conn.next().await.map_err(|e| e.to_string())? {
        Message::Text(t) => String::from_utf8(t.to_vec()).map_err(|e| e.to_string()),
        other => Err(format!("unexpected {other:?}")),
    }
}

async fn session(
    i: u64,
    drawer: bool,
    verify: bool,
    conn: &mut WsConn,
    shared: &Shared,
    tally: &mut Tally,
) -> Result<(), String> {
    // Read from the start: the server greets every join with traffic to
    // everyone, which must be drained, not left queued on its side.
    let period = Duration::from_millis(1000 / DRAW_HZ);
    let mut tick: Option<tokio::time::Interval> = None;
    let mut step = 0u64;
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return Ok(()),
            _ = shared.go.cancelled(), if drawer && tick.is_none() => {
                // Spread the drawers evenly over the 50 ms period, as
                // independent people drawing would be, not in one burst.
                let offset = period.mul_f64(i as f64 / shared.drawers.max(1) as f64);
                let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick = Some(t);
            }
            _ = async { tick.as_mut().expect("checked").tick().await }, if tick.is_some() => {
                step += 1;
                let frame = mousemove(i, step, shared.base.elapsed().as_nanos() as u64);
                conn.send_text(frame.as_bytes()).await.map_err(|e| e.to_string())?;
                if shared.measuring.load(Ordering::Relaxed) {
                    tally.sent += 1;
                }
            }
            r = conn.fill() => {
                r.map_err(|e| e.to_string())?;
                while let Some(m) = conn.next_buffered().map_err(|e| e.to_string())? {
                    handle(m, verify, conn, shared, tally).await?;
                }
                conn.flush().await.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// A `mousemove` walking a circle, with the send time `t` (ns since the
/// bench started) and sender `s`.
fn mousemove(i: u64, step: u64, t: u64) -> String {
    let angle = step as f64 / 20.0 + i as f64;
    let x = (1000.0 + 400.0 * angle.cos()).round();
    let y = (500.0 + 400.0 * angle.sin()).round();
    // Pen up every 100 moves, so strokes stay short as on the classic page.
    let drawing = !step.is_multiple_of(100);
    rt_protocol::engineio::event_frame(
        event::MOUSEMOVE,
        [json!({"x": x, "y": y, "drawing": drawing, "t": t, "s": i})],
    )
}

async fn handle(
    m: Message,
    verify: bool,
    conn: &mut WsConn,
    shared: &Shared,
    tally: &mut Tally,
) -> Result<(), String> {
    shared.frames.fetch_add(1, Ordering::Relaxed);
    let text = match m {
        Message::Text(t) => t,
        Message::Close(code) => return Err(format!("closed by the server ({code:?})")),
        Message::Binary(_) => return Err("unexpected binary frame".into()),
    };
    // Engine.IO ping: answer at once.
    if text.first() == Some(&b'2') {
        conn.queue_text(EnginePacket::Pong(String::new()).encode().as_bytes());
        return Ok(());
    }
    let sent_at = if verify {
        decode_moving(&text)?
    } else {
        scan_moving(&text)
    };
    if let Some(t) = sent_at
        && shared.measuring.load(Ordering::Relaxed)
    {
        let now = shared.base.elapsed().as_nanos() as u64;
        tally.latencies.push_nanos(now.saturating_sub(t));
        tally.delivered += 1;
        shared.counters.add_message();
    }
    Ok(())
}

/// Full decode through the Engine.IO and Socket.IO codecs: the send time of
/// a `moving` event, `None` for other packets.
fn decode_moving(text: &Bytes) -> Result<Option<u64>, String> {
    let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    let EnginePacket::Message(m) = EnginePacket::decode(text).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let packet = SocketPacket::decode(&m).map_err(|e| e.to_string())?;
    let Some((name, args)) = packet.as_event() else {
        return Ok(None);
    };
    if name != event::MOVING {
        return Ok(None);
    }
    let arg = args.first().ok_or("moving without an argument")?;
    if arg.get("id").and_then(|v| v.as_str()).is_none() {
        return Err(format!("moving without the sender's id: {arg}"));
    }
    Ok(arg.get("t").and_then(|v| v.as_u64()))
}

/// The cheap path: the `t` field of a `42["moving",{…}]` frame.
fn scan_moving(text: &[u8]) -> Option<u64> {
    let prefix = b"42[\"moving\",";
    if !text.starts_with(prefix) {
        return None;
    }
    let rest = &text[prefix.len()..];
    let at = rest.windows(4).position(|w| w == b"\"t\":")? + 4;
    let digits = rest[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_decoders_agree_on_a_relayed_move() {
        let frame = Bytes::from_static(
            br#"42["moving",{"x":1.0,"y":2.0,"drawing":true,"t":123456789,"s":3,"id":"AbC"}]"#,
        );
        assert_eq!(scan_moving(&frame), Some(123456789));
        assert_eq!(decode_moving(&frame).unwrap(), Some(123456789));
        let other = Bytes::from_static(br#"42["peers",[]]"#);
        assert_eq!(scan_moving(&other), None);
        assert_eq!(decode_moving(&other).unwrap(), None);
        let no_id = Bytes::from_static(br#"42["moving",{"x":1,"y":2,"t":5}]"#);
        assert!(decode_moving(&no_id).is_err());
    }

    #[test]
    fn moves_stay_on_the_board() {
        for step in 0..500 {
            let f = mousemove(7, step, 42);
            let p = EnginePacket::decode(&f).unwrap();
            let EnginePacket::Message(m) = p else {
                panic!("{f}")
            };
            let s = SocketPacket::decode(&m).unwrap();
            let (name, args) = s.as_event().unwrap();
            assert_eq!(name, event::MOUSEMOVE);
            let x = args[0]["x"].as_f64().unwrap();
            let y = args[0]["y"].as_f64().unwrap();
            assert!((0.0..=2000.0).contains(&x) && (0.0..=1000.0).contains(&y));
            assert_eq!(args[0]["t"], 42);
        }
    }
}
