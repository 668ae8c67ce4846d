//! `GET /metrics`: scraped from an in-process server after exercising every
//! app, parsed with a Prometheus text-format parser, and checked series by
//! series.
//!
//! One test in this binary on purpose: the recorder is process-wide, so a
//! second server here would add to the same series.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prometheus_parse::{Sample, Scrape, Value};
use rt_protocol::engineio::{EnginePacket, SocketKind, SocketPacket, event_frame};
use rt_protocol::qa::{self, encode_segment};
use rt_server::{Config, Server};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// One parsed scrape.
struct Metrics(Vec<Sample>);

impl Metrics {
    async fn scrape(server: &Server) -> Metrics {
        let res = common::http()
            .get(format!("{}/metrics", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        let text = res.text().await.unwrap();
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
        // Every family has its HELP line.
        for s in &scrape.samples {
            let family = s.metric.trim_end_matches("_count").trim_end_matches("_sum");
            assert!(
                scrape.docs.contains_key(family) || scrape.docs.contains_key(&s.metric),
                "no HELP for {}",
                s.metric
            );
        }
        Metrics(scrape.samples)
    }

    /// The value of the series `name{labels}`; panics when it is absent or
    /// of another type than `kind`.
    fn get(&self, kind: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: HashMap<&str, &str> = labels.iter().copied().collect();
        let s = self
            .0
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.len() == want.len()
                    && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no series {name}{labels:?}"));
        match (&s.value, kind) {
            (Value::Counter(v), "counter") | (Value::Gauge(v), "gauge") => *v,
            (Value::Histogram(buckets), "histogram") => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .expect("a +Inf bucket"),
            (other, _) => panic!("{name} is {other:?}, expected a {kind}"),
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get("counter", name, labels)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get("gauge", name, labels)
    }

    fn connections(&self, app: &str, transport: &str) -> f64 {
        self.gauge("rt_connections", &[("app", app), ("transport", transport)])
    }

    fn refused(&self, limit: &str) -> f64 {
        self.counter("rt_refused_total", &[("limit", limit)])
    }

    fn events_in(&self, app: &str) -> f64 {
        self.counter("rt_events_in_total", &[("app", app)])
    }

    fn messages_out(&self, app: &str) -> f64 {
        self.counter("rt_messages_out_total", &[("app", app)])
    }

    fn commits(&self) -> f64 {
        self.get("histogram", "rt_store_commit_duration_seconds", &[])
    }
}

/// Scrapes until `check` holds (owners update some series a moment after
/// the client's request returns).
async fn eventually(server: &Server, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = Metrics::scrape(server).await;
        if check(&m) {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Socket.IO client on the WebSocket transport, connected to `/`.
async fn socket_io(server: &Server) -> Ws {
    let (mut ws, _) = connect_async(format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr
    ))
    .await
    .unwrap();
    ws.send(Message::text("40")).await.unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = tokio::time::timeout(WAIT, ws.next()).await.unwrap()
        else {
            continue;
        };
        if let Ok(EnginePacket::Message(m)) = EnginePacket::decode(&t)
            && SocketPacket::decode(&m).unwrap().kind == SocketKind::Connect
        {
            return ws;
        }
    }
}

fn config() -> Config {
    let mut c = Config::for_tests();
    c.qa.max_question_chars = 10;
    c.qa.ping_ms = 60_000;
    c.docs.max_frame_bytes = 1000;
    c.draw.rate = 5;
    c
}

#[tokio::test]
async fn every_app_shows_up_in_the_metrics() {
    let server = common::server_with(config()).await;
    let url = server.url();
    let http = common::http();
    let before = Metrics::scrape(&server).await;
    for app in ["ticker", "draw", "qa", "editor", "stats"] {
        assert_eq!(before.events_in(app), 0.0, "{app}");
        assert_eq!(
            before.counter("rt_slow_consumers_cut_total", &[("app", app)]),
            0.0
        );
    }
    assert_eq!(
        before.refused("draw_rate"),
        0.0,
        "limits are listed at zero"
    );
    assert_eq!(before.gauge("rt_documents_open", &[]), 0.0);
    assert_eq!(before.gauge("rt_canvas_segments", &[]), 0.0);
    assert_eq!(before.gauge("rt_store_queue_depth", &[]), 0.0);
    assert_eq!(before.connections("qa", "sse"), 0.0);

    // Ticker: a poll and a stream.
    let poll = http.get(format!("{url}/?symbol=IBM")).send().await.unwrap();
    assert_eq!(poll.status(), 200);
    poll.text().await.unwrap();
    let mut ticker = http
        .get(format!("{url}/ticker/stream?symbols=IBM"))
        .send()
        .await
        .unwrap();
    assert_eq!(ticker.status(), 200);
    tokio::time::timeout(WAIT, ticker.chunk())
        .await
        .unwrap()
        .unwrap();

    // Q&A: log in (a stored user: a commit), ask one too long and one fine.
    let mut login = http.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let mut head = String::new();
    let user = loop {
        let chunk = tokio::time::timeout(WAIT, login.chunk())
            .await
            .unwrap()
            .unwrap()
            .expect("the login stream is open");
        head.push_str(std::str::from_utf8(&chunk).unwrap());
        if let Some(ev) = rt_protocol::sse::Parser::new()
            .feed(head.as_bytes())
            .into_iter()
            .find(|e| e.event == qa::LOGIN_EVENT)
        {
            break serde_json::from_str::<String>(&ev.data).unwrap();
        }
    };
    for (q, status) in [("far too long a question", 413), ("short?", 200)] {
        let res = http
            .post(format!("{url}/askquestion/{}", encode_segment(q)))
            .header(qa::USER_HEADER, &user)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{q}");
    }

    // Editor: handshake, a subscription (loads a document), an oversized frame.
    let (mut editor, _) = connect_async(format!("ws://{}/", server.addr))
        .await
        .unwrap();
    for msg in [
        json!({"a": "hs", "protocol": 1, "protocolMinor": 2}).to_string(),
        json!({"a": "s", "c": "examples", "d": "metrics", "v": null}).to_string(),
        json!({"a": "nf", "pad": "x".repeat(1500)}).to_string(),
    ] {
        editor.send(Message::text(msg)).await.unwrap();
    }
    for _ in 0..3 {
        tokio::time::timeout(WAIT, editor.next()).await.unwrap();
    }

    // Drawing board: two Socket.IO clients on WebSocket; one draws (the
    // other receives it), then floods.
    let mut draw = socket_io(&server).await;
    let watcher = socket_io(&server).await;
    for (x, drawing) in [(10.0, false), (20.0, true), (30.0, true)] {
        let mv = json!({"x": x, "y": 10.0, "drawing": drawing});
        draw.send(Message::text(event_frame("mousemove", vec![mv])))
            .await
            .unwrap();
    }
    for _ in 0..10 {
        let mv = json!({"x": 40.0, "y": 10.0, "drawing": false});
        draw.send(Message::text(event_frame("mousemove", vec![mv])))
            .await
            .unwrap();
    }

    // A /stats stream, which is counted too.
    let mut stats = http.get(format!("{url}/stats")).send().await.unwrap();
    tokio::time::timeout(WAIT, stats.chunk())
        .await
        .unwrap()
        .unwrap();

    let m = eventually(&server, "every app's figures", |m| {
        m.gauge("rt_canvas_segments", &[]) >= 2.0
            && m.refused("draw_rate") >= 1.0
            && m.gauge("rt_documents_open", &[]) >= 1.0
            && m.messages_out("draw") >= 1.0
            && m.messages_out("editor") >= 1.0
    })
    .await;
    assert_eq!(m.connections("ticker", "sse"), 1.0);
    assert_eq!(m.connections("ticker", "poll"), 0.0, "the poll has ended");
    assert_eq!(m.connections("qa", "sse"), 1.0);
    assert_eq!(m.connections("editor", "websocket"), 1.0);
    assert_eq!(m.connections("draw", "websocket"), 2.0);
    assert_eq!(m.connections("draw", "polling"), 0.0);
    assert_eq!(m.connections("stats", "sse"), 1.0);
    assert_eq!(m.events_in("ticker"), 2.0, "a poll and a subscription");
    assert_eq!(m.events_in("qa"), 2.0);
    assert_eq!(m.events_in("editor"), 3.0);
    assert_eq!(m.events_in("draw"), 13.0);
    assert_eq!(m.refused("qa_max_question"), 1.0);
    assert_eq!(m.refused("doc_max_frame_bytes"), 1.0);
    // 13 events against a bucket of 5 a second: the first 5 pass, and
    // how many of the rest the refill lets through depends on timing.
    let dropped = m.refused("draw_rate");
    assert!((1.0..=8.0).contains(&dropped), "{dropped}");
    assert_eq!(m.gauge("rt_canvas_segments", &[]), 2.0);
    assert!(m.messages_out("ticker") >= 1.0);
    assert!(
        m.messages_out("qa") >= 2.0,
        "the question reached the stream"
    );
    assert!(
        m.commits() > before.commits(),
        "the login and question commit"
    );
    // /stats reads the same counts.
    let figures = loop {
        let chunk = tokio::time::timeout(WAIT, stats.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let text = String::from_utf8(chunk.to_vec()).unwrap();
        if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
            break serde_json::from_str::<serde_json::Value>(data).unwrap();
        }
    };
    assert_eq!(figures["open"]["qa"], 1);
    assert_eq!(figures["open"]["ticker"], 1);

    // Closing connections brings the gauges back down.
    drop(ticker);
    drop(login);
    drop(editor);
    drop(draw);
    drop(watcher);
    eventually(&server, "connections closed", |m| {
        m.connections("ticker", "sse") == 0.0
            && m.connections("qa", "sse") == 0.0
            && m.connections("editor", "websocket") == 0.0
            && m.connections("draw", "websocket") == 0.0
    })
    .await;
    server.shutdown().await.unwrap();

    // A Q&A stream that never reads: cut when its backlog passes --qa-queue.
    let mut c = flood_config();
    c.qa.queue = 4;
    let server = server_for(c).await;
    let before = Metrics::scrape(&server).await;
    let m = flood_qa(&server, |m| {
        m.refused("qa_queue") > before.refused("qa_queue")
    })
    .await;
    assert!(
        m.counter("rt_slow_consumers_cut_total", &[("app", "qa")])
            > before.counter("rt_slow_consumers_cut_total", &[("app", "qa")])
    );
    server.shutdown().await.unwrap();

    // One whose socket stays full past --stream-stall-ms, with room in its
    // backlog: dropped by the stall limit instead.
    let mut c = flood_config();
    c.qa.queue = 100_000;
    c.stream_stall_ms = 200;
    let server = server_for(c).await;
    let before = Metrics::scrape(&server).await;
    let m = flood_qa(&server, |m| {
        m.refused("stream_stall_ms") > before.refused("stream_stall_ms")
    })
    .await;
    assert_eq!(m.refused("qa_queue"), before.refused("qa_queue"));
    server.shutdown().await.unwrap();
}

async fn server_for(config: Config) -> Server {
    common::server_with(config).await
}

fn flood_config() -> Config {
    let mut c = Config::for_tests();
    c.qa.max_question_chars = 20_000;
    c.qa.ping_ms = 60_000;
    c
}

/// Opens a Q&A stream that is never read, then asks questions until
/// `done` holds. Each message carries the whole growing board, so a few
/// dozen long questions are more than the socket buffers hold.
async fn flood_qa(server: &Server, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let user = login_id(server).await;
    let http = common::http();
    let long = "x".repeat(19_000);
    for i in 0..200 {
        let res = http
            .post(format!(
                "{}/askquestion/{}",
                server.url(),
                encode_segment(&format!("{i} {long}"))
            ))
            .header(qa::USER_HEADER, &user)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let m = Metrics::scrape(server).await;
        if done(&m) {
            return m;
        }
        // Give a stall its time once the socket may be full.
        if i >= 20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the slow stream was never cut");
}

/// Logs in and returns the user id from the login event.
async fn login_id(server: &Server) -> String {
    let mut login = common::http()
        .get(format!("{}/login", server.url()))
        .send()
        .await
        .unwrap();
    let mut parser = rt_protocol::sse::Parser::new();
    loop {
        let chunk = tokio::time::timeout(WAIT, login.chunk())
            .await
            .unwrap()
            .unwrap()
            .expect("the login stream is open");
        if let Some(ev) = parser
            .feed(&chunk)
            .into_iter()
            .find(|e| e.event == qa::LOGIN_EVENT)
        {
            return serde_json::from_str::<String>(&ev.data).unwrap();
        }
    }
}
