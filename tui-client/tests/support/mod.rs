//! Shared helpers for the rt-tui integration tests: a real rt server and a
//! scripted fake ticker server, both on 127.0.0.1 port 0.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The longest any single test process may run.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// A real rt server with a fast market: polls are answered with `callIn`
/// `poll_ms` and the simulated market moves every 100 ms.
pub async fn rt_server(poll_ms: u64) -> rt_server::Server {
    let mut config = rt_server::Config::for_tests();
    config.ticker.poll_ms = poll_ms;
    config.ticker.tick_ms = 100;
    config.ticker.seed = Some(7);
    rt_server::spawn(config).await.expect("test server starts")
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A fake ticker server answering `GET /?symbol=` with scripted bodies (the
/// last one repeats) and recording when each poll arrived.
pub struct FakeTicker {
    pub addr: SocketAddr,
    pub polls: Arc<Mutex<Vec<(Instant, String)>>>,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct FakeState {
    bodies: Arc<Mutex<VecDeque<String>>>,
    polls: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl FakeTicker {
    pub async fn start(bodies: &[&str]) -> FakeTicker {
        let state = FakeState {
            bodies: Arc::new(Mutex::new(bodies.iter().map(|s| s.to_string()).collect())),
            polls: Arc::new(Mutex::new(Vec::new())),
        };
        let polls = state.polls.clone();
        let app = Router::new()
            .route("/", get(answer))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake server");
        });
        FakeTicker { addr, polls, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeTicker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(state): State<FakeState>,
    RawQuery(q): RawQuery,
) -> impl axum::response::IntoResponse {
    state
        .polls
        .lock()
        .unwrap()
        .push((Instant::now(), q.unwrap_or_default()));
    let body = {
        let mut bodies = state.bodies.lock().unwrap();
        if bodies.len() > 1 {
            bodies.pop_front().unwrap()
        } else {
            bodies.front().cloned().unwrap_or_default()
        }
    };
    ([("content-type", "application/json")], body)
}

/// A quote body for the fake server.
pub fn quote_body(symbol: &str, price: f64, call_in: Option<u64>) -> String {
    let call_in = call_in.map_or("null".to_string(), |c| c.to_string());
    format!(
        r#"{{"quote":{{"symbol":"{symbol}","companyName":"{symbol} Corp","latestPrice":{price},"change":0.5,"changePercent":0.001,"open":1,"high":2,"low":0.5,"previousClose":{prev},"volume":10,"latestUpdate":1}},"callIn":{call_in}}}"#,
        prev = price - 0.5
    )
}

/// Runs `rt-tui` with `args` to completion (bounded by [`PROCESS_TIMEOUT`]).
pub async fn rt_tui(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rt-tui"));
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(PROCESS_TIMEOUT, cmd.output())
        .await
        .expect("rt-tui finishes in time")
        .expect("rt-tui runs")
}
