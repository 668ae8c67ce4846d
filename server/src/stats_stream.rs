//! `GET /stats`: an SSE stream of server figures, once per interval: open
//! connections per app, events delivered per second, resident memory and
//! uptime.
//!
//! In a cluster every node also publishes its own figures on the bus each
//! interval ([`Peers`]), so any node's `/stats` shows every node's figures
//! (`nodes`) and their sums (`cluster`). A node that stops publishing drops
//! out after [`PEER_EXPIRY`] intervals.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream;
use rt_protocol::sse;
use serde::Serialize;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Bus, BusEvent};
use crate::state::AppState;
use crate::stats::{App, Stats};

/// Intervals without figures after which a node counts as gone.
pub const PEER_EXPIRY: u32 = 3;
const TOPIC: &str = "stats";

/// `/stats` settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct StatsStreamConfig {
    /// Interval between figures on `GET /stats`.
    #[arg(long = "stats-interval-ms", default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
}

/// One sample, the data of each event.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// This node's id (`--node-id`).
    pub node: String,
    /// `sqlite`, `postgres` or `postgres+redis`.
    pub backend: &'static str,
    #[serde(flatten)]
    pub own: NodeFigures,
    /// In a cluster: every node's figures (this one's included), by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<BTreeMap<String, NodeFigures>>,
    /// In a cluster: the sums over `nodes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Totals>,
}

/// One node's figures.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct NodeFigures {
    /// Open connections per app, by app name.
    pub open: BTreeMap<String, i64>,
    /// Messages delivered to clients per second over the last interval.
    pub events_per_sec: f64,
    pub events_total: u64,
    /// Resident set size, bytes (None where /proc is unavailable).
    pub rss_bytes: Option<u64>,
    pub uptime_secs: u64,
    /// Whether this node drives the cluster's ticker market.
    #[serde(default)]
    pub ticker_driver: bool,
}

/// Sums over the cluster's nodes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub nodes: usize,
    pub open: BTreeMap<String, i64>,
    pub events_per_sec: f64,
    pub events_total: u64,
    pub rss_bytes: u64,
}

impl Totals {
    fn of(nodes: &BTreeMap<String, NodeFigures>) -> Totals {
        let mut open = BTreeMap::new();
        for f in nodes.values() {
            for (app, n) in &f.open {
                *open.entry(app.clone()).or_insert(0) += n;
            }
        }
        Totals {
            nodes: nodes.len(),
            open,
            events_per_sec: (nodes.values().map(|f| f.events_per_sec).sum::<f64>() * 10.0).round()
                / 10.0,
            events_total: nodes.values().map(|f| f.events_total).sum(),
            rss_bytes: nodes.values().filter_map(|f| f.rss_bytes).sum(),
        }
    }
}

/// Measures events per second between samples.
struct Sampler {
    last_total: u64,
    last_at: Instant,
    first: bool,
}

impl Sampler {
    fn new(stats: &Stats) -> Sampler {
        Sampler {
            last_total: stats.events_total(),
            last_at: Instant::now(),
            first: true,
        }
    }

    fn sample(&mut self, stats: &Stats, ticker_driver: bool) -> NodeFigures {
        let total = stats.events_total();
        let secs = self.last_at.elapsed().as_secs_f64();
        let rate = if self.first || secs <= 0.0 {
            0.0
        } else {
            (total - self.last_total) as f64 / secs
        };
        self.first = false;
        self.last_total = total;
        self.last_at = Instant::now();
        NodeFigures {
            open: App::ALL
                .iter()
                .map(|&a| (a.name().to_string(), stats.open(a)))
                .collect(),
            events_per_sec: (rate * 10.0).round() / 10.0,
            events_total: total,
            rss_bytes: rss_bytes(),
            uptime_secs: stats.uptime().as_secs(),
            ticker_driver,
        }
    }
}

/// The other nodes' latest figures, kept by one task; `/stats` reads them.
#[derive(Clone)]
pub struct Peers {
    latest: watch::Receiver<Arc<BTreeMap<String, NodeFigures>>>,
}

impl Peers {
    /// Publishes this node's figures every `every` and gathers the others'.
    pub fn start(
        bus: Bus,
        stats: Arc<Stats>,
        ticker: crate::ticker::Ticker,
        every: Duration,
        shutdown: CancellationToken,
    ) -> Peers {
        let (tx, latest) = watch::channel(Arc::new(BTreeMap::new()));
        tokio::spawn(gather(bus, stats, ticker, every, tx, shutdown));
        Peers { latest }
    }

    /// Every live node's figures, this one's included.
    pub fn nodes(&self) -> Arc<BTreeMap<String, NodeFigures>> {
        self.latest.borrow().clone()
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Published {
    node: String,
    figures: NodeFigures,
}

async fn gather(
    bus: Bus,
    stats: Arc<Stats>,
    ticker: crate::ticker::Ticker,
    every: Duration,
    out: watch::Sender<Arc<BTreeMap<String, NodeFigures>>>,
    shutdown: CancellationToken,
) {
    let mut sub = loop {
        match bus.subscribe(TOPIC).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to cluster figures; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        }
    };
    let mut seen: BTreeMap<String, (NodeFigures, Instant)> = BTreeMap::new();
    let mut sampler = Sampler::new(&stats);
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let expiry = every * PEER_EXPIRY;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                let figures = sampler.sample(&stats, ticker.is_driver());
                // Our own figures count even while Redis is away.
                seen.insert(bus.node_id().to_string(), (figures.clone(), Instant::now()));
                let msg = Published { node: bus.node_id().to_string(), figures };
                if let Err(e) = bus.publish(TOPIC, &serde_json::to_vec(&msg).expect("figures serialize")).await {
                    tracing::debug!(error = %e, "cannot publish this node's figures");
                }
                seen.retain(|_, (_, at)| at.elapsed() < expiry);
                out.send_replace(Arc::new(seen.iter().map(|(k, (f, _))| (k.clone(), f.clone())).collect()));
            }
            event = sub.recv() => match event {
                Some(BusEvent::Message { payload, from_self: false, .. }) => {
                    match serde_json::from_slice::<Published>(&payload) {
                        Ok(p) => { seen.insert(p.node, (p.figures, Instant::now())); }
                        Err(e) => tracing::debug!(error = %e, "unreadable node figures"),
                    }
                }
                Some(_) => {}
                None => return,
            },
        }
    }
}

/// `GET /stats`.
pub async fn stats(State(state): State<AppState>) -> Response {
    let every = Duration::from_millis(state.config.stats_stream.interval_ms);
    let guard = state.stats.connect(App::Stats);
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = (
        state.clone(),
        interval,
        Sampler::new(&state.stats),
        0u64,
        guard,
    );
    let figures = stream::unfold(start, |(st, mut iv, mut sampler, seq, g)| async move {
        iv.tick().await;
        let own = sampler.sample(&st.stats, st.ticker.is_driver());
        let nodes = st.peers.as_ref().map(|p| {
            let mut nodes = (*p.nodes()).clone();
            // This sample is newer than the one the gatherer holds.
            nodes.insert(st.cluster.node_id.to_string(), own.clone());
            nodes
        });
        let f = Figures {
            node: st.cluster.node_id.to_string(),
            backend: st.cluster.backend(),
            cluster: nodes.as_ref().map(Totals::of),
            nodes,
            own,
        };
        let data = serde_json::to_string(&f).expect("figures serialize");
        let frame = sse::encode_event(Some("stats"), Some(&seq.to_string()), &data);
        Some((Ok::<_, Infallible>(frame), (st, iv, sampler, seq + 1, g)))
    });
    let body = stream::once(async { Ok(sse::encode_retry(2000)) })
        .chain(figures)
        .take_until(state.shutdown.clone().cancelled_owned());
    crate::serve::sse_response(Body::from_stream(body))
}

/// Resident memory from `/proc/self/statm` (pages) times the page size the
/// kernel passed in the auxiliary vector.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| {
            auxv.chunks_exact(16).find_map(|pair| {
                let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
                let val = u64::from_ne_bytes(pair[8..].try_into().ok()?);
                (key == AT_PAGESZ).then_some(val)
            })
        })
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_plausible() {
        let rss = rss_bytes().expect("/proc is available on Linux");
        assert!(rss > 1 << 20, "rss {rss}");
        assert!(page_size().is_power_of_two());
    }
}
