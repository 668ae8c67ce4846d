//! Server configuration: every flag of `rt-server`, with its default.
//!
//! Each app keeps its own settings in its module (`ticker::TickerConfig`, …)
//! and they are flattened in here, so `--help` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::docs::DocsConfig;
use crate::draw::DrawConfig;
use crate::qa::QaConfig;
use crate::stats_stream::StatsStreamConfig;
use crate::ticker::TickerConfig;

const EXAMPLES: &str = "\
Examples:
  rt-server                                  serve on 127.0.0.1:8080, data in the user's data dir
  rt-server --bind 0.0.0.0:9000              listen on every interface, port 9000
  rt-server --data :memory: --seed 42        throwaway store, reproducible simulated market
  rt-server --poll-ms 2000                   ask ticker clients to poll every 2 s
  rt-server --static-dir static              serve the browser pages from disk (page development)
  rt-server --quotes-url 'http://quotes.internal/v1/{symbol}'
                                             take quotes from an upstream HTTP provider
  rt-server --config rt.toml                 settings from a file (keys = flag names)
  rt-server --print-config > rt.toml         write the effective settings as TOML
  rt-server --log-format json                one JSON object per log line
  RUST_LOG=rt_server=debug rt-server         verbose logs";

/// `rt-server` settings.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "rt-server",
    version,
    about = "rt: one real-time server for the stock ticker, drawing board, Q&A board and collaborative editor",
    after_help = EXAMPLES
)]
pub struct Config {
    /// Read settings from this TOML file: keys are the flag names without
    /// the dashes (`draw-rate = 30`). Flags and environment variables win
    /// over the file.
    #[arg(long, value_name = "FILE", env = "RT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective settings as TOML (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Log line format on stderr: `text` for people, `json` (one object per
    /// line) for log shippers.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text,
          env = "RT_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "RT_BIND")]
    pub bind: SocketAddr,

    /// SQLite data file; `:memory:` for a throwaway run. Default: rt.db in the
    /// user's data directory.
    #[arg(long, value_name = "PATH", env = "RT_DATA")]
    pub data: Option<PathBuf>,

    /// fsync every commit, so acknowledged writes survive power loss too
    /// (they always survive a crash of the process).
    #[arg(long)]
    pub fsync: bool,

    /// Serve the browser pages from this directory instead of the copies
    /// built into the binary.
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// On shutdown, how long connections that are still open (a request
    /// whose headers never finish, a peer that stops reading) may hold up the
    /// exit. Streams and sockets end at once; this bounds the rest.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub shutdown_grace_ms: u64,

    /// How long a client may take to send a request's head (and, between
    /// keep-alive requests, to start the next one) before its connection is
    /// closed.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub header_timeout_ms: u64,

    /// How long an event stream's socket may stay full (a client that stopped
    /// reading) before the stream is dropped; it reconnects and catches up.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub stream_stall_ms: u64,

    #[command(flatten)]
    pub cluster: crate::cluster::ClusterConfig,

    #[command(flatten)]
    pub ticker: TickerConfig,

    #[command(flatten)]
    pub qa: QaConfig,

    #[command(flatten)]
    pub stats_stream: StatsStreamConfig,

    #[command(flatten)]
    pub docs: DocsConfig,

    #[command(flatten)]
    pub draw: DrawConfig,

    #[command(flatten)]
    pub guard: crate::guard::GuardConfig,

    #[command(flatten)]
    pub serve: crate::serve::ServeConfig,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["rt-server"])
    }
}

impl Config {
    /// Defaults for a test server: ephemeral port on loopback, in-memory store.
    pub fn for_tests() -> Self {
        let mut config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: Some(PathBuf::from(":memory:")),
            ..Config::default()
        };
        // A developer's RT_DATABASE must not send every test to PostgreSQL;
        // cluster tests set these themselves.
        config.cluster.database = None;
        config.cluster.redis = None;
        config
    }

    /// [`Config::for_tests`] on a shared PostgreSQL database and Redis, as
    /// one node of a cluster named `node_id`.
    pub fn for_cluster_tests(database: &str, redis: Option<&str>, node_id: &str) -> Self {
        let mut config = Config::for_tests();
        config.cluster.database = Some(database.to_string());
        config.cluster.redis = redis.map(str::to_string);
        config.cluster.node_id = Some(node_id.to_string());
        config
    }

    /// The data file to open.
    pub fn data_path(&self) -> PathBuf {
        match &self.data {
            Some(p) => p.clone(),
            None => default_data_path(),
        }
    }
}

/// `rt.db` in the platform's data directory (XDG on Linux), or the current
/// directory when none is known.
pub fn default_data_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "rt")
        .map(|d| d.data_dir().join("rt.db"))
        .unwrap_or_else(|| PathBuf::from("rt.db"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.ticker.poll_ms, 5000);
        assert!(c.data.is_none());
        assert!(c.data_path().ends_with("rt.db"));
        assert_eq!(c.shutdown_grace_ms, 3000);
        assert_eq!(c.header_timeout_ms, 30_000);
        assert_eq!(c.stream_stall_ms, 30_000);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
