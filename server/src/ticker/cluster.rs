//! One market for the whole cluster.
//!
//! Every node's owner is a *face*: it answers its own clients from the
//! quotes the cluster's *driver* publishes on topic `ticker:quotes`, and
//! says which symbols its clients want on `ticker:want`. The driver is an
//! owner of the ordinary kind (the simulator, or the upstream cache) on the
//! one node that holds a PostgreSQL advisory lock. A node that dies releases
//! the lock with its connection, and another node takes over within
//! [`CAMPAIGN_EVERY`], carrying the market on from the last quotes it saw.
//! So quotes polled from two nodes at the same moment agree, and upstream
//! requests are coalesced cluster-wide: only the driver asks upstream, at
//! most once per symbol per interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::owner::{Command, Owner, Role, Settings, Update, Wants};
use crate::cluster::{Bus, BusEvent, Pg};

/// Key of the advisory lock the driver's node holds.
const DRIVER_LOCK: i64 = 0x7274_7469_636b; // "rttick"
/// How often a node without the lock tries for it, and how often the
/// driver's node checks that its session (and so its lock) is alive.
pub const CAMPAIGN_EVERY: Duration = Duration::from_secs(1);
const QUOTES: &str = "ticker:quotes";
const WANT: &str = "ticker:want";
/// Batches waiting to be published at most, each way.
const PUBLISH_QUEUE: usize = 64;

#[derive(serde::Serialize, serde::Deserialize)]
struct Published {
    updates: Vec<Update>,
}

/// Builds the settings of a driver (from the node's ticker settings).
pub(crate) type DriverSettings = Box<dyn Fn(Role) -> Settings + Send + Sync>;

/// Starts the tasks that connect this node's face (`face`) to the cluster.
/// Returns the queue the face asks for symbols on.
pub(crate) fn start(
    bus: Bus,
    pg: Pg,
    face: mpsc::Sender<Command>,
    driver_settings: DriverSettings,
    driving: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> mpsc::Sender<Wants> {
    let (wants_tx, wants_rx) = mpsc::channel(PUBLISH_QUEUE);
    tokio::spawn(relay_quotes(bus.clone(), face.clone(), shutdown.clone()));
    tokio::spawn(relay_wants(bus.clone(), wants_rx, shutdown.clone()));
    tokio::spawn(campaign(bus, pg, face, driver_settings, driving, shutdown));
    wants_tx
}

/// Published quotes → this node's face.
async fn relay_quotes(bus: Bus, face: mpsc::Sender<Command>, shutdown: CancellationToken) {
    let mut sub = loop {
        match bus.subscribe(QUOTES).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to ticker quotes; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(CAMPAIGN_EVERY) => {}
                }
            }
        }
    };
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = sub.recv() => e,
        };
        match event {
            Some(BusEvent::Message { payload, .. }) => {
                match serde_json::from_slice::<Published>(&payload) {
                    Ok(p) => {
                        if face.send(Command::Update(p.updates)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable ticker update"),
                }
            }
            // Quotes are not a log: the next tick brings every price anew.
            Some(BusEvent::Resync) => {}
            None => return,
        }
    }
}

/// The face's wants → the driver, wherever it runs.
async fn relay_wants(bus: Bus, mut wants: mpsc::Receiver<Wants>, shutdown: CancellationToken) {
    loop {
        let w = tokio::select! {
            _ = shutdown.cancelled() => return,
            w = wants.recv() => w,
        };
        let Some(w) = w else { return };
        let payload = serde_json::to_vec(&w).expect("wants serialize");
        if let Err(e) = bus.publish(WANT, &payload).await {
            tracing::debug!(error = %e, "cannot publish ticker wants");
        }
    }
}

/// Tries for the driver's lock until shutdown; drives the market while it
/// holds it.
async fn campaign(
    bus: Bus,
    pg: Pg,
    face: mpsc::Sender<Command>,
    driver_settings: DriverSettings,
    driving: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    // One session, kept while it waits: trying for the lock costs a
    // statement a second, not a connection.
    let mut session: Option<tokio_postgres::Client> = None;
    loop {
        if session.as_ref().is_none_or(|c| c.is_closed()) {
            session = pg.dedicated().await.ok();
        }
        if let Some(client) = &session {
            let won = pg
                .with_timeout(client.query_one("SELECT pg_try_advisory_lock($1)", &[&DRIVER_LOCK]))
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|row| row.get::<_, bool>(0));
            if won {
                tracing::info!("this node now drives the ticker's market");
                driving.store(true, Ordering::Relaxed);
                drive(&bus, &pg, client, &face, &driver_settings, &shutdown).await;
                driving.store(false, Ordering::Relaxed);
                tracing::info!("this node no longer drives the ticker's market");
                // Closing the session releases the lock, whatever state the
                // session is in.
                session = None;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CAMPAIGN_EVERY) => {}
        }
    }
}

/// Runs a driver until the lock's session fails or shutdown.
async fn drive(
    bus: &Bus,
    pg: &Pg,
    session: &tokio_postgres::Client,
    face: &mpsc::Sender<Command>,
    driver_settings: &DriverSettings,
    shutdown: &CancellationToken,
) {
    let mut wants = match bus.subscribe(WANT).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to ticker wants");
            return;
        }
    };
    let (reply, seed) = oneshot::channel();
    let seed_quotes = match face.send(Command::Snapshot { reply }).await {
        Ok(()) => seed.await.unwrap_or_default(),
        Err(_) => return,
    };
    let (updates_tx, mut updates) = mpsc::channel(PUBLISH_QUEUE);
    let settings = driver_settings(Role::Driver {
        updates: updates_tx,
        seed_quotes,
    });
    let (tx, rx) = mpsc::channel(super::COMMAND_QUEUE);
    let stop = shutdown.child_token();
    tokio::spawn(Owner::new(settings, tx.downgrade()).run(rx, stop.clone()));
    let _stop = stop.drop_guard();
    let mut check = tokio::time::interval(CAMPAIGN_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = check.tick() => {
                let alive = pg.with_timeout(session.simple_query("SELECT 1")).await;
                if !matches!(alive, Ok(Ok(_))) {
                    tracing::warn!("lost the ticker driver's database session");
                    return;
                }
            }
            batch = updates.recv() => {
                let Some(updates) = batch else { return };
                let payload = serde_json::to_vec(&Published { updates }).expect("updates serialize");
                if let Err(e) = bus.publish(QUOTES, &payload).await {
                    tracing::debug!(error = %e, "cannot publish ticker quotes");
                }
            }
            event = wants.recv() => match event {
                Some(BusEvent::Message { payload, .. }) => {
                    match serde_json::from_slice::<Wants>(&payload) {
                        Ok(w) => { let _ = tx.try_send(Command::Want(w)); }
                        Err(e) => tracing::warn!(error = %e, "unreadable ticker wants"),
                    }
                }
                Some(BusEvent::Resync) => {}
                None => return,
            },
        }
    }
}
