//! The task that owns the Q&A board.
//!
//! Handlers hold a [`Board`] and send it commands over a bounded queue. The
//! owner handles one command at a time: it checks the action, commits the
//! change and the events it causes in one store transaction, and only then
//! updates memory, fans the events out and answers the caller. Joining builds
//! the snapshot (or the replay) and subscribes in the same step, so nothing
//! slips between them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use rand::Rng;
use rt_protocol::qa::{
    self, AnswerMeta, Message, MetaUpdate, OrderedMap, QuestionMeta, Reset, SegmentError, VoteReply,
};
use rt_protocol::sse;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::db::{self, Audience, UserRow, Write};
use super::pg;
use super::{QaConfig, now_ms};
use crate::cluster::{Bus, ClusterError, Pg, PgError};
use crate::serve::{Event, SinkError, StreamSink};
use crate::state::StartError;
use crate::stats::Stats;
use crate::store::{Store, StoreError};

mod replica;
use replica::Replica;

/// Commands waiting for the owner at most; senders wait beyond that.
const COMMAND_QUEUE: usize = 1024;
/// Event ids reserved in the store at a time, so that ids not written to the
/// log (login, ping, snapshots) are never reused after a restart.
const ID_BLOCK: u64 = 1000;

/// The four actions of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ask,
    Select,
    Answer,
    Vote,
}

/// A refused action or login: the HTTP status and a message for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn store(e: StoreError) -> Refusal {
        tracing::error!(error = %e, "Q&A store write failed");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the board could not save this; try again",
        )
    }

    fn pg(e: PgError) -> Refusal {
        tracing::error!(error = %e, "Q&A database unavailable");
        crate::metrics::refused("qa_database");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the board's database is unreachable, so nothing was changed; try again shortly",
        )
    }

    fn gone() -> Refusal {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
    }
}

/// What an accepted action answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Plain `200` with an empty body (classic).
    Done,
    /// The question was already on the board: nothing changed.
    AlreadyAsked,
    Vote(VoteReply),
}

/// A new subscriber's stream: the bytes to send first, then the live queue.
pub struct Joined {
    pub user: String,
    pub initial: Vec<Bytes>,
    /// Live events; closed when the owner drops this subscriber (cut, or
    /// shutdown).
    pub events: Option<mpsc::Receiver<Bytes>>,
}

/// A user looked up or created by a login handler, concurrently with the
/// others, so that a storm of logins does not queue its PostgreSQL round
/// trips one after the other in the owner.
enum Resolved {
    /// A new user, already saved: its id and handle.
    Created(String, String),
    /// The presented user as stored when PostgreSQL's last change was
    /// this id.
    Found(UserRow, u64),
}

enum Command {
    Join {
        presented: Option<String>,
        /// What the handler already found out about the user (with
        /// PostgreSQL).
        resolved: Option<Resolved>,
        last_event_id: Option<String>,
        sink: Option<Arc<StreamSink>>,
        reply: oneshot::Sender<Result<Joined, Refusal>>,
    },
    Act {
        user: String,
        action: Action,
        text: Result<String, SegmentError>,
        reply: oneshot::Sender<Result<Accepted, Refusal>>,
    },
}

/// Handle to the board's owner task; cloning is cheap.
#[derive(Clone)]
pub struct Board {
    tx: mpsc::Sender<Command>,
    /// With PostgreSQL, new users are saved by the handlers, concurrently,
    /// rather than one after the other by the owner: every anonymous
    /// login creates one, and they need no order.
    pg: Option<Pg>,
}

impl Board {
    /// Loads the board from the store (or from PostgreSQL when `pg` is
    /// given, following the other nodes over `bus`) and starts its owner,
    /// which runs until `shutdown`.
    pub async fn start(
        config: &QaConfig,
        store: Store,
        pg: Option<Pg>,
        bus: Option<Bus>,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) -> Result<Board, StartError> {
        let (max_events, max_bytes) = (config.log_events as usize, config.log_bytes);
        let forget = forget_policy(config);
        let (loaded, mut replica) = match pg {
            Some(pg) => {
                let replica = Replica::start(pg, bus, shutdown.clone())
                    .await
                    .map_err(ClusterError::from)?;
                let loaded = pg::load(&replica.pg).await.map_err(ClusterError::from)?;
                (loaded, Some(replica))
            }
            None => {
                let loaded = store
                    .call(move |c| db::load(c, max_events, max_bytes, forget))
                    .await?;
                (loaded, None)
            }
        };
        let changes = replica.as_mut().and_then(|r| r.take_subscription());
        let users_pg = replica.as_ref().map(|r| r.pg.clone());
        if let Some(r) = replica.as_mut() {
            r.applied = loaded.reserved;
        }
        let mut owner = Owner::new(config, store, stats, loaded);
        owner.replica = replica;
        let (tx, mut rx) = mpsc::channel(COMMAND_QUEUE);
        let ping_every = Duration::from_millis(config.ping_ms);
        let sweep_every = Duration::from_millis(config.user_sweep_ms);
        let config = config.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut ping = tokio::time::interval_at(start + ping_every, ping_every);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sweep = tokio::time::interval_at(start + sweep_every, sweep_every);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // With PostgreSQL: a cheap look for changes whose message was
            // lost (or with no bus at all, the only way to hear of them).
            let mut poll = tokio::time::interval_at(start + replica::POLL, replica::POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut changes = changes;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    ev = replica::next_message(&mut changes) => owner.on_bus(ev).await,
                    _ = poll.tick(), if owner.replica.is_some() => owner.poll().await,
                    _ = ping.tick() => owner.ping().await,
                    _ = sweep.tick() => owner.forget_users(forget_policy(&config)).await,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => owner.handle(cmd).await,
                        None => break,
                    },
                }
            }
            // Dropping the subscribers ends their streams.
            owner.subs.clear();
        });
        Ok(Board { tx, pg: users_pg })
    }

    /// Subscribes a client. `presented` is the identity it claims (kept when
    /// known, otherwise it gets a new one); `last_event_id` asks for a replay.
    ///
    /// With a `sink`, live events are written straight to it (and
    /// [`Joined::events`] is `None`); otherwise they come through a queue.
    pub async fn join(
        &self,
        presented: Option<String>,
        last_event_id: Option<String>,
        sink: Option<Arc<StreamSink>>,
    ) -> Result<Joined, Refusal> {
        let resolved = match (&self.pg, &presented) {
            (Some(pg), Some(id)) if qa::is_user_id(id) => pg::get_user_at(pg, id)
                .await
                .map_err(Refusal::pg)?
                .map(|(row, at)| Resolved::Found(row, at)),
            (Some(pg), _) => {
                let (id, handle) = new_identity();
                let insert = Write::InsertUser {
                    id: id.clone(),
                    handle: handle.clone(),
                    now: now_ms(),
                };
                pg::write_unordered(pg, &[insert])
                    .await
                    .map_err(Refusal::pg)?;
                Some(Resolved::Created(id, handle))
            }
            _ => None,
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Join {
                presented,
                resolved,
                last_event_id,
                sink,
                reply,
            })
            .await
            .map_err(|_| Refusal::gone())?;
        rx.await.map_err(|_| Refusal::gone())?
    }

    /// Runs an action for `user` with the decoded path text.
    pub async fn act(
        &self,
        user: String,
        action: Action,
        text: Result<String, SegmentError>,
    ) -> Result<Accepted, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Act {
                user,
                action,
                text,
                reply,
            })
            .await
            .map_err(|_| Refusal::gone())?;
        rx.await.map_err(|_| Refusal::gone())?
    }
}

struct Question {
    text: String,
    author: String,
    time: u64,
    votes: HashSet<String>,
    answers: Vec<(String, AnswerMeta)>,
}

impl Question {
    fn meta(&self) -> QuestionMeta {
        QuestionMeta {
            author: self.author.clone(),
            time: self.time,
            votes: self.votes.len() as u32,
            answers: self.answers.len() as u32,
        }
    }

    fn answers_message(&self) -> Message {
        Message::Answers {
            question: self.text.clone(),
            answers: self.answers.iter().map(|(t, _)| t.clone()).collect(),
            meta: self.answers.iter().map(|(_, m)| m.clone()).collect(),
        }
    }
}

/// A user with at least one open stream.
struct LiveUser {
    handle: String,
    selected: Option<String>,
    conns: usize,
}

struct Sub {
    user: String,
    outlet: Outlet,
}

/// Where a subscriber's live events go.
enum Outlet {
    /// A queue its stream's body reads (streams served by hyper).
    Queue(mpsc::Sender<Bytes>),
    /// Straight to its socket (lean streams).
    Sink(Arc<StreamSink>),
}

impl Outlet {
    fn is_closed(&self) -> bool {
        match self {
            Outlet::Queue(tx) => tx.is_closed(),
            Outlet::Sink(sink) => sink.is_closed(),
        }
    }
}

/// Hands `frame` to each outlet; returns how many were written to sinks and
/// the subscribers that are gone (closed, or cut for falling behind).
fn deliver(targets: &[(u64, &Outlet)], frame: &Bytes, event: &Event) -> (u64, Vec<u64>) {
    let mut gone = Vec::new();
    let mut written = 0;
    for &(conn, outlet) in targets {
        match outlet {
            Outlet::Queue(tx) => match tx.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(conn, "Q&A subscriber fell behind; cutting it");
                    crate::metrics::slow_consumer(crate::stats::App::Qa);
                    crate::metrics::refused("qa_queue");
                    gone.push(conn);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(conn),
            },
            Outlet::Sink(sink) => match sink.send(event) {
                Ok(()) => written += 1,
                Err(SinkError::Full) => {
                    tracing::info!(conn, "Q&A subscriber fell behind; cutting it");
                    crate::metrics::slow_consumer(crate::stats::App::Qa);
                    crate::metrics::refused("qa_queue");
                    gone.push(conn);
                }
                Err(SinkError::Closed) => gone.push(conn),
            },
        }
    }
    (written, gone)
}

/// Who receives an event live.
enum To<'a> {
    All,
    User(&'a str),
    Followers(&'a str),
}

/// Writes and log entries of one step, committed together.
#[derive(Default)]
struct Tx {
    writes: Vec<Write>,
    logged: Vec<(u64, u64)>,
    reserve: Option<u64>,
}

/// How a join starts its stream.
enum Start {
    Fresh,
    Reset(String),
    Replay(u64),
}

struct Owner {
    store: Store,
    /// PostgreSQL (and the bus) when the board is shared by several nodes;
    /// `None`: the embedded store.
    replica: Option<Replica>,
    max_question: usize,
    max_answer: usize,
    retry_ms: u64,
    max_questions: usize,
    max_answers_per_question: usize,
    replay_bytes: u64,
    log_events: usize,
    log_bytes: u64,
    queue: usize,
    stats: Arc<Stats>,
    /// Cores available: a large fan-out is split when there are two.
    cores: usize,
    /// Streams from which a fan-out is split (`--qa-parallel-fan-out`).
    parallel_fan_out: usize,
    questions: Vec<Question>,
    index: HashMap<String, usize>,
    users: HashMap<String, LiveUser>,
    subs: HashMap<u64, Sub>,
    next_conn: u64,
    next_id: u64,
    /// Highest id the store has reserved (committed).
    reserved: u64,
    /// Ids and sizes of the logged events, oldest first.
    log: VecDeque<(u64, u64)>,
    /// Bytes in `log`.
    log_size: u64,
    /// Highest id dropped from the log: resumes from before it are reset.
    floor: u64,
}

impl Owner {
    fn new(config: &QaConfig, store: Store, stats: Arc<Stats>, mut loaded: db::Loaded) -> Owner {
        let log = std::mem::take(&mut loaded.log);
        let (next_id, reserved, floor) = (loaded.reserved + 1, loaded.reserved, loaded.floor);
        let (questions, index) = board_of(loaded);
        Owner {
            store,
            replica: None,
            max_question: config.max_question_chars as usize,
            max_answer: config.max_answer_chars as usize,
            retry_ms: config.retry_ms,
            max_questions: config.max_questions as usize,
            max_answers_per_question: config.max_answers_per_question as usize,
            replay_bytes: config.replay_bytes,
            log_events: config.log_events as usize,
            log_bytes: config.log_bytes,
            queue: config.queue as usize,
            stats,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            parallel_fan_out: config.parallel_fan_out as usize,
            questions,
            index,
            users: HashMap::new(),
            subs: HashMap::new(),
            next_conn: 0,
            next_id,
            reserved,
            log_size: log.iter().map(|(_, b)| b).sum(),
            log: log.into(),
            floor,
        }
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join {
                presented,
                resolved,
                last_event_id,
                sink,
                reply,
            } => {
                let r = self.join(presented, resolved, last_event_id, sink).await;
                let _ = reply.send(r);
            }
            Command::Act {
                user,
                action,
                text,
                reply,
            } => {
                let r = self.act(user, action, text).await;
                let _ = reply.send(r);
            }
        }
    }

    /// A fresh event id; reserves a new block in `tx` when needed.
    ///
    /// With PostgreSQL only logged events take fresh ids (allocated under
    /// the board's lock); the others reuse the last applied one, so that a
    /// client resuming on another node never skips a logged event of a
    /// node it had not heard from yet.
    fn id(&mut self, tx: &mut Tx, logged: bool) -> u64 {
        if let Some(r) = &self.replica {
            if !logged {
                return r.applied;
            }
            self.next_id += 1;
            return self.next_id - 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        if id > tx.reserve.unwrap_or(self.reserved) {
            tx.reserve = Some(id + ID_BLOCK);
        }
        id
    }

    /// Encodes an event that is not logged.
    fn event(&mut self, tx: &mut Tx, name: Option<&str>, data: &str) -> (u64, Bytes) {
        let id = self.id(tx, false);
        (id, sse::encode_event(name, Some(&id.to_string()), data))
    }

    /// The `login` event. It repeats the preamble's `retry:` inside itself:
    /// some client libraries (the Rust `eventsource-client`) only take up a
    /// `retry` field that arrives in an event with data.
    fn login_event(&mut self, tx: &mut Tx, data: &str) -> Bytes {
        let (_, frame) = self.event(tx, Some(qa::LOGIN_EVENT), data);
        let mut out = Vec::with_capacity(frame.len() + 24);
        out.extend_from_slice(format!("retry: {}\n", self.retry_ms).as_bytes());
        out.extend_from_slice(&frame);
        Bytes::from(out)
    }

    /// Encodes an event with a fresh id and logs it for `audience`.
    fn logged(&mut self, tx: &mut Tx, name: Option<&str>, data: &str, audience: Audience) -> Bytes {
        let id = self.id(tx, true);
        let frame = sse::encode_event(name, Some(&id.to_string()), data);
        tx.writes.push(Write::Log {
            id,
            audience,
            frame: frame.clone(),
        });
        tx.logged.push((id, frame.len() as u64));
        frame
    }

    /// Saves an action's `tx`: in the embedded store, or as one change in
    /// PostgreSQL (then published to the other nodes).
    async fn save(&mut self, tx: Tx) -> Result<(), Refusal> {
        if self.replica.is_some() {
            return self.save_change(tx).await;
        }
        self.commit(tx, |_| Ok(())).await.map_err(Refusal::store)
    }

    /// Adds to `tx` the pruning its logged events make necessary.
    fn plan_prune(&self, tx: &mut Tx) -> Option<u64> {
        let new_bytes: u64 = tx.logged.iter().map(|(_, b)| b).sum();
        let prune = db::prune_point(
            self.log.iter().chain(&tx.logged),
            self.log.len() + tx.logged.len(),
            self.log_size + new_bytes,
            self.log_events,
            self.log_bytes,
        );
        if let Some(upto) = prune {
            tx.writes.push(Write::Prune(upto));
        }
        prune
    }

    /// Takes newly logged events into the in-memory log bookkeeping.
    fn settle_log(&mut self, logged: Vec<(u64, u64)>, prune: Option<u64>) {
        self.log_size += logged.iter().map(|(_, b)| b).sum::<u64>();
        self.log.extend(logged);
        if let Some(upto) = prune {
            while let Some(&(_, size)) = self.log.front().filter(|(id, _)| *id <= upto) {
                self.log.pop_front();
                self.log_size -= size;
            }
            self.floor = self.floor.max(upto);
        }
    }

    /// Commits `tx` (plus whatever `read` reads in the same transaction) and
    /// then updates the in-memory log bookkeeping.
    async fn commit<T: Send + 'static>(
        &mut self,
        mut tx: Tx,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let prune = self.plan_prune(&mut tx);
        if let Some(r) = tx.reserve {
            tx.writes.push(Write::Reserve(r));
        }
        let writes = std::mem::take(&mut tx.writes);
        let result = self
            .store
            .call(move |c| {
                db::apply(c, &writes)?;
                read(c)
            })
            .await?;
        if let Some(r) = tx.reserve {
            self.reserved = r;
        }
        self.settle_log(tx.logged, prune);
        Ok(result)
    }

    async fn user(&mut self, id: &str) -> Result<Option<UserRow>, Refusal> {
        if let Some(u) = self.users.get(id) {
            return Ok(Some(UserRow {
                handle: u.handle.clone(),
                selected: u.selected.clone(),
            }));
        }
        if !qa::is_user_id(id) {
            return Ok(None);
        }
        if let Some(r) = &self.replica {
            return pg::get_user(&r.pg, id).await.map_err(Refusal::pg);
        }
        let id = id.to_string();
        self.store
            .call(move |c| db::get_user(c, &id))
            .await
            .map_err(Refusal::store)
    }

    fn questions_message(&self) -> String {
        Message::Questions {
            questions: OrderedMap(
                self.questions
                    .iter()
                    .map(|q| (q.text.clone(), q.author.clone()))
                    .collect(),
            ),
            meta: OrderedMap(
                self.questions
                    .iter()
                    .map(|q| (q.text.clone(), q.meta()))
                    .collect(),
            ),
        }
        .to_json()
    }

    fn meta_update(&self, i: usize) -> String {
        let q = &self.questions[i];
        serde_json::to_string(&MetaUpdate {
            question: q.text.clone(),
            meta: q.meta(),
        })
        .expect("meta serializes")
    }

    async fn join(
        &mut self,
        presented: Option<String>,
        resolved: Option<Resolved>,
        last_event_id: Option<String>,
        sink: Option<Arc<StreamSink>>,
    ) -> Result<Joined, Refusal> {
        let now = now_ms();
        let mut tx = Tx::default();
        let applied = self.replica.as_ref().map_or(0, |r| r.applied);
        let (known, created) = match (presented, resolved) {
            (_, Some(Resolved::Created(id, handle))) => (None, Some((id, handle))),
            // The handler's row is current unless this node has applied a
            // change since (one could be this user's selection); a user
            // connected here is known better by this node.
            (Some(id), Some(Resolved::Found(row, at)))
                if at >= applied && !self.users.contains_key(&id) =>
            {
                (Some((id, row)), None)
            }
            (Some(id), _) => (self.user(&id).await?.map(|row| (id, row)), None),
            (None, _) => (None, None),
        };
        let is_new = known.is_none();
        let (user, row) = match known {
            Some((id, row)) => {
                tx.writes.push(Write::TouchUser {
                    id: id.clone(),
                    now,
                });
                (id, row)
            }
            None => {
                let (id, handle) = match created {
                    Some(saved) => saved,
                    None => {
                        let (id, handle) = new_identity();
                        tx.writes.push(Write::InsertUser {
                            id: id.clone(),
                            handle: handle.clone(),
                            now,
                        });
                        (id, handle)
                    }
                };
                (
                    id,
                    UserRow {
                        handle,
                        selected: None,
                    },
                )
            }
        };
        // A client resuming from an event of a node this one has not heard
        // from yet: read that node's changes first.
        if self.replica.is_some()
            && !is_new
            && last_event_id
                .as_deref()
                .and_then(|raw| raw.trim().parse::<u64>().ok())
                .is_some_and(|n| n >= self.next_id)
        {
            self.catch_up().await;
        }
        // The replayed events, when read from PostgreSQL.
        let mut preloaded = Vec::new();
        // A new identity has nothing to resume: like the classic server, it
        // starts over with a snapshot.
        let start = match (is_new, last_event_id) {
            (true, _) | (false, None) => Start::Fresh,
            (false, Some(raw)) => match raw.trim().parse::<u64>() {
                Ok(n) if n >= self.floor && n < self.next_id => {
                    let bytes = self.replay_size(n, &user).await?;
                    // The missed events are read into memory for this one
                    // stream; past the bound a snapshot says the same.
                    if bytes > self.replay_bytes {
                        Start::Reset(format!(
                            "the events after {n} ({bytes} bytes) are more than a snapshot"
                        ))
                    } else if let Some(r) = &self.replica {
                        // Read now: another node may have pruned the log
                        // past `n` since this node last heard of it.
                        match pg::replay_kept(&r.pg, n, r.applied, &user)
                            .await
                            .map_err(Refusal::pg)?
                        {
                            Some(frames) => {
                                preloaded = frames;
                                Start::Replay(n)
                            }
                            None => Start::Reset(format!(
                                "events after {n} are no longer kept; starting over"
                            )),
                        }
                    } else {
                        Start::Replay(n)
                    }
                }
                Ok(n) if n >= self.next_id => Start::Reset(format!(
                    "event {n} was never sent by this server; starting over"
                )),
                Ok(n) => Start::Reset(format!(
                    "events after {n} are no longer kept (the log starts after {})",
                    self.floor
                )),
                Err(_) => Start::Reset(format!("unreadable Last-Event-ID {:?}", clip(&raw, 40))),
            },
        };
        let login_data = serde_json::to_string(&user).expect("a string serializes");
        let mut initial = Vec::new();
        let replay_from = match start {
            Start::Replay(n) => Some(n),
            Start::Fresh | Start::Reset(_) => {
                initial.push(self.login_event(&mut tx, &login_data));
                if let Start::Reset(reason) = start {
                    let data = serde_json::to_string(&Reset { reason }).expect("serializes");
                    initial.push(self.event(&mut tx, Some(qa::RESET_EVENT), &data).1);
                }
                let questions = self.questions_message();
                initial.push(self.event(&mut tx, None, &questions).1);
                let followed = row.selected.as_ref().and_then(|q| self.index.get(q));
                if let Some(&i) = followed {
                    let answers = self.questions[i].answers_message().to_json();
                    initial.push(self.event(&mut tx, None, &answers).1);
                }
                None
            }
        };
        // Replayed events keep their old ids, so the login (a fresh id) comes
        // after them and the ids on the stream keep increasing.
        let login_after_replay = replay_from.map(|_| self.login_event(&mut tx, &login_data));
        let replayed = self.save_join(tx, replay_from, preloaded, &user).await?;
        if let Some(login) = login_after_replay {
            initial = replayed;
            initial.push(login);
        }
        let (outlet, events) = match sink {
            Some(sink) => {
                sink.set_limit(self.queue);
                (Outlet::Sink(sink), None)
            }
            None => {
                let (tx, rx) = mpsc::channel(self.queue);
                (Outlet::Queue(tx), Some(rx))
            }
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.subs.insert(
            conn,
            Sub {
                user: user.clone(),
                outlet,
            },
        );
        self.users
            .entry(user.clone())
            .or_insert(LiveUser {
                handle: row.handle,
                selected: row.selected,
                conns: 0,
            })
            .conns += 1;
        Ok(Joined {
            user,
            initial,
            events,
        })
    }

    /// The size of the logged events after `n` that `user` would get.
    async fn replay_size(&mut self, n: u64, user: &str) -> Result<u64, Refusal> {
        if let Some(r) = &self.replica {
            return pg::replay_size(&r.pg, n, r.applied, user)
                .await
                .map_err(Refusal::pg);
        }
        let reader = user.to_string();
        self.store
            .call(move |c| db::replay_bytes(c, n, &reader))
            .await
            .map_err(Refusal::store)
    }

    /// Saves a join's user write and reads the events it replays (with
    /// PostgreSQL they were read before: `preloaded`).
    async fn save_join(
        &mut self,
        tx: Tx,
        replay_from: Option<u64>,
        preloaded: Vec<Bytes>,
        user: &str,
    ) -> Result<Vec<Bytes>, Refusal> {
        if let Some(r) = &self.replica {
            // Users need no order: no lock. A new one is saved before its
            // id is handed out (other nodes must know it); marking a known
            // one as seen only matters to the sweep, so it does not hold
            // the owner up.
            if tx
                .writes
                .iter()
                .any(|w| matches!(w, Write::InsertUser { .. }))
            {
                pg::write_unordered(&r.pg, &tx.writes)
                    .await
                    .map_err(Refusal::pg)?;
            } else if !tx.writes.is_empty() {
                let (pg, writes) = (r.pg.clone(), tx.writes);
                tokio::spawn(async move {
                    if let Err(e) = pg::write_unordered(&pg, &writes).await {
                        tracing::debug!(error = %e, "Q&A user not marked as seen");
                    }
                });
            }
            return Ok(preloaded);
        }
        let reader = user.to_string();
        self.commit(tx, move |c| match replay_from {
            Some(n) => db::replay(c, n, &reader),
            None => Ok(Vec::new()),
        })
        .await
        .map_err(Refusal::store)
    }

    async fn act(
        &mut self,
        user: String,
        action: Action,
        text: Result<String, SegmentError>,
    ) -> Result<Accepted, Refusal> {
        crate::metrics::events_in(crate::stats::App::Qa, 1);
        if self.replica.is_none() {
            return self.act_checked(user, action, text).await;
        }
        // Checked against the board as of the latest change of any node,
        // under the lock that orders changes.
        self.lock().await?;
        let result = self.act_checked(user, action, text).await;
        self.unlock().await;
        result
    }

    async fn act_checked(
        &mut self,
        user: String,
        action: Action,
        text: Result<String, SegmentError>,
    ) -> Result<Accepted, Refusal> {
        let Some(row) = self.user(&user).await? else {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unknown user: open GET /login and send its id in the _sse_user_id_ header",
            ));
        };
        let text = text
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("bad path segment: {e}")))?;
        match action {
            Action::Ask => self.ask(&user, &row, text).await,
            Action::Select => self.select(&user, text).await,
            Action::Answer => self.answer(&user, &row, text).await,
            Action::Vote => self.vote(&user, text).await,
        }
    }

    /// Sends `message` to `user`'s open streams and returns the refusal for
    /// the action's response. Not logged: anyone can cause refusals at will,
    /// and they must not push real events out of the bounded log.
    async fn refuse(&mut self, user: &str, status: StatusCode, message: String) -> Refusal {
        let mut tx = Tx::default();
        let data = Message::Notification {
            message: message.clone(),
        }
        .to_json();
        let (_, frame) = self.event(&mut tx, None, &data);
        if tx.reserve.is_some()
            && let Err(e) = self.commit(tx, |_| Ok(())).await
        {
            return Refusal::store(e);
        }
        self.fan_out(&frame, To::User(user));
        Refusal::new(status, message)
    }

    /// The question's index, or a refusal (with a notification) when unknown.
    async fn known_question(&mut self, user: &str, q: &str) -> Result<usize, Refusal> {
        if q.trim().is_empty() {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "empty question"));
        }
        match self.index.get(q) {
            Some(&i) => Ok(i),
            None => Err(self
                .refuse(
                    user,
                    StatusCode::NOT_FOUND,
                    format!("No such question: {}", clip(q, 80)),
                )
                .await),
        }
    }

    async fn ask(&mut self, user: &str, row: &UserRow, q: String) -> Result<Accepted, Refusal> {
        if q.trim().is_empty() {
            return Err(self
                .refuse(user, StatusCode::BAD_REQUEST, qa::QUESTION_TOO_SHORT.into())
                .await);
        }
        if q.chars().count() > self.max_question {
            crate::metrics::refused("qa_max_question");
            let msg = format!(
                "Your question is too long (at most {} characters)",
                self.max_question
            );
            return Err(self.refuse(user, StatusCode::PAYLOAD_TOO_LARGE, msg).await);
        }
        if self.index.contains_key(&q) {
            return Ok(Accepted::AlreadyAsked);
        }
        // Every new question resends the whole list: its size is bounded.
        if self.questions.len() >= self.max_questions {
            crate::metrics::refused("qa_max_questions");
            let msg = format!(
                "The board is full (at most {} questions)",
                self.max_questions
            );
            return Err(self.refuse(user, StatusCode::CONFLICT, msg).await);
        }
        let now = now_ms();
        let mut tx = Tx::default();
        tx.writes.push(Write::Question {
            text: q.clone(),
            author: row.handle.clone(),
            now,
        });
        // Encode the message as it will be after the change.
        self.index.insert(q.clone(), self.questions.len());
        self.questions.push(Question {
            text: q.clone(),
            author: row.handle.clone(),
            time: now,
            votes: HashSet::new(),
            answers: Vec::new(),
        });
        let data = self.questions_message();
        let frame = self.logged(&mut tx, None, &data, Audience::Everyone);
        if let Err(e) = self.save(tx).await {
            self.questions.pop();
            self.index.remove(&q);
            return Err(e);
        }
        self.fan_out(&frame, To::All);
        Ok(Accepted::Done)
    }

    async fn select(&mut self, user: &str, q: String) -> Result<Accepted, Refusal> {
        let i = self.known_question(user, &q).await?;
        let mut tx = Tx::default();
        tx.writes.push(Write::Select {
            user: user.to_string(),
            question: q.clone(),
        });
        let data = self.questions[i].answers_message().to_json();
        let frame = self.logged(&mut tx, None, &data, Audience::User(user.to_string()));
        self.save(tx).await?;
        if let Some(u) = self.users.get_mut(user) {
            u.selected = Some(q);
        }
        self.fan_out(&frame, To::User(user));
        Ok(Accepted::Done)
    }

    async fn answer(&mut self, user: &str, row: &UserRow, a: String) -> Result<Accepted, Refusal> {
        if a.trim().is_empty() {
            return Err(self
                .refuse(user, StatusCode::BAD_REQUEST, qa::ANSWER_TOO_SHORT.into())
                .await);
        }
        if a.chars().count() > self.max_answer {
            crate::metrics::refused("qa_max_answer");
            let msg = format!(
                "Your answer is too long (at most {} characters)",
                self.max_answer
            );
            return Err(self.refuse(user, StatusCode::PAYLOAD_TOO_LARGE, msg).await);
        }
        let Some(&i) = row.selected.as_ref().and_then(|q| self.index.get(q)) else {
            return Err(self
                .refuse(user, StatusCode::CONFLICT, qa::SELECT_FIRST.into())
                .await);
        };
        // Every answer resends the question's whole list: bounded too.
        if self.questions[i].answers.len() >= self.max_answers_per_question {
            crate::metrics::refused("qa_max_answers_per_question");
            let msg = format!(
                "This question has all the answers it can take ({})",
                self.max_answers_per_question
            );
            return Err(self.refuse(user, StatusCode::CONFLICT, msg).await);
        }
        let now = now_ms();
        let q = self.questions[i].text.clone();
        let meta = AnswerMeta {
            author: row.handle.clone(),
            time: now,
        };
        let mut tx = Tx::default();
        tx.writes.push(Write::Answer {
            question: q.clone(),
            text: a.clone(),
            author: meta.author.clone(),
            now,
        });
        self.questions[i].answers.push((a, meta));
        let answers = self.questions[i].answers_message().to_json();
        let update = self.meta_update(i);
        let answers_frame = self.logged(&mut tx, None, &answers, Audience::FollowersOf(q.clone()));
        let meta_frame = self.logged(&mut tx, Some(qa::META_EVENT), &update, Audience::Everyone);
        if let Err(e) = self.save(tx).await {
            self.questions[i].answers.pop();
            return Err(e);
        }
        self.fan_out(&answers_frame, To::Followers(&q));
        self.fan_out(&meta_frame, To::All);
        Ok(Accepted::Done)
    }

    async fn vote(&mut self, user: &str, q: String) -> Result<Accepted, Refusal> {
        let i = self.known_question(user, &q).await?;
        let on = !self.questions[i].votes.contains(user);
        let mut tx = Tx::default();
        tx.writes.push(Write::Vote {
            question: q.clone(),
            user: user.to_string(),
            on,
        });
        let toggle = |votes: &mut HashSet<String>| {
            if on {
                votes.insert(user.to_string());
            } else {
                votes.remove(user);
            }
        };
        toggle(&mut self.questions[i].votes);
        let update = self.meta_update(i);
        let frame = self.logged(&mut tx, Some(qa::META_EVENT), &update, Audience::Everyone);
        if let Err(e) = self.save(tx).await {
            // Toggle back: the change was never saved.
            if on {
                self.questions[i].votes.remove(user);
            } else {
                self.questions[i].votes.insert(user.to_string());
            }
            return Err(e);
        }
        self.fan_out(&frame, To::All);
        Ok(Accepted::Vote(VoteReply {
            question: q,
            votes: self.questions[i].votes.len() as u32,
            voted: on,
        }))
    }

    /// Deletes the users the policy forgets, keeping the connected ones.
    async fn forget_users(&mut self, forget: db::Forget) {
        self.sweep();
        let live: Vec<String> = self.users.keys().cloned().collect();
        if let Some(r) = &self.replica {
            match pg::forget_users(&r.pg, &live, forget).await {
                Ok(n) => tracing::debug!(forgotten = n, "Q&A users swept"),
                Err(e) => tracing::warn!(error = %e, "Q&A user sweep failed"),
            }
            return;
        }
        match self
            .store
            .call(move |c| db::forget_users(c, &live, forget))
            .await
        {
            Ok(n) => tracing::debug!(forgotten = n, "Q&A users swept"),
            Err(e) => tracing::warn!(error = %e, "Q&A user sweep failed"),
        }
    }

    async fn ping(&mut self) {
        self.sweep();
        if self.subs.is_empty() {
            return;
        }
        let mut tx = Tx::default();
        let (_, frame) = self.event(&mut tx, Some(qa::PING_EVENT), &now_ms().to_string());
        if tx.reserve.is_some() && self.commit(tx, |_| Ok(())).await.is_err() {
            return;
        }
        self.fan_out(&frame, To::All);
    }

    /// Queues `frame` for the chosen subscribers. One that is full is cut:
    /// it would otherwise stall everyone or grow without bound.
    fn fan_out(&mut self, frame: &Bytes, to: To<'_>) {
        let targets: Vec<(u64, &Outlet)> = self
            .subs
            .iter()
            .filter(|(_, sub)| match to {
                To::All => true,
                To::User(u) => sub.user == u,
                To::Followers(q) => {
                    self.users
                        .get(&sub.user)
                        .and_then(|u| u.selected.as_deref())
                        == Some(q)
                }
            })
            .map(|(&conn, sub)| (conn, &sub.outlet))
            .collect();
        let event = Event::new(frame);
        // A broadcast to thousands of streams is mostly the kernel's
        // loopback write per stream: split it over two cores. Both halves
        // end before the next event, so each stream's order is kept.
        let (written, gone) = if targets.len() >= self.parallel_fan_out && self.cores > 1 {
            let (a, b) = targets.split_at(targets.len() / 2);
            std::thread::scope(|s| {
                let other = s.spawn(|| deliver(b, frame, &event));
                let (wa, mut ga) = deliver(a, frame, &event);
                let (wb, gb) = other.join().unwrap_or_default();
                ga.extend(gb);
                (wa + wb, ga)
            })
        } else {
            deliver(&targets, frame, &event)
        };
        // Queued events are counted by their streams as they are sent.
        self.stats.delivered(crate::stats::App::Qa, written);
        for conn in gone {
            self.remove(conn);
        }
    }

    /// Forgets subscribers whose streams have ended.
    fn sweep(&mut self) {
        let gone: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.outlet.is_closed())
            .map(|(&c, _)| c)
            .collect();
        for conn in gone {
            self.remove(conn);
        }
    }

    fn remove(&mut self, conn: u64) {
        let Some(sub) = self.subs.remove(&conn) else {
            return;
        };
        if let Some(u) = self.users.get_mut(&sub.user) {
            u.conns -= 1;
            if u.conns == 0 {
                self.users.remove(&sub.user);
            }
        }
    }
}

/// The questions (with their answers and votes) of a loaded board, and
/// their index by text.
fn board_of(loaded: db::Loaded) -> (Vec<Question>, HashMap<String, usize>) {
    let mut questions: Vec<Question> = Vec::with_capacity(loaded.questions.len());
    let mut index = HashMap::with_capacity(loaded.questions.len());
    for (text, author, time) in loaded.questions {
        index.insert(text.clone(), questions.len());
        questions.push(Question {
            text,
            author,
            time,
            votes: HashSet::new(),
            answers: Vec::new(),
        });
    }
    for (q, text, author, time) in loaded.answers {
        if let Some(&i) = index.get(&q) {
            questions[i]
                .answers
                .push((text, AnswerMeta { author, time }));
        }
    }
    for (q, user) in loaded.votes {
        if let Some(&i) = index.get(&q) {
            questions[i].votes.insert(user);
        }
    }
    (questions, index)
}

/// Who [`db::forget_users`] removes, as of now.
fn forget_policy(config: &QaConfig) -> db::Forget {
    let now = now_ms();
    db::Forget {
        now_ms: now,
        stale_before_ms: now.saturating_sub(config.user_ttl_days.saturating_mul(86_400_000)),
        idle_before_ms: now.saturating_sub(config.idle_user_ttl_secs.saturating_mul(1000)),
    }
}

/// A new secret user id (128 random bits) and a public handle.
fn new_identity() -> (String, String) {
    let mut rng = rand::rng();
    let id: u128 = rng.random();
    let handle: u32 = rng.random();
    (format!("{id:032x}"), format!("user-{handle:08x}"))
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
