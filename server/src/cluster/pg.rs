//! The PostgreSQL connection pool and its schema check.
//!
//! Every node applies the migrations it knows at startup, under an advisory
//! lock so that nodes starting together do not race. A database holding a
//! migration this build does not know (a newer rt) or tables that are not
//! rt's is refused with a one-line error rather than written to.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::{ClusterConfig, redact_url, schema};

/// Key of the advisory lock held while migrations run.
const MIGRATION_LOCK: i64 = 0x7274_6d69_6772; // "rtmigr"

/// What can go wrong with PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("--database {url}: not a PostgreSQL URL ({detail})")]
    BadUrl { url: String, detail: String },
    #[error("cannot reach PostgreSQL at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "the database {url} has migration {migration:?}, which this build does not know (written by a newer rt); upgrade rt or use another database"
    )]
    TooNew { url: String, migration: String },
    #[error(
        "the database {url} holds tables that are not rt's (such as {table:?}); give rt a database of its own"
    )]
    Foreign { url: String, table: String },
    #[error("migration {name:?} failed: {detail}")]
    Migration { name: &'static str, detail: String },
    #[error("database error: {0}")]
    Sql(#[from] tokio_postgres::Error),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

/// A cloneable handle to the pool.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    config: tokio_postgres::Config,
    cluster_id: Arc<str>,
    timeout: Duration,
    shown: Arc<str>,
}

impl Pg {
    /// Connects, checks the schema and applies missing migrations.
    pub async fn connect(
        url: &str,
        settings: &ClusterConfig,
        node_id: Arc<str>,
    ) -> Result<Pg, PgError> {
        let shown = redact_url(url);
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| PgError::BadUrl {
            url: shown.clone(),
            detail: format!("{e}"),
        })?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name(format!("rt-server {node_id}"));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size as usize)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::BadUrl {
                url: shown.clone(),
                detail: e.to_string(),
            })?;
        let mut pg = Pg {
            pool,
            config,
            cluster_id: "".into(),
            timeout,
            shown: shown.clone().into(),
        };
        let mut client = pg.get().await.map_err(|e| PgError::Unreachable {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        migrate(&mut client, &shown).await?;
        let id: String = client
            .query_one("SELECT id FROM rt_cluster", &[])
            .await?
            .get(0);
        pg.cluster_id = id.into();
        tracing::info!(database = %shown, cluster = %pg.cluster_id, "PostgreSQL ready");
        Ok(pg)
    }

    /// A pooled connection, or `Unavailable` within the timeout.
    pub async fn get(&self) -> Result<Object, PgError> {
        self.pool
            .get()
            .await
            .map_err(|e| PgError::Unavailable(e.to_string()))
    }

    /// A connection of its own, outside the pool: for a session that must
    /// outlive any one statement (an advisory lock held for leadership).
    /// It closes when the returned client drops.
    pub async fn dedicated(&self) -> Result<tokio_postgres::Client, PgError> {
        let (client, conn) = self
            .with_timeout(self.config.connect(NoTls))
            .await?
            .map_err(|e| PgError::Unavailable(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "dedicated PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// Runs `fut` within the statement timeout.
    pub async fn with_timeout<T>(&self, fut: impl Future<Output = T>) -> Result<T, PgError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| PgError::Timeout(self.timeout))
    }

    /// The id naming this cluster's Redis channels.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Connections open and idle in the pool.
    pub fn pool_status(&self) -> (usize, usize) {
        let s = self.pool.status();
        (s.size, s.available)
    }
}

async fn migrate(client: &mut Object, url: &str) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let has_record: bool = tx
        .query_one("SELECT to_regclass('rt_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !has_record {
        let foreign = tx
            .query_opt(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY table_name LIMIT 1",
                &[],
            )
            .await?;
        if let Some(row) = foreign {
            return Err(PgError::Foreign {
                url: url.to_string(),
                table: row.get(0),
            });
        }
        tx.batch_execute(
            "CREATE TABLE rt_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
    }
    let applied: Vec<String> = tx
        .query("SELECT name FROM rt_migrations ORDER BY name", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known: Vec<&str> = schema::all().map(|m| m.name).collect();
    if let Some(unknown) = applied.iter().find(|a| !known.contains(&a.as_str())) {
        return Err(PgError::TooNew {
            url: url.to_string(),
            migration: unknown.clone(),
        });
    }
    for m in schema::all().filter(|m| !applied.iter().any(|a| a == m.name)) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| PgError::Migration {
                name: m.name,
                detail: e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string()),
            })?;
        tx.execute(
            "INSERT INTO rt_migrations (name, applied_at)
             VALUES ($1, (extract(epoch from now()) * 1000)::bigint)",
            &[&m.name],
        )
        .await?;
        tracing::info!(migration = m.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}
