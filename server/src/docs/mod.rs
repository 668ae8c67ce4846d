//! The collaborative editor's server: ShareDB protocol 1.2 over a WebSocket
//! at `/`, with the rich-text (Quill Delta) OT type and presence.
//!
//! - [`registry`]: one task maps `(collection, id)` to the owner task of each
//!   open document, loading documents on demand;
//! - [`doc`]: one task owns each open document (snapshot, recent ops,
//!   subscribers) and is the only writer of its op log; it unloads itself when
//!   idle;
//! - [`presence`]: one task owns every presence channel (subscribers and the
//!   latest presence each connection published);
//! - [`conn`]: each WebSocket connection is a reader and a writer joined by
//!   `select!`; the reader serves requests in order;
//! - [`store`]: the op log and periodic snapshots in the embedded store;
//! - [`pg`]: the same tables in PostgreSQL (`--database`), and the op as it
//!   travels between nodes; [`cluster`]: a document's feed on the bus.

/// The document's place in a cluster: its feed on the bus.
pub mod cluster;
pub mod conn;
pub mod doc;
pub mod outbox;
/// The tables in PostgreSQL (`--database`).
pub mod pg;
pub mod presence;
pub mod registry;
pub mod store;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::store::{Store, StoreError};

pub use conn::serve_socket;
pub use presence::Presence;
pub use registry::Registry;

/// The collection and id of the document seeded on first start.
pub const SEED_DOC: (&str, &str) = ("examples", "richtext");
/// Its initial text. It ends in a newline because Quill always keeps one
/// (protocols.md §5.6).
pub const SEED_TEXT: &str = "Hi!\n";

/// Editor settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct DocsConfig {
    /// Largest op accepted from an editor client: its JSON (or a create's
    /// initial data) in bytes.
    #[arg(long = "doc-max-op-bytes", default_value_t = 256 * 1024, value_name = "BYTES")]
    pub max_op_bytes: usize,

    /// Largest document, in UTF-16 code units (what JavaScript counts).
    #[arg(long = "doc-max-len", default_value_t = 4 * 1024 * 1024, value_name = "UNITS")]
    pub max_doc_len: usize,

    /// Largest WebSocket frame from an editor client, in bytes. Larger frames
    /// get an error (up to twice this size) or close the connection.
    #[arg(long = "doc-max-frame-bytes", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_frame_bytes: usize,

    /// Unload a document from memory after this long with no subscriber and
    /// no request.
    #[arg(
        long = "doc-idle-unload-ms",
        default_value_t = 60_000,
        value_name = "MS"
    )]
    pub idle_unload_ms: u64,

    /// Store a snapshot of a document every this many ops, so loading it
    /// replays at most this many ops.
    #[arg(long = "doc-snapshot-every", default_value_t = 100, value_name = "OPS")]
    pub snapshot_every: u64,

    /// Messages queued for one editor connection at most; a client that falls
    /// this far behind is disconnected (it reconnects and catches up).
    #[arg(
        long = "doc-send-queue",
        default_value_t = 1024,
        value_name = "MESSAGES"
    )]
    pub send_queue: usize,
}

impl DocsConfig {
    /// The idle-unload delay.
    pub fn idle_unload(&self) -> Duration {
        Duration::from_millis(self.idle_unload_ms)
    }
}

/// Handles to the editor's owner tasks.
#[derive(Clone)]
pub struct Docs {
    pub registry: Registry,
    pub presence: Presence,
}

impl Docs {
    /// Seeds the example document if the store has never seen it, and starts
    /// the registry and presence tasks.
    pub async fn start(
        config: &DocsConfig,
        store: Store,
        cluster: &Cluster,
        shutdown: CancellationToken,
    ) -> Result<Docs, StoreError> {
        match &cluster.pg {
            Some(pg) => pg::seed(pg, SEED_DOC.0, SEED_DOC.1, SEED_TEXT)
                .await
                .map_err(|e| StoreError::Commit(e.to_string()))?,
            None => store::seed(&store, SEED_DOC.0, SEED_DOC.1, SEED_TEXT).await?,
        }
        let registry = Registry::start(config.clone(), store, cluster.clone(), shutdown.clone());
        let presence = Presence::start(cluster, shutdown).await;
        Ok(Docs { registry, presence })
    }
}
