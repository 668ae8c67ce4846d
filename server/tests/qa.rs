//! The Q&A board over the raw SSE wire: the classic protocol, rt's resume,
//! bad input, persistence and fan-out to slow subscribers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use rt_protocol::qa::{self, Message, MetaUpdate, encode_segment};
use rt_protocol::sse::{self, ParsedEvent, Parser};
use rt_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A raw event-stream reader.
struct Stream {
    res: reqwest::Response,
    parser: Parser,
    queue: std::collections::VecDeque<ParsedEvent>,
    /// The first bytes of the body, as sent.
    head: Vec<u8>,
    /// The id of the last event handed out (the parser's may be ahead: one
    /// read can carry several events).
    last_id: Option<String>,
}

impl Stream {
    async fn open(server: &Server, query: &str, headers: &[(&str, &str)]) -> Stream {
        let mut req = common::http().get(format!("{}/login{query}", server.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        // No overall timeout: the stream stays open.
        let req = req.timeout(Duration::from_secs(3600));
        let res = timeout(WAIT, req.send())
            .await
            .expect("login answers")
            .unwrap();
        assert_eq!(res.status(), 200);
        Stream {
            res,
            parser: Parser::new(),
            queue: Default::default(),
            head: Vec::new(),
            last_id: None,
        }
    }

    /// The next event, or `None` when the stream ends.
    async fn try_next(&mut self) -> Option<ParsedEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                if e.id.is_some() {
                    self.last_id.clone_from(&e.id);
                }
                return Some(e);
            }
            let chunk = timeout(WAIT, self.res.chunk())
                .await
                .expect("an event within 5 s");
            let chunk = chunk.ok()??;
            if self.head.len() < 4096 {
                self.head.extend_from_slice(&chunk[..chunk.len().min(4096)]);
            }
            self.queue.extend(self.parser.feed(&chunk));
        }
    }

    async fn next(&mut self) -> ParsedEvent {
        self.try_next().await.expect("the stream is open")
    }

    /// The next event that is not a ping.
    async fn next_non_ping(&mut self) -> ParsedEvent {
        loop {
            let e = self.next().await;
            if e.event != qa::PING_EVENT {
                return e;
            }
        }
    }

    /// Reads the login event (skipping nothing else) and returns the user id.
    async fn login(&mut self) -> String {
        let e = self.next().await;
        assert_eq!(e.event, qa::LOGIN_EVENT, "{e:?}");
        serde_json::from_str::<String>(&e.data).expect("login data is a JSON string")
    }

    async fn message(&mut self) -> Message {
        let e = self.next_non_ping().await;
        assert_eq!(e.event, "message", "{e:?}");
        serde_json::from_str(&e.data).unwrap()
    }

    fn last_id(&self) -> String {
        self.last_id.clone().expect("an id was seen")
    }
}

fn id_of(e: &ParsedEvent) -> u64 {
    e.id.as_deref()
        .expect("every event carries an id")
        .parse()
        .expect("ids are numbers")
}

async fn post(server: &Server, path: &str, user: Option<&str>) -> (u16, String) {
    let mut req = common::http().post(format!("{}{path}", server.url()));
    if let Some(u) = user {
        req = req.header(qa::USER_HEADER, u);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn ask(server: &Server, user: &str, q: &str) -> (u16, String) {
    post(
        server,
        &format!("/askquestion/{}", encode_segment(q)),
        Some(user),
    )
    .await
}

async fn select(server: &Server, user: &str, q: &str) -> (u16, String) {
    post(
        server,
        &format!("/selectquestion/{}", encode_segment(q)),
        Some(user),
    )
    .await
}

async fn answer(server: &Server, user: &str, a: &str) -> (u16, String) {
    post(
        server,
        &format!("/addanswer/{}", encode_segment(a)),
        Some(user),
    )
    .await
}

/// Logs in and consumes the login and first snapshot.
async fn joined(server: &Server) -> (Stream, String) {
    let mut s = Stream::open(server, "", &[]).await;
    let id = s.login().await;
    assert!(matches!(s.message().await, Message::Questions { .. }));
    (s, id)
}

fn questions_of(m: &Message) -> Vec<(String, String)> {
    match m {
        Message::Questions { questions, .. } => questions.0.clone(),
        other => panic!("expected questions, got {other:?}"),
    }
}

fn test_config() -> Config {
    let mut c = Config::for_tests();
    c.qa.ping_ms = 60_000;
    c
}

#[tokio::test]
async fn login_stream_has_the_classic_shape() {
    let server = common::server_with(test_config()).await;
    let mut s = Stream::open(&server, "", &[]).await;
    let h = s.res.headers().clone();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h.get("content-encoding").is_none());
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    let login = s.next().await;
    // Padding comment, then retry, then the login event.
    let mut expected = vec![b':'];
    expected.extend(std::iter::repeat_n(b' ', 2048));
    expected.extend_from_slice(b"\nretry: 2000\n\n");
    assert!(s.head.starts_with(&expected), "preamble");
    let after = String::from_utf8_lossy(&s.head[expected.len()..]).to_string();
    // The login repeats the retry (for clients that read it only in events).
    assert!(
        after.starts_with("retry: 2000\nevent: login\nid: "),
        "{after:?}"
    );
    assert_eq!(s.parser.retry(), Some(2000));
    assert_eq!(login.event, "login");
    let id: String = serde_json::from_str(&login.data).unwrap();
    assert!(qa::is_user_id(&id), "128-bit id, got {id}");
    assert_eq!(
        cookie,
        format!("rt_qa_user={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000")
    );
    let q = s.next().await;
    assert_eq!(q.event, "message");
    assert!(id_of(&q) > id_of(&login));
    assert_eq!(
        q.data, r#"{"type":"questions","questions":{},"meta":{}}"#,
        "an empty board"
    );
    // A second client gets a different id and later event ids.
    let mut t = Stream::open(&server, "", &[]).await;
    let login2 = t.next().await;
    assert_ne!(serde_json::from_str::<String>(&login2.data).unwrap(), id);
    assert!(id_of(&login2) > id_of(&q));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pings_arrive_at_the_configured_interval() {
    let mut c = test_config();
    c.qa.ping_ms = 100;
    let server = common::server_with(c).await;
    let (mut s, _) = joined(&server).await;
    let mut last = 0;
    for _ in 0..3 {
        let e = s.next().await;
        assert_eq!(e.event, "ping");
        let ms: u64 = e.data.parse().expect("ping data is epoch ms");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(ms) < 5_000);
        assert!(id_of(&e) > last);
        last = id_of(&e);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn questions_reach_everyone_under_public_handles() {
    let server = common::server_with(test_config()).await;
    let (mut a, a_id) = joined(&server).await;
    let (mut b, b_id) = joined(&server).await;
    assert_eq!(
        ask(&server, &a_id, "Why is the sky blue?").await,
        (200, String::new())
    );
    for s in [&mut a, &mut b] {
        let m = s.message().await;
        let qs = questions_of(&m);
        assert_eq!(qs.len(), 1);
        assert_eq!(qs[0].0, "Why is the sky blue?");
        assert_ne!(qs[0].1, a_id, "the asker's secret id must not leak");
        assert!(!m.to_json().contains(&a_id));
        let Message::Questions { meta, .. } = m else {
            unreachable!()
        };
        assert_eq!(meta.0[0].1.author, qs[0].1);
        assert_eq!((meta.0[0].1.votes, meta.0[0].1.answers), (0, 0));
    }
    // A duplicate changes nothing and sends nothing.
    assert_eq!(
        ask(&server, &b_id, "Why is the sky blue?").await,
        (200, "already asked".to_string())
    );
    assert_eq!(ask(&server, &b_id, "second").await.0, 200);
    for s in [&mut a, &mut b] {
        let qs = questions_of(&s.message().await);
        let texts: Vec<_> = qs.iter().map(|(q, _)| q.as_str()).collect();
        assert_eq!(texts, ["Why is the sky blue?", "second"], "asking order");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn answers_go_only_to_followers_and_notifications_to_the_caller() {
    let server = common::server_with(test_config()).await;
    let (mut a, a_id) = joined(&server).await;
    let (mut b, b_id) = joined(&server).await;
    let (mut c, c_id) = joined(&server).await;
    ask(&server, &a_id, "q1").await;
    ask(&server, &a_id, "q2").await;
    for s in [&mut a, &mut b, &mut c] {
        s.message().await;
        s.message().await;
    }
    // No selection: a notification to A alone.
    assert_eq!(answer(&server, &a_id, "too early").await.0, 409);
    assert_eq!(
        a.message().await,
        Message::Notification {
            message: qa::SELECT_FIRST.into()
        }
    );
    // An empty answer: the classic notification.
    assert_eq!(post(&server, "/addanswer/", Some(&a_id)).await.0, 400);
    assert_eq!(
        a.message().await,
        Message::Notification {
            message: qa::ANSWER_TOO_SHORT.into()
        }
    );
    assert_eq!(select(&server, &b_id, "q1").await.0, 200);
    assert_eq!(select(&server, &c_id, "q2").await.0, 200);
    assert_eq!(select(&server, &a_id, "q1").await.0, 200);
    for s in [&mut a, &mut b] {
        match s.message().await {
            Message::Answers {
                question, answers, ..
            } => assert_eq!((question.as_str(), answers.len()), ("q1", 0)),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(c.message().await, Message::Answers { question, .. } if question == "q2"));
    assert_eq!(answer(&server, &a_id, "Rayleigh scattering").await.0, 200);
    for s in [&mut a, &mut b] {
        match s.message().await {
            Message::Answers {
                question,
                answers,
                meta,
            } => {
                assert_eq!(question, "q1");
                assert_eq!(answers, ["Rayleigh scattering"]);
                assert_eq!(meta.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }
    // Everyone learns the new answer count (a named event classic clients ignore).
    for s in [&mut a, &mut b, &mut c] {
        let e = s.next_non_ping().await;
        assert_eq!(e.event, qa::META_EVENT);
        let m: MetaUpdate = serde_json::from_str(&e.data).unwrap();
        assert_eq!((m.question.as_str(), m.meta.answers), ("q1", 1));
    }
    // C (following q2) saw no answers for q1: its next message is the sentinel.
    ask(&server, &b_id, "sentinel").await;
    assert_eq!(questions_of(&c.message().await).len(), 3);
    assert_eq!(questions_of(&b.message().await).len(), 3);
    assert_eq!(questions_of(&a.message().await).len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn votes_toggle_once_per_user() {
    let server = common::server_with(test_config()).await;
    let (mut a, a_id) = joined(&server).await;
    let (_b, b_id) = joined(&server).await;
    ask(&server, &a_id, "vote me").await;
    a.message().await;
    let vote = |u: String| {
        let server = &server;
        async move { post(server, "/vote/vote%20me", Some(&u)).await }
    };
    let (status, body) = vote(a_id.clone()).await;
    assert_eq!(status, 200);
    let reply: qa::VoteReply = serde_json::from_str(&body).unwrap();
    assert_eq!((reply.votes, reply.voted), (1, true));
    let reply: qa::VoteReply = serde_json::from_str(&vote(b_id.clone()).await.1).unwrap();
    assert_eq!((reply.votes, reply.voted), (2, true));
    let reply: qa::VoteReply = serde_json::from_str(&vote(a_id.clone()).await.1).unwrap();
    assert_eq!((reply.votes, reply.voted), (1, false));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = a.next_non_ping().await;
        assert_eq!(e.event, qa::META_EVENT);
        seen.push(
            serde_json::from_str::<MetaUpdate>(&e.data)
                .unwrap()
                .meta
                .votes,
        );
    }
    assert_eq!(seen, [1, 2, 1]);
    assert_eq!(post(&server, "/vote/nope", Some(&a_id)).await.0, 404);
    assert!(matches!(a.message().await, Message::Notification { .. }));
    // The snapshot carries the votes.
    let mut c = Stream::open(&server, "", &[]).await;
    c.login().await;
    let Message::Questions { meta, .. } = c.message().await else {
        panic!()
    };
    assert_eq!(meta.0[0].1.votes, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_statuses_and_changes_nothing() {
    let mut config = test_config();
    config.qa.max_question_chars = 300;
    config.qa.max_answer_chars = 2000;
    let server = common::server_with(config).await;
    let (mut a, a_id) = joined(&server).await;
    let http = common::http();
    // An action by GET.
    for path in [
        "/askquestion/x",
        "/selectquestion/x",
        "/addanswer/x",
        "/vote/x",
    ] {
        let res = http
            .get(format!("{}{path}", server.url()))
            .header(qa::USER_HEADER, &a_id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{path}");
    }
    // Missing and unknown users: 401 with a JSON error.
    for user in [
        None,
        Some("0123456789abcdef0123456789abcdef"),
        Some("4ldqpds"),
    ] {
        let (status, body) = post(&server, "/askquestion/x", user).await;
        assert_eq!(status, 401);
        let err: qa::ErrorBody = serde_json::from_str(&body).expect("JSON error body");
        assert!(!err.error.is_empty());
    }
    // Unknown question: 404 plus a notification.
    assert_eq!(select(&server, &a_id, "nope").await.0, 404);
    assert!(
        matches!(a.message().await, Message::Notification { message } if message.contains("No such question"))
    );
    // Limits: 300 characters fit, 301 do not (characters, not bytes).
    let q300: String = "é".repeat(300);
    assert_eq!(ask(&server, &a_id, &q300).await.0, 200);
    a.message().await;
    let (status, body) = ask(&server, &a_id, &"é".repeat(301)).await;
    assert_eq!(status, 413);
    assert!(body.contains("error"));
    assert!(
        matches!(a.message().await, Message::Notification { message } if message.contains("too long"))
    );
    select(&server, &a_id, &q300).await;
    a.message().await;
    assert_eq!(answer(&server, &a_id, &"a".repeat(2001)).await.0, 413);
    assert!(matches!(a.message().await, Message::Notification { .. }));
    // Empty text, bad percent-encoding, bad UTF-8: 400.
    for path in [
        "/askquestion/",
        "/askquestion/%20%20",
        "/askquestion/%zz",
        "/askquestion/abc%4",
        "/askquestion/%FF%FE",
        "/addanswer/%C3",
        "/selectquestion/",
        "/vote/",
    ] {
        let (status, _) = post(&server, path, Some(&a_id)).await;
        assert_eq!(status, 400, "{path}");
    }
    // %2F survives decoding: the question contains a slash.
    assert_eq!(
        post(&server, "/askquestion/a%2Fb", Some(&a_id)).await.0,
        200
    );
    // Drain notifications; the next questions message shows only good questions.
    let qs = loop {
        if let m @ Message::Questions { .. } = a.message().await {
            break questions_of(&m);
        }
    };
    let texts: Vec<_> = qs.into_iter().map(|(q, _)| q).collect();
    assert_eq!(texts, [q300.clone(), "a/b".to_string()]);
    // Nothing was half-applied: a fresh client sees the same board and no answers.
    let mut fresh = Stream::open(&server, "", &[]).await;
    fresh.login().await;
    let Message::Questions { meta, .. } = fresh.message().await else {
        panic!()
    };
    assert_eq!(meta.0.len(), 2);
    assert!(meta.0.iter().all(|(_, m)| m.answers == 0 && m.votes == 0));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn identity_survives_reconnects_by_query_cookie_or_header() {
    let server = common::server_with(test_config()).await;
    let (_a, id) = joined(&server).await;
    let mut by_query = Stream::open(&server, &format!("?user={id}"), &[]).await;
    assert_eq!(by_query.login().await, id);
    let cookie = format!("{}={id}", qa::USER_COOKIE);
    let mut by_cookie = Stream::open(&server, "", &[("cookie", &cookie)]).await;
    assert_eq!(by_cookie.login().await, id);
    let mut by_header = Stream::open(&server, "", &[(qa::USER_HEADER, &id)]).await;
    assert_eq!(by_header.login().await, id);
    // An unknown or malformed id gets a new identity, as in the classic server.
    for bogus in ["0123456789abcdef0123456789abcdef", "x"] {
        let mut s = Stream::open(&server, &format!("?user={bogus}"), &[]).await;
        let new = s.login().await;
        assert_ne!(new, id);
        assert_ne!(new, bogus);
    }
    // Without any identity a reconnect is a new user even with Last-Event-ID.
    let mut anon = Stream::open(&server, "", &[("last-event-id", "1")]).await;
    assert_ne!(anon.login().await, id);
    assert!(matches!(anon.message().await, Message::Questions { .. }));
    server.shutdown().await.unwrap();
}

/// The events after the login that a resuming client and a connected
/// observer both receive, compared by id and bytes.
#[tokio::test]
async fn resume_over_100_disconnects_misses_and_duplicates_nothing() {
    let server = common::server_with(test_config()).await;
    let (mut observer, obs_id) = joined(&server).await;
    let (_actor_stream, actor) = joined(&server).await;
    let mut r = Stream::open(&server, "", &[]).await;
    let me = r.login().await;
    r.message().await;
    ask(&server, &actor, "topic").await;
    for u in [&obs_id, &me, &actor] {
        assert_eq!(select(&server, u, "topic").await.0, 200);
    }
    // Observer: the questions message and its own answers reply.
    observer.message().await;
    observer.message().await;
    r.message().await;
    r.message().await;
    let start: u64 = r.last_id().parse().unwrap();

    let url = server.url();
    let actor_task = {
        let actor = actor.clone();
        tokio::spawn(async move {
            let http = common::http();
            for i in 0..400 {
                let path = if i % 2 == 0 {
                    format!("/askquestion/q{i}")
                } else {
                    format!("/addanswer/a{i}")
                };
                let res = http
                    .post(format!("{url}{path}"))
                    .header(qa::USER_HEADER, &actor)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let res = http
                .post(format!("{url}/askquestion/done"))
                .header(qa::USER_HEADER, &actor)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        })
    };

    let is_done = |e: &ParsedEvent| e.event == "message" && e.data.contains("\"done\":");
    let mut got: Vec<(u64, String)> = Vec::new();
    let mut last = start.to_string();
    let mut disconnects = 0;
    let mut finished = false;
    let mut rng_state = 0x2545_f491_u64;
    while !finished {
        let user_query = format!("?user={me}");
        let mut s = Stream::open(&server, &user_query, &[("last-event-id", &last)]).await;
        // Read a few events (the login closes the replay), then drop the
        // connection, unless 100 disconnects have happened already.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let budget = if disconnects >= 100 {
            usize::MAX
        } else {
            1 + (rng_state % 6) as usize
        };
        let mut read = 0;
        while read < budget {
            let e = s.next().await;
            read += 1;
            match e.event.as_str() {
                "login" => assert_eq!(serde_json::from_str::<String>(&e.data).unwrap(), me),
                "ping" => {}
                "reset" => panic!("the log covers every gap in this test"),
                _ => {
                    got.push((id_of(&e), e.data.clone()));
                    if is_done(&e) {
                        finished = true;
                        break;
                    }
                }
            }
        }
        last = s.last_id();
        if !finished {
            disconnects += 1;
        }
    }
    assert!(disconnects >= 100);
    actor_task.await.unwrap();
    let mut expected: Vec<(u64, String)> = Vec::new();
    loop {
        let e = observer.next_non_ping().await;
        expected.push((id_of(&e), e.data.clone()));
        if is_done(&e) {
            break;
        }
    }
    let ids: HashSet<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), got.len(), "no duplicated events");
    assert_eq!(got.len(), expected.len(), "no missed events");
    assert_eq!(got, expected, "same events, same bytes, same order");
    assert_eq!(expected.len(), 200 + 2 * 200 + 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_gap_longer_than_the_log_gets_reset_and_a_snapshot() {
    let mut c = test_config();
    c.qa.log_events = 5;
    let server = common::server_with(c).await;
    let (_w, writer) = joined(&server).await;
    let (mut s, me) = joined(&server).await;
    ask(&server, &writer, "followed").await;
    s.message().await;
    select(&server, &me, "followed").await;
    s.message().await;
    let last = s.last_id();
    drop(s);
    // Within the log: exactly the missed events, then the login.
    for i in 0..3 {
        ask(&server, &writer, &format!("in log {i}")).await;
    }
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    for i in 0..3 {
        let qs = questions_of(&s.message().await);
        assert_eq!(qs.last().unwrap().0, format!("in log {i}"));
    }
    assert_eq!(s.login().await, me);
    let last = s.last_id();
    drop(s);
    // Beyond the log: reset, the full snapshot and the followed answers.
    for i in 0..8 {
        ask(&server, &writer, &format!("beyond {i}")).await;
    }
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    assert_eq!(s.login().await, me);
    let reset = s.next().await;
    assert_eq!(reset.event, qa::RESET_EVENT);
    serde_json::from_str::<qa::Reset>(&reset.data).unwrap();
    assert_eq!(questions_of(&s.message().await).len(), 1 + 3 + 8);
    assert!(
        matches!(s.message().await, Message::Answers { question, .. } if question == "followed")
    );
    // An unreadable or future Last-Event-ID is a reset too.
    for bad in ["abc", "99999999"] {
        let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", bad)]).await;
        s.login().await;
        assert_eq!(s.next().await.event, qa::RESET_EVENT);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_log_is_also_bounded_in_bytes() {
    let mut c = test_config();
    c.qa.log_bytes = 4096;
    let server = common::server_with(c).await;
    let (_w, writer) = joined(&server).await;
    let (s, me) = joined(&server).await;
    let last = s.last_id();
    drop(s);
    // A few small questions fit in 4 KB: replayed.
    ask(&server, &writer, "small 1").await;
    ask(&server, &writer, "small 2").await;
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    assert_eq!(questions_of(&s.message().await).len(), 1);
    assert_eq!(questions_of(&s.message().await).len(), 2);
    assert_eq!(s.login().await, me);
    let last = s.last_id();
    drop(s);
    // Large ones push the missed events out of the 4 KB log: reset.
    for i in 0..6 {
        ask(&server, &writer, &format!("{i} {}", "x".repeat(280))).await;
    }
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    s.login().await;
    assert_eq!(s.next().await.event, qa::RESET_EVENT);
    assert_eq!(questions_of(&s.message().await).len(), 8);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_do_not_push_real_events_out_of_the_log() {
    let mut c = test_config();
    c.qa.log_events = 5;
    let server = common::server_with(c).await;
    let (mut troll, troll_id) = joined(&server).await;
    let (s, me) = joined(&server).await;
    let last = s.last_id();
    drop(s);
    ask(&server, &troll_id, "a real question").await;
    troll.message().await;
    // Far more refusals than the log holds; each still notifies the caller.
    for _ in 0..20 {
        assert_eq!(answer(&server, &troll_id, " ").await.0, 400);
        assert_eq!(select(&server, &troll_id, "nope").await.0, 404);
    }
    for _ in 0..40 {
        assert!(matches!(
            troll.message().await,
            Message::Notification { .. }
        ));
    }
    // The missed question is still in the log: replayed, no reset.
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    let first = s.next().await;
    assert_eq!(first.event, "message", "no reset: {first:?}");
    let m: Message = serde_json::from_str(&first.data).unwrap();
    assert_eq!(questions_of(&m)[0].0, "a real question");
    assert_eq!(s.login().await, me);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn head_login_creates_no_user_and_no_stream() {
    let server = common::server_with(test_config()).await;
    let (a, _) = joined(&server).await;
    let before: u64 = a.last_id().parse().unwrap();
    let http = common::http();
    for _ in 0..3 {
        let res = http
            .head(format!("{}/login", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert!(res.headers().get("set-cookie").is_none(), "no identity");
    }
    // No event ids were spent on logins or snapshots for the HEADs.
    let mut b = Stream::open(&server, "", &[]).await;
    b.login().await;
    assert_eq!(b.last_id().parse::<u64>().unwrap(), before + 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_anonymous_users_are_forgotten_while_running() {
    let mut c = test_config();
    c.qa.ping_ms = 50;
    c.qa.idle_user_ttl_secs = 0;
    c.qa.user_sweep_ms = 100;
    let server = common::server_with(c).await;
    // An anonymous visitor who leaves without doing anything.
    let (idle, idle_id) = joined(&server).await;
    drop(idle);
    // One who asked (and so has a handle on the board), one who follows a
    // question, and one still connected: all kept.
    let (asker, asker_id) = joined(&server).await;
    assert_eq!(ask(&server, &asker_id, "kept").await.0, 200);
    drop(asker);
    let (follower, follower_id) = joined(&server).await;
    assert_eq!(select(&server, &follower_id, "kept").await.0, 200);
    drop(follower);
    let (mut live, live_id) = joined(&server).await;
    // Wait for a few sweeps (pings keep the live stream busy meanwhile).
    for _ in 0..6 {
        live.next().await;
    }
    // Selecting an unknown question changes nothing: 404 while the user is
    // known, 401 once it is forgotten.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = post(&server, "/selectquestion/none", Some(&idle_id)).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 404);
        assert!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more sweeps have run meanwhile; the others are kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for user in [&asker_id, &follower_id, &live_id] {
        assert_eq!(post(&server, "/vote/kept", Some(user)).await.0, 200);
    }
    // The forgotten id gets a new identity at login.
    let mut s = Stream::open(&server, &format!("?user={idle_id}"), &[]).await;
    assert_ne!(s.login().await, idle_id);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_replay_larger_than_its_bound_is_a_snapshot_instead() {
    let mut c = test_config();
    c.qa.replay_bytes = 6000;
    let server = common::server_with(c).await;
    let (_w, writer) = joined(&server).await;
    let (s, me) = joined(&server).await;
    let last = s.last_id();
    drop(s);
    // Every new question resends the whole list (about 100 bytes a
    // question): 40 of them are far more than 6000 bytes of missed events,
    // though the log still holds them.
    for i in 0..40 {
        ask(&server, &writer, &format!("q{i}")).await;
    }
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    assert_eq!(s.login().await, me);
    assert_eq!(s.next().await.event, qa::RESET_EVENT);
    assert_eq!(questions_of(&s.message().await).len(), 40);
    // A small gap is still replayed.
    let last = s.last_id();
    drop(s);
    ask(&server, &writer, "one more").await;
    let mut s = Stream::open(&server, &format!("?user={me}"), &[("last-event-id", &last)]).await;
    assert_eq!(questions_of(&s.message().await).len(), 41);
    assert_eq!(s.login().await, me);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_board_is_bounded_in_questions_and_answers() {
    let mut c = test_config();
    c.qa.max_questions = 3;
    c.qa.max_answers_per_question = 2;
    let server = common::server_with(c).await;
    let (mut a, me) = joined(&server).await;
    for q in ["one", "two", "three"] {
        assert_eq!(ask(&server, &me, q).await.0, 200);
        a.message().await;
    }
    let (status, body) = ask(&server, &me, "four").await;
    assert_eq!(status, 409);
    assert!(body.contains("full"), "{body}");
    assert!(
        matches!(a.message().await, Message::Notification { message } if message.contains("full"))
    );
    // Asking an existing question is still the classic no-op.
    assert_eq!(
        ask(&server, &me, "one").await,
        (200, "already asked".into())
    );
    select(&server, &me, "one").await;
    a.message().await;
    for ans in ["a1", "a2"] {
        assert_eq!(answer(&server, &me, ans).await.0, 200);
        a.next_non_ping().await;
        a.next_non_ping().await;
    }
    assert_eq!(answer(&server, &me, "a3").await.0, 409);
    assert!(matches!(a.message().await, Message::Notification { .. }));
    // Nothing of the refused ones is on the board.
    let mut fresh = Stream::open(&server, "", &[]).await;
    fresh.login().await;
    let Message::Questions { meta, .. } = fresh.message().await else {
        panic!()
    };
    assert_eq!(meta.0.len(), 3);
    assert_eq!(meta.0[0].1.answers, 2);
    server.shutdown().await.unwrap();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rt-qa-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_board_and_the_log_survive_a_restart() {
    let dir = temp_dir("restart");
    let mut config = test_config();
    config.data = Some(dir.join("rt.db"));
    let server = common::server_with(config.clone()).await;
    let (mut a, a_id) = joined(&server).await;
    let (_b, b_id) = joined(&server).await;
    ask(&server, &a_id, "persist me").await;
    a.message().await;
    select(&server, &a_id, "persist me").await;
    a.message().await;
    answer(&server, &a_id, "kept").await;
    a.message().await;
    post(&server, "/vote/persist%20me", Some(&b_id)).await;
    a.next_non_ping().await;
    a.next_non_ping().await;
    let last = a.last_id();
    drop(a);
    ask(&server, &b_id, "while A was away").await;
    server.shutdown().await.unwrap();

    let server = common::server_with(config).await;
    // A resumes across the restart: the missed event, then a login with a
    // later id than anything the first server sent.
    let mut a = Stream::open(
        &server,
        &format!("?user={a_id}"),
        &[("last-event-id", &last)],
    )
    .await;
    let missed = a.next().await;
    assert!(id_of(&missed) > last.parse().unwrap());
    let m: Message = serde_json::from_str(&missed.data).unwrap();
    assert_eq!(questions_of(&m).len(), 2);
    let login = a.next().await;
    assert_eq!(login.event, "login");
    assert!(id_of(&login) > id_of(&missed));
    // A fresh login sees everything, with metadata and A's followed answers.
    let mut c = Stream::open(&server, &format!("?user={a_id}"), &[]).await;
    c.login().await;
    let Message::Questions { questions, meta } = c.message().await else {
        panic!()
    };
    assert_eq!(questions.0.len(), 2);
    assert_eq!((meta.0[0].1.votes, meta.0[0].1.answers), (1, 1));
    match c.message().await {
        Message::Answers { answers, .. } => assert_eq!(answers, ["kept"]),
        other => panic!("{other:?}"),
    }
    // Votes survived as per-user toggles: B voting again removes the vote.
    let (_, body) = post(&server, "/vote/persist%20me", Some(&b_id)).await;
    let reply: qa::VoteReply = serde_json::from_str(&body).unwrap();
    assert_eq!((reply.votes, reply.voted), (0, false));
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_without_stalling_others() {
    let mut c = test_config();
    c.qa.queue = 4;
    let server = common::server_with(c).await;
    // A client that logs in and then never reads.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (mut fast, writer) = joined(&server).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.state.stats.open(rt_server::stats::App::Qa), 2);
    // Each questions message carries the whole (growing) board: a few MB in
    // all, more than the socket buffers hold.
    let long = "x".repeat(250);
    let n = 300;
    for i in 0..n {
        let (status, _) = timeout(WAIT, ask(&server, &writer, &format!("{i} {long}")))
            .await
            .expect("actions are not stalled by the slow client");
        assert_eq!(status, 200);
        let qs = questions_of(&fast.message().await);
        assert_eq!(qs.len(), i + 1, "the fast client keeps up");
    }
    // The slow client's connection was closed: reading it drains what the
    // buffers held and ends before the last event.
    let mut received = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match timeout(WAIT, slow.read(&mut buf))
            .await
            .expect("cut, not hanging")
        {
            Ok(0) | Err(_) => break,
            Ok(k) => received.extend_from_slice(&buf[..k]),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"));
    assert!(
        !text.contains(&format!("{} {long}", n - 1)),
        "cut before the end"
    );
    assert_eq!(server.state.stats.open(rt_server::stats::App::Qa), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stats_stream_reports_figures() {
    let mut c = test_config();
    c.stats_stream.interval_ms = 100;
    let server = common::server_with(c).await;
    let (_a, _) = joined(&server).await;
    let res = common::http()
        .get(format!("{}/stats", server.url()))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut res = res;
    let mut parser = Parser::new();
    let mut events = Vec::new();
    while events.len() < 2 {
        let chunk = timeout(WAIT, res.chunk()).await.unwrap().unwrap().unwrap();
        events.extend(parser.feed(&chunk));
    }
    let v: serde_json::Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(v["open"]["qa"], 1);
    assert_eq!(v["open"]["stats"], 1);
    assert!(v["rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(v["events_total"].as_u64().unwrap() >= 2);
    assert!(v["events_per_sec"].is_number());
    assert!(v["uptime_secs"].is_number());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = common::server_with(test_config()).await;
    let (mut a, _) = joined(&server).await;
    let _stats = common::http()
        .get(format!("{}/stats", server.url()))
        .send()
        .await
        .unwrap();
    timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown does not hang")
        .unwrap();
    // The stream ended cleanly.
    let mut ended = false;
    for _ in 0..10 {
        if a.try_next().await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended);
}

#[test]
fn the_encoder_writes_one_data_line_per_event() {
    let e = sse::encode_event(
        None,
        Some("3"),
        &Message::Notification {
            message: "a\nb".into(),
        }
        .to_json(),
    );
    assert_eq!(e.iter().filter(|&&b| b == b'\n').count(), 3);
}

#[tokio::test]
async fn a_fan_out_split_over_two_threads_keeps_every_streams_order() {
    let mut c = test_config();
    c.qa.parallel_fan_out = 2;
    let server = common::server_with(c).await;
    let mut streams = Vec::new();
    for _ in 0..7 {
        streams.push(joined(&server).await.0);
    }
    let (_, writer) = joined(&server).await;
    let n = 40;
    for i in 0..n {
        let (status, _) = ask(&server, &writer, &format!("question {i}")).await;
        assert_eq!(status, 200);
    }
    for s in &mut streams {
        for i in 0..n {
            let qs = questions_of(&s.message().await);
            assert_eq!(qs.len(), i + 1, "every event, in order");
            assert!(qs.iter().any(|(q, _)| q == &format!("question {i}")));
        }
    }
    server.shutdown().await.unwrap();
}
