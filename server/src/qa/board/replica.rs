//! The board shared by several nodes through PostgreSQL (and Redis).
//!
//! The owner stays the only writer of this node's board. An action takes
//! the board's lock in PostgreSQL ([`Owner::lock`]), first applies the
//! changes other nodes committed since this node's position, then runs as
//! on a single node; its writes commit as one change ([`Owner::save_change`])
//! and are published on the bus. Other nodes apply changes strictly in id
//! order ([`Owner::apply_change`]): a message beyond the next expected id, a
//! `Resync`, or the periodic check ([`POLL`]) makes the node read what it
//! missed from PostgreSQL ([`Owner::catch_up`]); when the log no longer
//! holds it, the node reloads the board and starts its streams over with
//! `reset` and a snapshot ([`Owner::reload`]).

use std::collections::HashSet;
use std::time::Duration;

use rt_protocol::qa::{self, AnswerMeta, Reset};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Owner, Question, Refusal, To, Tx};
use crate::cluster::{Bus, BusError, BusEvent, Pg, PgError, Subscription};
use crate::qa::db::{Audience, Loaded, Write};
use crate::qa::pg::{self, Change, Missed};

/// How often a node checks PostgreSQL for changes it was not told about.
pub(super) const POLL: Duration = Duration::from_secs(1);
/// The bus topic of the board's changes.
const TOPIC: &str = "qa";
/// Changes waiting to be published at most; beyond it they are not sent
/// (the other nodes find them by polling).
const PUBLISH_QUEUE: usize = 1024;
/// Catch-up batches read in one go at most, so the owner keeps serving.
const CATCH_UP_ROUNDS: usize = 100;

/// This node's link to the shared board.
pub(super) struct Replica {
    pub pg: Pg,
    subscription: Option<Subscription>,
    publish: Option<mpsc::Sender<Vec<u8>>>,
    /// The open transaction holding the board's lock, during an action.
    locked: Option<pg::Locked>,
    /// The id of the last change applied to this node's board.
    pub applied: u64,
}

impl Replica {
    /// Subscribes to the changes (before the board is loaded, so none slips
    /// between the load and the live messages) and starts the publisher.
    pub async fn start(
        pg: Pg,
        bus: Option<Bus>,
        shutdown: CancellationToken,
    ) -> Result<Replica, BusError> {
        let subscription = match &bus {
            Some(bus) => Some(bus.subscribe(TOPIC).await?),
            None => None,
        };
        // A task of its own, so a slow or reconnecting Redis never holds
        // the owner (or the board's lock) up.
        let publish = bus.map(|bus| {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PUBLISH_QUEUE);
            tokio::spawn(async move {
                loop {
                    let payload = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        p = rx.recv() => match p {
                            Some(p) => p,
                            None => break,
                        },
                    };
                    if let Err(e) = bus.publish(TOPIC, &payload).await {
                        tracing::warn!(error = %e, "Q&A change not published; other nodes will poll for it");
                    }
                }
            });
            tx
        });
        Ok(Replica {
            pg,
            subscription,
            publish,
            locked: None,
            applied: 0,
        })
    }

    pub fn take_subscription(&mut self) -> Option<Subscription> {
        self.subscription.take()
    }
}

/// The next bus event; never resolves without a bus.
pub(super) async fn next_message(sub: &mut Option<Subscription>) -> Option<BusEvent> {
    match sub {
        Some(s) => {
            let ev = s.recv().await;
            if ev.is_none() {
                *sub = None;
            }
            ev
        }
        None => std::future::pending().await,
    }
}

impl Owner {
    fn replica(&mut self) -> &mut Replica {
        self.replica.as_mut().expect("only called with PostgreSQL")
    }

    /// Takes the board's lock and applies the changes of other nodes, so
    /// the action is checked against the current board.
    pub(super) async fn lock(&mut self) -> Result<(), Refusal> {
        let pg = self.replica().pg.clone();
        let locked = pg::Locked::begin(&pg).await.map_err(Refusal::pg)?;
        match locked.changes(self.replica().applied).await {
            Ok(Missed::Changes(changes)) => {
                for c in changes {
                    self.apply_change(c);
                }
            }
            // Nobody commits while this node holds the lock: the reload
            // reads the current board.
            Ok(Missed::Gone) => self.reload().await.map_err(Refusal::pg)?,
            Err(e) => return Err(Refusal::pg(e)),
        }
        self.replica().locked = Some(locked);
        Ok(())
    }

    /// Ends an action: releases the lock if it is still held (nothing was
    /// saved) and forgets the ids of a change that was not saved.
    pub(super) async fn unlock(&mut self) {
        if let Some(locked) = self.replica().locked.take() {
            locked.rollback().await;
        }
        self.next_id = self.replica().applied + 1;
    }

    /// Commits an action's writes as one change, then publishes it.
    pub(super) async fn save_change(&mut self, mut tx: Tx) -> Result<(), Refusal> {
        let prune = self.plan_prune(&mut tx);
        let last = self.next_id - 1;
        let r = self.replica();
        let Some(locked) = r.locked.take() else {
            return Err(Refusal::pg(PgError::Unavailable(
                "the board's lock was not held".into(),
            )));
        };
        let change = Change {
            first: r.applied + 1,
            last,
            writes: std::mem::take(&mut tx.writes),
        };
        locked.commit(&change).await.map_err(Refusal::pg)?;
        r.applied = last;
        if let Some(p) = &r.publish
            && p.try_send(change.encode()).is_err()
        {
            tracing::debug!("Q&A publish queue full; other nodes will poll");
        }
        self.settle_log(tx.logged, prune);
        Ok(())
    }

    /// Applies another node's change (the next one in id order) to the
    /// board and sends its logged events to this node's streams.
    fn apply_change(&mut self, change: Change) {
        let mut frames = Vec::new();
        let mut logged = Vec::new();
        let mut prune: Option<u64> = None;
        for w in change.writes {
            match w {
                Write::Question { text, author, now } => {
                    if !self.index.contains_key(&text) {
                        self.index.insert(text.clone(), self.questions.len());
                        self.questions.push(Question {
                            text,
                            author,
                            time: now,
                            votes: HashSet::new(),
                            answers: Vec::new(),
                        });
                    }
                }
                Write::Answer {
                    question,
                    text,
                    author,
                    now,
                } => {
                    if let Some(&i) = self.index.get(&question) {
                        self.questions[i]
                            .answers
                            .push((text, AnswerMeta { author, time: now }));
                    }
                }
                Write::Vote { question, user, on } => {
                    if let Some(&i) = self.index.get(&question) {
                        let votes = &mut self.questions[i].votes;
                        if on {
                            votes.insert(user);
                        } else {
                            votes.remove(&user);
                        }
                    }
                }
                Write::Select { user, question } => {
                    if let Some(u) = self.users.get_mut(&user) {
                        u.selected = Some(question);
                    }
                }
                Write::Log {
                    id,
                    audience,
                    frame,
                } => {
                    logged.push((id, frame.len() as u64));
                    frames.push((audience, frame));
                }
                Write::Prune(upto) => prune = Some(prune.map_or(upto, |p| p.max(upto))),
                Write::InsertUser { .. } | Write::TouchUser { .. } | Write::Reserve(_) => {}
            }
        }
        self.settle_log(logged, prune);
        self.replica().applied = change.last;
        self.next_id = change.last + 1;
        for (audience, frame) in frames {
            match &audience {
                Audience::Everyone => self.fan_out(&frame, To::All),
                Audience::User(u) => self.fan_out(&frame, To::User(u)),
                Audience::FollowersOf(q) => self.fan_out(&frame, To::Followers(q)),
            }
        }
    }

    /// Reads and applies the changes this node has not seen (without the
    /// lock: committed changes form a gapless prefix).
    pub(super) async fn catch_up(&mut self) {
        let pg = self.replica().pg.clone();
        for _ in 0..CATCH_UP_ROUNDS {
            match pg::changes_since(&pg, self.replica().applied).await {
                Ok(Missed::Changes(changes)) if changes.is_empty() => return,
                Ok(Missed::Changes(changes)) => {
                    for c in changes {
                        self.apply_change(c);
                    }
                }
                Ok(Missed::Gone) => {
                    if let Err(e) = self.reload().await {
                        tracing::warn!(error = %e, "Q&A reload failed; retrying");
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Q&A catch-up failed; retrying");
                    return;
                }
            }
        }
    }

    /// The periodic check: one cheap read of the last committed id.
    pub(super) async fn poll(&mut self) {
        let pg = self.replica().pg.clone();
        match pg::last_id(&pg).await {
            Ok(last) if last > self.replica().applied => self.catch_up().await,
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "Q&A poll failed"),
        }
    }

    /// A message from the bus.
    pub(super) async fn on_bus(&mut self, ev: Option<BusEvent>) {
        match ev {
            None
            | Some(BusEvent::Message {
                from_self: true, ..
            }) => {}
            Some(BusEvent::Resync) => self.catch_up().await,
            Some(BusEvent::Message { payload, .. }) => {
                let applied = self.replica().applied;
                match Change::decode(&payload) {
                    Some(c) if c.last <= applied => {}
                    Some(c) if c.first == applied + 1 => self.apply_change(c),
                    // A gap (a lost message) or an unreadable one.
                    _ => self.catch_up().await,
                }
            }
        }
    }

    /// Reloads the board from PostgreSQL when this node missed changes the
    /// log no longer holds, and starts every stream over with `reset` and a
    /// snapshot (their events up to now may be missing).
    pub(super) async fn reload(&mut self) -> Result<(), PgError> {
        let pg = self.replica().pg.clone();
        let loaded: Loaded = pg::load(&pg).await?;
        let live: Vec<String> = self.users.keys().cloned().collect();
        let selections = pg::selections(&pg, &live).await?;
        tracing::warn!(
            from = self.replica().applied,
            to = loaded.reserved,
            "Q&A node missed changes the log no longer holds; reloading the board"
        );
        self.replica().applied = loaded.reserved;
        self.next_id = loaded.reserved + 1;
        self.floor = loaded.floor;
        self.log_size = loaded.log.iter().map(|(_, b)| b).sum();
        self.log = loaded.log.iter().copied().collect();
        let (questions, index) = super::board_of(loaded);
        self.questions = questions;
        self.index = index;
        for (id, selected) in selections {
            if let Some(u) = self.users.get_mut(&id) {
                u.selected = selected;
            }
        }
        let mut tx = Tx::default();
        let reset = serde_json::to_string(&Reset {
            reason: "this server missed changes the log no longer holds; starting over".into(),
        })
        .expect("serializes");
        let (_, reset) = self.event(&mut tx, Some(qa::RESET_EVENT), &reset);
        let questions = self.questions_message();
        let (_, questions) = self.event(&mut tx, None, &questions);
        self.fan_out(&reset, To::All);
        self.fan_out(&questions, To::All);
        let followed: HashSet<String> = self
            .users
            .values()
            .filter_map(|u| u.selected.clone())
            .collect();
        for q in followed {
            if let Some(&i) = self.index.get(&q) {
                let answers = self.questions[i].answers_message().to_json();
                let (_, frame) = self.event(&mut tx, None, &answers);
                self.fan_out(&frame, To::Followers(&q));
            }
        }
        Ok(())
    }
}
