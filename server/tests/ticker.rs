//! The stock ticker over the wire: `GET /?symbol=` polling and the
//! `/ticker/stream` SSE stream, against a real server on port 0.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use rt_protocol::sse::{ParsedEvent, Parser};
use rt_server::stats::App;
use rt_server::ticker::market::LISTINGS;
use rt_server::{Config, Server};
use serde_json::Value;

const QUOTE_NUMBERS: [&str; 9] = [
    "latestPrice",
    "change",
    "changePercent",
    "open",
    "high",
    "low",
    "previousClose",
    "volume",
    "latestUpdate",
];

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::for_tests();
    f(&mut c);
    c
}

/// `GET /?<query>` → status, content type and JSON body.
async fn get_query(server: &Server, query: &str) -> (StatusCode, String, Value) {
    let res = common::http()
        .get(format!("{}/?{query}", server.url()))
        .send()
        .await
        .expect("request");
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.text().await.expect("body");
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, ctype, json)
}

/// A poll for `symbol` that must yield a quote.
async fn quote(server: &Server, symbol: &str) -> Value {
    let (status, _, v) = get_query(server, &format!("symbol={symbol}")).await;
    assert_eq!(status, 200);
    assert!(v["quote"].is_object(), "no quote in {v}");
    v["quote"].clone()
}

fn assert_quote_shape(q: &Value, symbol: &str) {
    assert_eq!(q["symbol"], symbol);
    assert!(
        q["companyName"].as_str().is_some_and(|s| !s.is_empty()),
        "companyName in {q}"
    );
    for f in QUOTE_NUMBERS {
        assert!(q[f].is_number(), "{f} is not a number in {q}");
    }
    assert!(q["volume"].is_u64() && q["latestUpdate"].is_u64());
    let n = |f: &str| q[f].as_f64().unwrap();
    assert!(n("latestPrice") > 0.0);
    assert!(n("high") >= n("latestPrice") && n("low") <= n("latestPrice"));
    assert!(n("high") >= n("open") && n("low") <= n("open"));
    assert!((n("change") - (n("latestPrice") - n("previousClose"))).abs() < 1e-6);
}

#[tokio::test]
async fn a_poll_answers_a_full_quote_and_the_poll_interval() {
    let server = common::server_with(config(|c| c.ticker.poll_ms = 1234)).await;
    let (status, ctype, v) = get_query(&server, "symbol=IBM").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/json");
    assert_eq!(v["callIn"], 1234);
    assert_quote_shape(&v["quote"], "IBM");
    assert_eq!(
        v["quote"]["companyName"],
        "International Business Machines Corporation"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let updated = v["quote"]["latestUpdate"].as_u64().unwrap();
    assert!(updated <= now + 1000 && updated + 60_000 > now);

    // Lower case and any unknown valid symbol: a synthetic series of its own.
    for (raw, want) in [("ibm", "IBM"), ("zz9.x-1", "ZZ9.X-1"), ("brk.b", "BRK.B")] {
        let (_, _, v) = get_query(&server, &format!("symbol={raw}")).await;
        assert_eq!(v["callIn"], 1234);
        assert_quote_shape(&v["quote"], want);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_symbols_get_an_error_and_callin_null_never_a_5xx() {
    let server = common::server().await;
    let long = "A".repeat(60_000);
    let cases = [
        "symbol=".to_string(),
        "symbol".to_string(),
        "symbol=%20%20".to_string(),
        "symbol=ABCDEFGHIJK".to_string(),
        "symbol=%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_string(),
        "symbol=%C3%84PFEL".to_string(),
        "symbol=%FF%FE".to_string(),
        "symbol=A%00B".to_string(),
        "symbol=IB%20M".to_string(),
        "symbol=%%%".to_string(),
        "symbol=%3Cscript%3E&symbol=IBM".to_string(),
        format!("symbol={long}"),
    ];
    for query in &cases {
        let (status, ctype, v) = get_query(&server, query).await;
        let shown = &query[..query.len().min(40)];
        assert_eq!(status, 200, "{shown}");
        assert_eq!(ctype, "application/json", "{shown}");
        assert!(v["callIn"].is_null(), "{shown}: {v}");
        assert!(v["error"].is_string(), "{shown}: {v}");
        assert!(v.get("quote").is_none());
        assert!(!v["error"].as_str().unwrap().contains('<'), "no echo");
    }
    // The first `symbol` parameter counts.
    let (_, _, v) = get_query(&server, "symbol=IBM&symbol=%3Cscript%3E").await;
    assert_eq!(v["quote"]["symbol"], "IBM");
    assert_eq!(v["callIn"], 5000);
    // A query too long for the HTTP layer is refused there, not with a 5xx.
    let huge = "A".repeat(200_000);
    if let Ok(res) = common::http()
        .get(format!("{}/?symbol={huge}", server.url()))
        .send()
        .await
    {
        assert!(res.status().as_u16() < 500, "{}", res.status());
    }
    // And the server is still fine.
    quote(&server, "IBM").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn prices_move_on_the_server_clock_with_consistent_high_low_volume() {
    let server = common::server_with(config(|c| c.ticker.tick_ms = 20)).await;
    let first = quote(&server, "MSFT").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = first.clone();
    let mut changes = 0;
    let (mut max, mut min) = (f64::MIN, f64::MAX);
    while changes < 5 {
        assert!(Instant::now() < deadline, "price never changed: {last}");
        tokio::time::sleep(Duration::from_millis(30)).await;
        let q = quote(&server, "MSFT").await;
        assert_quote_shape(&q, "MSFT");
        if q["previousClose"] != last["previousClose"] {
            // A new session began: the tallies start over.
            max = f64::MIN;
            min = f64::MAX;
        } else {
            assert!(q["volume"].as_u64() >= last["volume"].as_u64(), "volume");
            assert!(q["latestUpdate"].as_u64() >= last["latestUpdate"].as_u64());
        }
        let p = q["latestPrice"].as_f64().unwrap();
        max = max.max(p);
        min = min.min(p);
        assert!(q["high"].as_f64().unwrap() >= max);
        assert!(q["low"].as_f64().unwrap() <= min);
        if q["latestPrice"] != last["latestPrice"] {
            changes += 1;
        }
        last = q;
    }
    assert!(last["latestUpdate"].as_u64() > first["latestUpdate"].as_u64());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn prices_do_not_move_per_request() {
    // An hour-long tick: nothing moves however often clients poll.
    let server = common::server_with(config(|c| c.ticker.tick_ms = 3_600_000)).await;
    let a = quote(&server, "AAPL").await;
    for _ in 0..20 {
        assert_eq!(quote(&server, "AAPL").await, a);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_same_seed_gives_the_same_market_whatever_the_request_order() {
    let still = |seed| {
        config(move |c| {
            c.ticker.seed = Some(seed);
            c.ticker.tick_ms = 3_600_000;
        })
    };
    let a = common::server_with(still(42)).await;
    let b = common::server_with(still(42)).await;
    let c = common::server_with(still(43)).await;
    let symbols = ["IBM", "FOO", "NEW.CO", "MSFT"];
    let strip = |mut q: Value| {
        q.as_object_mut().unwrap().remove("latestUpdate");
        q
    };
    let mut from_a = Vec::new();
    for s in symbols {
        from_a.push(strip(quote(&a, s).await));
    }
    let mut from_b = Vec::new();
    for s in symbols.iter().rev() {
        from_b.push(strip(quote(&b, s).await));
    }
    from_b.reverse();
    assert_eq!(from_a, from_b);
    for (i, s) in symbols.iter().enumerate() {
        assert_ne!(
            strip(quote(&c, s).await),
            from_a[i],
            "seed 43 differs on {s}"
        );
    }
    for s in [a, b, c] {
        s.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_series_over_time() {
    let ticking = |seed| {
        config(move |c| {
            c.ticker.seed = Some(seed);
            c.ticker.tick_ms = 25;
        })
    };
    let a = common::server_with(ticking(7)).await;
    let b = common::server_with(ticking(7)).await;
    let c = common::server_with(ticking(8)).await;
    let (sa, sb, sc) = tokio::join!(
        price_volume_series(&a, "NVDA", 20),
        price_volume_series(&b, "NVDA", 20),
        price_volume_series(&c, "NVDA", 20),
    );
    let common_ab = sa.intersection(&sb).count();
    assert!(common_ab >= 5, "same seed, only {common_ab} common states");
    assert_eq!(
        sa.intersection(&sc).count(),
        0,
        "another seed, another series"
    );
    for s in [a, b, c] {
        s.shutdown().await.unwrap();
    }
}

/// `(latestPrice, volume)` of the first `n` stream events for `symbol`.
async fn price_volume_series(server: &Server, symbol: &str, n: usize) -> HashSet<(String, u64)> {
    let mut sse = Sse::open(server, &format!("symbols={symbol}")).await;
    let mut out = HashSet::new();
    while out.len() < n {
        let ev = sse.next_event().await;
        let q: Value = serde_json::from_str(&ev.data).unwrap();
        out.insert((q["latestPrice"].to_string(), q["volume"].as_u64().unwrap()));
    }
    out
}

#[tokio::test]
async fn tracked_symbols_are_bounded() {
    let server = common::server_with(config(|c| c.ticker.max_symbols = 5)).await;
    for i in 0..40 {
        quote(&server, &format!("SYN{i}")).await;
    }
    assert_eq!(
        server.state.ticker.tracked().await,
        Some(LISTINGS.len() + 5)
    );
    // Built-in symbols are always there; an evicted symbol comes back.
    quote(&server, "KO").await;
    quote(&server, "SYN0").await;
    assert_eq!(
        server.state.ticker.tracked().await,
        Some(LISTINGS.len() + 5)
    );
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------
// Upstream provider

/// Every request the fake provider got: path and arrival time.
type Hits = Arc<Mutex<Vec<(String, Instant)>>>;

/// A local quote provider that records every request it gets.
struct FakeUpstream {
    addr: SocketAddr,
    hits: Hits,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    async fn start() -> FakeUpstream {
        let hits: Hits = Arc::default();
        let app = axum::Router::new()
            .route("/{mode}/{symbol}", get(fake_quote))
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeUpstream { addr, hits, task }
    }

    /// `--quotes-url` for one of the fake's modes.
    fn url(&self, mode: &str) -> String {
        format!("http://{}/{mode}/{{symbol}}", self.addr)
    }

    fn count(&self, mode: &str) -> usize {
        self.times(mode).len()
    }

    fn times(&self, mode: &str) -> Vec<Instant> {
        let prefix = format!("/{mode}/");
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
            .map(|(_, t)| *t)
            .collect()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake_quote(
    State(hits): State<Hits>,
    Path((mode, symbol)): Path<(String, String)>,
) -> axum::response::Response {
    let n = {
        let mut hits = hits.lock().unwrap();
        hits.push((format!("/{mode}/{symbol}"), Instant::now()));
        hits.iter()
            .filter(|(p, _)| p.starts_with(&format!("/{mode}/")))
            .count()
    };
    let full = serde_json::json!({
        "symbol": symbol, "companyName": "Fake Corp", "latestPrice": 100.0 + n as f64,
        "change": n as f64, "changePercent": 0.01, "open": 100.0, "high": 200.0, "low": 50.0,
        "previousClose": 100.0, "volume": 1000 * n, "latestUpdate": 1_700_000_000_000u64,
        "primaryExchange": "FAKE"
    });
    match mode.as_str() {
        "slowok" => {
            // Slow enough that every concurrent poller arrives while the
            // one request is in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::Json(full).into_response()
        }
        "ok" => axum::Json(full).into_response(),
        "partial" => {
            axum::Json(serde_json::json!({"latestPrice": 12.5, "peRatio": 3.5})).into_response()
        }
        "noprice" => axum::Json(serde_json::json!({"companyName": "Nothing"})).into_response(),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "garbage" => ([("content-type", "application/json")], "<html>not json").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(full).into_response()
        }
        "flaky" if n <= 2 => (StatusCode::SERVICE_UNAVAILABLE, "later").into_response(),
        "flaky" => axum::Json(full).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn upstream_config(url: String, f: impl FnOnce(&mut Config)) -> Config {
    config(|c| {
        c.ticker.quotes_url = Some(url);
        f(c);
    })
}

/// `n` concurrent polls of `symbol`; their bodies.
async fn concurrent_polls(server: &Server, symbol: &str, n: usize) -> Vec<Value> {
    let url = server.url();
    let http = common::http();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let http = http.clone();
            let url = format!("{url}/?symbol={symbol}");
            tokio::spawn(async move {
                let res = http.get(url).send().await.unwrap();
                assert_eq!(res.status(), 200);
                res.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn concurrent_pollers_share_one_upstream_request_per_interval() {
    let fake = FakeUpstream::start().await;
    let server = common::server_with(upstream_config(fake.url("slowok"), |c| {
        c.ticker.upstream_interval_ms = 3000;
    }))
    .await;
    let bodies = concurrent_polls(&server, "IBM", 50).await;
    assert_eq!(fake.count("slowok"), 1);
    for b in &bodies {
        assert_eq!(b, &bodies[0]);
    }
    let q = &bodies[0]["quote"];
    assert_quote_shape(q, "IBM");
    assert_eq!(q["latestPrice"], 101.0);
    assert_eq!(q["companyName"], "Fake Corp");
    assert_eq!(q["primaryExchange"], "FAKE", "unknown fields pass through");
    assert_eq!(bodies[0]["callIn"], 5000);

    // Cached for the interval: no new request.
    let again = concurrent_polls(&server, "IBM", 50).await;
    assert_eq!(fake.count("slowok"), 1);
    assert_eq!(again[0], bodies[0]);

    // After the interval, one new request for all of them.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let later = concurrent_polls(&server, "IBM", 50).await;
    assert_eq!(fake.count("slowok"), 2);
    assert_eq!(later[49]["quote"]["latestPrice"], 102.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_upstream_is_never_called_faster_than_the_interval() {
    let fake = FakeUpstream::start().await;
    let server = common::server_with(upstream_config(fake.url("ok"), |c| {
        c.ticker.upstream_interval_ms = 300;
    }))
    .await;
    let started = Instant::now();
    let pollers: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{}/?symbol=MSFT", server.url());
            tokio::spawn(async move {
                let http = common::http();
                while started.elapsed() < Duration::from_millis(1500) {
                    let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
                    assert!(v["quote"].is_object(), "{v}");
                }
            })
        })
        .collect();
    for p in pollers {
        p.await.unwrap();
    }
    let times = fake.times("ok");
    assert!((2..=6).contains(&times.len()), "{} requests", times.len());
    // Measured on arrival, so allow for some delivery jitter.
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(200),
            "requests {:?} apart",
            w[1] - w[0]
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_upstream_fields_are_derived_and_a_quote_without_price_is_garbage() {
    let fake = FakeUpstream::start().await;
    let server = common::server_with(upstream_config(fake.url("partial"), |_| {})).await;
    let q = quote(&server, "ibm").await;
    assert_quote_shape(&q, "IBM");
    assert_eq!(q["latestPrice"], 12.5);
    assert_eq!(q["companyName"], "IBM");
    assert_eq!(q["change"], 0.0);
    assert_eq!(q["volume"], 0);
    assert_eq!(q["peRatio"], 3.5);
    server.shutdown().await.unwrap();

    let server = common::server_with(upstream_config(fake.url("noprice"), |_| {})).await;
    let (status, _, v) = get_query(&server, "symbol=IBM").await;
    assert_eq!(status, 200);
    assert_eq!(v["callIn"], 10_000);
    assert!(v["error"].as_str().unwrap().contains("garbage"), "{v}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn upstream_failures_answer_an_error_with_callin_10000() {
    let fake = FakeUpstream::start().await;
    for (mode, words) in [
        ("fail", "500"),
        ("garbage", "garbage"),
        ("slow", "timed out"),
        ("missing", "404"),
    ] {
        let server = common::server_with(upstream_config(fake.url(mode), |c| {
            c.ticker.upstream_timeout_ms = 300;
        }))
        .await;
        let started = Instant::now();
        let bodies = concurrent_polls(&server, "IBM", 10).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{mode}");
        for v in &bodies {
            assert_eq!(v["callIn"], 10_000, "{mode}: {v}");
            let e = v["error"].as_str().unwrap();
            assert!(e.contains(words), "{mode}: {e}");
        }
        assert_eq!(fake.count(mode), 1, "{mode}: one request for all");
        // Backed off: an immediate retry does not reach the upstream.
        let (_, _, v) = get_query(&server, "symbol=IBM").await;
        assert_eq!(v["callIn"], 10_000);
        assert_eq!(fake.count(mode), 1, "{mode}: backed off");
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn failing_symbols_back_off_more_and_more_then_recover() {
    let fake = FakeUpstream::start().await;
    let server = common::server_with(upstream_config(fake.url("fail"), |c| {
        c.ticker.upstream_interval_ms = 100;
        c.ticker.upstream_backoff_max_ms = 800;
    }))
    .await;
    let started = Instant::now();
    let http = common::http();
    while started.elapsed() < Duration::from_millis(3000) {
        let v: Value = http
            .get(format!("{}/?symbol=IBM", server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["callIn"], 10_000);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let times = fake.times("fail");
    // Waits of 100, 200, 400, 800, 800… ms: about 7 requests in 3 s (a
    // poll every 10 ms would have made ~250 without the back-off).
    assert!((5..=9).contains(&times.len()), "{} requests", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Measured on arrival, so allow for some delivery jitter.
    assert!(gaps[0] >= Duration::from_millis(80), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(170), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(350), "{gaps:?}");
    assert!(gaps[3] >= Duration::from_millis(700), "{gaps:?}");
    for g in &gaps {
        assert!(*g < Duration::from_millis(1300), "capped: {gaps:?}");
    }
    server.shutdown().await.unwrap();

    // A provider that recovers: the symbol gets quotes again.
    let server = common::server_with(upstream_config(fake.url("flaky"), |c| {
        c.ticker.upstream_interval_ms = 50;
    }))
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, v) = get_query(&server, "symbol=IBM").await;
        if v["quote"].is_object() {
            assert_eq!(v["callIn"], 5000);
            break;
        }
        assert_eq!(v["callIn"], 10_000);
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.count("flaky"), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streams_are_fed_from_the_upstream() {
    let fake = FakeUpstream::start().await;
    let server = common::server_with(upstream_config(fake.url("ok"), |c| {
        c.ticker.upstream_interval_ms = 100;
        c.ticker.tick_ms = 20;
    }))
    .await;
    let mut sse = Sse::open(&server, "symbols=AAA").await;
    let mut prices = Vec::new();
    while prices.len() < 3 {
        let ev = sse.next_event().await;
        let q: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(q["symbol"], "AAA");
        prices.push(q["latestPrice"].as_f64().unwrap());
    }
    assert!(prices.windows(2).all(|w| w[1] > w[0]), "{prices:?}");
    server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------
// SSE stream

/// A raw SSE reader over reqwest.
struct Sse {
    res: reqwest::Response,
    parser: Parser,
    pending: std::collections::VecDeque<ParsedEvent>,
    raw: Vec<u8>,
}

impl Sse {
    async fn open(server: &Server, query: &str) -> Sse {
        let res = reqwest::Client::new()
            .get(format!("{}/ticker/stream?{query}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        Sse {
            res,
            parser: Parser::new(),
            pending: Default::default(),
            raw: Vec::new(),
        }
    }

    /// More bytes, or `None` at the end of the stream.
    async fn read(&mut self) -> Option<()> {
        let chunk = tokio::time::timeout(Duration::from_secs(10), self.res.chunk())
            .await
            .expect("stream stalled")
            .ok()??;
        self.raw.extend_from_slice(&chunk);
        self.pending.extend(self.parser.feed(&chunk));
        Some(())
    }

    async fn next_event(&mut self) -> ParsedEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            self.read().await.expect("stream ended");
        }
    }
}

#[tokio::test]
async fn the_stream_sends_current_quotes_then_changes_with_increasing_ids() {
    let server = common::server_with(config(|c| c.ticker.tick_ms = 20)).await;
    let res = common::http()
        .get(format!(
            "{}/ticker/stream?symbols=ibm,MSFT,IBM",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    drop(res);
    let mut sse = Sse::open(&server, "symbols=ibm,MSFT,IBM").await;
    let mut last_id = 0u64;
    let mut seen = Vec::new();
    for i in 0..30 {
        let ev = sse.next_event().await;
        assert_eq!(ev.event, "quote");
        let id: u64 = ev.id.as_deref().expect("id").parse().expect("numeric id");
        assert!(id > last_id, "ids increase: {id} after {last_id}");
        last_id = id;
        let q: Value = serde_json::from_str(&ev.data).unwrap();
        let symbol = q["symbol"].as_str().unwrap().to_string();
        assert_quote_shape(&q, &symbol);
        if i < 2 {
            // The current quotes come first, in the order asked.
            assert_eq!(symbol, ["IBM", "MSFT"][i]);
        } else {
            assert!(symbol == "IBM" || symbol == "MSFT");
        }
        seen.push(symbol);
    }
    assert!(sse.parser.retry().is_some());
    assert_eq!(server.state.stats.open(App::Ticker), 1);
    // Shutdown ends the stream.
    let state = server.state.clone();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown does not hang on the stream")
        .unwrap();
    while sse.read().await.is_some() {}
    assert_eq!(state.stats.open(App::Ticker), 0);
    assert!(state.stats.events_total() >= 30);
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats() {
    let server = common::server_with(config(|c| {
        c.ticker.tick_ms = 3_600_000;
        c.ticker.ticker_heartbeat_ms = 50;
    }))
    .await;
    let mut sse = Sse::open(&server, "symbols=KO").await;
    let ev = sse.next_event().await;
    assert_eq!(ev.event, "quote");
    let before = sse.raw.len();
    let started = Instant::now();
    let mut beats = 0;
    while beats < 3 {
        sse.read().await.expect("open");
        beats =
            count(&sse.raw[before..], b":heartbeat") + count(&sse.raw[before..], b": heartbeat");
    }
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        sse.pending.is_empty(),
        "heartbeats are comments, not events"
    );
    server.shutdown().await.unwrap();
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn bad_stream_requests_get_a_clear_400() {
    let server = common::server_with(config(|c| c.ticker.ticker_stream_max_symbols = 3)).await;
    for (query, words) in [
        ("", "no symbols"),
        ("symbols=", "no symbols"),
        ("symbols=IBM,%3Cscript%3E", "symbol 2"),
        ("symbols=ABCDEFGHIJKLMNOP", "longer"),
        ("symbols=%C3%84", "only"),
        ("symbols=A,B,C,D", "at most 3"),
    ] {
        let res = common::http()
            .get(format!("{}/ticker/stream?{query}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{query}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: Value = res.json().await.unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(words), "{query}: {e}");
    }
    assert_eq!(server.state.stats.open(App::Ticker), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stalled_stream_does_not_stall_the_ticker() {
    let server = common::server_with(config(|c| c.ticker.tick_ms = 2)).await;
    let all: Vec<&str> = LISTINGS.iter().map(|l| l.symbol).collect();
    // Opened and never read: its socket buffers fill up within a second.
    let stalled = Sse::open(&server, &format!("symbols={}", all.join(","))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut prices = HashSet::new();
    for _ in 0..20 {
        let started = Instant::now();
        let q = quote(&server, "IBM").await;
        assert!(started.elapsed() < Duration::from_secs(1));
        prices.insert(q["latestPrice"].to_string());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(prices.len() > 1, "the market kept moving");
    // A new stream still starts with every current quote.
    let mut fresh = Sse::open(&server, "symbols=IBM,KO").await;
    assert_eq!(fresh.next_event().await.event, "quote");
    drop(stalled);
    server.shutdown().await.unwrap();
}
