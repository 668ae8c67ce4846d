//! `bench editor`: M ShareDB editors on one rich-text document (or spread
//! over `--docs` documents, editor i on document i mod D), each in a closed
//! loop (one op in flight: type a keystroke, wait for the ack, type
//! the next). Reports acknowledged ops/s, ack latency, server CPU per op, and
//! checks at the end that every editor and the server hold the same text.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::docclient::{DocClient, Event, Rng, keystroke};
use super::net::Connector;
use super::report::{Counters, CpuMark, Latencies, Progress, Summary};
use super::{Common, MAX_SECONDS, Target};

/// Text the document starts with (ends in a newline, as Quill keeps one).
const SEED: &str = "The quick brown fox jumps over the lazy dog.\n";

/// `bench editor` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Editors on the document.
    #[arg(long, default_value_t = 10, value_name = "M",
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub editors: u64,

    /// Seconds of measurement (after the warm-up).
    #[arg(long, default_value_t = 10, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub duration: u64,

    /// Seconds of editing before measuring.
    #[arg(long, default_value_t = 1, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,

    /// Seed of the editors' random keystrokes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Paced instead of closed-loop: each editor types one keystroke every
    /// this many milliseconds (phases spread evenly), still never more than
    /// one op in flight.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: Option<u64>,

    /// Documents the editors are spread over (at most one per editor).
    #[arg(long, default_value_t = 1, value_name = "D",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub docs: u64,

    #[command(flatten)]
    pub common: Common,
}

struct Shared {
    ready: AtomicUsize,
    go: CancellationToken,
    /// Stop typing (the in-flight op still completes).
    stop: CancellationToken,
    measuring: AtomicBool,
    /// Each document's final version on the server, once known.
    final_v: Vec<AtomicU64>,
    final_known: CancellationToken,
    /// Editors whose last op is acknowledged.
    quiet: AtomicUsize,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Tally {
    /// Index of the editor's document.
    doc: usize,
    acked: u64,
    latencies: Latencies,
    text: Option<String>,
    error: Option<String>,
}

/// Runs the scenario.
pub async fn run(args: &Args, target: &Target) -> anyhow::Result<Summary> {
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let docs = args.docs.min(args.editors) as usize;
    let doc_ids: Vec<String> = (0..docs)
        .map(|d| format!("editor-{run_id:x}-{d}"))
        .collect();
    let connector = Arc::new(Connector::to_nodes(&target.addrs, args.common.sources));
    let mut creators = Vec::with_capacity(docs);
    for doc_id in &doc_ids {
        let mut creator = DocClient::connect(&connector, doc_id)
            .await
            .map_err(anyhow::Error::msg)?;
        creator.create(SEED).await.map_err(anyhow::Error::msg)?;
        creators.push(creator);
    }

    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        go: CancellationToken::new(),
        stop: CancellationToken::new(),
        measuring: AtomicBool::new(false),
        final_v: (0..docs).map(|_| AtomicU64::new(0)).collect(),
        final_known: CancellationToken::new(),
        quiet: AtomicUsize::new(0),
        counters: counters.clone(),
    });
    let progress = Progress::start("editor", counters.clone(), !args.common.quiet);
    let mut summary = Summary::new("editor", "acknowledged op");
    summary.param("editors", args.editors);
    summary.param("docs", docs as u64);
    summary.param("interval_ms", args.interval_ms.unwrap_or(0));
    summary.param("nodes", target.addrs.len() as u64);
    summary.param("duration_s", args.duration);
    summary.param("threads", args.common.threads);
    summary.param("server_args", args.common.target.server_args.join(" "));
    summary.param(
        "server_data",
        args.common.target.server_data.display().to_string(),
    );

    let m = args.editors as usize;
    let mut tasks = JoinSet::new();
    for i in 0..args.editors {
        let doc = i as usize % docs;
        let pace = args.interval_ms.map(|ms| {
            let every = Duration::from_millis(ms);
            (every, every.mul_f64(i as f64 / args.editors as f64))
        });
        tasks.spawn(editor(
            connector.clone(),
            (doc, doc_ids[doc].clone()),
            pace,
            Rng::new(args.seed.wrapping_mul(1000).wrapping_add(i)),
            shared.clone(),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.ready.load(Ordering::Relaxed) < m && Instant::now() < deadline && tasks.len() == m
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = shared.ready.load(Ordering::Relaxed);
    if ready < m {
        summary.errors.push(format!(
            "only {ready} of {m} editors subscribed within 30 s"
        ));
        shared.stop.cancel();
        shared.final_known.cancel();
    } else {
        shared.go.cancel();
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        let server_mark = target.cpu_mark();
        let own_mark = CpuMark::take(std::process::id());
        let before = counters.messages.load(Ordering::Relaxed);
        let start = Instant::now();
        shared.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
        shared.measuring.store(false, Ordering::Relaxed);
        let ops = counters.messages.load(Ordering::Relaxed) - before;
        summary.elapsed_s = start.elapsed().as_secs_f64();
        summary.server = server_mark.and_then(|mk| mk.figures(ops));
        summary.generator = own_mark.and_then(|mk| mk.figures(ops));
        shared.stop.cancel();

        // Convergence: once every editor's last op is acknowledged, the
        // server's snapshot is final; every editor must reach it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.quiet.load(Ordering::Relaxed) < m && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (mut versions, mut length) = (0, 0);
        for (creator, final_v) in creators.iter_mut().zip(&shared.final_v) {
            match creator.load("f").await {
                Ok(()) => {
                    final_v.store(creator.v, Ordering::Relaxed);
                    versions += creator.v;
                    length += creator.doc.len_utf16() as u64;
                }
                Err(e) => summary.errors.push(format!("final fetch: {e}")),
            }
        }
        summary.figure("final_version", versions);
        summary.figure("final_length", length);
        shared.final_known.cancel();
    }

    let mut total = Tally::default();
    let (mut converged, mut finished) = (0u64, 0u64);
    let server_texts: Vec<String> = creators.iter().map(|c| c.doc.text()).collect();
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            let Ok(t) = r else { continue };
            finished += 1;
            total.acked += t.acked;
            total.latencies.extend(t.latencies);
            if let Some(e) = t.error {
                summary.errors.push(e);
            }
            if t.text.as_ref() == Some(&server_texts[t.doc]) {
                converged += 1;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), drain)
        .await
        .is_err()
    {
        summary
            .errors
            .push("editors did not finish within 20 s".into());
    }
    progress.finish();
    if converged < args.editors && summary.errors.is_empty() {
        summary.errors.push(format!(
            "convergence: {} of {finished} editors differ from the server's text",
            finished - converged
        ));
    }
    let secs = summary.elapsed_s.max(1e-9);
    summary.figure("acked_ops", total.acked);
    summary.figure("acked_ops_per_s", (total.acked as f64 / secs).round());
    summary.figure("editors_converged", converged);
    summary.latency("ack", total.latencies);
    Ok(summary)
}

async fn editor(
    connector: Arc<Connector>,
    (doc, doc_id): (usize, String),
    pace: Option<(Duration, Duration)>,
    mut rng: Rng,
    shared: Arc<Shared>,
) -> Tally {
    let mut tally = Tally {
        doc,
        latencies: Latencies::with_capacity(64 * 1024),
        ..Tally::default()
    };
    if let Err(e) = edit(&connector, &doc_id, pace, &mut rng, &shared, &mut tally).await {
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        tally.error = Some(e);
        // Never leave the coordinator waiting for this one.
        shared.quiet.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

async fn edit(
    connector: &Connector,
    doc_id: &str,
    pace: Option<(Duration, Duration)>,
    rng: &mut Rng,
    shared: &Shared,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut c = DocClient::connect(connector, doc_id).await?;
    c.load("s").await?;
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    shared.ready.fetch_add(1, Ordering::Relaxed);
    shared.go.cancelled().await;
    let mut next = pace.map(|(_, phase)| tokio::time::Instant::now() + phase);
    loop {
        if let (Some(at), Some((every, _))) = (next.as_mut(), pace)
            && !c.in_flight()
        {
            tokio::select! {
                _ = tokio::time::sleep_until(*at) => {}
                _ = shared.stop.cancelled() => {}
                // Keep applying the others' ops while waiting (`fill` is
                // cancel-safe; what it read is handled outside the select).
                r = c.conn.fill() => {
                    r.map_err(|e| e.to_string())?;
                    while let Some(m) = c.conn.next_buffered().map_err(|e| e.to_string())? {
                        if let super::ws::Message::Text(t) = m {
                            c.handle(&t)?;
                        }
                    }
                    c.conn.flush().await.map_err(|e| e.to_string())?;
                    continue;
                }
            }
            *at += every;
        }
        if !c.in_flight() && !shared.stop.is_cancelled() {
            let op = keystroke(rng, c.doc.len_utf16());
            c.queue_submit(op)?;
            c.conn.flush().await.map_err(|e| e.to_string())?;
        }
        if !c.in_flight() {
            break;
        }
        if let Event::Acked(took) = c.next_event().await?
            && shared.measuring.load(Ordering::Relaxed)
        {
            tally.acked += 1;
            tally.latencies.push(took);
            shared.counters.add_message();
        }
    }
    shared.quiet.fetch_add(1, Ordering::Relaxed);
    // Keep applying the others' ops until the server's final version.
    loop {
        tokio::select! {
            _ = shared.final_known.cancelled() => break,
            r = c.next_event() => { r?; }
        }
    }
    let final_v = shared.final_v[tally.doc].load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.v < final_v {
        tokio::time::timeout_at(deadline, c.next_event())
            .await
            .map_err(|_| format!("stuck at version {} of {final_v}", c.v))??;
    }
    tally.text = Some(c.doc.text());
    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    c.conn.close(1000).await;
    Ok(())
}
