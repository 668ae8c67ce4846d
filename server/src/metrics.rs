//! `GET /metrics`: the server's figures in the Prometheus text format.
//!
//! Built on the `metrics` facade with `metrics-exporter-prometheus` rather
//! than `prometheus-client`: the facade lets any module record with a
//! one-line call (`metrics::refused("draw_rate")`) and no handle threaded
//! through its types, so the apps stay as they are; both crates are
//! actively kept, and this exporter writes the classic text format that
//! every Prometheus and parser reads (prometheus-client writes OpenMetrics).
//!
//! Two kinds of sources:
//! - Connections and messages out are counted once, in [`Stats`] (which
//!   `/stats` reads too), and copied into the registry at scrape time, as is
//!   the store's queue depth.
//! - Everything else is recorded where it happens, through the functions
//!   below. The recorder is process-wide, like a real server's one
//!   instance; test binaries that start several servers see their sum.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;
use crate::stats::{App, Stats, Transport};

/// Open connections, labels `app` and `transport`.
pub const CONNECTIONS: &str = "rt_connections";
/// Events received from clients (actions, edits, strokes, polls), label `app`.
pub const EVENTS_IN: &str = "rt_events_in_total";
/// Messages written to clients, label `app`.
pub const MESSAGES_OUT: &str = "rt_messages_out_total";
/// Time from a store batch's BEGIN to its COMMIT.
pub const STORE_COMMIT: &str = "rt_store_commit_duration_seconds";
/// Jobs waiting for the store's writer thread.
pub const STORE_QUEUE: &str = "rt_store_queue_depth";
/// Clients cut for falling behind, label `app`.
pub const SLOW_CONSUMERS: &str = "rt_slow_consumers_cut_total";
/// Requests, events or connections refused by a limit, label `limit`.
pub const REFUSED: &str = "rt_refused_total";
/// Documents loaded in memory.
pub const DOCUMENTS_OPEN: &str = "rt_documents_open";
/// Segments on the drawing board's canvas.
pub const CANVAS_SEGMENTS: &str = "rt_canvas_segments";

/// Commit latency buckets, seconds: a group commit without fsync takes tens
/// of microseconds, one with fsync milliseconds.
const COMMIT_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The limits the server enforces today, by `limit` label: each is the
/// snake_case name of the flag that sets it. They are listed at zero from
/// the start so `rate()` has a baseline.
pub const LIMITS: &[&str] = &[
    "qa_max_question",
    "qa_max_answer",
    "qa_max_questions",
    "qa_max_answers_per_question",
    "qa_queue",
    "draw_rate",
    "draw_join_rate",
    "draw_canvas_queue",
    "draw_max_clients",
    "draw_max_segments",
    "doc_max_op_bytes",
    "doc_max_len",
    "doc_max_frame_bytes",
    "doc_send_queue",
    "max_symbols",
    "ticker_stream_max_symbols",
    "stream_stall_ms",
    "max_connections",
    "max_connections_per_ip",
    "qa_login_rate",
    "qa_action_rate",
];

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Handles of the series recorded on hot paths (every drawing event, every
/// canvas change), looked up once instead of per call.
struct Hot {
    events_in: [Counter; App::ALL.len()],
    slow_consumers: [Counter; App::ALL.len()],
    store_commit: Histogram,
    documents_open: Gauge,
    canvas_segments: Gauge,
}

static HOT: OnceLock<Hot> = OnceLock::new();

/// The hot handles, taken from the installed recorder (installing it
/// first, so a handle is never a no-op one taken too early).
fn hot() -> &'static Hot {
    HOT.get_or_init(|| {
        install();
        Hot {
            events_in: App::ALL.map(|a| counter!(EVENTS_IN, "app" => a.name())),
            slow_consumers: App::ALL.map(|a| counter!(SLOW_CONSUMERS, "app" => a.name())),
            store_commit: histogram!(STORE_COMMIT),
            documents_open: gauge!(DOCUMENTS_OPEN),
            canvas_segments: gauge!(CANVAS_SEGMENTS),
        }
    })
}

/// Installs the process-wide recorder (once; later calls return the same
/// handle) and lists every series at zero.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(STORE_COMMIT.into()), &COMMIT_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder can only be there if an embedding program set
        // one; then it gets our figures and /metrics shows only ours.
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        // Histogram samples wait in a buffer until a render or an upkeep
        // folds them into the buckets: without a scraper that buffer would
        // grow with every commit. A plain thread, so it outlives any one
        // runtime (tests start many).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("rt-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open connections by app and transport.");
    describe_counter!(EVENTS_IN, "Events received from clients, by app.");
    describe_counter!(MESSAGES_OUT, "Messages written to clients, by app.");
    describe_histogram!(
        STORE_COMMIT,
        Unit::Seconds,
        "Time from a store batch's BEGIN to its COMMIT."
    );
    describe_gauge!(STORE_QUEUE, "Jobs waiting for the store's writer thread.");
    describe_counter!(SLOW_CONSUMERS, "Clients cut for falling behind, by app.");
    describe_counter!(
        REFUSED,
        "Requests, events or connections refused, by limit."
    );
    describe_gauge!(DOCUMENTS_OPEN, "Editor documents loaded in memory.");
    describe_gauge!(CANVAS_SEGMENTS, "Segments on the drawing board's canvas.");
    for app in App::ALL {
        counter!(EVENTS_IN, "app" => app.name()).absolute(0);
        counter!(SLOW_CONSUMERS, "app" => app.name()).absolute(0);
    }
    for &limit in LIMITS {
        counter!(REFUSED, "limit" => limit).absolute(0);
    }
    gauge!(DOCUMENTS_OPEN).set(0.0);
    gauge!(CANVAS_SEGMENTS).set(0.0);
}

/// A limit refused something; `limit` is the snake_case name of the flag
/// that sets it (`"draw_rate"`, `"max_connections"`).
pub fn refused(limit: &'static str) {
    counter!(REFUSED, "limit" => limit).increment(1);
}

/// A client of `app` was cut for falling behind.
pub fn slow_consumer(app: App) {
    hot().slow_consumers[app as usize].increment(1);
}

/// `n` events arrived from clients of `app`.
pub fn events_in(app: App, n: u64) {
    hot().events_in[app as usize].increment(n);
}

/// A store batch took `took` from BEGIN to COMMIT.
pub fn store_commit(took: Duration) {
    hot().store_commit.record(took.as_secs_f64());
}

/// The editor now holds `n` documents in memory.
pub fn documents_open(n: usize) {
    hot().documents_open.set(n as f64);
}

/// The canvas now holds `n` segments.
pub fn canvas_segments(n: usize) {
    hot().canvas_segments.set(n as f64);
}

/// Copies the figures kept in [`Stats`] and the store into the registry.
fn sample(state: &AppState) {
    let stats: &Stats = &state.stats;
    // The drawing board's clients start on long-polling and most upgrade
    // later; Socket.IO knows each one's transport now, Stats the total.
    let draw_polling = state.draw.polling_sockets() as i64;
    for app in App::ALL {
        for transport in app.transports() {
            let open = match (app, transport) {
                (App::Draw, Transport::Polling) => draw_polling.min(stats.open(app)),
                (App::Draw, Transport::Websocket) => (stats.open(app) - draw_polling).max(0),
                _ => stats.open_via(app, *transport),
            };
            gauge!(CONNECTIONS, "app" => app.name(), "transport" => transport.name())
                .set(open as f64);
        }
        counter!(MESSAGES_OUT, "app" => app.name()).absolute(stats.delivered_by(app));
    }
    gauge!(STORE_QUEUE).set(state.store.queue_depth() as f64);
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let handle = install();
    sample(&state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
