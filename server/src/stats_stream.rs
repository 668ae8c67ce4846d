//! `GET /stats`: an SSE stream of server figures, once per interval: open
//! connections per app, events delivered per second, resident memory and
//! uptime.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream;
use rt_protocol::sse;
use serde::Serialize;

use crate::state::AppState;
use crate::stats::App;

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
    /// Open connections per app, by app name.
    pub open: std::collections::BTreeMap<&'static str, i64>,
    /// Messages delivered to clients per second over the last interval.
    pub events_per_sec: f64,
    pub events_total: u64,
    /// Resident set size, bytes (None where /proc is unavailable).
    pub rss_bytes: Option<u64>,
    pub uptime_secs: u64,
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
        state.stats.events_total(),
        Instant::now(),
        0u64,
        guard,
    );
    let figures = stream::unfold(
        start,
        |(st, mut iv, last_total, last_at, seq, g)| async move {
            iv.tick().await;
            let total = st.stats.events_total();
            let secs = last_at.elapsed().as_secs_f64();
            let rate = if seq == 0 || secs <= 0.0 {
                0.0
            } else {
                (total - last_total) as f64 / secs
            };
            let f = Figures {
                open: App::ALL
                    .iter()
                    .map(|&a| (a.name(), st.stats.open(a)))
                    .collect(),
                events_per_sec: (rate * 10.0).round() / 10.0,
                events_total: total,
                rss_bytes: rss_bytes(),
                uptime_secs: st.stats.uptime().as_secs(),
            };
            let data = serde_json::to_string(&f).expect("figures serialize");
            let frame = sse::encode_event(Some("stats"), Some(&seq.to_string()), &data);
            Some((
                Ok::<_, Infallible>(frame),
                (st, iv, total, Instant::now(), seq + 1, g),
            ))
        },
    );
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
