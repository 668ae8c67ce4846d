//! The drawing board over Socket.IO, driven with raw WebSocket clients that
//! speak Engine.IO v4 / Socket.IO v5 through `rt_protocol::engineio`.

mod common;

use std::time::Duration;

use futures_util::SinkExt;
use rt_protocol::draw::{CanvasPart, Peer};
use rt_protocol::engineio::EnginePacket;
use rt_server::Config;
use rt_server::stats::App;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod draw_support;
use draw_support::*;

#[tokio::test]
async fn moving_reaches_others_with_the_senders_id_and_is_not_echoed() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.emit(
        "mousemove",
        vec![json!({"x": 10, "y": 20.5, "drawing": false, "tool": "pen", "id": "forged"})],
    )
    .await;
    let moving = b.expect("moving").await;
    assert_eq!(
        moving,
        json!({"x": 10, "y": 20.5, "drawing": false, "tool": "pen", "id": a.id})
    );
    a.expect_none("moving").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn clientdisconnect_names_the_leaver() {
    let server = common::server().await;
    let a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    let a_id = a.id.clone();
    a.close().await;
    assert_eq!(b.expect("clientdisconnect").await, json!(a_id));
    // The leaver's id is the whole news: no list goes out again.
    b.expect_none("peers").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_joiner_gets_the_list_and_the_others_get_its_entry() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = Client::connect(&server.url()).await;
    b.canvas().await;
    let list: Vec<Peer> = serde_json::from_value(b.expect("peers").await).unwrap();
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str(), b.id.as_str()]);
    let entry: Peer = serde_json::from_value(a.expect("peer").await).unwrap();
    assert_eq!(&entry, list.iter().find(|p| p.id == b.id).unwrap());
    assert!(entry.name.starts_with("guest-"), "{entry:?}");
    assert!(rt_protocol::draw::is_colour(&entry.colour));
    assert_eq!(entry.author, b.id);
    a.expect_none("peers").await;
    b.expect_none("peer").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_late_joiner_gets_the_canvas_then_live_events() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    a.mv(100.0, 100.0, false).await;
    a.mv(110.0, 100.0, true).await;
    a.mv(120.0, 105.0, true).await;
    a.mv(130.0, 105.0, false).await;
    // Moves are asynchronous; wait until the canvas has them.
    wait_for_segments(&server, 2).await;
    let mut c = Client::connect(&server.url()).await;
    let parts = c.canvas().await;
    assert_eq!(parts.len(), 1);
    assert_eq!((parts[0].width, parts[0].height), (2000.0, 1000.0));
    let strokes = &parts[0].strokes;
    assert_eq!(strokes.len(), 1);
    assert_eq!(strokes[0].by, a.id);
    assert_eq!(
        strokes[0].points,
        vec![100.0, 100.0, 110.0, 100.0, 120.0, 105.0]
    );
    let pen = parts[0].pens.iter().find(|p| p.id == a.id).unwrap();
    assert_eq!((pen.x, pen.y, pen.stroke), (130.0, 105.0, None));
    c.expect("peers").await;
    a.mv(1.0, 2.0, false).await;
    assert_eq!(c.expect("moving").await["id"], json!(a.id));
    server.shutdown().await.unwrap();
}

/// The events named in `names` that `c` receives next, in order, until
/// `n` have come.
async fn next_of(c: &mut Client, names: &[&str], n: usize) -> Vec<(String, Value)> {
    let mut got = Vec::new();
    while got.len() < n {
        let (name, args) = c.read_event(WAIT).await.expect("an event in time");
        if names.contains(&name.as_str()) {
            got.push((name, args.into_iter().next().unwrap_or(Value::Null)));
        }
    }
    got
}

#[tokio::test]
async fn gathered_moves_keep_their_place_among_other_events() {
    let mut config = Config::for_tests();
    config.draw.relay_tick_ms = rt_server::draw::MAX_RELAY_TICK_MS;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    a.mv(5.0, 5.0, true).await;
    b.mv(7.0, 7.0, false).await;
    a.mv(9.0, 9.0, true).await;
    a.emit("clear", vec![]).await;
    let got = next_of(&mut b, &["moving", "cleared"], 4).await;
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["moving", "moving", "moving", "cleared"]);
    let xs: Vec<&Value> = got[..3].iter().map(|(_, d)| &d["x"]).collect();
    assert_eq!(xs, [&json!(0.0), &json!(5.0), &json!(9.0)]);
    // a gets b's move, never its own. b's move and a's clear travel over
    // two connections, so which reaches the board first is not fixed.
    let got = next_of(&mut a, &["moving", "cleared"], 2).await;
    let movers: Vec<&Value> = got
        .iter()
        .filter(|(n, _)| n == "moving")
        .map(|(_, d)| &d["id"])
        .collect();
    assert_eq!(movers, [&json!(b.id)]);
    assert!(got.iter().any(|(n, _)| n == "cleared"), "{got:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_joiner_never_gets_a_move_its_canvas_already_has() {
    let mut config = Config::for_tests();
    config.draw.relay_tick_ms = rt_server::draw::MAX_RELAY_TICK_MS;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    a.mv(5.0, 5.0, true).await;
    a.mv(10.0, 5.0, true).await;
    // Whether the moves are relayed before or after c's snapshot, c sees
    // each segment once after the canvas (part 0 replaces what c drew from
    // the moves relayed before it).
    let mut c = Client::connect(&server.url()).await;
    let mut before = 0;
    let parts = loop {
        let (name, args) = c.read_event(WAIT).await.expect("an event in time");
        match name.as_str() {
            "moving" => before += 1,
            "canvas" => {
                let first: CanvasPart = serde_json::from_value(args[0].clone()).unwrap();
                assert_eq!(first.parts, 1);
                break vec![first];
            }
            _ => {}
        }
    };
    let in_canvas: usize = parts[0]
        .strokes
        .iter()
        .map(|s| s.points.len() / 2 - 1)
        .sum();
    // How many of a's moves the canvas has, by where a's pen is.
    let applied = match parts[0].pens.iter().find(|p| p.id == a.id) {
        None => 0,
        Some(pen) if pen.x == 0.0 => 1,
        Some(pen) if pen.x == 5.0 => 2,
        Some(_) => 3,
    };
    assert!(
        before <= applied,
        "{before} relayed before a canvas with {applied}"
    );
    let relayed = 3 - applied;
    let moves = next_of(&mut c, &["moving"], relayed).await;
    c.expect_none("moving").await;
    let drawn = moves
        .iter()
        .filter(|(_, d)| d["drawing"] == json!(true))
        .count();
    assert_eq!(
        in_canvas + drawn,
        2,
        "canvas {in_canvas}, relayed {moves:?}"
    );
    assert_eq!(next_of(&mut b, &["moving"], 3).await.len(), 3);
    server.shutdown().await.unwrap();
}

/// What a client draws from the events it receives, as the page and the
/// TUI do: `canvas` part 0 starts over, `moving` extends the sender's pen.
#[derive(Default)]
struct Mirror {
    board: rt_protocol::draw::Board,
    authors: std::collections::HashMap<String, String>,
    has_canvas: bool,
}

impl Mirror {
    fn apply(&mut self, name: &str, arg: &Value) {
        match name {
            "canvas" => {
                let part: CanvasPart = serde_json::from_value(arg.clone()).unwrap();
                self.board.load_part(&part);
                self.has_canvas |= part.part + 1 == part.parts;
            }
            "peers" => {
                for p in serde_json::from_value::<Vec<Peer>>(arg.clone()).unwrap() {
                    self.authors.insert(p.id.clone(), p.author().to_string());
                }
            }
            "peer" => {
                let p: Peer = serde_json::from_value(arg.clone()).unwrap();
                self.authors.insert(p.id.clone(), p.author().to_string());
            }
            "moving" => {
                let id = arg["id"].as_str().unwrap();
                let author = self.authors.get(id).cloned().unwrap_or(id.to_string());
                let p = rt_protocol::draw::Point {
                    x: arg["x"].as_f64().unwrap(),
                    y: arg["y"].as_f64().unwrap(),
                };
                let drawing = arg["drawing"].as_bool().unwrap();
                self.board.apply_move_as(id, &author, p, drawing, "#000000");
            }
            "clientdisconnect" => self.board.leave(arg.as_str().unwrap()),
            _ => {}
        }
    }

    /// Each stroke's author and points, in order: what a viewer sees.
    fn drawn(board: &rt_protocol::draw::Board) -> Vec<(String, Vec<rt_protocol::draw::Point>)> {
        let mut v: Vec<_> = board
            .strokes()
            .map(|s| (s.by.clone(), s.points.clone()))
            .collect();
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    }
}

#[tokio::test]
async fn a_burst_of_joins_is_on_the_board_at_once_and_gets_its_canvases_in_turn() {
    let mut config = Config::for_tests();
    config.draw.join_rate = 4;
    config.draw.rate = 1_000;
    let server = common::server_with(config).await;
    let mut drawer = joined(&server.url()).await;
    drawer.mv(0.0, 0.0, false).await;
    drawer.mv(10.0, 0.0, true).await;
    wait_for_segments(&server, 1).await;
    // Let the drawer's join canvas come back into the budget.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = std::time::Instant::now();
    let mut joiners = Vec::new();
    for _ in 0..12 {
        joiners.push(Client::connect(&server.url()).await);
    }
    // Every joiner is listed and gets live moves before most canvases.
    let mut mirrors: Vec<Mirror> = (0..joiners.len()).map(|_| Mirror::default()).collect();
    for step in 0..20u32 {
        drawer.mv(20.0 + f64::from(step), 5.0, true).await;
    }
    for (c, m) in joiners.iter_mut().zip(&mut mirrors) {
        let mut moves = 0;
        while moves < 20 {
            let (name, args) = c.read_event(WAIT).await.expect("live moves in time");
            let arg = args.into_iter().next().unwrap_or(Value::Null);
            moves += usize::from(name == "moving");
            m.apply(&name, &arg);
        }
    }
    let early = mirrors.iter().filter(|m| m.has_canvas).count();
    assert!(
        early <= 8,
        "{early} of 12 canvases within the first second at 4/s"
    );
    drawer.mv(50.0, 50.0, true).await;
    // All canvases come, in turn, and each joiner ends with the server's drawing.
    for (c, m) in joiners.iter_mut().zip(&mut mirrors) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut last_move = false;
        while !(m.has_canvas && last_move) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (name, args) = c.read_event(left).await.expect("the canvas in time");
            let arg = args.into_iter().next().unwrap_or(Value::Null);
            last_move |= name == "moving" && arg["x"] == json!(50.0);
            m.apply(&name, &arg);
        }
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "canvases not paced"
    );
    wait_for_segments(&server, 22).await;
    let want = Mirror::drawn(&server.state.draw.snapshot().await.unwrap());
    for m in &mirrors {
        assert_eq!(Mirror::drawn(&m.board), want);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn welcome_waits_for_the_joiners_canvas() {
    let mut config = Config::for_tests();
    config.draw.join_rate = 1;
    let server = common::server_with(config).await;
    let _a = joined(&server.url()).await;
    let mut b = Client::connect(&server.url()).await;
    b.emit("hello", vec![json!({"name": "bee"})]).await;
    let mut order = Vec::new();
    while !order.contains(&"welcome".to_string()) {
        let (name, _) = b.read_event(WAIT).await.expect("an event in time");
        order.push(name);
    }
    let canvas = order.iter().position(|n| n == "canvas").expect("a canvas");
    assert!(canvas < order.len() - 1, "{order:?}");
    assert!(order[..canvas].contains(&"peers".to_string()), "{order:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn beyond_the_canvas_queue_a_joiner_is_told_stays_and_may_sync() {
    let mut config = Config::for_tests();
    config.draw.join_rate = 1;
    config.draw.canvas_queue = 1;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    let mut queued = Client::connect(&server.url()).await;
    let mut refused = Client::connect(&server.url()).await;
    refused.emit("hello", vec![json!({"name": "late"})]).await;
    let err = refused.expect("error").await;
    assert_eq!(
        (&err["code"], &err["event"]),
        (&json!("busy"), &json!("sync"))
    );
    // Still on the board: it is welcomed and gets live events.
    refused.expect("welcome").await;
    a.mv(1.0, 1.0, false).await;
    assert_eq!(refused.expect("moving").await["id"], json!(a.id));
    // Once the queue is empty and the budget has room, a sync is answered.
    queued.canvas().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    refused.emit("sync", vec![]).await;
    refused.canvas().await;
    assert_eq!(server.state.stats.open(App::Draw), 3);
    server.shutdown().await.unwrap();
}

async fn wait_for_segments(server: &rt_server::Server, n: usize) {
    for _ in 0..100 {
        if server.state.draw.snapshot().await.unwrap().segments() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the canvas never reached {n} segments");
}

#[tokio::test]
async fn invalid_input_gets_an_error_and_is_not_broadcast() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    let bad = [
        json!({"x": -1, "y": 5, "drawing": true}),
        json!({"x": 2001, "y": 5, "drawing": true}),
        json!({"x": 5, "y": 1000.5, "drawing": true}),
        json!({"x": "5", "y": 5, "drawing": true}),
        json!({"x": 5, "y": 5, "drawing": "yes"}),
        json!({"x": 5, "y": 5}),
        json!({"x": 5, "y": 5, "drawing": true, "note": "x".repeat(2000)}),
        json!("hello"),
        json!(null),
    ];
    for arg in &bad {
        a.emit("mousemove", vec![arg.clone()]).await;
        let err = a.expect("error").await;
        assert_eq!(err["event"], "mousemove", "{arg}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("mousemove"),
            "{err}"
        );
    }
    a.emit("mousemove", vec![]).await;
    a.expect("error").await;
    a.emit("hello", vec![json!({"name": "x".repeat(100)})])
        .await;
    assert_eq!(a.expect("error").await["code"], "bad-name");
    a.emit("hello", vec![json!({"colour": "blue"})]).await;
    assert_eq!(a.expect("error").await["code"], "bad-colour");
    a.emit("paint", vec![json!(1)]).await;
    let err = a.expect("error").await;
    assert_eq!(
        (err["code"].as_str(), err["event"].as_str()),
        (Some("unknown-event"), Some("paint"))
    );
    b.expect_none("moving").await;
    // Non-JSON garbage and unknown packet types do not bring the server down.
    a.ws.send(Message::text("42[\"mousemove\",{"))
        .await
        .unwrap();
    a.ws.send(Message::text("4zzz")).await.unwrap();
    let mut c = joined(&server.url()).await;
    c.mv(3.0, 4.0, false).await;
    assert_eq!(b.expect("moving").await["x"], json!(3.0));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn undo_removes_only_the_callers_last_stroke() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    for (c, y) in [(&mut a, 10.0), (&mut b, 50.0)] {
        c.mv(0.0, y, false).await;
        c.mv(10.0, y, true).await;
        c.mv(20.0, y, false).await;
        c.mv(30.0, y, true).await;
    }
    wait_for_segments(&server, 4).await;
    a.emit("undo", vec![]).await;
    let undone = b.expect("undone").await;
    assert_eq!(undone["by"], json!(a.id));
    assert_eq!(a.expect("undone").await, undone);
    let board = server.state.draw.snapshot().await.unwrap();
    let mut left: Vec<(String, f64)> = board
        .strokes()
        .map(|s| (s.by.clone(), s.points[1].x))
        .collect();
    left.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let mut expected = vec![
        (a.id.clone(), 10.0),
        (b.id.clone(), 10.0),
        (b.id.clone(), 30.0),
    ];
    expected.sort_by(|x, y| x.partial_cmp(y).unwrap());
    assert_eq!(left, expected);
    // Undo with nothing of one's own left is a no-op for the others.
    a.emit("undo", vec![]).await;
    a.emit("undo", vec![]).await;
    b.expect("undone").await;
    b.expect_none("undone").await;
    // …and the caller hears that there was nothing to undo.
    assert_eq!(a.expect("error").await["code"], "nothing-to-undo");
    assert_eq!(server.state.draw.snapshot().await.unwrap().segments(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn clear_is_broadcast_with_who_cleared() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    a.mv(5.0, 5.0, true).await;
    wait_for_segments(&server, 1).await;
    b.emit("clear", vec![]).await;
    assert_eq!(a.expect("cleared").await, json!({"by": b.id}));
    assert_eq!(b.expect("cleared").await, json!({"by": b.id}));
    let mut c = Client::connect(&server.url()).await;
    assert!(c.canvas().await[0].strokes.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hello_names_peers_and_defaults_are_assigned() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.emit("hello", vec![json!({"name": "Ann", "colour": "#00AA00"})])
        .await;
    let ann: Peer = serde_json::from_value(b.expect("peer").await).unwrap();
    assert_eq!(ann.id, a.id);
    assert_eq!((ann.name.as_str(), ann.colour.as_str()), ("Ann", "#00aa00"));
    assert_eq!(
        ann,
        serde_json::from_value(a.expect("welcome").await).unwrap()
    );
    // The sender's own list is updated the same way (after b's join).
    let joined: Peer = serde_json::from_value(a.expect("peer").await).unwrap();
    assert_eq!(joined.id, b.id);
    assert!(joined.name.starts_with("guest-"), "{joined:?}");
    assert!(rt_protocol::draw::is_colour(&joined.colour));
    let own: Peer = serde_json::from_value(a.expect("peer").await).unwrap();
    assert_eq!(own, ann);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_is_rate_limited() {
    let mut config = Config::for_tests();
    config.draw.rate = 5;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    let start = std::time::Instant::now();
    for i in 0..30 {
        a.mv(f64::from(i), 1.0, false).await;
    }
    // The bucket refills while the flood is being sent.
    let refill = (start.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert_eq!(a.expect("error").await["code"], "rate-limited");
    let mut got = 0;
    while let Some((name, _)) = b.read_event(QUIET).await {
        if name == "moving" {
            got += 1;
        }
    }
    assert!(
        (5..=6 + refill).contains(&got),
        "{got} moves passed a limit of 5/s"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_canvas_is_bounded() {
    let mut config = Config::for_tests();
    config.draw.max_segments = 3;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    for i in 1..=3 {
        a.mv(f64::from(i), 0.0, true).await;
    }
    for _ in 0..4 {
        b.expect("moving").await;
    }
    a.mv(4.0, 0.0, true).await;
    assert_eq!(a.expect("error").await["code"], "canvas-full");
    b.expect_none("moving").await;
    // Pointer moves without drawing still pass; clearing makes room.
    a.mv(5.0, 0.0, false).await;
    b.expect("moving").await;
    a.emit("clear", vec![]).await;
    b.expect("cleared").await;
    a.mv(6.0, 0.0, true).await;
    b.expect("moving").await;
    wait_for_segments(&server, 1).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_board_takes_at_most_max_clients() {
    let mut config = Config::for_tests();
    config.draw.max_clients = 1;
    let server = common::server_with(config).await;
    let _a = joined(&server.url()).await;
    let mut b = Client::connect(&server.url()).await;
    let err = b.expect("error").await;
    assert_eq!(err["code"], "board-full");
    b.expect_disconnect().await;
    assert_eq!(server.state.stats.open(App::Draw), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_are_counted() {
    let server = common::server().await;
    let a = joined(&server.url()).await;
    let _b = joined(&server.url()).await;
    assert_eq!(server.state.stats.open(App::Draw), 2);
    a.close().await;
    for _ in 0..100 {
        if server.state.stats.open(App::Draw) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.state.stats.open(App::Draw), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn strokes_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("rt-draw-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = Config::for_tests();
    config.data = Some(dir.join("rt.db"));
    let server = common::server_with(config.clone()).await;
    let mut a = joined(&server.url()).await;
    a.mv(1.0, 1.0, false).await;
    a.mv(2.0, 2.0, true).await;
    a.mv(3.0, 3.0, true).await;
    a.mv(4.0, 4.0, false).await;
    a.mv(5.0, 5.0, true).await;
    wait_for_segments(&server, 3).await;
    a.emit("undo", vec![]).await;
    a.expect("undone").await;
    server.shutdown().await.unwrap();

    let server = common::server_with(config).await;
    let mut c = Client::connect(&server.url()).await;
    let parts = c.canvas().await;
    assert_eq!(parts[0].strokes.len(), 1);
    assert_eq!(
        parts[0].strokes[0].points,
        vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_large_canvas_arrives_in_parts_over_polling_limits() {
    let mut config = Config::for_tests();
    config.draw.rate = 100_000;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    // About 20,000 segments: more than one part. Sent in batches so the
    // command queue never fills.
    let mut expected = 0;
    for batch in 0..20u32 {
        for i in batch * 1000..(batch + 1) * 1000 {
            let x = f64::from(i % 2000) + 0.3;
            let y = f64::from((i / 2000) * 90) + 0.7;
            let drawing = i % 50 != 0;
            a.mv(x, y, drawing).await;
            expected += usize::from(drawing);
        }
        wait_for_segments(&server, expected).await;
    }
    let mut c = Client::connect(&server.url()).await;
    let parts = c.canvas().await;
    assert!(parts.len() > 1, "one part for {expected} segments");
    let mut board = rt_protocol::draw::Board::new();
    for part in &parts {
        let len = serde_json::to_string(part).unwrap().len() as u64;
        assert!(len <= rt_server::draw::MAX_PAYLOAD, "part of {len} bytes");
        board.load_part(part);
    }
    assert_eq!(board.segments(), expected);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn polling_with_an_unknown_sid_is_refused() {
    let server = common::server().await;
    let res = common::http()
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling&sid=nope",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // The polling handshake works, advertising the upgrade and our payload limit.
    let body = common::http()
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            server.url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let EnginePacket::Open(info) = EnginePacket::decode(&body).unwrap() else {
        panic!("not an open packet: {body}")
    };
    assert_eq!(info.upgrades, vec!["websocket"]);
    assert_eq!(info.max_payload, rt_server::draw::MAX_PAYLOAD);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_client_script_is_served_as_javascript() {
    let server = common::server().await;
    let res = common::http()
        .get(format!("{}/socket.io/socket.io.js", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/javascript"), "{ct}");
    let body = res.text().await.unwrap();
    assert!(body.contains("EIO=4"), "not our client");
    // The drawing page is served too.
    let res = common::http()
        .get(format!("{}/draw/", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("/socket.io/socket.io.js")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_with_connected_clients_is_prompt() {
    let server = common::server().await;
    let _a = joined(&server.url()).await;
    let _b = joined(&server.url()).await;
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown within 5 s")
        .unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut() {
    let mut config = Config::for_tests();
    config.draw.rate = 1_000_000;
    let server = common::server_with(config).await;
    let http = common::http();
    // A long-polling client that connects and then never polls again.
    let base = format!("{}/socket.io/?EIO=4&transport=polling", server.url());
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let EnginePacket::Open(info) = EnginePacket::decode(&open).unwrap() else {
        panic!("{open}")
    };
    let res = http
        .post(format!("{base}&sid={}", info.sid))
        .header("content-type", "text/plain;charset=UTF-8")
        .body("40")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut a = Client::connect(&server.url()).await;
    a.canvas().await;
    // Wait until the silent client is on the board: listed to `a` on
    // joining, or announced after.
    let peers: Vec<Peer> = serde_json::from_value(a.expect("peers").await).unwrap();
    let silent = match peers.iter().find(|p| p.id != a.id) {
        Some(p) => p.id.clone(),
        None => {
            serde_json::from_value::<Peer>(a.expect("peer").await)
                .unwrap()
                .id
        }
    };
    assert_eq!(server.state.stats.open(App::Draw), 2);
    for i in 0..(rt_server::draw::SOCKET_BUFFER as u32 + 50) {
        a.mv(f64::from(i % 2000), 1.0, false).await;
    }
    assert_eq!(a.expect("clientdisconnect").await, json!(silent));
    // The cut client's moves no longer reach the board.
    let res = http
        .post(format!("{base}&sid={}", info.sid))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"42["mousemove",{"x":1,"y":1,"drawing":false}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    a.expect_none("moving").await;
    // Reading again drains its queue; the session then ends (the client
    // would reconnect and get a fresh snapshot).
    let mut ended = false;
    for _ in 0..20 {
        let res = http
            .get(format!("{base}&sid={}", info.sid))
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap();
        if body.split('\u{1e}').any(|p| p == "41") || body.contains("Session ID unknown") {
            ended = true;
            break;
        }
        a.mv(1.0, 1.0, false).await;
    }
    assert!(ended, "the cut session was never ended");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sync_resends_the_canvas_as_of_the_request() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    // At most one canvas a second per client.
    a.emit("sync", vec![]).await;
    let err = a.expect("error").await;
    assert_eq!(
        (&err["code"], &err["event"]),
        (&json!("rate-limited"), &json!("sync"))
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    a.mv(10.0, 10.0, false).await;
    a.mv(20.0, 10.0, true).await;
    a.emit("sync", vec![]).await;
    // A move after the request is not in the canvas it gets back.
    a.mv(30.0, 10.0, true).await;
    let parts = a.canvas().await;
    assert_eq!(parts[0].strokes.len(), 1);
    assert_eq!(parts[0].strokes[0].points, vec![10.0, 10.0, 20.0, 10.0]);
    // Only the asker gets it.
    for _ in 0..3 {
        b.expect("moving").await;
    }
    b.expect_none("canvas").await;
    wait_for_segments(&server, 2).await;
    server.shutdown().await.unwrap();
}

/// A new client's copy of the canvas equals the server's.
async fn join_matches(server: &rt_server::Server) {
    let mut c = Client::connect(&server.url()).await;
    let mut copy = rt_protocol::draw::Board::new();
    for part in c.canvas().await {
        copy.load_part(&part);
    }
    let board = server.state.draw.snapshot().await.unwrap();
    let got: Vec<_> = copy.strokes().cloned().collect();
    let want: Vec<_> = board.strokes().cloned().collect();
    assert_eq!(got, want);
    assert_eq!(copy.pens(), board.pens());
    c.close().await;
}

#[tokio::test]
async fn a_joiner_after_a_change_gets_the_changed_canvas() {
    // The encoded strokes are reused between changes; every kind of change
    // must show in the next join.
    let mut config = Config::for_tests();
    config.draw.rate = 1_000_000;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    a.mv(0.0, 0.0, false).await;
    a.mv(1.0, 0.0, true).await;
    wait_for_segments(&server, 1).await;
    join_matches(&server).await;
    a.mv(2.0, 0.0, true).await;
    wait_for_segments(&server, 2).await;
    join_matches(&server).await;
    // A stroke long enough to span several snapshot entries, then longer.
    for i in 0..2100u32 {
        a.mv(f64::from(i % 2000), f64::from(i % 7), true).await;
    }
    wait_for_segments(&server, 2102).await;
    join_matches(&server).await;
    for i in 0..50u32 {
        a.mv(f64::from(i), 500.0, true).await;
    }
    wait_for_segments(&server, 2152).await;
    join_matches(&server).await;
    a.emit("undo", vec![]).await;
    wait_for_segments(&server, 0).await;
    join_matches(&server).await;
    // The pen was lifted where it stood: a new stroke starts from there.
    a.mv(3.0, 0.0, true).await;
    a.mv(4.0, 0.0, true).await;
    wait_for_segments(&server, 2).await;
    join_matches(&server).await;
    a.emit("clear", vec![]).await;
    wait_for_segments(&server, 0).await;
    join_matches(&server).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn canvases_of_joins_and_syncs_share_one_budget() {
    let mut config = Config::for_tests();
    config.draw.join_rate = 3;
    let server = common::server_with(config).await;
    let mut a = joined(&server.url()).await;
    // Nobody is refused: every joiner gets its canvas, at most 3 a second
    // after the first second's burst.
    let start = std::time::Instant::now();
    let mut joiners = Vec::new();
    for _ in 0..6 {
        joiners.push(Client::connect(&server.url()).await);
    }
    for c in &mut joiners {
        c.expect("peers").await;
    }
    for c in &mut joiners {
        c.canvas().await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    // A sync takes from the same budget.
    for _ in 0..3 {
        joiners.push(Client::connect(&server.url()).await);
    }
    a.emit("sync", vec![]).await;
    let err = a.expect("error").await;
    assert_eq!(
        (&err["code"], &err["event"]),
        (&json!("busy"), &json!("sync"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreadable_numbers_and_hidden_characters_are_refused() {
    let server = common::server().await;
    let mut a = joined(&server.url()).await;
    let mut b = joined(&server.url()).await;
    a.ws.send(Message::text(
        r#"42["mousemove",{"x":1e999,"y":1,"drawing":true}]"#,
    ))
    .await
    .unwrap();
    let err = a.expect("error").await;
    assert_eq!(err["code"], "bad-payload");
    assert!(err["message"].as_str().unwrap().contains("finite"), "{err}");
    // A binary attachment where an object belongs.
    a.ws.send(Message::text(
        r#"451-["mousemove",{"_placeholder":true,"num":0}]"#,
    ))
    .await
    .unwrap();
    a.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(a.expect("error").await["code"], "bad-payload");
    a.emit("hello", vec![json!({"name": "\u{202e}nimda"})])
        .await;
    assert_eq!(a.expect("error").await["code"], "bad-name");
    b.expect_none("moving").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn strokes_stay_their_authors_across_reconnects_with_a_key() {
    let server = common::server().await;
    let key = "k3y-of-ann_0123456789";
    let mut a = joined(&server.url()).await;
    a.emit("hello", vec![json!({"name": "Ann", "key": key})])
        .await;
    let welcome: Peer = serde_json::from_value(a.expect("welcome").await).unwrap();
    assert_eq!(
        (welcome.id.as_str(), welcome.name.as_str()),
        (a.id.as_str(), "Ann")
    );
    assert!(welcome.author.starts_with("a-") && !welcome.author.contains(key));
    let author = welcome.author.clone();
    a.mv(0.0, 0.0, false).await;
    a.mv(10.0, 0.0, true).await;
    wait_for_segments(&server, 1).await;
    let first_id = a.id.clone();
    a.close().await;

    // Someone else, keyless or with another key, cannot undo it.
    let mut b = joined(&server.url()).await;
    b.emit("undo", vec![]).await;
    assert_eq!(b.expect("error").await["code"], "nothing-to-undo");
    b.emit("hello", vec![json!({"key": "another-key-0123456789"})])
        .await;
    b.expect("welcome").await;
    b.emit("undo", vec![]).await;
    assert_eq!(b.expect("error").await["code"], "nothing-to-undo");

    // Back with the key (a new socket id): the stroke is still Ann's.
    let mut a2 = joined(&server.url()).await;
    assert_ne!(a2.id, first_id);
    a2.emit("hello", vec![json!({"key": key})]).await;
    let again: Peer = serde_json::from_value(a2.expect("welcome").await).unwrap();
    assert_eq!(again.author, author);
    let entry: Peer = loop {
        let entry: Peer = serde_json::from_value(b.expect("peer").await).unwrap();
        if entry.author == author {
            break entry;
        }
    };
    assert_eq!(entry.id, a2.id);
    a2.emit("undo", vec![]).await;
    let undone = b.expect("undone").await;
    assert_eq!(undone["by"], json!(a2.id));
    assert_eq!(undone["author"], json!(author));
    wait_for_segments(&server, 0).await;
    // A bad key is refused and changes nothing.
    a2.emit("hello", vec![json!({"key": "short"})]).await;
    assert_eq!(a2.expect("error").await["code"], "bad-key");
    server.shutdown().await.unwrap();
}
