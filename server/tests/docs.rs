//! The editor's ShareDB protocol over a raw WebSocket: every action and
//! error path (protocols.md §4, §5.5, §5.6).

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_server::stats::App;
use rt_server::{Config, Server};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const RICH_TEXT: &str = "http://sharejs.org/types/rich-text/v1";
const WAIT: Duration = Duration::from_secs(5);

/// A raw ShareDB client: JSON in text frames.
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    src: String,
}

impl Client {
    /// Connects and completes the handshake.
    async fn connect(server: &Server) -> Client {
        Client::connect_as(server, None).await
    }

    async fn connect_as(server: &Server, id: Option<&str>) -> Client {
        let mut c = Client::open(server).await;
        c.send(json!({"a": "hs", "id": id, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = c.recv().await;
        assert_eq!(hs["a"], "hs");
        assert_eq!(hs["protocol"], 1);
        assert_eq!(hs["protocolMinor"], 2);
        assert_eq!(hs["type"], "http://sharejs.org/types/JSONv0");
        c.src = hs["id"].as_str().expect("a string id").to_string();
        if let Some(id) = id {
            assert_eq!(c.src, id);
        }
        c
    }

    /// Connects without a handshake.
    async fn open(server: &Server) -> Client {
        let url = format!("ws://{}/", server.addr);
        let (ws, _) = connect_async(url).await.expect("websocket connects");
        Client {
            ws,
            src: String::new(),
        }
    }

    async fn send(&mut self, msg: Value) {
        self.send_text(msg.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next JSON message (fails after 5 s).
    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within 5 s")
                .expect("the socket is open")
                .expect("a frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives for a short while.
    async fn silent(&mut self) {
        if let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(150), self.ws.next()).await
        {
            panic!("unexpected message {msg:?}");
        }
    }

    /// The close frame's code, skipping other messages.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code.into()),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("no close within 5 s"),
            }
        }
    }

    /// Subscribes to `examples/<d>` and returns the snapshot.
    async fn subscribe(&mut self, d: &str) -> Value {
        self.send(json!({"a": "s", "c": "examples", "d": d, "v": null}))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["a"], "s", "{reply}");
        assert!(reply.get("error").is_none(), "{reply}");
        reply["data"].clone()
    }

    /// Creates `examples/<d>` with `text` and returns the ack.
    async fn create(&mut self, d: &str, seq: u64, text: &str) -> Value {
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": null, "seq": seq, "x": {},
            "create": {"type": "rich-text", "data": [{"insert": text}]}}),
        )
        .await;
        self.recv().await
    }

    /// Submits `op` at version `v`; returns the next message.
    async fn op(&mut self, d: &str, v: u64, seq: u64, op: Value) -> Value {
        self.send(
            json!({"a": "op", "c": "examples", "d": d, "v": v, "seq": seq, "x": {}, "op": op}),
        )
        .await;
        self.recv().await
    }

    /// The doc's snapshot via `f`.
    async fn fetch(&mut self, d: &str) -> Value {
        self.send(json!({"a": "f", "c": "examples", "d": d})).await;
        let reply = self.recv().await;
        assert_eq!(reply["a"], "f", "{reply}");
        reply["data"].clone()
    }
}

fn is_ack(msg: &Value) -> bool {
    msg["a"] == "op"
        && msg.get("op").is_none()
        && msg.get("create").is_none()
        && msg.get("del").is_none()
}

fn error_code(msg: &Value) -> &str {
    msg["error"]["code"].as_str().unwrap_or("<no error>")
}

async fn server_with(f: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::for_tests();
    f(&mut config);
    common::server_with(config).await
}

async fn stored_ops(server: &Server, d: &str) -> Vec<(i64, String, i64)> {
    let d = d.to_string();
    server
        .state
        .store
        .call(move |c| {
            let mut s = c.prepare(
                "SELECT v, src, seq FROM doc_ops WHERE collection = 'examples' AND doc_id = ?1 ORDER BY v",
            )?;
            s.query_map([d], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn handshake_seed_fetch_and_ping() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    assert_eq!(a.src.len(), 32);
    let snap = a.fetch("richtext").await;
    assert_eq!(
        snap,
        json!({"v": 1, "type": RICH_TEXT, "data": {"ops": [{"insert": "Hi!\n"}]}})
    );
    let missing = a.fetch("nothing-here").await;
    assert_eq!(missing, json!({"v": 0, "type": null}));
    a.send(json!({"a": "pp"})).await;
    assert_eq!(a.recv().await, json!({"a": "pp"}));
    // A reconnecting client keeps its id.
    let b = Client::connect_as(&server, Some("previous-id")).await;
    assert_eq!(b.src, "previous-id");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn submit_acks_broadcasts_and_transforms_with_catch_up() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    let ack = a.create("t1", 1, "abc\n").await;
    assert_eq!(
        ack,
        json!({"a": "op", "c": "examples", "d": "t1", "src": a.src, "seq": 1, "v": 0})
    );
    assert_eq!(a.subscribe("t1").await["v"], 1);
    assert_eq!(b.subscribe("t1").await["v"], 1);

    // A inserts at v1: ack to A, broadcast with A's src to B, nothing echoed to A.
    let ack = a
        .op("t1", 1, 2, json!([{"retain": 1}, {"insert": "X"}]))
        .await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 1);
    let bc = b.recv().await;
    assert_eq!(
        bc,
        json!({"a": "op", "c": "examples", "d": "t1", "v": 1, "src": a.src, "seq": 2,
               "op": {"ops": [{"retain": 1}, {"insert": "X"}]}})
    );
    a.silent().await;

    // B submits at the stale v1: it gets A's op as catch-up first, then its
    // ack at v2; its insert at the same place lands after A's.
    b.send(json!({"a": "op", "c": "examples", "d": "t1", "v": 1, "seq": 1, "op": [{"retain": 1}, {"insert": "Y"}]}))
        .await;
    let catch_up = b.recv().await;
    assert_eq!(catch_up["v"], 1);
    assert_eq!(catch_up["src"], a.src.as_str());
    let ack = b.recv().await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 2);
    let bc = a.recv().await;
    assert_eq!(bc["v"], 2);
    assert_eq!(bc["src"], b.src.as_str());
    assert_eq!(bc["op"], json!({"ops": [{"retain": 2}, {"insert": "Y"}]}));
    assert_eq!(
        a.fetch("t1").await["data"],
        json!({"ops": [{"insert": "aXYbc\n"}]})
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_op_is_acked_once_and_not_applied_twice() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    a.create("dup", 1, "\n").await;
    let ack = a.op("dup", 1, 2, json!([{"insert": "once"}])).await;
    assert_eq!(ack["v"], 1);
    // The same op resent after a "reconnect" under the old src.
    let mut again = Client::connect_as(&server, Some(&a.src.clone())).await;
    again
        .send(json!({"a": "op", "c": "examples", "d": "dup", "v": 1, "seq": 2, "src": a.src, "op": [{"insert": "once"}]}))
        .await;
    let ack = again.recv().await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 1);
    assert_eq!(ack["src"], a.src.as_str());
    let snap = again.fetch("dup").await;
    assert_eq!(snap["v"], 2);
    assert_eq!(snap["data"], json!({"ops": [{"insert": "once\n"}]}));
    // A resent create is acked with its version too.
    let ack = again.create("dup", 1, "\n").await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 0);
    let ops = stored_ops(&server, "dup").await;
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1], (1, a.src.clone(), 2));
    // A resend from an older version gets the ops before the original first,
    // then the ack at the original's version.
    let mut b = Client::connect(&server).await;
    assert_eq!(b.op("dup", 2, 1, json!([{"insert": "b"}])).await["v"], 2);
    let first = again.op("dup", 2, 3, json!([{"insert": "a"}])).await;
    assert_eq!(first["v"], 2, "catch-up op");
    assert_eq!(again.recv().await["v"], 3);
    again
        .send(json!({"a": "op", "c": "examples", "d": "dup", "v": 2, "seq": 3, "src": a.src, "op": [{"insert": "a"}]}))
        .await;
    let catch_up = again.recv().await;
    assert_eq!(
        (catch_up["v"].clone(), catch_up["src"].clone()),
        (json!(2), json!(b.src))
    );
    let ack = again.recv().await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 3);
    assert_eq!(stored_ops(&server, "dup").await.len(), 4);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_delete_and_their_errors() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    b.subscribe("cd").await;
    // An edit of a doc that does not exist.
    let err = a.op("cd", 0, 1, json!([{"insert": "x"}])).await;
    assert_eq!(error_code(&err), "ERR_DOC_DOES_NOT_EXIST");
    assert_eq!(err["seq"], 1);
    // Create: broadcast with the type URI.
    let ack = a.create("cd", 2, "hello\n").await;
    assert_eq!(ack["v"], 0);
    let bc = b.recv().await;
    assert_eq!(
        bc["create"],
        json!({"type": RICH_TEXT, "data": {"ops": [{"insert": "hello\n"}]}})
    );
    assert_eq!(bc["src"], a.src.as_str());
    // A second create by someone else.
    let err = b.create("cd", 1, "other\n").await;
    assert_eq!(error_code(&err), "ERR_DOC_ALREADY_CREATED");
    // An unknown type.
    b.send(json!({"a": "op", "c": "examples", "d": "cd2", "v": null, "seq": 2, "create": {"type": "json0", "data": {}}}))
        .await;
    assert_eq!(error_code(&b.recv().await), "ERR_DOC_TYPE_NOT_RECOGNIZED");
    // Delete: broadcast as del:true; a stale edit then fails.
    a.send(json!({"a": "op", "c": "examples", "d": "cd", "v": 1, "seq": 3, "del": true}))
        .await;
    let ack = a.recv().await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 1);
    let bc = b.recv().await;
    assert_eq!(bc["del"], true);
    assert_eq!(bc["v"], 1);
    let err = b.op("cd", 1, 3, json!([{"insert": "late"}])).await;
    assert_eq!(error_code(&err), "ERR_DOC_WAS_DELETED");
    assert_eq!(a.fetch("cd").await, json!({"v": 2, "type": null}));
    // The doc can be created again at its current version.
    let ack = a.create("cd", 4, "again\n").await;
    assert_eq!(ack["v"], 2);
    b.recv().await;
    // A stale edit against a re-create fails as already created.
    let err = b.op("cd", 2, 4, json!([{"insert": "x"}])).await;
    assert_eq!(error_code(&err), "ERR_DOC_ALREADY_CREATED");
    // del must be true.
    a.send(json!({"a": "op", "c": "examples", "d": "cd", "v": 3, "seq": 5, "del": 1}))
        .await;
    assert_eq!(error_code(&a.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_ops_get_an_echo_and_leave_the_doc_untouched() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.create("bad", 1, "ab😀\n").await;
    b.subscribe("bad").await;
    let cases = [
        (
            json!([{"retain": 10}, {"insert": "x"}]),
            "ERR_OT_OP_NOT_APPLIED",
        ),
        (json!([{"delete": 9}]), "ERR_OT_OP_NOT_APPLIED"),
        (
            json!([{"retain": 3}, {"insert": "x"}]),
            "ERR_OT_OP_NOT_APPLIED",
        ),
        (
            json!([{"retain": 3}, {"delete": 1}]),
            "ERR_OT_OP_NOT_APPLIED",
        ),
        (json!([{"retain": {"image": 1}}]), "ERR_OT_OP_BADLY_FORMED"),
        (
            json!([{"retain": 0}, {"insert": "x"}]),
            "ERR_OT_OP_BADLY_FORMED",
        ),
        (json!([{"delete": -1}]), "ERR_OT_OP_BADLY_FORMED"),
        (
            json!([{"insert": "x", "attributes": 5}]),
            "ERR_OT_OP_BADLY_FORMED",
        ),
        (json!("nonsense"), "ERR_OT_OP_BADLY_FORMED"),
    ];
    for (i, (op, code)) in cases.into_iter().enumerate() {
        let seq = 2 + i as u64;
        let err = a.op("bad", 1, seq, op.clone()).await;
        assert_eq!(error_code(&err), code, "{op}");
        assert_eq!(err["seq"], seq);
        assert_eq!(err["op"], op, "the request is echoed");
    }
    // The op had the version ahead of the server.
    let err = a.op("bad", 7, 20, json!([{"insert": "x"}])).await;
    assert_eq!(
        error_code(&err),
        "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"
    );
    // A missing body, and a negative version.
    a.send(json!({"a": "op", "c": "examples", "d": "bad", "v": 1, "seq": 21}))
        .await;
    let err = a.recv().await;
    assert_eq!(error_code(&err), "ERR_MESSAGE_BADLY_FORMED");
    assert_eq!(err["error"]["message"], "Invalid op message");
    a.send(json!({"a": "op", "c": "examples", "d": "bad", "v": -1, "seq": 22, "op": []}))
        .await;
    assert_eq!(error_code(&a.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    a.send(json!({"a": "op", "c": "examples", "d": "bad", "v": 1, "seq": 9007199254740992u64, "op": []}))
        .await;
    assert_eq!(
        error_code(&a.recv().await),
        "ERR_CONNECTION_SEQ_INTEGER_OVERFLOW"
    );
    // Nobody else heard of any of it, the doc is as it was, and the
    // connection still works.
    b.silent().await;
    assert_eq!(
        a.fetch("bad").await,
        json!({"v": 1, "type": RICH_TEXT, "data": {"ops": [{"insert": "ab😀\n"}]}})
    );
    let ack = a
        .op("bad", 1, 30, json!([{"retain": 4}, {"insert": "!"}]))
        .await;
    assert_eq!(ack["v"], 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn lone_surrogates_are_refused_in_ops_and_replaced_elsewhere() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.create("sur", 1, "x\n").await;
    a.send_text(
        r#"{"a":"op","c":"examples","d":"sur","v":1,"seq":2,"op":[{"insert":"\ud83d"}]}"#.into(),
    )
    .await;
    let err = a.recv().await;
    assert_eq!(error_code(&err), "ERR_OT_OP_BADLY_FORMED");
    assert_eq!(err["seq"], 2);
    assert_eq!(a.fetch("sur").await["v"], 1);
    // Presence text with a lone surrogate goes through as U+FFFD.
    b.send(json!({"a": "ps", "ch": "room", "seq": 1})).await;
    assert_eq!(b.recv().await["a"], "ps");
    a.send_text(r#"{"a":"p","ch":"room","id":"me","pv":0,"p":{"name":"a\udc00"}}"#.into())
        .await;
    let got = b.recv().await;
    assert_eq!(got["p"]["name"], "a\u{FFFD}");
    assert_eq!(a.recv().await["p"]["name"], "a\u{FFFD}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_frames_unknown_actions_queries_and_binary() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    a.send_text("{not json".into()).await;
    assert_eq!(error_code(&a.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    a.send_text("[1,2]".into()).await;
    assert_eq!(error_code(&a.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    a.send(json!({"a": "nope", "c": "examples", "d": "x"}))
        .await;
    let err = a.recv().await;
    assert_eq!(err["a"], "nope");
    assert_eq!(err["d"], "x");
    assert_eq!(err["error"]["message"], "Invalid or unknown message");
    for q in ["qf", "qs", "qu"] {
        a.send(json!({"a": q, "id": 3, "c": "examples", "q": {}}))
            .await;
        let err = a.recv().await;
        assert_eq!(err["a"], q);
        assert_eq!(err["id"], 3);
        assert_eq!(error_code(&err), "ERR_MESSAGE_BADLY_FORMED");
    }
    a.send(json!({"a": "f", "c": 5, "d": "x"})).await;
    assert_eq!(a.recv().await["error"]["message"], "Invalid collection");
    a.ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(error_code(&a.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    // Still usable.
    a.send(json!({"a": "pp"})).await;
    assert_eq!(a.recv().await, json!({"a": "pp"}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_on_frames_ops_and_documents() {
    let server = server_with(|c| {
        c.docs.max_frame_bytes = 4096;
        c.docs.max_op_bytes = 1000;
        c.docs.max_doc_len = 50;
    })
    .await;
    let mut a = Client::connect(&server).await;
    a.create("lim", 1, "\n").await;
    // An op over the op limit.
    let err = a
        .op("lim", 1, 2, json!([{"insert": "x".repeat(1500)}]))
        .await;
    assert_eq!(error_code(&err), "ERR_OT_OP_BADLY_FORMED");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--doc-max-op-bytes")
    );
    // A document over the size limit.
    let err = a.op("lim", 1, 3, json!([{"insert": "y".repeat(60)}])).await;
    assert_eq!(error_code(&err), "ERR_OT_OP_NOT_APPLIED");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--doc-max-len")
    );
    // A create over the size limit.
    let err = a.create("lim2", 4, &"z".repeat(80)).await;
    assert_eq!(error_code(&err), "ERR_OT_OP_NOT_APPLIED");
    // A frame over the frame limit: an echo of the small fields.
    let big = json!({"a": "op", "c": "examples", "d": "lim", "v": 1, "seq": 5, "op": [{"insert": "w".repeat(5000)}]});
    a.send(big).await;
    let err = a.recv().await;
    assert_eq!(error_code(&err), "ERR_MESSAGE_BADLY_FORMED");
    assert_eq!(err["seq"], 5);
    assert!(err.get("op").is_none());
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--doc-max-frame-bytes")
    );
    // Within limits all is well.
    let ack = a.op("lim", 1, 6, json!([{"insert": "fine"}])).await;
    assert_eq!(ack["v"], 1);
    // A frame beyond twice the limit closes the connection (1009).
    a.send_text(format!("{{\"a\":\"pp\",\"pad\":\"{}\"}}", "p".repeat(9000)))
        .await;
    assert_eq!(a.close_code().await, Some(1009));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_close_gets_the_closing_handshake_reply() {
    // Found by the Autobahn cases (SECURITY.md): the reply was never sent.
    let server = server_with(|_| {}).await;
    let mut a = Client::connect(&server).await;
    a.ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    assert_eq!(a.close_code().await, Some(1000));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn fetch_and_subscribe_with_versions_unsubscribe_and_bulk() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.create("r1", 1, "\n").await;
    a.create("r2", 2, "\n").await;
    for (i, seq) in (3..6).enumerate() {
        a.op("r1", 1 + i as u64, seq, json!([{"insert": "x"}]))
            .await;
    }
    // f with v: the ops since v, then a bare reply.
    b.send(json!({"a": "f", "c": "examples", "d": "r1", "v": 2}))
        .await;
    for v in [2, 3] {
        let op = b.recv().await;
        assert_eq!(op["a"], "op");
        assert_eq!(op["v"], v);
        assert_eq!(op["src"], a.src.as_str());
    }
    assert_eq!(
        b.recv().await,
        json!({"a": "f", "c": "examples", "d": "r1"})
    );
    // s with v subscribes after the catch-up.
    b.send(json!({"a": "s", "c": "examples", "d": "r1", "v": 4}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"a": "s", "c": "examples", "d": "r1"})
    );
    a.op("r1", 4, 6, json!([{"insert": "y"}])).await;
    assert_eq!(b.recv().await["v"], 4);
    // u stops the stream.
    b.send(json!({"a": "u", "c": "examples", "d": "r1"})).await;
    assert_eq!(
        b.recv().await,
        json!({"a": "u", "c": "examples", "d": "r1"})
    );
    a.op("r1", 5, 7, json!([{"insert": "z"}])).await;
    b.silent().await;
    // bs with ids: one reply with every snapshot.
    b.send(json!({"a": "bs", "c": "examples", "b": ["r1", "r2", "none"]}))
        .await;
    let reply = b.recv().await;
    assert_eq!(reply["a"], "bs");
    assert_eq!(reply["data"]["r1"]["v"], 6);
    assert_eq!(reply["data"]["r2"]["v"], 1);
    assert_eq!(reply["data"]["none"], json!({"v": 0, "type": null}));
    a.op("r2", 1, 8, json!([{"insert": "q"}])).await;
    assert_eq!(b.recv().await["d"], "r2");
    // bu ends both streams.
    b.send(json!({"a": "bu", "c": "examples", "b": ["r1", "r2"]}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"a": "bu", "c": "examples", "b": ["r1", "r2"]})
    );
    a.op("r2", 2, 9, json!([{"insert": "q"}])).await;
    b.silent().await;
    // bf with versions: the missing ops of each, then an echo of b.
    b.send(json!({"a": "bf", "c": "examples", "b": {"r1": 5, "r2": 2}}))
        .await;
    let mut got = Vec::new();
    loop {
        let m = b.recv().await;
        if m["a"] == "bf" {
            assert_eq!(m["b"], json!({"r1": 5, "r2": 2}));
            break;
        }
        got.push((
            m["d"].as_str().unwrap().to_string(),
            m["v"].as_u64().unwrap(),
        ));
    }
    got.sort();
    assert_eq!(got, vec![("r1".to_string(), 5), ("r2".to_string(), 2)]);
    // bf with ids.
    b.send(json!({"a": "bf", "c": "examples", "b": ["r2"]}))
        .await;
    assert_eq!(b.recv().await["data"]["r2"]["v"], 3);
    // Bad bulk data.
    b.send(json!({"a": "bs", "c": "examples", "b": 7})).await;
    assert_eq!(error_code(&b.recv().await), "ERR_MESSAGE_BADLY_FORMED");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn snapshot_at_a_version_is_rebuilt_from_snapshots_and_the_log() {
    let server = server_with(|c| c.docs.snapshot_every = 3).await;
    let mut a = Client::connect(&server).await;
    a.create("nf", 1, "\n").await;
    for i in 0..7u64 {
        let ack = a
            .op("nf", 1 + i, 2 + i, json!([{"insert": i.to_string()}]))
            .await;
        assert_eq!(ack["v"], 1 + i);
    }
    for (v, text) in [
        (0, None),
        (1, Some("\n")),
        (4, Some("210\n")),
        (8, Some("6543210\n")),
    ] {
        a.send(json!({"a": "nf", "id": 10 + v, "c": "examples", "d": "nf", "v": v}))
            .await;
        let reply = a.recv().await;
        assert_eq!(reply["a"], "nf");
        assert_eq!(reply["id"], 10 + v);
        assert_eq!(reply["v"], v);
        assert_eq!(reply["m"], Value::Null);
        match text {
            None => assert_eq!(reply["type"], Value::Null),
            Some(t) => {
                assert_eq!(reply["type"], RICH_TEXT);
                assert_eq!(reply["data"], json!({"ops": [{"insert": t}]}));
            }
        }
    }
    a.send(json!({"a": "nf", "id": 99, "c": "examples", "d": "nf", "v": null}))
        .await;
    assert_eq!(a.recv().await["v"], 8);
    let snaps: i64 = server
        .state
        .store
        .call(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM doc_snapshots WHERE doc_id = 'nf'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(snaps, 2, "snapshots at v3 and v6");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_documents_unload_and_reload_from_the_store() {
    let server = server_with(|c| {
        c.docs.idle_unload_ms = 100;
        c.docs.snapshot_every = 4;
    })
    .await;
    let mut a = Client::connect(&server).await;
    a.create("idle", 1, "\n").await;
    for i in 0..9u64 {
        a.op("idle", 1 + i, 2 + i, json!([{"insert": "k"}])).await;
    }
    let mut b = Client::connect(&server).await;
    b.subscribe("idle").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Subscribed: still loaded.
    assert!(server.state.docs.registry.loaded().await >= 1);
    b.send(json!({"a": "u", "c": "examples", "d": "idle"}))
        .await;
    b.recv().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.state.docs.registry.loaded().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "documents never unloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reloaded on demand, from the latest snapshot plus the ops after it.
    let snap = a.fetch("idle").await;
    assert_eq!(snap["v"], 10);
    assert_eq!(snap["data"], json!({"ops": [{"insert": "kkkkkkkkk\n"}]}));
    // A stale submit after a reload still transforms against the log.
    let ack = a.op("idle", 2, 50, json!([{"insert": "s"}])).await;
    assert_eq!(ack["v"], 2, "catch-up op v2 comes first");
    let mut last = ack;
    while !is_ack(&last) {
        last = a.recv().await;
    }
    assert_eq!(last["v"], 10);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn presence_subscribe_publish_transform_request_and_leave() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.create("pres", 1, "hello\n").await;
    let ch = "examples.pres";
    b.send(json!({"a": "ps", "ch": ch, "seq": 1})).await;
    assert_eq!(b.recv().await, json!({"a": "ps", "ch": ch, "seq": 1}));
    // A joins the channel: B is asked to resend its presence.
    a.send(json!({"a": "ps", "ch": ch, "seq": 1})).await;
    assert_eq!(b.recv().await, json!({"a": "pr", "ch": ch}));
    assert_eq!(a.recv().await, json!({"a": "ps", "ch": ch, "seq": 1}));
    // Two edits at v1 and v2, by B then A.
    a.subscribe("pres").await;
    b.op("pres", 1, 1, json!([{"insert": "ab"}])).await;
    assert_eq!(a.recv().await["v"], 1);
    let ack = a
        .op("pres", 2, 2, json!([{"retain": 4}, {"insert": "Z"}]))
        .await;
    assert_eq!(ack["v"], 2);
    // A presence from before the create is cleared by it.
    a.send(
        json!({"a": "p", "ch": ch, "id": "pa", "pv": 0, "p": {"index": 2, "length": 0, "name": "a"},
        "c": "examples", "d": "pres", "v": 0, "t": RICH_TEXT}),
    )
    .await;
    let got_b = b.recv().await;
    let got_a = a.recv().await;
    assert_eq!(got_b, got_a, "the ack equals the broadcast");
    assert_eq!(got_b["p"], Value::Null);
    assert_eq!(got_b["v"], 3);
    // A's caret at 2 (v1, before "ll"): B's insert at 0 moves it to 4, then
    // A's own insert exactly there pushes it past: 5.
    a.send(
        json!({"a": "p", "ch": ch, "id": "pa", "pv": 1, "p": {"index": 2, "length": 0, "name": "a"},
        "c": "examples", "d": "pres", "v": 1, "t": RICH_TEXT}),
    )
    .await;
    let expected = json!({"a": "p", "ch": ch, "src": a.src, "id": "pa", "pv": 1,
        "p": {"index": 5, "length": 0, "name": "a"}, "c": "examples", "d": "pres", "v": 3, "t": RICH_TEXT});
    assert_eq!(b.recv().await, expected);
    assert_eq!(a.recv().await, expected);
    // Someone else's insert exactly at the caret leaves it in front.
    b.send(
        json!({"a": "p", "ch": ch, "id": "pb", "pv": 0, "p": {"index": 4, "length": 1},
        "c": "examples", "d": "pres", "v": 2, "t": RICH_TEXT}),
    )
    .await;
    let got = a.recv().await;
    assert_eq!(got["p"], json!({"index": 4, "length": 2}));
    assert_eq!(got["src"], b.src.as_str());
    assert_eq!(got["v"], 3);
    b.recv().await;
    // A type without presence.
    a.send(json!({"a": "p", "ch": ch, "id": "pa", "pv": 3, "p": {"index": 0}, "c": "examples", "d": "pres", "v": 3, "t": "json0"}))
        .await;
    assert_eq!(
        error_code(&a.recv().await),
        "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE"
    );
    // A bad range.
    a.send(json!({"a": "p", "ch": ch, "id": "pa", "pv": 3, "p": "oops", "c": "examples", "d": "pres", "v": 2, "t": RICH_TEXT}))
        .await;
    assert_eq!(error_code(&a.recv().await), "ERR_PRESENCE_TRANSFORM_FAILED");
    // pr: the others are asked, the requester gets a bare reply.
    b.send(json!({"a": "pr", "ch": ch})).await;
    assert_eq!(b.recv().await, json!({"a": "pr"}));
    assert_eq!(a.recv().await, json!({"a": "pr", "ch": ch}));
    // A leaves: B sees A's presence as null with the same pv.
    drop(a);
    let gone = b.recv().await;
    assert_eq!(gone["id"], "pa");
    assert_eq!(gone["p"], Value::Null);
    assert_eq!(gone["pv"], 1);
    // pu: unsubscribed, nothing more arrives.
    b.send(json!({"a": "pu", "ch": ch, "seq": 2})).await;
    assert_eq!(b.recv().await, json!({"a": "pu", "ch": ch, "seq": 2}));
    let mut c = Client::connect(&server).await;
    c.send(json!({"a": "p", "ch": ch, "id": "pc", "pv": 0, "p": {"index": 0, "length": 0}}))
        .await;
    assert_eq!(c.recv().await["id"], "pc");
    b.silent().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn presence_unsubscribe_announces_null_to_the_others() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    for c in [&mut a, &mut b] {
        c.send(json!({"a": "ps", "ch": "g", "seq": 1})).await;
    }
    assert_eq!(a.recv().await["a"], "ps");
    assert_eq!(a.recv().await["a"], "pr");
    assert_eq!(b.recv().await["a"], "ps");
    a.send(json!({"a": "p", "ch": "g", "id": "x", "pv": 4, "p": {"k": 1}}))
        .await;
    assert_eq!(b.recv().await["p"], json!({"k": 1}));
    a.recv().await;
    a.send(json!({"a": "pu", "ch": "g", "seq": 2})).await;
    let gone = b.recv().await;
    assert_eq!(
        (gone["id"].clone(), gone["p"].clone(), gone["pv"].clone()),
        (json!("x"), Value::Null, json!(4))
    );
    assert_eq!(a.recv().await, json!({"a": "pu", "ch": "g", "seq": 2}));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_editor_sockets_with_1001_and_counts_connections() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    assert_eq!(server.state.stats.open(App::Editor), 1);
    let b = Client::connect(&server).await;
    assert_eq!(server.state.stats.open(App::Editor), 2);
    drop(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.state.stats.open(App::Editor) != 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = server.state.clone();
    let stop = tokio::spawn(server.shutdown());
    assert_eq!(a.close_code().await, Some(1001));
    stop.await.unwrap().unwrap();
    assert_eq!(state.stats.open(App::Editor), 0);
}

#[tokio::test]
async fn the_root_still_serves_the_landing_page_and_the_ticker() {
    let server = common::server().await;
    let res = common::http()
        .get(format!("{}/", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn acknowledged_ops_survive_a_restart_on_the_same_file() {
    let dir = std::env::temp_dir().join(format!("rt-docs-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.db");
    let config = |c: &mut Config| {
        c.data = Some(path.clone());
        c.docs.snapshot_every = 5;
    };
    let server = server_with(config).await;
    let mut a = Client::connect(&server).await;
    for i in 0..12u64 {
        a.op("richtext", 1 + i, 1 + i, json!([{"insert": "r"}]))
            .await;
    }
    server.shutdown().await.unwrap();
    // The seed is not repeated; every op is there.
    let server = server_with(config).await;
    let mut a = Client::connect(&server).await;
    let snap = a.fetch("richtext").await;
    assert_eq!(snap["v"], 13);
    assert_eq!(
        snap["data"],
        json!({"ops": [{"insert": "rrrrrrrrrrrrHi!\n"}]})
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_cut_and_can_resume() {
    let server = server_with(|c| {
        c.docs.send_queue = 4;
        c.docs.max_doc_len = 64 * 1024 * 1024;
        c.docs.max_op_bytes = 1024 * 1024;
        c.docs.max_frame_bytes = 2 * 1024 * 1024;
    })
    .await;
    let mut writer = Client::connect(&server).await;
    writer.create("slow", 1, "\n").await;
    let mut slow = Client::connect(&server).await;
    slow.subscribe("slow").await;
    // The slow client reads nothing while broadcasts pile up beyond what the
    // socket buffers hold.
    let chunk = "s".repeat(100_000);
    let mut v = 1;
    let mut cut = false;
    for seq in 2..200u64 {
        let ack = writer.op("slow", v, seq, json!([{"insert": chunk}])).await;
        assert_eq!(ack["v"], v);
        v += 1;
        if server.state.stats.open(App::Editor) == 1 {
            cut = true;
            break;
        }
    }
    assert!(cut, "the slow subscriber was never cut");
    // Its socket ends (with 1013 if the close frame still fit).
    let code = slow.close_code().await;
    assert!(matches!(code, None | Some(1013)), "{code:?}");
    // A new connection catches up from the version it had.
    let mut back = Client::connect(&server).await;
    back.send(json!({"a": "s", "c": "examples", "d": "slow", "v": 1}))
        .await;
    for want in 1..v {
        assert_eq!(back.recv().await["v"], want);
    }
    assert_eq!(
        back.recv().await,
        json!({"a": "s", "c": "examples", "d": "slow"})
    );
    server.shutdown().await.unwrap();
}

/// Every op message a client has received, until it holds the acks of seqs
/// `1..=ops` of its own: (v, src, is_ack) in arrival order.
async fn ops_until_acked(c: &mut Client, ops: u64) -> Vec<(u64, String, bool)> {
    let mut seen = Vec::new();
    let mut acked = 0;
    while acked < ops {
        let msg = c.recv().await;
        assert_eq!(msg["a"], "op", "{msg}");
        assert!(msg.get("error").is_none(), "{msg}");
        let v = msg["v"].as_u64().expect("a version");
        let src = msg["src"].as_str().expect("a src").to_string();
        if is_ack(&msg) {
            acked += 1;
            assert_eq!(msg["seq"], acked, "acks come in the order of the ops");
            assert_eq!(src, c.src);
        }
        seen.push((v, src, is_ack(&msg)));
    }
    seen
}

#[tokio::test]
async fn ops_in_flight_from_many_connections_are_acked_in_order_and_durable() {
    const CLIENTS: usize = 5;
    const OPS: u64 = 40;
    let dir = std::env::temp_dir().join(format!("rt-docs-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.db");
    let config = |c: &mut Config| {
        c.data = Some(path.clone());
        c.docs.snapshot_every = 7;
    };
    let server = server_with(config).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::connect(&server).await);
    }
    clients[0].create("pipe", 1, "\n").await;
    for c in clients.iter_mut() {
        assert_eq!(c.subscribe("pipe").await["v"], 1);
    }
    // Every client sends all its ops at once, without waiting for acks (at
    // the current version, so none needs a transform): the ops of all the
    // connections are in flight together while batches commit.
    for (i, c) in clients.iter_mut().enumerate() {
        let letter = char::from(b'a' + i as u8).to_string();
        let seq0 = if i == 0 { 1 } else { 0 };
        for seq in 1..=OPS {
            c.send(json!({"a": "op", "c": "examples", "d": "pipe", "v": null,
                          "seq": seq0 + seq, "op": [{"insert": letter}]}))
                .await;
        }
    }
    // A late subscriber joins while they are in flight: it sees every op
    // after its snapshot exactly once, in version order.
    let mut late = Client::connect(&server).await;
    let from = late.subscribe("pipe").await["v"].as_u64().unwrap();
    let total = 1 + CLIENTS as u64 * OPS;
    for (i, c) in clients.iter_mut().enumerate() {
        if i == 0 {
            // Its create was acked already; its ops are seqs 2..=OPS+1.
            let mut acked = 0;
            let mut seen = Vec::new();
            while acked < OPS {
                let msg = c.recv().await;
                assert!(msg.get("error").is_none(), "{msg}");
                if is_ack(&msg) {
                    acked += 1;
                    assert_eq!(msg["seq"], acked + 1, "acks in order");
                }
                seen.push(msg["v"].as_u64().unwrap());
            }
            while seen.len() < (total - 1) as usize {
                seen.push(c.recv().await["v"].as_u64().unwrap());
            }
            assert_eq!(seen, (1..total).collect::<Vec<_>>());
            continue;
        }
        let mut seen = ops_until_acked(c, OPS).await;
        // Then the rest of the others' ops.
        while seen.len() < (total - 1) as usize {
            let msg = c.recv().await;
            seen.push((msg["v"].as_u64().unwrap(), String::new(), is_ack(&msg)));
        }
        let versions: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(versions, (1..total).collect::<Vec<_>>(), "every op once");
    }
    for want in from..total {
        assert_eq!(late.recv().await["v"], want);
    }
    late.silent().await;
    let text = clients[0].fetch("pipe").await;
    assert_eq!(text["v"], total);
    server.shutdown().await.unwrap();

    // After a restart every acknowledged op is there, once.
    let server = server_with(config).await;
    let ops = stored_ops(&server, "pipe").await;
    assert_eq!(ops.len() as u64, total);
    for (i, c) in clients.iter().enumerate() {
        let mine: Vec<i64> = ops
            .iter()
            .filter(|(_, src, _)| *src == c.src)
            .map(|(_, _, seq)| *seq)
            .collect();
        let last = if i == 0 { OPS as i64 + 1 } else { OPS as i64 };
        assert_eq!(mine, (1..=last).collect::<Vec<_>>());
    }
    let mut a = Client::connect(&server).await;
    let snap = a.fetch("pipe").await;
    assert_eq!(snap["v"], total);
    let text = snap["data"]["ops"][0]["insert"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..CLIENTS {
        let letter = char::from(b'a' + i as u8);
        assert_eq!(text.matches(letter).count() as u64, OPS, "{text}");
    }
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_failed_commit_fails_the_pending_ops_and_keeps_memory_with_the_store() {
    let server = common::server().await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.create("fail", 1, "\n").await;
    assert_eq!(a.op("fail", 1, 2, json!([{"insert": "a"}])).await["v"], 1);
    assert_eq!(b.subscribe("fail").await["v"], 2);
    // From version 3 on, the store refuses this document's ops.
    server
        .state
        .store
        .call(|c| {
            c.execute_batch(
                "CREATE TRIGGER inject_failure BEFORE INSERT ON doc_ops
                 WHEN NEW.doc_id = 'fail' AND NEW.v >= 3
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
        })
        .await
        .unwrap();
    // Several ops in flight: the one at v2 commits, the later ones fail.
    for seq in 3..=6u64 {
        a.send(
            json!({"a": "op", "c": "examples", "d": "fail", "v": null, "seq": seq,
                      "op": [{"insert": "x"}]}),
        )
        .await;
    }
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    while acked.len() + failed.len() < 4 {
        let msg = a.recv().await;
        if msg.get("error").is_some() {
            assert_eq!(error_code(&msg), "ERR_UNKNOWN_ERROR", "{msg}");
            failed.push(msg["seq"].as_u64().unwrap());
        } else {
            assert!(is_ack(&msg), "{msg}");
            acked.push(msg["v"].as_u64().unwrap());
        }
    }
    assert_eq!(acked, vec![2], "only the op at v2 is acknowledged");
    assert_eq!(failed, vec![4, 5, 6]);
    // The subscriber saw only the durable op.
    assert_eq!(b.recv().await["v"], 2);
    b.silent().await;
    // Memory matches the store: version 3, one "x".
    let snap = b.fetch("fail").await;
    assert_eq!(snap["v"], 3);
    assert_eq!(snap["data"], json!({"ops": [{"insert": "xa\n"}]}));
    assert_eq!(stored_ops(&server, "fail").await.len(), 3);
    // Ops from several connections in flight together all fail, and none is
    // applied.
    let mut others = Vec::new();
    for seq in 1..=3u64 {
        let mut c = Client::connect(&server).await;
        c.send(
            json!({"a": "op", "c": "examples", "d": "fail", "v": null, "seq": seq,
                      "op": [{"insert": "z"}]}),
        )
        .await;
        others.push(c);
    }
    for c in others.iter_mut() {
        let msg = c.recv().await;
        assert_eq!(error_code(&msg), "ERR_UNKNOWN_ERROR", "{msg}");
    }
    b.silent().await;
    assert_eq!(b.fetch("fail").await["v"], 3);
    // Once the store accepts again, the document carries on from there.
    server
        .state
        .store
        .call(|c| c.execute_batch("DROP TRIGGER inject_failure"))
        .await
        .unwrap();
    let ack = a.op("fail", 3, 7, json!([{"insert": "y"}])).await;
    assert!(is_ack(&ack), "{ack}");
    assert_eq!(ack["v"], 3);
    assert_eq!(b.recv().await["v"], 3);
    assert_eq!(
        b.fetch("fail").await["data"],
        json!({"ops": [{"insert": "yxa\n"}]})
    );
    server.shutdown().await.unwrap();
}
