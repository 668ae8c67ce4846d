//! Several rt-server nodes as one service.
//!
//! Without `--database` every app keeps its state in the embedded SQLite
//! store, as a single node always has. With `--database postgres://…` the
//! durable state lives in PostgreSQL ([`pg`]); with `--redis redis://…` as
//! well, nodes tell each other about every change over Redis pub/sub
//! ([`bus`]).
//!
//! PostgreSQL is the source of truth and of order: a change is acknowledged
//! only once it is committed there, and every app's log (Q&A events, a
//! document's ops, the drawing's changes) has an order that PostgreSQL
//! decides. Redis only carries those changes to the other nodes quickly. A
//! node that misses a message (Redis restarted, a subscriber lagged) learns
//! of it from a [`bus::BusEvent::Resync`] or from a gap in the order, and
//! reads what it missed from PostgreSQL.
//!
//! Nodes sharing one database form one cluster: their Redis channels are
//! named after the cluster id stored in that database, so two clusters (or
//! two test runs) can share one Redis without hearing each other.

pub mod bus;
pub mod pg;
pub mod schema;
#[doc(hidden)]
pub mod testing;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use bus::{Bus, BusError, BusEvent, Subscription};
pub use pg::{Pg, PgError};

/// Scale-out settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterConfig {
    /// Keep all state in PostgreSQL instead of the embedded SQLite file:
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Several nodes need this
    /// and `--redis`.
    #[arg(
        long = "database",
        value_name = "URL",
        env = "RT_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,

    /// Redis for fan-out between nodes: `redis://HOST[:PORT]`. Needs
    /// `--database`.
    #[arg(
        long = "redis",
        value_name = "URL",
        env = "RT_REDIS",
        hide_env_values = true
    )]
    pub redis: Option<String>,

    /// This node's name in logs, `/stats` and `/metrics` (letters, digits,
    /// `.`, `_`, `-`). Default: the host name and the process id.
    #[arg(long = "node-id", value_name = "NAME", env = "RT_NODE_ID", value_parser = node_id)]
    pub node_id: Option<String>,

    /// PostgreSQL connections this node opens at most.
    #[arg(long = "database-pool", default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// How long one PostgreSQL statement, or the wait for a pooled
    /// connection, may take before the write is refused (503, a ShareDB
    /// error, a drawing `error`).
    #[arg(long = "database-timeout-ms", default_value_t = 5000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
}

fn node_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err("a node id is 1 to 64 letters, digits, '.', '_' or '-'".into())
    }
}

/// The default node id: `HOST-PID`, unique among nodes on one machine.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "rt".into());
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(48)
        .collect();
    let host = if host.is_empty() { "rt".into() } else { host };
    format!("{host}-{}", std::process::id())
}

/// What went wrong setting up the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--redis needs --database: nodes share their state through PostgreSQL")]
    RedisWithoutDatabase,
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// This node's place in the cluster: its id, and the shared database and bus
/// when configured. Cloning is cheap.
#[derive(Clone)]
pub struct Cluster {
    pub node_id: Arc<str>,
    /// `None`: the embedded SQLite store holds everything.
    pub pg: Option<Pg>,
    /// `None`: a single node (no other node to tell).
    pub bus: Option<Bus>,
}

impl Cluster {
    /// A node on its own with the embedded store.
    pub fn single() -> Cluster {
        Cluster {
            node_id: default_node_id().into(),
            pg: None,
            bus: None,
        }
    }

    /// Connects to PostgreSQL (applying migrations) and Redis as configured.
    pub async fn start(
        config: &ClusterConfig,
        shutdown: CancellationToken,
    ) -> Result<Cluster, ClusterError> {
        let node_id: Arc<str> = config
            .node_id
            .clone()
            .unwrap_or_else(default_node_id)
            .into();
        let pg = match &config.database {
            Some(url) => Some(Pg::connect(url, config, node_id.clone()).await?),
            None if config.redis.is_some() => return Err(ClusterError::RedisWithoutDatabase),
            None => None,
        };
        let bus = match (&config.redis, &pg) {
            (Some(url), Some(pg)) => {
                Some(Bus::connect(url, pg.cluster_id(), node_id.clone(), shutdown).await?)
            }
            _ => None,
        };
        Ok(Cluster { node_id, pg, bus })
    }

    /// The backend's name for logs and `/stats`.
    pub fn backend(&self) -> &'static str {
        match (&self.pg, &self.bus) {
            (None, _) => "sqlite",
            (Some(_), None) => "postgres",
            (Some(_), Some(_)) => "postgres+redis",
        }
    }
}

/// `url` with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') {
                ":<redacted>"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(node_id("node-a.1_x").is_ok());
        assert!(node_id("").is_err());
        assert!(node_id("a b").is_err());
        assert!(node_id("a\nb").is_err());
        assert!(node_id(&"x".repeat(65)).is_err());
        assert!(node_id(&default_node_id()).is_ok());
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://rt:s3cret@db:5432/rt"),
            "postgres://rt:<redacted>@db:5432/rt"
        );
        assert_eq!(redact_url("postgres://rt@db/rt"), "postgres://rt@db/rt");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
