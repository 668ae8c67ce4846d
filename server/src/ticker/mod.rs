//! The stock ticker: classic AJAX polling (`GET /?symbol=`) and an SSE stream.

use axum::Router;
use axum::response::Response;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Ticker settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct TickerConfig {
    /// `callIn` sent to polling clients: how long they wait between polls.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub poll_ms: u64,

    /// Seed for the simulated market, for a reproducible run.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Take quotes from this upstream URL instead of the simulator;
    /// `{symbol}` is replaced by the symbol. It must return an IEX-style quote.
    #[arg(long, value_name = "URL")]
    pub quotes_url: Option<String>,
}

/// Handle to the ticker's owner task.
#[derive(Clone)]
pub struct Ticker {}

impl Ticker {
    pub fn start(_config: &TickerConfig, _shutdown: CancellationToken) -> Ticker {
        Ticker {}
    }

    pub async fn poll_response(&self, _raw_symbol: &str) -> Response {
        axum::response::IntoResponse::into_response("")
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
