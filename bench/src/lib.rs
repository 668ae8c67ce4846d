//! `rt-bench …`: rt's load generator. One file per scenario; each opens
//! bounded numbers of loopback connections for a bounded time, speaks the
//! wire protocol through `rt_protocol`'s codecs, prints a progress line while
//! it runs and a summary at the end (text, or JSON with `--json`).
//!
//! The generator runs on its own runtime (one thread by default, the
//! cheapest) and measures its own CPU alongside the server's, so a reader can
//! check that its cost does not hide the server's.

pub mod docclient;
pub mod draw;
pub mod editor;
pub mod idle;
pub mod net;
pub mod procstat;
pub mod replay;
pub mod report;
pub mod sse;
pub mod target;
pub mod ticker;
pub mod ws;

use std::process::ExitCode;

use anyhow::Context;

pub use report::Summary;
pub use target::{Target, TargetArgs};

/// The most connections any scenario opens.
pub const MAX_CONNECTIONS: u64 = 60_000;
/// The longest measured phase, in seconds.
pub const MAX_SECONDS: u64 = 600;

const EXAMPLES: &str = "\
Examples (build the server with `cargo build --release -p rt-server` first):
  rt-bench ticker --spawn-server target/release/rt-server --clients 256 --duration 10
  rt-bench sse --spawn-server target/release/rt-server --streams 20000 --sources 4
  rt-bench draw --spawn-server target/release/rt-server --clients 500 --drawers 10
  rt-bench editor --spawn-server target/release/rt-server --editors 10 --duration 10
  rt-bench replay --spawn-server target/release/rt-server --trace automerge-paper.json.gz
  rt-bench idle --spawn-server target/release/rt-server --app draw --clients 2000
  rt-bench ticker --url http://127.0.0.1:8080 --json      (a running server, found by port)";

/// `rt-bench` flags.
#[derive(Debug, clap::Parser)]
#[command(
    name = "rt-bench",
    version,
    about = "rt's load generator: bounded loopback scenarios against rt-server, with throughput, latency and CPU figures"
)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// One variant per scenario file.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Keep-alive pollers of `GET /?symbol=`: polls/s and latency.
    Ticker(ticker::Args),
    /// Q&A streams on `/login`; one client asks, every stream must see it.
    Sse(sse::Args),
    /// Socket.IO drawing clients over WebSocket, some drawing at 20 Hz.
    Draw(draw::Args),
    /// ShareDB editors on one document in a closed loop.
    Editor(editor::Args),
    /// An editing trace submitted through the ShareDB protocol by one client.
    Replay(replay::Args),
    /// Idle drawing clients or editors: the server's memory per client.
    Idle(idle::Args),
}

/// Flags every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Generator threads (1: a single-threaded runtime, the cheapest).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub threads: u16,

    /// Spread connections over this many loopback source addresses
    /// (127.0.0.1 … 127.0.0.N), past the ephemeral-port range of one.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=250))]
    pub sources: u8,

    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Scenario {
    /// The flags shared by every scenario.
    pub fn common(&self) -> &Common {
        match self {
            Scenario::Ticker(a) => &a.common,
            Scenario::Sse(a) => &a.common,
            Scenario::Draw(a) => &a.common,
            Scenario::Editor(a) => &a.common,
            Scenario::Replay(a) => &a.common,
            Scenario::Idle(a) => &a.common,
        }
    }

    /// Connections the scenario opens (for the file-descriptor limit).
    pub fn connections(&self) -> u64 {
        match self {
            Scenario::Ticker(a) => a.clients,
            Scenario::Sse(a) => a.streams + 1,
            Scenario::Draw(a) => a.clients,
            Scenario::Editor(a) => a.editors + 1,
            Scenario::Replay(_) => 2,
            Scenario::Idle(a) => a.clients + 2,
        }
    }
}

/// Runs the scenario against `target` on the current runtime.
pub async fn measure(scenario: &Scenario, target: &Target) -> anyhow::Result<Summary> {
    match scenario {
        Scenario::Ticker(a) => ticker::run(a, target).await,
        Scenario::Sse(a) => sse::run(a, target).await,
        Scenario::Draw(a) => draw::run(a, target).await,
        Scenario::Editor(a) => editor::run(a, target).await,
        Scenario::Replay(a) => replay::run(a, target).await,
        Scenario::Idle(a) => idle::run(a, target).await,
    }
}

/// `rt-bench`: runs the scenario on a runtime of its own (`--threads`),
/// prints the summary; exit status 1 when the run recorded errors.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (summary, json) = run_on_own_runtime(args.scenario)?;
    if json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.to_text());
    }
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_on_own_runtime(scenario: Scenario) -> anyhow::Result<(Summary, bool)> {
    let common = scenario.common().clone();
    let limit = net::raise_nofile(scenario.connections()).context("cannot raise RLIMIT_NOFILE")?;
    if limit < scenario.connections() {
        anyhow::bail!(
            "{} connections need more file descriptors than the limit of {limit}",
            scenario.connections()
        );
    }
    let runtime = if common.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads as usize)
            .enable_all()
            .build()?
    };
    let summary = runtime.block_on(async {
        let mut target = Target::resolve(&common.target).await?;
        let result = measure(&scenario, &target).await;
        target.stop().await;
        result
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok((summary, common.json))
}
