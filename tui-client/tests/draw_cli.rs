//! `rt-tui draw …` and the UI's drawing client against a real server.

mod support;

use std::process::Stdio;
use std::time::Duration;

use rt_tui::net::draw::{DrawClient, DrawCommand, DrawEvent, Session};
use rt_tui::net::{ConnState, NetEvent, Transport};
use serde_json::Value;
use support::{closed_port, rt_server, rt_tui};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

async fn segments(server: &rt_server::Server) -> usize {
    server.state.draw.snapshot().await.unwrap().segments()
}

#[tokio::test(flavor = "multi_thread")]
async fn line_draws_and_listen_prints_it_and_clear_clears() {
    let server = rt_server(5000).await;
    let url = server.url();
    let mut listen = tokio::process::Command::new(env!("CARGO_BIN_EXE_rt-tui"))
        .args(["draw", "listen", "--url", &url])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("listen still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    // On the board at once (the list), then its canvas.
    assert_eq!(next().await["event"], "peers");
    let canvas = next().await;
    assert_eq!(canvas["event"], "canvas");
    assert_eq!(canvas["data"]["width"], 2000.0);

    let out = rt_tui(&["draw", "line", "100", "200", "300", "400", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let mut moves = Vec::new();
    while moves.len() < 3 {
        let ev = next().await;
        if ev["event"] == "moving" {
            moves.push(ev["data"].clone());
        }
    }
    let pts: Vec<(f64, f64, bool)> = moves
        .iter()
        .map(|m| {
            (
                m["x"].as_f64().unwrap(),
                m["y"].as_f64().unwrap(),
                m["drawing"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pts,
        vec![
            (100.0, 200.0, false),
            (300.0, 400.0, true),
            (300.0, 400.0, false)
        ]
    );
    assert!(moves.iter().all(|m| m["id"] == moves[0]["id"]));
    assert_eq!(segments(&server).await, 1);

    let out = rt_tui(&["draw", "clear", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    loop {
        if next().await["event"] == "cleared" {
            break;
        }
    }
    assert_eq!(segments(&server).await, 0);
    listen.kill().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn line_outside_the_board_is_refused() {
    let server = rt_server(5000).await;
    let out = rt_tui(&[
        "draw",
        "line",
        "0",
        "0",
        "2500",
        "10",
        "--url",
        &server.url(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2000"));
    assert_eq!(segments(&server).await, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_fails_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = rt_tui(&["draw", "listen", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

async fn next_draw(
    rx: &mut mpsc::Receiver<NetEvent>,
    want: impl Fn(&NetEvent) -> bool,
) -> NetEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("client running");
            if want(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("event in time")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ui_client_throttles_moves_and_reconnects() {
    let server = rt_server(5000).await;
    let url = server.url();
    let (tx, mut rx) = mpsc::channel(256);
    let client = DrawClient::spawn(url.clone(), Default::default(), tx);
    next_draw(&mut rx, |e| {
        matches!(e, NetEvent::State(Transport::Draw, ConnState::Connected))
    })
    .await;
    next_draw(&mut rx, |e| {
        matches!(e, NetEvent::Draw(DrawEvent::Canvas(_)))
    })
    .await;

    let mut watcher = Session::connect(&url).await.unwrap();
    // On the board once the list arrives; its snapshot follows.
    for want in ["peers", "canvas"] {
        let (name, _) = tokio::time::timeout(WAIT, watcher.next_event())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, want);
    }
    // Twenty moves in a burst: merged, at most one per 50 ms.
    client.send(DrawCommand::Move {
        x: 10.0,
        y: 10.0,
        drawing: false,
    });
    for i in 0..20 {
        client.send(DrawCommand::Move {
            x: 20.0 + f64::from(i),
            y: 10.0,
            drawing: true,
        });
    }
    client.send(DrawCommand::Move {
        x: 50.0,
        y: 10.0,
        drawing: false,
    });
    let mut seen = Vec::new();
    let start = tokio::time::Instant::now();
    while seen.len() < 3 {
        let (name, args) = tokio::time::timeout(WAIT, watcher.next_event())
            .await
            .unwrap()
            .unwrap();
        if name == "moving" {
            seen.push((tokio::time::Instant::now(), args[0].clone()));
        }
    }
    assert_eq!(seen[0].1["drawing"], false);
    assert_eq!(seen[1].1["drawing"], true);
    assert_eq!(seen[2].1["x"], 50.0);
    for pair in seen.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(40), "moves {gap:?} apart");
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    // The client reports what it sent, so the pane draws exactly that.
    next_draw(&mut rx, |e| {
        matches!(e, NetEvent::Draw(DrawEvent::Sent { drawing: true, .. }))
    })
    .await;

    // The watcher's moves reach the client.
    watcher.mouse_move(5.0, 6.0, false).await.unwrap();
    let ev = next_draw(&mut rx, |e| {
        matches!(e, NetEvent::Draw(DrawEvent::Moving { .. }))
    })
    .await;
    assert_eq!(
        ev,
        NetEvent::Draw(DrawEvent::Moving {
            id: watcher.id.clone(),
            x: 5.0,
            y: 6.0,
            drawing: false
        })
    );

    // A server that goes away: the client says so and comes back to a new one
    // on the same address.
    let addr = server.addr;
    server.shutdown().await.unwrap();
    next_draw(&mut rx, |e| {
        matches!(
            e,
            NetEvent::State(Transport::Draw, ConnState::Retrying { .. })
        )
    })
    .await;
    let mut config = rt_server::Config::for_tests();
    config.bind = addr;
    let again = rt_server::spawn(config)
        .await
        .expect("restart on the same port");
    next_draw(&mut rx, |e| {
        matches!(e, NetEvent::State(Transport::Draw, ConnState::Connected))
    })
    .await;
    next_draw(&mut rx, |e| {
        matches!(e, NetEvent::Draw(DrawEvent::Connected { .. }))
    })
    .await;
    drop(client);
    again.shutdown().await.unwrap();
}

/// Decodes a PNG file into (width, height, RGB bytes).
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[tokio::test(flavor = "multi_thread")]
async fn save_writes_the_board_as_a_png_with_each_stroke_in_its_colour() {
    let server = rt_server(5000).await;
    let url = server.url();
    // A blue horizontal line, drawn by a socket that picked its colour.
    let mut blue = Session::connect(&url).await.unwrap();
    blue.emit("hello", vec![serde_json::json!({"colour": "#4363d8"})])
        .await
        .unwrap();
    loop {
        let (name, _) = tokio::time::timeout(WAIT, blue.next_event())
            .await
            .unwrap()
            .unwrap();
        if name == "welcome" {
            break;
        }
    }
    for (x, drawing) in [(100.0, false), (1900.0, true), (1900.0, false)] {
        blue.mouse_move(x, 100.0, drawing).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // A vertical line from the CLI, in the colour the server gave it.
    let out = rt_tui(&["draw", "line", "1000", "200", "1000", "900", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while segments(&server).await < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both lines drawn");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("board.png");
    let out = rt_tui(&[
        "draw",
        "save",
        file.to_str().unwrap(),
        "--width",
        "1000",
        "--url",
        &url,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["path"], file.to_str().unwrap());
    assert_eq!(
        (line["width"].as_u64(), line["height"].as_u64()),
        (Some(1000), Some(500))
    );
    assert_eq!(line["strokes"], 2);
    assert_eq!(
        line["bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );

    let (w, h, rgb) = decode_png(&file);
    assert_eq!((w, h), (1000, 500));
    let px = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    // Board (x, y) is pixel (x / 2, y / 2) at this width.
    for x in [60, 300, 700, 940] {
        assert_eq!(px(x, 50), [0x43, 0x63, 0xd8], "on the blue line at x {x}");
    }
    let white = [0xff; 3];
    let vertical = px(500, 300);
    assert_ne!(vertical, white, "on the vertical line");
    assert_ne!(
        vertical,
        [0x43, 0x63, 0xd8],
        "the CLI's line has its own colour"
    );
    assert_eq!(px(500, 400), vertical);
    for (x, y) in [(250, 300), (750, 250), (500, 60), (500, 480), (10, 10)] {
        assert_eq!(px(x, y), white, "background at ({x}, {y})");
    }
    blue.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn save_refuses_a_width_out_of_range_and_an_unwritable_path() {
    let server = rt_server(5000).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.png");
    for width in ["15", "8001"] {
        let out = rt_tui(&[
            "draw",
            "save",
            file.to_str().unwrap(),
            "--width",
            width,
            "--url",
            &url,
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("16..=8000"),
            "{out:?}"
        );
    }
    let missing = dir.path().join("no/such/dir/b.png");
    let out = rt_tui(&["draw", "save", missing.to_str().unwrap(), "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write"),
        "{out:?}"
    );
    assert!(!file.exists());
    server.shutdown().await.unwrap();
}
