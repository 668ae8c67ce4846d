//! `bench sse`: N Q&A streams on `GET /login`; the first stream's user asks
//! a question each round (`POST /askquestion/<q>` with `_sse_user_id_`), and
//! the round lasts until every stream has the `questions` broadcast naming
//! it. Reports latency per round (p50/p99/max), server CPU per delivered
//! message and server RSS per idle stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rt_protocol::{qa, sse};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::net::{Chunked, Connector, HttpConn};
use super::report::{Counters, CpuMark, Latencies, Progress, Summary};
use super::{Common, MAX_CONNECTIONS, Target, procstat};

/// `bench sse` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Streams held open on /login.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS))]
    pub streams: u64,

    /// Questions asked, one per round.
    #[arg(long, default_value_t = 10, value_name = "R",
          value_parser = clap::value_parser!(u64).range(1..=200))]
    pub rounds: u64,

    /// Pause between rounds, ms.
    #[arg(long, default_value_t = 500, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub interval_ms: u64,

    /// Streams being opened at once.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connect_concurrency: u64,

    /// Give up when the streams are not all open after this many seconds.
    #[arg(long, default_value_t = 180, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,

    /// A round fails when some stream has not seen the question after this
    /// many seconds.
    #[arg(long, default_value_t = 10, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub round_timeout: u64,

    /// Seconds to wait once every stream is open, before reading the
    /// server's RSS and starting the rounds.
    #[arg(long, default_value_t = 2, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub settle: u64,

    #[command(flatten)]
    pub common: Common,
}

/// Not yet arrived in this round.
const PENDING: u64 = u64::MAX;

/// What the stream tasks and the coordinator share.
struct Shared {
    base: Instant,
    /// The `questions` JSON key of each round's question, quoted.
    needles: Vec<String>,
    /// Current round + 1 (0: no round yet).
    round: AtomicUsize,
    /// When the current round's question was sent, ns since `base`.
    t0: AtomicU64,
    /// Per stream: latency in this round (ns) or `PENDING`.
    arrivals: Vec<AtomicU64>,
    arrived: AtomicUsize,
    ready: AtomicUsize,
    /// Count every received event (the per-message CPU divisor) while set.
    measuring: AtomicBool,
    counters: Arc<Counters>,
}

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let n = args.streams as usize;
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros()
    );
    let questions: Vec<String> = (0..args.rounds)
        .map(|r| format!("bench {nonce} round {r}"))
        .collect();
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        base: Instant::now(),
        needles: questions.iter().map(|q| format!("\"{q}\"")).collect(),
        round: AtomicUsize::new(0),
        t0: AtomicU64::new(0),
        arrivals: (0..n).map(|_| AtomicU64::new(PENDING)).collect(),
        arrived: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        measuring: AtomicBool::new(false),
        counters: counters.clone(),
    });
    let connector = Arc::new(Connector::to_nodes(&target.addrs, args.common.sources));
    let rss_before = target.rss_kib();
    let own_rss_before = procstat::rss_kib(std::process::id()).ok();
    let progress = Progress::start("sse", counters.clone(), !args.common.quiet);
    let stop = CancellationToken::new();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let mut summary = Summary::new("sse", "delivered message");
    summary.param("streams", args.streams);
    summary.param("rounds", args.rounds);
    summary.param("interval_ms", args.interval_ms);
    summary.param("sources", args.common.sources);
    summary.param("threads", args.common.threads);

    let (user_tx, user_rx) = oneshot::channel();
    let mut user_tx = Some(user_tx);
    let mut tasks = JoinSet::new();
    let request = format!(
        "GET /login HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        target.host()
    );
    let connect_start = Instant::now();
    for i in 0..n {
        tasks.spawn(stream_task(
            i,
            connector.clone(),
            request.clone(),
            shared.clone(),
            gate.clone(),
            if i == 0 { user_tx.take() } else { None },
            stop.clone(),
        ));
    }

    // Every stream open (login and snapshot received), or give up.
    let deadline = Instant::now() + Duration::from_secs(args.connect_timeout);
    while shared.ready.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline || tasks.len() < n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = shared.ready.load(Ordering::Relaxed);
    summary.figure("streams_open", ready as u64);
    summary.figure("connect_s", round3(connect_start.elapsed().as_secs_f64()));
    if ready < n {
        summary.errors.push(format!(
            "only {ready} of {n} streams opened within {} s",
            args.connect_timeout
        ));
        stop.cancel();
        summary.errors.extend(collect_errors(&mut tasks).await);
        progress.finish();
        return Ok(summary);
    }
    let user = tokio::time::timeout(Duration::from_secs(5), user_rx).await??;

    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    if let (Some(before), Some(after)) = (rss_before, target.rss_kib()) {
        summary.figure("server_rss_kib", after);
        summary.figure(
            "server_rss_per_stream_kib",
            round3(after.saturating_sub(before) as f64 / n as f64),
        );
    }
    if let (Some(before), Ok(after)) = (own_rss_before, procstat::rss_kib(std::process::id())) {
        summary.figure(
            "generator_rss_per_stream_kib",
            round3(after.saturating_sub(before) as f64 / n as f64),
        );
    }

    // The asker's own connection.
    let mut asker = HttpConn::new(connector.connect().await?, 4096);
    let server_mark = target.cpu_mark();
    let own_mark = CpuMark::take(std::process::id());
    let messages_before = counters.messages.load(Ordering::Relaxed);
    shared.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let mut all = Latencies::with_capacity(n * args.rounds as usize);
    let (mut p50s, mut p99s, mut maxes, mut complete) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (r, q) in questions.iter().enumerate() {
        for a in &shared.arrivals {
            a.store(PENDING, Ordering::Relaxed);
        }
        shared.arrived.store(0, Ordering::Relaxed);
        shared
            .t0
            .store(shared.base.elapsed().as_nanos() as u64, Ordering::Release);
        shared.round.store(r + 1, Ordering::Release);
        if let Err(e) = ask(&mut asker, target, &user, q).await {
            summary.errors.push(format!("round {r}: ask: {e}"));
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(args.round_timeout);
        while shared.arrived.load(Ordering::Acquire) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut round = Latencies::with_capacity(n);
        for a in &shared.arrivals {
            let v = a.load(Ordering::Relaxed);
            if v != PENDING {
                round.push_nanos(v);
            }
        }
        let got = round.len();
        if got < n {
            summary.errors.push(format!(
                "round {r}: {} of {n} streams did not see the question within {} s",
                n - got,
                args.round_timeout
            ));
        } else {
            complete += 1;
        }
        all.extend(round.clone());
        if let Some(s) = round.summary() {
            p50s.push(round3(s.p50_ms));
            p99s.push(round3(s.p99_ms));
            maxes.push(round3(s.max_ms));
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let delivered = counters.messages.load(Ordering::Relaxed) - messages_before;
    summary.server = server_mark.and_then(|m| m.figures(delivered));
    summary.generator = own_mark.and_then(|m| m.figures(delivered));
    summary.elapsed_s = elapsed.as_secs_f64();
    summary.figure("rounds_complete", complete);
    summary.figure("messages_delivered", delivered);
    summary.figure("round_p50_ms_median", median(&p50s));
    summary.figure("round_p99_ms_median", median(&p99s));
    summary.figure(
        "round_max_ms_worst",
        maxes.iter().cloned().fold(0.0, f64::max),
    );
    summary.figure("rounds_p99_ms", Value::from(p99s));
    summary.latency("broadcast", all);

    stop.cancel();
    summary.errors.extend(collect_errors(&mut tasks).await);
    progress.finish();
    Ok(summary)
}

async fn collect_errors(tasks: &mut JoinSet<Result<(), String>>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut failed = 0usize;
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                failed += 1;
                if errors.len() < 10 {
                    errors.push(e);
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    if failed > errors.len() {
        errors.push(format!("… {} stream errors in all", failed));
    }
    errors
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn median(xs: &[f64]) -> Value {
    if xs.is_empty() {
        return Value::Null;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    json!(v[v.len() / 2])
}

/// `POST /askquestion/<q>` as `user`.
async fn ask(conn: &mut HttpConn, target: &Target, user: &str, q: &str) -> Result<(), String> {
    let path: String =
        percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).collect();
    let request = format!(
        "POST {}{path} HTTP/1.1\r\nHost: {}\r\n{}: {user}\r\nContent-Length: 0\r\n\r\n",
        qa::ASK_PATH,
        target.host(),
        qa::USER_HEADER
    );
    conn.send(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let head = conn.read_head().await.map_err(|e| e.to_string())?;
    let body = conn.read_body(&head).await.map_err(|e| e.to_string())?;
    if head.status != 200 || !body.is_empty() {
        return Err(format!(
            "status {}: {}",
            head.status,
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// One stream: open, wait for login and the snapshot, then watch for each
/// round's question until told to stop.
async fn stream_task(
    i: usize,
    connector: Arc<Connector>,
    request: String,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    user_tx: Option<oneshot::Sender<String>>,
    stop: CancellationToken,
) -> Result<(), String> {
    let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
    let stream = connector
        .connect()
        .await
        .map_err(|e| format!("stream {i}: connect: {e}"))?;
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    let result = tokio::select! {
        r = watch(i, stream, request, &shared, permit, user_tx) => r,
        _ = stop.cancelled() => Ok(()),
    };
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    if result.is_err() {
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
    }
    result
}

async fn watch(
    i: usize,
    stream: tokio::net::TcpStream,
    request: String,
    shared: &Shared,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut user_tx: Option<oneshot::Sender<String>>,
) -> Result<(), String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("stream {i}: {what}: {e}");
    let mut conn = HttpConn::new(stream, 4096);
    conn.send(request.as_bytes())
        .await
        .map_err(|e| err("send", &e))?;
    let head = conn.read_head().await.map_err(|e| err("response", &e))?;
    let is_stream = head
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if head.status != 200 || !is_stream {
        return Err(err(
            "login",
            &format!("status {}, {:?}", head.status, head.content_type),
        ));
    }
    let mut chunked = head.chunked.then(Chunked::default);
    let mut parser = sse::Parser::new();
    let mut body = BytesMut::with_capacity(4096);
    let mut permit = Some(permit);
    let mut logged_in = false;
    let mut seen_round = 0usize;
    loop {
        if conn.buf.is_empty() {
            conn.fill().await.map_err(|e| err("read", &e))?;
        }
        let events = match &mut chunked {
            Some(c) => {
                c.decode(&mut conn.buf, &mut body)
                    .map_err(|e| err("chunk", &e))?;
                let ev = parser.feed(&body);
                body.clear();
                if c.is_done() {
                    return Err(err("stream", &"the server ended the stream"));
                }
                ev
            }
            None => {
                let ev = parser.feed(&conn.buf);
                conn.buf.clear();
                ev
            }
        };
        for ev in events {
            if shared.measuring.load(Ordering::Relaxed) {
                shared.counters.add_message();
            }
            if ev.event == qa::LOGIN_EVENT {
                let user: String =
                    serde_json::from_str(&ev.data).map_err(|e| err("login data", &e))?;
                if let Some(tx) = user_tx.take() {
                    let _ = tx.send(user);
                }
                logged_in = true;
                continue;
            }
            if ev.event != "message" || !ev.data.starts_with("{\"type\":\"questions\"") {
                continue;
            }
            if permit.is_some() && logged_in {
                // The snapshot after login: this stream is open.
                permit = None;
                shared.ready.fetch_add(1, Ordering::Relaxed);
                if i == 0 {
                    // One stream checks the whole message against the
                    // protocol types; the rest only look for the question.
                    serde_json::from_str::<qa::Message>(&ev.data)
                        .map_err(|e| err("questions", &e))?;
                }
                continue;
            }
            let round = shared.round.load(Ordering::Acquire);
            if round == 0 || round == seen_round {
                continue;
            }
            if ev.data.contains(shared.needles[round - 1].as_str()) {
                let now = shared.base.elapsed().as_nanos() as u64;
                let t0 = shared.t0.load(Ordering::Acquire);
                seen_round = round;
                if i == 0 {
                    check_questions(&ev.data, &shared.needles[round - 1])
                        .map_err(|e| err("questions", &e))?;
                }
                shared.arrivals[i].store(now.saturating_sub(t0), Ordering::Relaxed);
                shared.arrived.fetch_add(1, Ordering::Release);
            }
        }
    }
}

/// The broadcast decodes as a `questions` message naming the question.
fn check_questions(data: &str, needle: &str) -> Result<(), String> {
    let q = &needle[1..needle.len() - 1];
    match serde_json::from_str::<qa::Message>(data) {
        Ok(qa::Message::Questions { questions, .. }) if questions.0.iter().any(|(k, _)| k == q) => {
            Ok(())
        }
        Ok(other) => Err(format!("the question is missing from {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
