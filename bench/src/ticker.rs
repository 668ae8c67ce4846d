//! `bench ticker`: C keep-alive clients poll `GET /?symbol=` back to back;
//! polls per second and poll latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rt_protocol::ticker::{PollResponse, Symbol};
use tokio::task::JoinSet;

use super::net::{Connector, HttpConn};
use super::report::{Counters, CpuMark, Latencies, Progress, Summary};
use super::{Common, MAX_CONNECTIONS, MAX_SECONDS, Target};

/// `bench ticker` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Keep-alive polling clients.
    #[arg(long, default_value_t = 256, value_name = "C",
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS))]
    pub clients: u64,

    /// Seconds of measurement (after the warm-up).
    #[arg(long, default_value_t = 10, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub duration: u64,

    /// Seconds of polling before measuring.
    #[arg(long, default_value_t = 1, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,

    /// Total polls per second, spread evenly over the clients (each keeps
    /// its own schedule; latency counts from the scheduled time, so a late
    /// server is not excused by the clients waiting for it). 0: every
    /// client polls again as soon as its answer arrives (closed loop).
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub rate: u64,

    /// Symbols to poll; client i polls symbol i mod N.
    #[arg(long, value_delimiter = ',', default_value = "IBM,AAPL,MSFT,GOOG")]
    pub symbols: Vec<String>,

    #[command(flatten)]
    pub common: Common,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What one client counted while measuring.
#[derive(Debug, Default)]
struct ClientResult {
    polls: u64,
    latencies: Latencies,
    errors: Vec<String>,
}

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let symbols = args
        .symbols
        .iter()
        .map(|s| Symbol::parse(s).map_err(|e| anyhow::anyhow!("symbol {s:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!symbols.is_empty(), "no symbols to poll");
    let connector = Arc::new(Connector::to_nodes(&target.addrs, args.common.sources));
    let counters = Arc::new(Counters::default());
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let progress = Progress::start("ticker", counters.clone(), !args.common.quiet);

    let mut clients = JoinSet::new();
    for i in 0..args.clients {
        let request = format!(
            "GET /?symbol={} HTTP/1.1\r\nHost: {}\r\n\r\n",
            symbols[i as usize % symbols.len()].as_str(),
            target.host()
        );
        // Client i's schedule: one poll per `clients / rate` seconds,
        // starting at its share of the first period.
        let schedule = (args.rate > 0).then(|| {
            let period = Duration::from_secs_f64(args.clients as f64 / args.rate as f64);
            (period, period.mul_f64(i as f64 / args.clients as f64))
        });
        clients.spawn(poll_loop(
            connector.clone(),
            schedule,
            request.into_bytes(),
            counters.clone(),
            phase.clone(),
        ));
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let server_mark = target.cpu_mark();
    let own_mark = CpuMark::take(std::process::id());
    let start = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = start.elapsed();

    let mut total = ClientResult::default();
    while let Some(r) = clients.join_next().await {
        let r = r?;
        total.polls += r.polls;
        total.latencies.extend(r.latencies);
        total.errors.extend(r.errors);
    }
    // Every client has stopped: CPU after this point is not the load's.
    let server = server_mark.and_then(|m| m.figures(total.polls));
    let generator = own_mark.and_then(|m| m.figures(total.polls));
    progress.finish();

    let mut s = Summary::new("ticker", "poll");
    s.param("clients", args.clients);
    s.param("duration_s", args.duration);
    s.param("rate", args.rate);
    s.param("symbols", args.symbols.join(","));
    s.param("threads", args.common.threads);
    s.elapsed_s = elapsed.as_secs_f64();
    s.figure("polls", total.polls);
    s.figure(
        "polls_per_s",
        total.polls as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    s.latency("poll", total.latencies);
    s.server = server;
    s.generator = generator;
    s.errors = total.errors;
    Ok(s)
}

/// One client: polls until the phase says stop, counting only while
/// measuring. A failed connection is reopened once a second.
async fn poll_loop(
    connector: Arc<Connector>,
    schedule: Option<(Duration, Duration)>,
    request: Vec<u8>,
    counters: Arc<Counters>,
    phase: Arc<AtomicU8>,
) -> ClientResult {
    let mut result = ClientResult {
        latencies: Latencies::with_capacity(4096),
        ..ClientResult::default()
    };
    let mut conn: Option<HttpConn> = None;
    let mut ticks = schedule.map(|(period, offset)| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    while phase.load(Ordering::Relaxed) != STOP {
        let c = match &mut conn {
            Some(c) => c,
            None => match connector.connect().await {
                Ok(s) => {
                    counters.open.fetch_add(1, Ordering::Relaxed);
                    conn.insert(HttpConn::new(s, 4096))
                }
                Err(e) => {
                    note_error(&mut result, &counters, format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let sent = match &mut ticks {
            Some(t) => t.tick().await.into_std(),
            None => Instant::now(),
        };
        match poll_once(c, &request).await {
            Ok(()) => {
                if phase.load(Ordering::Relaxed) == MEASURE {
                    result.latencies.push(sent.elapsed());
                    result.polls += 1;
                    counters.add_message();
                }
            }
            Err(e) => {
                note_error(&mut result, &counters, e);
                conn = None;
                counters.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    result
}

fn note_error(result: &mut ClientResult, counters: &Counters, e: String) {
    counters.errors.fetch_add(1, Ordering::Relaxed);
    // Keep the first few; the count says the rest.
    if result.errors.len() < 5 {
        result.errors.push(e);
    }
}

async fn poll_once(c: &mut HttpConn, request: &[u8]) -> Result<(), String> {
    c.send(request).await.map_err(|e| format!("send: {e}"))?;
    let head = c.read_head().await.map_err(|e| format!("response: {e}"))?;
    let body = c.read_body(&head).await.map_err(|e| format!("body: {e}"))?;
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    match serde_json::from_slice::<PollResponse>(&body) {
        Ok(PollResponse::Quote {
            call_in: Some(_), ..
        }) => Ok(()),
        Ok(other) => Err(format!("unexpected poll answer: {other:?}")),
        Err(e) => Err(format!("poll body: {e}")),
    }
}
