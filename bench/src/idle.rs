//! `bench idle`: what an idle client costs the server in memory. Opens N
//! connections of one app — drawing clients over WebSocket (joined, canvas
//! received) or editors subscribed to a small document (spread over
//! `--docs` documents) — lets the joins settle, and reports the server's RSS
//! growth divided by N. The clients answer pings and otherwise stay quiet.

use std::sync::Arc;
use std::time::Duration;

use rt_protocol::engineio::EnginePacket;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::docclient::DocClient;
use super::draw::{JoinError, join};
use super::net::Connector;
use super::report::Summary;
use super::ws::Message;
use super::{Common, MAX_CONNECTIONS, Target};

/// Which app's clients sit idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    /// Socket.IO drawing clients over WebSocket.
    Draw,
    /// ShareDB editors subscribed to a document.
    Editor,
}

/// `bench idle` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The app whose clients are measured.
    #[arg(long, value_enum)]
    pub app: App,

    /// Idle clients.
    #[arg(long, default_value_t = 2000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS))]
    pub clients: u64,

    /// Editor: documents the clients are spread over (client i on document
    /// i mod D); each is created first with one short line.
    #[arg(long, default_value_t = 1, value_name = "D",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub docs: u64,

    /// Seconds to wait after the last join before reading the RSS.
    #[arg(long, default_value_t = 5, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=120))]
    pub settle: u64,

    /// Clients connecting at once.
    #[arg(long, default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connect_concurrency: u64,

    #[command(flatten)]
    pub common: Common,
}

/// Text of each document.
const LINE: &str = "A short line of text.\n";

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let connector = Arc::new(Connector::to_nodes(&target.addrs, args.common.sources));
    let mut summary = Summary::new("idle", "client");
    summary.param("app", format!("{:?}", args.app).to_lowercase());
    summary.param("clients", args.clients);
    summary.param("docs", args.docs);
    summary.param("nodes", target.addrs.len() as u64);
    summary.param("server_args", args.common.target.server_args.join(" "));
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let doc_id = |d: u64| format!("idle-{run_id:x}-{d}");

    // Documents first, and one warm-up client, so that neither counts in
    // the per-client figure; the growth from here includes both (compare
    // runs with 1 and D documents for the cost of a document).
    let start = target.rss_kib();
    if args.app == App::Editor {
        for d in 0..args.docs {
            let mut creator = DocClient::connect(&connector, &doc_id(d))
                .await
                .map_err(anyhow::Error::msg)?;
            creator.create(LINE).await.map_err(anyhow::Error::msg)?;
            creator.conn.close(1000).await;
        }
    }
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let (warm_tx, warm_rx) = tokio::sync::oneshot::channel();
    tasks.spawn(hold(
        args.app,
        connector.clone(),
        doc_id(0),
        stop.clone(),
        Some(warm_tx),
        None,
    ));
    if !matches!(warm_rx.await, Ok(Ok(()))) {
        anyhow::bail!("the warm-up client could not join");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = target.rss_kib();
    let own_before = super::procstat::rss_kib(std::process::id()).ok();

    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let (joined_tx, mut joined_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..args.clients {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.spawn(hold(
            args.app,
            connector.clone(),
            doc_id(i % args.docs),
            stop.clone(),
            Some(tx),
            Some(gate.clone()),
        ));
        let joined_tx = joined_tx.clone();
        tokio::spawn(async move {
            let _ = joined_tx.send(rx.await.unwrap_or(Err("client task ended".into())));
        });
    }
    drop(joined_tx);
    let mut joined = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, joined_rx.recv()).await {
        match r {
            Ok(()) => joined += 1,
            Err(e) if summary.errors.len() < 10 => summary.errors.push(e),
            Err(_) => {}
        }
    }
    summary.figure("joined", joined);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    if let (Some(start), Some(after)) = (start, target.rss_kib()) {
        summary.figure("server_rss_growth_kib", after.saturating_sub(start));
    }
    if let (Some(before), Some(after)) = (before, target.rss_kib()) {
        summary.figure("server_rss_kib", after);
        summary.figure(
            "server_rss_per_client_kib",
            ((after.saturating_sub(before)) as f64 / joined.max(1) as f64 * 1000.0).round()
                / 1000.0,
        );
    }
    if let (Some(before), Ok(after)) = (own_before, super::procstat::rss_kib(std::process::id())) {
        summary.figure(
            "generator_rss_per_client_kib",
            ((after.saturating_sub(before)) as f64 / joined.max(1) as f64 * 1000.0).round()
                / 1000.0,
        );
    }
    if joined < args.clients {
        summary
            .errors
            .push(format!("only {joined} of {} clients joined", args.clients));
    }
    stop.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(20), drain).await;
    Ok(summary)
}

/// Joins, reports, then answers pings until `stop`.
async fn hold(
    app: App,
    connector: Arc<Connector>,
    doc_id: String,
    stop: CancellationToken,
    joined: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    gate: Option<Arc<Semaphore>>,
) {
    let permit = match &gate {
        Some(g) => g.clone().acquire_owned().await.ok(),
        None => None,
    };
    let conn = match app {
        App::Draw => join(&connector).await.map_err(|e| match e {
            JoinError::Busy => "the board answered busy".to_string(),
            JoinError::Failed(e) => e,
        }),
        App::Editor => match DocClient::connect(&connector, &doc_id).await {
            Ok(mut c) => c.load("s").await.map(|()| c.conn),
            Err(e) => Err(e),
        },
    };
    drop(permit);
    let mut conn = match conn {
        Ok(c) => {
            if let Some(tx) = joined {
                let _ = tx.send(Ok(()));
            }
            c
        }
        Err(e) => {
            if let Some(tx) = joined {
                let _ = tx.send(Err(e));
            }
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            m = conn.next() => match m {
                Ok(Message::Text(t)) if app == App::Draw => {
                    if let Ok(EnginePacket::Ping(d)) = EnginePacket::decode(&String::from_utf8_lossy(&t)) {
                        conn.queue_text(EnginePacket::Pong(d).encode().as_bytes());
                        if conn.flush().await.is_err() {
                            return;
                        }
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
    conn.close(1000).await;
}
