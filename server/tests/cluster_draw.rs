//! The drawing board on PostgreSQL, alone and across two in-process nodes
//! sharing one database and Redis: relays and canvas changes cross nodes,
//! canvases converge, and the board survives a cut database and a
//! restarted Redis. Needs PostgreSQL and Redis (the tests fail without).

mod common;
mod draw_support;

use std::time::Duration;

use draw_support::*;
use rt_protocol::draw::{Board, Peer, Point};
use rt_server::cluster::testing::{PrivateRedis, TcpCut, TestDb, postgres_addr, redis_url, via};
use rt_server::{Config, Server};
use serde_json::{Value, json};

async fn node(db_url: &str, redis: Option<&str>, id: &str) -> Server {
    common::server_with(Config::for_cluster_tests(db_url, redis, id)).await
}

/// Every stroke with its id and points, for comparing canvases.
fn strokes(board: &Board) -> Vec<(u64, String, Vec<Point>)> {
    board
        .strokes()
        .map(|s| (s.id, s.by.clone(), s.points.clone()))
        .collect()
}

async fn canvas_of(server: &Server) -> Vec<(u64, String, Vec<Point>)> {
    strokes(&server.state.draw.snapshot().await.expect("canvas task"))
}

/// Waits until both nodes hold the same canvas with `segments` segments.
async fn converged(a: &Server, b: &Server, segments: usize) -> Vec<(u64, String, Vec<Point>)> {
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..150 {
        let (ca, cb) = (canvas_of(a).await, canvas_of(b).await);
        let n: usize = ca.iter().map(|s| s.2.len() - 1).sum();
        if ca == cb && n == segments {
            return ca;
        }
        last = (ca, cb);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the canvases did not converge to {segments} segments: {last:?}");
}

async fn stroke(c: &mut Client, points: &[(f64, f64)]) {
    let (x, y) = points[0];
    c.mv(x, y, false).await;
    for &(x, y) in &points[1..] {
        c.mv(x, y, true).await;
    }
    c.mv(
        points[points.len() - 1].0,
        points[points.len() - 1].1,
        false,
    )
    .await;
}

/// Reads `moving` events until one at (`x`, `y`) from `id` arrives.
async fn moving_at(c: &mut Client, id: &str, x: f64, y: f64) {
    for _ in 0..200 {
        let m = c.expect("moving").await;
        if m["id"] == json!(id) && m["x"] == json!(x) && m["y"] == json!(y) {
            return;
        }
    }
    panic!("no move to ({x}, {y}) from {id}");
}

#[tokio::test]
async fn relays_peers_and_strokes_cross_nodes() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let mut a1 = joined(&a.url()).await;
    let mut b1 = Client::connect(&b.url()).await;
    b1.canvas().await;
    let list: Vec<Peer> = serde_json::from_value(b1.expect("peers").await).unwrap();
    let mut ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    // Presence crosses nodes on the Bus, so A's announcement may reach B
    // just after b1 joined: then b1 hears of a1 as a `peer` event instead.
    if !ids.contains(&a1.id.as_str()) {
        let late: Peer = serde_json::from_value(b1.expect("peer").await).unwrap();
        assert_eq!(late.id, a1.id, "B announces A's people");
        ids.insert(0, a1.id.as_str());
    }
    assert_eq!(ids, [a1.id.as_str(), b1.id.as_str()], "B lists A's people");
    let entry: Peer = serde_json::from_value(a1.expect("peer").await).unwrap();
    assert_eq!(entry.id, b1.id);

    a1.emit(
        "mousemove",
        vec![json!({"x": 10, "y": 20.5, "drawing": false, "tool": "pen"})],
    )
    .await;
    assert_eq!(
        b1.expect("moving").await,
        json!({"x": 10, "y": 20.5, "drawing": false, "tool": "pen", "id": a1.id})
    );
    b1.mv(7.0, 8.0, false).await;
    moving_at(&mut a1, &b1.id, 7.0, 8.0).await;
    a1.expect_none("moving").await;

    b1.emit("hello", vec![json!({"name": "bee"})]).await;
    let entry: Peer = serde_json::from_value(a1.expect("peer").await).unwrap();
    assert_eq!(
        (entry.id.as_str(), entry.name.as_str()),
        (b1.id.as_str(), "bee")
    );

    stroke(&mut a1, &[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]).await;
    stroke(&mut b1, &[(50.0, 50.0), (60.0, 60.0)]).await;
    let both = converged(&a, &b, 3).await;
    assert_eq!(both.len(), 2);
    assert_ne!(both[0].0, both[1].0, "stroke ids collide across nodes");

    // A late joiner on B sees what was drawn on A.
    let mut b2 = Client::connect(&b.url()).await;
    let parts = b2.canvas().await;
    let mut seen: Vec<(u64, Vec<f64>)> = parts
        .iter()
        .flat_map(|p| p.strokes.iter().map(|s| (s.id, s.points.clone())))
        .collect();
    seen.sort_by_key(|s| s.0);
    let mut want: Vec<(u64, Vec<f64>)> = both
        .iter()
        .map(|s| (s.0, s.2.iter().flat_map(|p| [p.x, p.y]).collect()))
        .collect();
    want.sort_by_key(|s| s.0);
    assert_eq!(seen, want);
    assert!(want.iter().any(|s| s.1 == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]));

    let a1_id = a1.id.clone();
    a1.close().await;
    assert_eq!(b1.expect("clientdisconnect").await, json!(a1_id));
    assert_eq!(b2.expect("clientdisconnect").await, json!(a1_id));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn undo_and_clear_give_the_same_canvas_everywhere() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let mut a1 = joined(&a.url()).await;
    let mut b1 = joined(&b.url()).await;
    stroke(&mut a1, &[(1.0, 1.0), (2.0, 2.0)]).await;
    stroke(&mut b1, &[(10.0, 10.0), (11.0, 11.0), (12.0, 12.0)]).await;
    stroke(&mut a1, &[(5.0, 5.0), (6.0, 6.0)]).await;
    converged(&a, &b, 4).await;

    // b1 undoes its stroke; a1 hears of it; both canvases lose it.
    b1.emit("undo", vec![]).await;
    let undone = a1.expect("undone").await;
    assert_eq!(undone["by"], json!(b1.id));
    let left = converged(&a, &b, 2).await;
    assert!(left.iter().all(|s| s.1 == a1.id), "{left:?}");

    // a1 undoes one of two on B's side of the board too.
    a1.emit("undo", vec![]).await;
    b1.expect("undone").await;
    let left = converged(&a, &b, 1).await;
    assert_eq!(left[0].2[0], Point { x: 1.0, y: 1.0 });

    stroke(&mut b1, &[(20.0, 20.0), (21.0, 21.0)]).await;
    converged(&a, &b, 2).await;
    a1.emit("clear", vec![]).await;
    assert_eq!(b1.expect("cleared").await["by"], json!(a1.id));
    converged(&a, &b, 0).await;

    // Drawing goes on after the clear, and a third node loads the result.
    stroke(&mut b1, &[(30.0, 30.0), (31.0, 31.0)]).await;
    let want = converged(&a, &b, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = node(&db.url, Some(&redis), "c").await;
    assert_eq!(canvas_of(&c).await, want, "the stored canvas differs");
    for s in [a, b, c] {
        s.shutdown().await.unwrap();
    }
}

/// Draws on `c` until an `error` with `code` arrives.
async fn draw_until_error(c: &mut Client, code: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut x = 100.0;
    c.mv(x, 100.0, false).await;
    while tokio::time::Instant::now() < deadline {
        x += 1.0;
        c.mv(x, 100.0, true).await;
        while let Some((name, args)) = c.read_event(Duration::from_millis(100)).await {
            if name == "error" && args[0]["code"] == json!(code) {
                return args[0].clone();
            }
        }
    }
    panic!("no {code} error");
}

#[tokio::test]
async fn a_cut_database_refuses_drawing_and_it_comes_back() {
    let db = TestDb::create().await;
    let cut = TcpCut::start(postgres_addr()).await;
    let mut config = Config::for_cluster_tests(&via(&db.url, cut.addr), Some(&redis_url()), "a");
    config.cluster.timeout_ms = 500;
    let a = common::server_with(config).await;
    let mut a1 = joined(&a.url()).await;
    stroke(&mut a1, &[(1.0, 1.0), (2.0, 2.0)]).await;

    cut.cut();
    let err = draw_until_error(&mut a1, "unsaved").await;
    assert_eq!(err["event"], json!("mousemove"));
    a1.emit("clear", vec![]).await;
    let err = a1.expect("error").await;
    assert_eq!(err["code"], json!("unsaved"));

    cut.restore();
    // Drawing is taken again by itself once the kept changes are stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut accepted = false;
    while tokio::time::Instant::now() < deadline && !accepted {
        a1.mv(500.0, 500.0, false).await;
        a1.mv(501.0, 501.0, true).await;
        accepted = true;
        while let Some((name, args)) = a1.read_event(Duration::from_millis(200)).await {
            if name == "error" && args[0]["code"] == json!("unsaved") {
                accepted = false;
            }
        }
    }
    assert!(
        accepted,
        "drawing was still refused after the database came back"
    );
    let want = canvas_of(&a).await;
    assert!(
        want.iter()
            .any(|s| s.2.contains(&Point { x: 501.0, y: 501.0 }))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = node(&db.url, None, "b").await;
    assert_eq!(canvas_of(&b).await, canvas_of(&a).await, "stored canvas");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restarted_redis_resyncs_the_canvas() {
    let db = TestDb::create().await;
    let mut redis = PrivateRedis::start();
    let a = node(&db.url, Some(&redis.url()), "a").await;
    let b = node(&db.url, Some(&redis.url()), "b").await;
    let mut a1 = joined(&a.url()).await;
    let mut b1 = joined(&b.url()).await;
    stroke(&mut a1, &[(1.0, 1.0), (2.0, 2.0)]).await;
    converged(&a, &b, 1).await;

    // Drawn while Redis is down: B cannot hear of it.
    redis.stop();
    stroke(&mut a1, &[(3.0, 3.0), (4.0, 4.0), (5.0, 5.0)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();

    // B reloads from PostgreSQL and gives its client a fresh canvas.
    let want = converged(&a, &b, 3).await;
    let parts = b1.canvas().await;
    let n: usize = parts
        .iter()
        .flat_map(|p| &p.strokes)
        .map(|s| s.points.len() / 2 - 1)
        .sum();
    assert_eq!(n, 3);
    assert_eq!(want.len(), 2);

    // And relays cross again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut heard = false;
    let mut x = 600.0;
    while !heard && tokio::time::Instant::now() < deadline {
        x += 1.0;
        a1.mv(x, 5.0, false).await;
        while let Some((name, args)) = b1.read_event(Duration::from_millis(200)).await {
            if name == "moving" && args[0]["x"] == json!(x) {
                heard = true;
            }
        }
    }
    assert!(heard, "relays did not cross after Redis came back");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_node_on_postgres_keeps_the_drawing_across_restarts() {
    let db = TestDb::create().await;
    let a = node(&db.url, None, "solo").await;
    assert_eq!(a.state.cluster.backend(), "postgres");
    let mut a1 = joined(&a.url()).await;
    let mut a2 = joined(&a.url()).await;
    stroke(&mut a1, &[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]).await;
    moving_at(&mut a2, &a1.id, 3.0, 3.0).await;
    stroke(&mut a1, &[(7.0, 7.0), (8.0, 8.0)]).await;
    a1.emit("undo", vec![]).await;
    a2.expect("undone").await;
    let want = canvas_of(&a).await;
    assert_eq!(want.len(), 1);
    a1.close().await;
    a2.close().await;
    a.shutdown().await.unwrap();

    let a = node(&db.url, None, "solo").await;
    assert_eq!(canvas_of(&a).await, want);
    let mut c = Client::connect(&a.url()).await;
    let parts = c.canvas().await;
    assert_eq!(
        parts[0].strokes[0].points,
        vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    );
    // New strokes take ids of a new block: none collides with the old.
    stroke(&mut c, &[(9.0, 9.0), (9.5, 9.5)]).await;
    for _ in 0..100 {
        if canvas_of(&a).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = canvas_of(&a).await;
    assert_eq!(now.len(), 2);
    assert_ne!(now[0].0, now[1].0);
    a.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_participants_of_a_stopped_node_leave_the_others_boards() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let a1 = joined(&a.url()).await;
    let mut b1 = Client::connect(&b.url()).await;
    b1.canvas().await;
    let mut listed: Vec<Peer> = serde_json::from_value(b1.expect("peers").await).unwrap();
    for _ in 0..50 {
        if listed.iter().any(|p| p.id == a1.id) {
            break;
        }
        if let Ok(p) = serde_json::from_value::<Peer>(b1.expect("peer").await) {
            listed.push(p);
        }
    }
    assert!(listed.iter().any(|p| p.id == a1.id), "{listed:?}");
    // A stops without its sockets' disconnect handlers running (as
    // socketioxide closes): B notices A is silent.
    let a1_id = a1.id.clone();
    a.shutdown().await.unwrap();
    drop(a1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut gone = false;
    while !gone && tokio::time::Instant::now() < deadline {
        if let Some((name, args)) = b1.read_event(Duration::from_millis(500)).await {
            gone = name == "clientdisconnect" && args[0] == json!(a1_id);
        }
    }
    assert!(gone, "A's participant is still on B's board");
    b.shutdown().await.unwrap();
}
