//! `rt-server`: read flags, environment and config file, set up logging,
//! serve until Ctrl-C or SIGTERM.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use rt_server::config::LogFormat;
use rt_server::config_file::{self, ConfigError};
use rt_server::{AppState, Config};

/// Exit status when the server cannot start or stops on an error.
const EXIT_FAILURE: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable message (with its causes), never a backtrace:
            // these are operator errors such as a bad data file.
            eprintln!("rt-server: error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let loaded = match config_file::load(std::env::args_os()) {
        Ok(l) => l,
        // --help, --version and flag errors: clap's own output and status.
        Err(ConfigError::Flags(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    let mut config = loaded.config;
    config.guard.load()?;
    if config.print_config {
        print!("{}", loaded.effective);
        return Ok(());
    }
    init_logs(&config);
    if let Some(dir) = &config.static_dir
        && !dir.is_dir()
    {
        anyhow::bail!("--static-dir {} is not a directory", dir.display());
    }
    let tls = rt_server::serve::tls::load(&config.serve).context("cannot set up TLS")?;
    let scheme = config.serve.scheme();
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    let data = config.data_path();
    let state = AppState::new(config)
        .await
        .context("cannot open the data store")?;
    match &state.cluster.pg {
        Some(pg) => tracing::info!(
            node = %state.cluster.node_id,
            database = %pg.shown_url(),
            backend = state.cluster.backend(),
            "store ready"
        ),
        None => tracing::info!(data = %data.display(), "store ready"),
    }
    // Scripts and tests read the URL from the first line of stdout.
    println!("rt-server serving {scheme}://{addr}/");
    rt_server::run_with(listener, state, tls, shutdown_signal()).await?;
    tracing::info!("bye");
    Ok(())
}

fn init_logs(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Nodes of a cluster log their id on every line, so merged logs tell
    // them apart; a single node's lines stay as they were.
    let node = (config.cluster.database.is_some() || config.cluster.node_id.is_some()).then(|| {
        config
            .cluster
            .node_id
            .clone()
            .unwrap_or_else(rt_server::cluster::default_node_id)
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(NodeTime(node.clone()));
    match config.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One JSON object per line, fields at the top level, for shippers
        // that index them.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .event_format(WithNode {
                node,
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            })
            .init(),
    }
}

/// The time of a text log line, followed by the node id in a cluster.
struct NodeTime(Option<String>);

impl tracing_subscriber::fmt::time::FormatTime for NodeTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        tracing_subscriber::fmt::time::SystemTime.format_time(w)?;
        match &self.0 {
            Some(node) => write!(w, " {node}"),
            None => Ok(()),
        }
    }
}

/// A JSON log line with a `node` field in a cluster.
struct WithNode<F> {
    node: Option<String>,
    inner: F,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithNode<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(node) = &self.node else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        match line.strip_prefix('{') {
            // Node ids are letters, digits, '.', '_' and '-': no escaping.
            Some(rest) => write!(writer, "{{\"node\":\"{node}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
