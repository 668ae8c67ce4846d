//! What every handler can reach: configuration, the store, the owners of
//! each app's shared state, counters, and the shutdown signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Cluster, ClusterError};
use crate::config::Config;
use crate::docs::Docs;
use crate::draw::Draw;
use crate::qa::Board;
use crate::stats::Stats;
use crate::store::{Durability, Store, StoreError};
use crate::ticker::Ticker;
use crate::web::Pages;

/// Cloneable handles; cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The embedded store. With `--database` the apps keep their state in
    /// PostgreSQL (`cluster.pg`) instead.
    pub store: Store,
    /// This node, and the shared database and bus when configured.
    pub cluster: Cluster,
    pub stats: Arc<Stats>,
    pub pages: Pages,
    /// Cancelled when the server shuts down: long-lived streams end on it.
    pub shutdown: CancellationToken,
    /// Connection tasks that must finish (close frames flushed) before exit.
    pub tasks: TaskTracker,
    pub ticker: Ticker,
    /// In a cluster: the other nodes' figures for `/stats`.
    pub peers: Option<crate::stats_stream::Peers>,
    pub qa: Board,
    pub docs: Docs,
    pub draw: Draw,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Draw(#[from] crate::draw::DrawStartError),
}

impl AppState {
    /// Opens the store (or connects to the cluster's database and bus) and
    /// starts each app's owner task.
    pub async fn new(config: Config) -> Result<AppState, StartError> {
        let durability = if config.fsync {
            Durability::PowerLoss
        } else {
            Durability::Process
        };
        // Before any owner starts, so nothing it records is lost.
        crate::metrics::install();
        let shutdown = CancellationToken::new();
        let cluster = Cluster::start(&config.cluster, shutdown.clone()).await?;
        // With PostgreSQL nothing is kept in the SQLite file, so none is
        // created.
        let store = if cluster.pg.is_some() {
            Store::memory()
        } else {
            Store::open(&config.data_path(), durability)?
        };
        let pages = match &config.static_dir {
            Some(dir) => Pages::Dir(dir.clone()),
            None => Pages::Embedded,
        };
        let ticker = Ticker::start(&config.ticker, &cluster, shutdown.clone());
        let stats = Arc::new(Stats::default());
        let peers = cluster.bus.as_ref().map(|bus| {
            crate::stats_stream::Peers::start(
                bus.clone(),
                stats.clone(),
                ticker.clone(),
                std::time::Duration::from_millis(config.stats_stream.interval_ms),
                shutdown.clone(),
            )
        });
        let qa = Board::start(
            &config.qa,
            store.clone(),
            cluster.pg.clone(),
            cluster.bus.clone(),
            stats.clone(),
            shutdown.clone(),
        )
        .await?;
        let docs = Docs::start(&config.docs, store.clone(), &cluster, shutdown.clone()).await?;
        let tasks = TaskTracker::new();
        let draw = Draw::start(
            &config.draw,
            store.clone(),
            &cluster,
            stats.clone(),
            shutdown.clone(),
            &tasks,
        )
        .await?;
        Ok(AppState {
            config: Arc::new(config),
            store,
            cluster,
            stats,
            pages,
            shutdown,
            tasks,
            ticker,
            peers,
            qa,
            docs,
            draw,
        })
    }
}
