//! `rt-tui ticker SYMBOL...`: quotes as JSON lines, for scripts.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use rt_protocol::ticker::Symbol;
use rt_tui::net::ticker::{
    NextUpdate, TickerClient, TickerClientConfig, TickerEvent, TickerTransport,
};
use rt_tui::net::{ConnState, EVENT_CHANNEL_CAPACITY, NetEvent};
use tokio::sync::mpsc;

use super::connect::DEFAULT_URL;

const OUTPUT: &str = "\
Output: one JSON object per received quote on stdout, one per line: the
server's quote object with all its fields, for example
  {\"symbol\":\"IBM\",\"companyName\":\"International Business Machines\",
   \"latestPrice\":141.2,\"change\":0.8,\"changePercent\":0.0057,\"open\":140.4,
   \"high\":141.9,\"low\":140.1,\"previousClose\":140.4,\"volume\":1203000,
   \"latestUpdate\":1700000000000}
(printed on a single line; changePercent is a fraction, latestUpdate epoch ms;
fields beyond these that the server sends are passed through).

Errors go to stderr. Polling follows the server's callIn; an error answer with
a callIn is reported and retried.

Exit status: 0 after --count quotes (never, without --count, until
interrupted); 1 when the server cannot be reached, answers with an error and
callIn null (an invalid symbol), or stops every symbol; 2 for bad arguments.

Examples:
  rt-tui ticker IBM --count 1
  rt-tui ticker AAPL MSFT --transport sse --count 10 --url http://127.0.0.1:9000
  rt-tui ticker IBM | jq .latestPrice";

/// `rt-tui ticker` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = OUTPUT)]
pub struct Args {
    /// Symbols to follow (1-10 characters of A-Z 0-9 . -, case-insensitive).
    #[arg(required = true, value_parser = parse_symbol)]
    pub symbols: Vec<Symbol>,

    /// Stop after this many quotes (over all symbols).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Poll `GET /?symbol=` or follow the SSE stream.
    #[arg(long, value_enum, default_value_t = TickerTransport::Poll)]
    pub transport: TickerTransport,

    /// Server URL (http:// or https://).
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,

    #[command(flatten)]
    pub server: super::server::ServerArgs,
}

fn parse_symbol(raw: &str) -> Result<Symbol, String> {
    Symbol::parse(raw).map_err(|e| format!("{raw:?}: {e}"))
}

/// Prints quotes until `--count` is reached or something fails.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let base = args.server.endpoint(&args.url)?;
    let mut symbols = args.symbols;
    let mut seen = std::collections::HashSet::new();
    symbols.retain(|s| seen.insert(s.clone()));
    let mut active = seen;

    let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let _client = TickerClient::spawn(
        TickerClientConfig {
            base_url: base,
            transport: args.transport,
        },
        symbols,
        tx,
    );
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    while let Some(ev) = rx.recv().await {
        match ev {
            NetEvent::State(_, ConnState::Retrying { error, .. }) => {
                eprintln!("rt-tui: {error}");
                return Ok(ExitCode::FAILURE);
            }
            NetEvent::State(..) | NetEvent::Qa(_) | NetEvent::Doc(_) => {}
            NetEvent::Ticker(TickerEvent::Quote {
                symbol,
                quote,
                next,
                ..
            }) => {
                let line = serde_json::to_string(&quote).context("cannot encode a quote")?;
                let mut out = stdout.lock();
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    // A closed pipe (`| head -1`) is a normal way to stop.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    return Err(e).context("cannot write to stdout");
                }
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    return Ok(ExitCode::SUCCESS);
                }
                if next == NextUpdate::Stopped {
                    eprintln!("{symbol}: the server stopped updates (callIn null)");
                    active.remove(&symbol);
                    if active.is_empty() {
                        eprintln!("rt-tui: the server stopped every symbol");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            NetEvent::Ticker(TickerEvent::Error {
                symbol,
                error,
                next,
                ..
            }) => match next {
                NextUpdate::At(t) => {
                    let wait = t.saturating_duration_since(std::time::Instant::now());
                    eprintln!("{symbol}: {error} (retrying in {:.1}s)", wait.as_secs_f64());
                }
                _ => {
                    eprintln!("{symbol}: {error}");
                    return Ok(ExitCode::FAILURE);
                }
            },
            NetEvent::Draw(_) => {}
        }
    }
    eprintln!("rt-tui: the ticker client stopped");
    Ok(ExitCode::FAILURE)
}
