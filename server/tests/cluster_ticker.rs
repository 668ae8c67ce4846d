//! One market across nodes: two in-process nodes on one PostgreSQL database
//! and the test Redis. Quotes agree between nodes, a node's new symbol is
//! quoted, the market survives its driver, and upstream requests are
//! coalesced cluster-wide; `/stats` shows every node and the totals.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rt_server::cluster::testing::{TestDb, redis_url};
use rt_server::{Config, Server};
use serde_json::Value;

async fn node(db: &TestDb, id: &str, f: impl FnOnce(&mut Config)) -> Server {
    let mut c = Config::for_cluster_tests(&db.url, Some(&redis_url()), id);
    f(&mut c);
    common::server_with(c).await
}

async fn poll(server: &Server, symbol: &str) -> Value {
    common::http()
        .get(format!("{}/?symbol={symbol}", server.url()))
        .send()
        .await
        .expect("poll")
        .json()
        .await
        .expect("JSON")
}

/// Polls until a quote (not "no quote yet") comes back.
async fn quote(server: &Server, symbol: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = poll(server, symbol).await;
        if v["quote"].is_object() {
            return v["quote"].clone();
        }
        assert!(Instant::now() < deadline, "no quote for {symbol}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_driver(nodes: &[&Server]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let drivers: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].state.ticker.is_driver())
            .collect();
        assert!(
            drivers.len() <= 1,
            "two nodes drive the market: {drivers:?}"
        );
        if let [one] = drivers[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no node took the driver's lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn same(a: &Value, b: &Value) -> bool {
    a["latestPrice"] == b["latestPrice"] && a["latestUpdate"] == b["latestUpdate"]
}

#[tokio::test]
async fn quotes_agree_across_nodes_and_the_market_survives_its_driver() {
    let db = TestDb::create().await;
    let a = node(&db, "a", |_| {}).await;
    let b = node(&db, "b", |_| {}).await;
    let driver = wait_for_driver(&[&a, &b]).await;

    // Polled at the same moment (ticks are a second apart), both agree.
    quote(&a, "IBM").await;
    quote(&b, "IBM").await;
    let mut agreed = 0;
    for _ in 0..10 {
        let (qa, qb) = tokio::join!(quote(&a, "IBM"), quote(&b, "IBM"));
        agreed += usize::from(same(&qa, &qb));
        tokio::time::sleep(Duration::from_millis(137)).await;
    }
    assert!(agreed >= 9, "only {agreed} of 10 simultaneous polls agreed");

    // A symbol nobody asked for yet, first on one node, then the other.
    let first = quote(&b, "ZZTOP").await;
    assert_eq!(first["symbol"], "ZZTOP");
    let other = quote(&a, "ZZTOP").await;
    assert_eq!(first["companyName"], other["companyName"]);

    // The driver's node goes away; the other takes over and carries on.
    let (gone, stays) = if driver == 0 { (a, b) } else { (b, a) };
    let before = quote(&stays, "IBM").await;
    gone.shutdown().await.unwrap();
    wait_for_driver(&[&stays]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let q = quote(&stays, "IBM").await;
        if q["latestUpdate"].as_u64() > before["latestUpdate"].as_u64() {
            break q;
        }
        assert!(
            Instant::now() < deadline,
            "IBM stopped moving after the takeover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (p0, p1) = (
        before["latestPrice"].as_f64().unwrap(),
        after["latestPrice"].as_f64().unwrap(),
    );
    assert!(
        (p1 - p0).abs() / p0 < 0.05,
        "the price jumped from {p0} to {p1} at the takeover"
    );
    assert_eq!(before["previousClose"], after["previousClose"]);
    stays.shutdown().await.unwrap();
}

/// A provider that counts its requests.
async fn fake_upstream() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/q/{symbol}",
        axum::routing::get(move |axum::extract::Path(symbol): axum::extract::Path<String>| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                axum::Json(serde_json::json!({
                    "symbol": symbol, "companyName": "Fake Corp", "latestPrice": 100.0 + n as f64,
                    "change": 1.0, "changePercent": 0.01, "open": 100.0, "high": 200.0,
                    "low": 50.0, "previousClose": 100.0, "volume": 1000,
                    "latestUpdate": 1_700_000_000_000u64 + n as u64
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/q/{{symbol}}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits, task)
}

#[tokio::test]
async fn upstream_requests_are_coalesced_across_nodes() {
    let (url, hits, upstream) = fake_upstream().await;
    let db = TestDb::create().await;
    let settings = |c: &mut Config| {
        c.ticker.quotes_url = Some(url.clone());
        c.ticker.upstream_interval_ms = 1000;
        c.ticker.tick_ms = 200;
    };
    let a = node(&db, "a", settings).await;
    let b = node(&db, "b", settings).await;
    wait_for_driver(&[&a, &b]).await;
    quote(&a, "ACME").await;
    let start = Instant::now();
    let mut seen_b = Vec::new();
    while start.elapsed() < Duration::from_secs(3) {
        let (qa, qb) = tokio::join!(poll(&a, "ACME"), poll(&b, "ACME"));
        assert!(qa["quote"].is_object(), "{qa}");
        if qb["quote"].is_object() {
            seen_b.push(qb["quote"]["latestPrice"].clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = hits.load(Ordering::SeqCst);
    // One request per interval for the whole cluster: the first, then at
    // most one a second for three seconds.
    assert!(
        n <= 5,
        "{n} upstream requests in 3 s at a 1 s interval over two nodes"
    );
    assert!(n >= 2, "the quote was never refreshed ({n} requests)");
    seen_b.dedup();
    assert!(
        seen_b.len() >= 2,
        "node b never saw a refreshed quote: {seen_b:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    upstream.abort();
}

#[tokio::test]
async fn stats_show_every_node_and_the_cluster_totals() {
    let db = TestDb::create().await;
    let fast = |c: &mut Config| c.stats_stream.interval_ms = 100;
    let a = node(&db, "a", fast).await;
    let b = node(&db, "b", fast).await;
    wait_for_driver(&[&a, &b]).await;
    // A stream open on each node, read on a.
    let _on_b = common::http()
        .get(format!("{}/stats", b.url()))
        .send()
        .await
        .unwrap();
    let mut res = common::http()
        .get(format!("{}/stats", a.url()))
        .send()
        .await
        .unwrap();
    let mut parser = rt_protocol::sse::Parser::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = 'found: loop {
        assert!(Instant::now() < deadline, "no figures with both nodes");
        let chunk = tokio::time::timeout(Duration::from_secs(5), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for e in parser.feed(&chunk) {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            if v["cluster"]["nodes"] == 2 && v["cluster"]["open"]["stats"] == 2 {
                break 'found v;
            }
        }
    };
    assert_eq!(v["node"], "a");
    assert_eq!(v["backend"], "postgres+redis");
    assert_eq!(
        v["open"]["stats"], 1,
        "this node's own figures stay at the top"
    );
    let drivers = ["a", "b"]
        .iter()
        .filter(|n| v["nodes"][**n]["ticker_driver"] == true)
        .count();
    assert_eq!(drivers, 1, "{v}");
    let rss: u64 = ["a", "b"]
        .iter()
        .map(|n| v["nodes"][*n]["rss_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(v["cluster"]["rss_bytes"].as_u64().unwrap(), rss);

    // A node that goes away drops out of the totals.
    drop(_on_b);
    b.shutdown().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    'gone: loop {
        assert!(
            Instant::now() < deadline,
            "the stopped node never dropped out"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(5), res.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for e in parser.feed(&chunk) {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            if v["cluster"]["nodes"] == 1 {
                break 'gone;
            }
        }
    }
    a.shutdown().await.unwrap();
}
