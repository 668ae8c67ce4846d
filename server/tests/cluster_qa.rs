//! The Q&A board across nodes: two in-process nodes on one PostgreSQL
//! database and one Redis, spoken to over the raw SSE wire. Fails (does not
//! skip) when PostgreSQL or Redis is missing.

mod common;

use std::time::Duration;

use rt_protocol::qa::{self, Message, MetaUpdate, encode_segment};
use rt_protocol::sse::{ParsedEvent, Parser};
use rt_server::cluster::testing::{PrivateRedis, TcpCut, TestDb, postgres_addr, redis_url, via};
use rt_server::{Config, Server};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A raw event-stream reader.
struct Stream {
    res: reqwest::Response,
    parser: Parser,
    queue: std::collections::VecDeque<ParsedEvent>,
    last_id: Option<String>,
}

impl Stream {
    async fn open(server: &Server, query: &str, headers: &[(&str, &str)]) -> Stream {
        let mut req = common::http().get(format!("{}/login{query}", server.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
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
            last_id: None,
        }
    }

    /// The next event within `limit`, or `None`.
    async fn next_within(&mut self, limit: Duration) -> Option<ParsedEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(e) = self.queue.pop_front() {
                if e.id.is_some() {
                    self.last_id.clone_from(&e.id);
                }
                if e.event == qa::PING_EVENT {
                    continue;
                }
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?;
            let chunk = chunk.ok()??;
            self.queue.extend(self.parser.feed(&chunk));
        }
    }

    /// The next event that is not a ping.
    async fn next(&mut self) -> ParsedEvent {
        self.next_within(WAIT).await.expect("an event within 5 s")
    }

    async fn login(&mut self) -> String {
        let e = self.next().await;
        assert_eq!(e.event, qa::LOGIN_EVENT, "{e:?}");
        serde_json::from_str::<String>(&e.data).expect("login data is a JSON string")
    }

    async fn message(&mut self) -> Message {
        let e = self.next().await;
        assert_eq!(e.event, "message", "{e:?}");
        serde_json::from_str(&e.data).unwrap()
    }

    async fn meta(&mut self) -> MetaUpdate {
        let e = self.next().await;
        assert_eq!(e.event, qa::META_EVENT, "{e:?}");
        serde_json::from_str(&e.data).unwrap()
    }

    /// Asserts that nothing but pings arrives for a while.
    async fn quiet(&mut self) {
        if let Some(e) = self.next_within(Duration::from_millis(600)).await {
            panic!("unexpected event {e:?}");
        }
    }

    fn last_id(&self) -> String {
        self.last_id.clone().expect("an id was seen")
    }
}

async fn post(server: &Server, path: &str, user: &str) -> (u16, String) {
    let res = common::http()
        .post(format!("{}{path}", server.url()))
        .header(qa::USER_HEADER, user)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn act(server: &Server, prefix: &str, user: &str, text: &str) -> (u16, String) {
    post(server, &format!("{prefix}{}", encode_segment(text)), user).await
}

async fn ask(server: &Server, user: &str, q: &str) -> (u16, String) {
    act(server, qa::ASK_PATH, user, q).await
}

async fn select(server: &Server, user: &str, q: &str) -> (u16, String) {
    act(server, qa::SELECT_PATH, user, q).await
}

async fn answer(server: &Server, user: &str, a: &str) -> (u16, String) {
    act(server, qa::ANSWER_PATH, user, a).await
}

async fn vote(server: &Server, user: &str, q: &str) -> (u16, String) {
    act(server, qa::VOTE_PATH, user, q).await
}

/// Logs in and consumes the login and first snapshot.
async fn joined(server: &Server) -> (Stream, String) {
    let mut s = Stream::open(server, "", &[]).await;
    let id = s.login().await;
    assert!(matches!(s.message().await, Message::Questions { .. }));
    (s, id)
}

fn questions_of(m: &Message) -> Vec<String> {
    match m {
        Message::Questions { questions, .. } => {
            questions.0.iter().map(|(q, _)| q.clone()).collect()
        }
        other => panic!("expected questions, got {other:?}"),
    }
}

fn answers_of(m: &Message) -> (String, Vec<String>) {
    match m {
        Message::Answers {
            question, answers, ..
        } => (question.clone(), answers.clone()),
        other => panic!("expected answers, got {other:?}"),
    }
}

fn node_config(db: &str, redis: Option<&str>, node: &str) -> Config {
    let mut c = Config::for_cluster_tests(db, redis, node);
    c.qa.ping_ms = 60_000;
    c.cluster.timeout_ms = 1000;
    c
}

async fn node(db: &str, redis: Option<&str>, name: &str) -> Server {
    common::server_with(node_config(db, redis, name)).await
}

#[tokio::test]
async fn actions_on_one_node_reach_the_right_streams_on_the_other() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let (mut sa, ua) = joined(&a).await;
    let (mut sb, ub) = joined(&b).await;
    let (mut sc, uc) = joined(&b).await;

    // Asked on A: every stream on B sees it.
    assert_eq!(ask(&a, &ua, "why?").await.0, 200);
    for s in [&mut sa, &mut sb, &mut sc] {
        assert_eq!(questions_of(&s.message().await), ["why?"]);
    }
    // Already on the board, though asked on the other node at once.
    assert_eq!(ask(&b, &ub, "why?").await, (200, "already asked".into()));

    // ub follows the question through B; ua answers it through A.
    assert_eq!(select(&b, &ub, "why?").await.0, 200);
    assert_eq!(answers_of(&sb.message().await), ("why?".into(), vec![]));
    assert_eq!(select(&a, &ua, "why?").await.0, 200);
    assert_eq!(answers_of(&sa.message().await), ("why?".into(), vec![]));
    assert_eq!(answer(&a, &ua, "because").await.0, 200);
    for s in [&mut sa, &mut sb] {
        assert_eq!(
            answers_of(&s.message().await),
            ("why?".into(), vec!["because".into()])
        );
        assert_eq!(s.meta().await.meta.answers, 1);
    }
    // uc follows nothing: the answers are not for it, the counts are.
    assert_eq!(sc.meta().await.meta.answers, 1);

    // A user of B answers on A (it follows through B's selection).
    assert_eq!(answer(&a, &ub, "indeed").await.0, 200);
    for s in [&mut sa, &mut sb] {
        let (_, answers) = answers_of(&s.message().await);
        assert_eq!(answers, ["because", "indeed"]);
        assert_eq!(s.meta().await.meta.answers, 2);
    }
    assert_eq!(sc.meta().await.meta.answers, 2);

    // A vote on B reaches A; the second toggles it back.
    let (status, body) = vote(&b, &uc, "why?").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"voted\":true"), "{body}");
    for s in [&mut sa, &mut sb, &mut sc] {
        assert_eq!(s.meta().await.meta.votes, 1);
    }
    let (_, body) = vote(&a, &uc, "why?").await;
    assert!(body.contains("\"voted\":false"), "{body}");
    for s in [&mut sa, &mut sb, &mut sc] {
        assert_eq!(s.meta().await.meta.votes, 0);
    }
    sc.quiet().await;

    // Ids are ordered cluster-wide: both nodes' streams end on the same one.
    assert_eq!(sa.last_id(), sb.last_id());
    assert_eq!(sb.last_id(), sc.last_id());
}

#[tokio::test]
async fn a_resume_on_the_other_node_misses_and_duplicates_nothing() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let a = node(&db.url, Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let (_other, asker) = joined(&b).await;
    let (mut s, user) = joined(&a).await;
    let mut seen: Vec<String> = Vec::new();
    let mut servers = [&a, &b];
    for round in 0..6 {
        // Some events while connected, from both nodes.
        let q = format!("live {round}");
        assert_eq!(ask(servers[round % 2], &asker, &q).await.0, 200);
        seen.push(q);
        assert_eq!(questions_of(&s.message().await), seen);
        let last = s.last_id();
        drop(s);
        // Missed while away, asked on both nodes.
        for (n, server) in servers.iter().enumerate() {
            let q = format!("missed {round}.{n}");
            assert_eq!(ask(server, &asker, &q).await.0, 200);
            seen.push(q);
        }
        // Reconnect to the other node with the identity created on A.
        servers.reverse();
        let to = servers[0];
        s = Stream::open(to, &format!("?user={user}"), &[("last-event-id", &last)]).await;
        let mut got = Vec::new();
        let mut ids = Vec::new();
        let mut logged_in = false;
        while got.len() < 2 || !logged_in {
            let e = s.next().await;
            let id: u64 = e.id.as_deref().unwrap().parse().unwrap();
            assert!(id >= last.parse().unwrap());
            match e.event.as_str() {
                "login" => {
                    assert_eq!(serde_json::from_str::<String>(&e.data).unwrap(), user);
                    logged_in = true;
                }
                "message" => {
                    assert!(id > last.parse().unwrap(), "a duplicate: {e:?}");
                    ids.push(id);
                    got.push(serde_json::from_str::<Message>(&e.data).unwrap());
                }
                other => panic!("unexpected {other}: {e:?}"),
            }
        }
        assert_eq!(got.len(), 2);
        assert!(ids[0] < ids[1]);
        assert_eq!(questions_of(&got[1]), seen);
    }
    s.quiet().await;
    // The identity works for actions on both nodes.
    assert_eq!(ask(&a, &user, "mine on a").await.0, 200);
    assert_eq!(ask(&b, &user, "mine on b").await.0, 200);
}

#[tokio::test]
async fn a_gap_longer_than_the_log_gets_reset_and_a_snapshot() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let mut ca = node_config(&db.url, Some(&redis), "a");
    ca.qa.log_events = 3;
    let mut cb = node_config(&db.url, Some(&redis), "b");
    cb.qa.log_events = 3;
    let a = common::server_with(ca).await;
    let b = common::server_with(cb).await;
    let (mut s, user) = joined(&a).await;
    assert_eq!(ask(&a, &user, "first").await.0, 200);
    s.message().await;
    assert_eq!(select(&a, &user, "first").await.0, 200);
    s.message().await;
    let last = s.last_id();
    drop(s);
    for n in 0..5 {
        assert_eq!(ask(&b, &user, &format!("q{n}")).await.0, 200);
    }
    let mut s = Stream::open(&b, &format!("?user={user}"), &[("last-event-id", &last)]).await;
    assert_eq!(s.login().await, user);
    let e = s.next().await;
    assert_eq!(e.event, qa::RESET_EVENT, "{e:?}");
    assert_eq!(
        questions_of(&s.message().await),
        ["first", "q0", "q1", "q2", "q3", "q4"]
    );
    // The answers of the question it follows.
    assert_eq!(answers_of(&s.message().await).0, "first");
    s.quiet().await;
}

#[tokio::test]
async fn postgres_unreachable_refuses_writes_and_logins_and_service_comes_back() {
    let db = TestDb::create().await;
    let redis = redis_url();
    let cut = TcpCut::start(postgres_addr()).await;
    let a = node(&via(&db.url, cut.addr), Some(&redis), "a").await;
    let b = node(&db.url, Some(&redis), "b").await;
    let (mut sa, ua) = joined(&a).await;
    let (mut sb, ub) = joined(&b).await;

    cut.cut();
    let (status, body) = ask(&a, &ua, "while cut").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    // A new login cannot be saved either: refused, not half made. The
    // refusal is a stream that says why and ends, so that EventSource
    // reconnects (an HTTP 503 would make it give up for good).
    let login = common::http()
        .get(format!("{}/login", a.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["content-type"], "text/event-stream");
    assert!(
        login.headers().get("set-cookie").is_none(),
        "no identity made"
    );
    let body = tokio::time::timeout(Duration::from_secs(5), login.text())
        .await
        .expect("the refused stream ends")
        .unwrap();
    let mut parser = Parser::new();
    let events = parser.feed(body.as_bytes());
    assert_eq!(parser.retry(), Some(2000), "{body}");
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0].event, qa::UNAVAILABLE_EVENT);
    assert_eq!(events[0].id, None, "keeps the client's Last-Event-ID");
    let why: qa::ErrorBody = serde_json::from_str(&events[0].data).unwrap();
    assert!(why.error.contains("database"), "{why:?}");
    // No false success: nobody saw it.
    sa.quiet().await;
    sb.quiet().await;
    // B still works, and A's streams stay open.
    assert_eq!(ask(&b, &ub, "from b").await.0, 200);
    assert_eq!(questions_of(&sb.message().await), ["from b"]);

    cut.restore();
    // A hears of B's question (by the bus, or by polling once back).
    assert_eq!(questions_of(&sa.message().await), ["from b"]);
    // A's actions succeed again by themselves.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ask(&a, &ua, "after").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "A did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in [&mut sa, &mut sb] {
        assert_eq!(questions_of(&s.message().await), ["from b", "after"]);
    }
    // Logins work on A again too.
    let (_s, _) = joined(&a).await;
}

#[tokio::test]
async fn a_redis_restart_is_repaired_without_restarting_anything() {
    let db = TestDb::create().await;
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let a = node(&db.url, Some(&url), "a").await;
    let b = node(&db.url, Some(&url), "b").await;
    let (mut sb, _) = joined(&b).await;
    let (_sa, ua) = joined(&a).await;
    assert_eq!(ask(&a, &ua, "before").await.0, 200);
    assert_eq!(questions_of(&sb.message().await), ["before"]);

    redis.stop();
    // Published into the void: B repairs the gap from PostgreSQL.
    assert_eq!(ask(&a, &ua, "while down").await.0, 200);
    assert_eq!(questions_of(&sb.message().await), ["before", "while down"]);
    redis.restart();
    assert_eq!(ask(&a, &ua, "after").await.0, 200);
    assert_eq!(
        questions_of(&sb.message().await),
        ["before", "while down", "after"]
    );
    // Once the bus is back, changes travel over it again (quickly, and
    // exactly once).
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 0..5 {
        assert_eq!(ask(&a, &ua, &format!("later {n}")).await.0, 200);
        let qs = questions_of(&sb.message().await);
        assert_eq!(qs.last().unwrap(), &format!("later {n}"));
        assert_eq!(qs.len(), 4 + n);
    }
    sb.quiet().await;
}

#[tokio::test]
async fn one_node_on_postgres_without_redis_works_like_sqlite() {
    let db = TestDb::create().await;
    let solo = node(&db.url, None, "solo").await;
    let (mut s, u) = joined(&solo).await;
    let (mut other, v) = joined(&solo).await;
    assert_eq!(ask(&solo, &u, "q").await.0, 200);
    assert_eq!(questions_of(&s.message().await), ["q"]);
    assert_eq!(questions_of(&other.message().await), ["q"]);
    assert_eq!(ask(&solo, &v, "q").await, (200, "already asked".into()));
    assert_eq!(select(&solo, &u, "q").await.0, 200);
    s.message().await;
    assert_eq!(answer(&solo, &u, "a").await.0, 200);
    assert_eq!(answers_of(&s.message().await).1, ["a"]);
    assert_eq!(s.meta().await.meta.answers, 1);
    assert_eq!(other.meta().await.meta.answers, 1);
    assert_eq!(vote(&solo, &v, "q").await.0, 200);
    assert_eq!(s.meta().await.meta.votes, 1);
    assert_eq!(other.meta().await.meta.votes, 1);
    // Refusals as before.
    let (status, _) = answer(&solo, &v, "no selection").await;
    assert_eq!(status, 409);
    assert_eq!(
        other.message().await,
        Message::Notification {
            message: qa::SELECT_FIRST.into()
        }
    );
    let last = s.last_id();
    drop(s);
    assert_eq!(ask(&solo, &v, "q2").await.0, 200);
    // The board and the log survive a restart.
    solo.shutdown().await.unwrap();
    let solo = node(&db.url, None, "solo").await;
    let mut s = Stream::open(&solo, &format!("?user={u}"), &[("last-event-id", &last)]).await;
    assert_eq!(questions_of(&s.message().await), ["q", "q2"]);
    assert_eq!(s.login().await, u);
    s.quiet().await;
    assert_eq!(answer(&solo, &u, "b").await.0, 200);
    assert_eq!(answers_of(&s.message().await).1, ["a", "b"]);
}

#[tokio::test]
async fn a_node_that_missed_more_than_the_log_reloads_and_starts_its_streams_over() {
    let db = TestDb::create().await;
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let cut = TcpCut::start(postgres_addr()).await;
    let mut ca = node_config(&db.url, Some(&url), "a");
    ca.qa.log_events = 3;
    let mut cb = node_config(&via(&db.url, cut.addr), Some(&url), "b");
    cb.qa.log_events = 3;
    let a = common::server_with(ca).await;
    let b = common::server_with(cb).await;
    let (mut sb, ub) = joined(&b).await;
    let (_sa, ua) = joined(&a).await;
    assert_eq!(ask(&a, &ua, "q0").await.0, 200);
    assert_eq!(questions_of(&sb.message().await), ["q0"]);
    assert_eq!(select(&b, &ub, "q0").await.0, 200);
    sb.message().await;

    // B hears nothing: no bus, no database.
    redis.stop();
    cut.cut();
    for n in 1..=5 {
        assert_eq!(ask(&a, &ua, &format!("q{n}")).await.0, 200);
    }
    assert_eq!(select(&a, &ua, "q0").await.0, 200);
    assert_eq!(answer(&a, &ua, "meanwhile").await.0, 200);
    cut.restore();
    redis.restart();

    // B finds the gap is older than the log: reset, the snapshot, and the
    // answers of the question its user follows.
    let e = sb
        .next_within(Duration::from_secs(10))
        .await
        .expect("reset");
    assert_eq!(e.event, qa::RESET_EVENT, "{e:?}");
    assert_eq!(
        questions_of(&sb.message().await),
        ["q0", "q1", "q2", "q3", "q4", "q5"]
    );
    assert_eq!(
        answers_of(&sb.message().await),
        ("q0".into(), vec!["meanwhile".into()])
    );
    sb.quiet().await;
    // And follows live changes again.
    assert_eq!(ask(&a, &ua, "q6").await.0, 200);
    assert_eq!(questions_of(&sb.message().await).len(), 7);
}
