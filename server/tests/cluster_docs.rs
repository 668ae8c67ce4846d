//! The editor on PostgreSQL across nodes: two in-process nodes on one test
//! database (and Redis), raw ShareDB over WebSocket. These tests fail, not
//! skip, when PostgreSQL or Redis is missing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_protocol::delta::{Delta, Document};
use rt_server::cluster::testing::{PrivateRedis, TcpCut, TestDb, postgres_addr, redis_url, via};
use rt_server::{Config, Server};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const WAIT: Duration = Duration::from_secs(10);
const EDITORS_PER_NODE: usize = 5;
const OPS_PER_EDITOR: u64 = 200;

/// A raw ShareDB client that keeps its version of `examples/<doc>` by the
/// ops it receives (and may keep the document, as an observer).
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    src: String,
    version: u64,
    doc: Option<Document>,
}

impl Client {
    async fn connect(server: &Server, id: Option<&str>) -> Client {
        let (ws, _) = connect_async(format!("ws://{}/", server.addr))
            .await
            .expect("websocket connects");
        let mut c = Client {
            ws,
            src: String::new(),
            version: 0,
            doc: None,
        };
        c.send(json!({"a": "hs", "id": id, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = c.recv().await;
        assert_eq!(hs["a"], "hs", "{hs}");
        c.src = hs["id"].as_str().expect("an id").to_string();
        c
    }

    async fn send(&mut self, msg: Value) {
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("JSON");
            }
        }
    }

    /// Subscribes; with `keep` the client applies every op it receives.
    async fn subscribe(&mut self, d: &str, keep: bool) {
        self.send(json!({"a": "s", "c": "examples", "d": d, "v": null}))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["a"], "s", "{reply}");
        self.version = reply["data"]["v"].as_u64().expect("a version");
        if keep {
            let data = Delta::from_value(&reply["data"]["data"]).expect("a delta");
            self.doc = Some(Document::from_delta(&data).expect("a document"));
        }
    }

    /// Takes an incoming op: applies it when it is the next version; an
    /// older one is a duplicate (allowed, the client ignores it); a newer one
    /// is a gap, which the server must never leave.
    fn take_op(&mut self, msg: &Value) {
        let v = msg["v"].as_u64().expect("op v");
        assert!(
            v <= self.version,
            "gap: got v{v} at v{}: {msg}",
            self.version
        );
        if v == self.version {
            if let Some(doc) = self.doc.as_mut() {
                let op = Delta::from_value(&msg["op"]).expect("an edit");
                doc.apply(&op).expect("the op applies");
            }
            self.version += 1;
        }
    }

    /// Submits `op` (with `seq`) at the client's version; returns the ack
    /// or the error, taking the ops before it.
    async fn submit(&mut self, d: &str, seq: u64, op: Value) -> Value {
        let v = self.version;
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": v, "seq": seq, "x": {}, "op": op}),
        )
        .await;
        self.until_ack(seq).await
    }

    async fn until_ack(&mut self, seq: u64) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["a"] != "op" {
                continue;
            }
            if msg.get("error").is_some() {
                return msg;
            }
            if msg["src"] == self.src.as_str() && msg["seq"] == seq && msg.get("op").is_none() {
                let v = msg["v"].as_u64().expect("ack v");
                assert_eq!(v, self.version, "ack at the client's version: {msg}");
                self.version += 1;
                return msg;
            }
            self.take_op(&msg);
        }
    }

    /// Takes ops until the client has reached `version`.
    async fn until_version(&mut self, version: u64) {
        while self.version < version {
            let msg = self.recv().await;
            if msg["a"] == "op" && msg.get("op").is_some() {
                self.take_op(&msg);
            }
        }
    }

    async fn fetch(&mut self, d: &str) -> Value {
        self.send(json!({"a": "f", "c": "examples", "d": d})).await;
        loop {
            let reply = self.recv().await;
            if reply["a"] == "f" {
                return reply["data"].clone();
            }
        }
    }
}

fn is_ack(msg: &Value) -> bool {
    msg["a"] == "op" && msg.get("error").is_none() && msg.get("op").is_none()
}

async fn node(db_url: &str, redis: Option<&str>, id: &str) -> Server {
    rt_server::spawn(Config::for_cluster_tests(db_url, redis, id))
        .await
        .expect("node starts")
}

async fn create(server: &Server, d: &str, text: &str) {
    let mut c = Client::connect(server, None).await;
    c.send(
        json!({"a": "op", "c": "examples", "d": d, "v": null, "seq": 1, "x": {},
        "create": {"type": "rich-text", "data": [{"insert": text}]}}),
    )
    .await;
    let ack = c.recv().await;
    assert!(is_ack(&ack), "{ack}");
}

fn text_of(snapshot: &Value) -> String {
    let delta = Delta::from_value(&snapshot["data"]).expect("a delta");
    Document::from_delta(&delta).expect("a document").text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_editors_on_two_nodes_converge_and_equal_a_fresh_fetch() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    create(&a, "race", "\n").await;
    let mut observers = Vec::new();
    for server in [&a, &b] {
        let mut o = Client::connect(server, None).await;
        o.subscribe("race", true).await;
        observers.push(o);
    }
    let mut editors = Vec::new();
    for (n, server) in [&a, &b, &a, &b, &a, &b, &a, &b, &a, &b]
        .into_iter()
        .enumerate()
    {
        assert!(n < 2 * EDITORS_PER_NODE);
        let mut c = Client::connect(server, None).await;
        c.subscribe("race", false).await;
        editors.push(tokio::spawn(async move {
            let letter = (b'a' + n as u8) as char;
            for seq in 1..=OPS_PER_EDITOR {
                // Inserts at the start and inside the text, which only grows.
                let op = match seq % 3 {
                    0 => json!([{"insert": letter.to_string()}]),
                    r => json!([{"retain": r}, {"insert": letter.to_string()}]),
                };
                let ack = c.submit("race", seq, op).await;
                assert!(is_ack(&ack), "{ack}");
            }
        }));
    }
    for e in editors {
        e.await.expect("an editor");
    }
    let total = 1 + 2 * EDITORS_PER_NODE as u64 * OPS_PER_EDITOR;
    let mut texts = Vec::new();
    for (o, server) in observers.iter_mut().zip([&a, &b]) {
        o.until_version(total).await;
        let fresh = Client::connect(server, None).await.fetch("race").await;
        assert_eq!(fresh["v"], total);
        let text = o.doc.as_ref().expect("kept").text();
        assert_eq!(
            text,
            text_of(&fresh),
            "what was delivered equals a fresh fetch"
        );
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[0].chars().count() as u64, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_race_is_transformed_and_retried_and_resends_are_deduped() {
    // No Redis: neither node hears of the other's ops except when its own
    // commit loses the race on the op table's unique version.
    let db = TestDb::create().await;
    let a = node(&db.url, None, "a").await;
    let b = node(&db.url, None, "b").await;
    create(&a, "rc", "ab\n").await;
    let mut ca = Client::connect(&a, None).await;
    ca.subscribe("rc", false).await;
    let mut cb = Client::connect(&b, None).await;
    cb.subscribe("rc", true).await;
    assert_eq!(ca.version, 1);
    assert_eq!(cb.version, 1);
    let ack = ca.submit("rc", 1, json!([{"insert": "X"}])).await;
    assert!(is_ack(&ack), "{ack}");
    // B still believes v1 is next: its commit races, loses, reads v1,
    // transforms and commits at v2, sending v1 before the ack.
    let ack = cb
        .submit("rc", 1, json!([{"retain": 2}, {"insert": "Y"}]))
        .await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 2);
    assert_eq!(
        cb.doc.as_ref().unwrap().text(),
        "Xab\n",
        "v1 came before the ack"
    );
    let fresh_b = Client::connect(&b, None).await.fetch("rc").await;
    assert_eq!(fresh_b["v"], 3);
    assert_eq!(text_of(&fresh_b), "XabY\n");

    // A resend of A's op (same src and seq) to B after A "died": acked at
    // its original version, not applied again.
    let mut again = Client::connect(&b, Some(&ca.src)).await;
    again.version = 1;
    let ack = again.submit("rc", 1, json!([{"insert": "X"}])).await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 1);
    // And to a node that has not seen it yet: A is behind B's op (v2), and
    // a resend of B's op to A is found in PostgreSQL by the race.
    let mut again = Client::connect(&a, Some(&cb.src)).await;
    again.version = 1;
    let ack = again
        .submit("rc", 1, json!([{"retain": 2}, {"insert": "Y"}]))
        .await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 2);
    for server in [&a, &b] {
        let fresh = Client::connect(server, None).await.fetch("rc").await;
        assert_eq!(fresh["v"], 3, "nothing applied twice");
        assert_eq!(text_of(&fresh), "XabY\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_gives_sharedb_errors_and_service_comes_back() {
    let db = TestDb::create().await;
    let cut = TcpCut::start(postgres_addr()).await;
    let mut config = Config::for_cluster_tests(&via(&db.url, cut.addr), None, "a");
    config.cluster.timeout_ms = 1000;
    let a = rt_server::spawn(config).await.expect("node starts");
    create(&a, "cut", "x\n").await;
    let mut c = Client::connect(&a, None).await;
    c.subscribe("cut", false).await;
    let ack = c.submit("cut", 1, json!([{"insert": "1"}])).await;
    assert!(is_ack(&ack), "{ack}");
    cut.cut();
    let reply = c.submit("cut", 2, json!([{"insert": "2"}])).await;
    assert!(
        reply.get("error").is_some(),
        "no ack without a commit: {reply}"
    );
    cut.restore();
    // A ShareDB client refetches after an error; a fresh one submits again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seq = 1;
    loop {
        let mut c = Client::connect(&a, None).await;
        c.subscribe("cut", false).await;
        let reply = c.submit("cut", seq, json!([{"insert": "3"}])).await;
        if is_ack(&reply) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "service came back: {reply}"
        );
        seq += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = Client::connect(&a, None).await.fetch("cut").await;
    let text = text_of(&fresh);
    assert!(text.starts_with('3') && text.ends_with("1x\n"), "{text}");
    assert!(!text.contains('2'), "the refused op is not there: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_catch_up_after_a_redis_restart() {
    let db = TestDb::create().await;
    let mut redis = PrivateRedis::start();
    let a = node(&db.url, Some(&redis.url()), "a").await;
    let b = node(&db.url, Some(&redis.url()), "b").await;
    create(&a, "rr", "\n").await;
    let mut writer = Client::connect(&a, None).await;
    writer.subscribe("rr", false).await;
    let mut reader = Client::connect(&b, None).await;
    reader.subscribe("rr", true).await;
    let mut seq = 0;
    for _ in 0..5 {
        seq += 1;
        assert!(is_ack(
            &writer.submit("rr", seq, json!([{"insert": "a"}])).await
        ));
    }
    reader.until_version(writer.version).await;
    redis.restart();
    for _ in 0..20 {
        seq += 1;
        assert!(is_ack(
            &writer.submit("rr", seq, json!([{"insert": "b"}])).await
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.until_version(writer.version).await;
    assert_eq!(
        reader.doc.as_ref().unwrap().text(),
        format!("{}aaaaa\n", "b".repeat(20))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_on_postgres_without_redis_keeps_the_document() {
    let db = TestDb::create().await;
    let a = node(&db.url, None, "a").await;
    let mut c = Client::connect(&a, None).await;
    let seed = c.fetch("richtext").await;
    assert_eq!(text_of(&seed), "Hi!\n", "seeded in PostgreSQL");
    c.subscribe("richtext", false).await;
    for seq in 1..=120 {
        assert!(is_ack(
            &c.submit("richtext", seq, json!([{"insert": "."}])).await
        ));
    }
    a.shutdown().await.expect("shutdown");
    let a = node(&db.url, None, "a2").await;
    let fresh = Client::connect(&a, None).await.fetch("richtext").await;
    assert_eq!(fresh["v"], 121);
    assert_eq!(text_of(&fresh), format!("{}Hi!\n", ".".repeat(120)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    create(&a, "pres", "hello\n").await;
    let ch = "examples.pres";
    let mut ca = Client::connect(&a, None).await;
    let mut cb = Client::connect(&b, None).await;
    for c in [&mut ca, &mut cb] {
        c.send(json!({"a": "ps", "ch": ch, "seq": 1})).await;
        loop {
            if c.recv().await["a"] == "ps" {
                break;
            }
        }
    }
    cb.send(
        json!({"a": "p", "ch": ch, "id": "cursor-b", "p": {"index": 2, "length": 1},
        "pv": 0, "c": "examples", "d": "pres", "v": 1,
        "t": "http://sharejs.org/types/rich-text/v1"}),
    )
    .await;
    loop {
        let msg = ca.recv().await;
        if msg["a"] == "p" && msg["id"] == "cursor-b" {
            assert_eq!(msg["p"]["index"], 2);
            assert_eq!(msg["src"], cb.src.as_str());
            break;
        }
    }
    // Leaving announces null on the other node too.
    drop(cb);
    loop {
        let msg = ca.recv().await;
        if msg["a"] == "p" && msg["id"] == "cursor-b" {
            assert!(msg["p"].is_null(), "{msg}");
            break;
        }
    }
}
