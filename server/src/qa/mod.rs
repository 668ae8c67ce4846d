//! The Q&A board over Server-Sent Events (protocols.md §3).
//!
//! - `board`: the task that owns the board (questions, answers, votes, who
//!   follows what, the subscribers) and its durable event log;
//! - `db`: the board's tables in the embedded store;
//! - `pg`: the same tables in PostgreSQL (`--database`), plus the changes
//!   that order the board across nodes; `board::replica` keeps a node's
//!   board in step with the others' (over the bus with `--redis`, and by
//!   a check every second);
//! - `routes`: `GET /login` (the event stream) and the actions
//!   (`POST /askquestion/…`, `/selectquestion/…`, `/addanswer/…`, `/vote/…`).
//!
//! Resuming: every event carries a server-wide id that only grows, across
//! restarts too (ids are reserved in the store in blocks). Events that change
//! what a user sees are written to a bounded log in the same transaction as
//! the change, each with its audience:
//!
//! | event | audience |
//! |---|---|
//! | `questions` (a new question) | everyone |
//! | `meta` (votes or answer count changed) | everyone |
//! | `answers` after `addanswer` | every user following the question then, connected or not |
//! | `answers` after `selectquestion` | the caller |
//!
//! `login`, `ping`, the snapshots sent at join and the `notification` of a
//! refused action are not logged: they carry fresh ids but nothing to replay
//! (a refusal's message is also in the action's response), and refusals,
//! which anyone can cause at will, must not push real events out of the log.
//!
//! A reconnect that presents its identity (`?user=`, the cookie set at
//! login, or the `_sse_user_id_` header) and `Last-Event-ID: N` gets the
//! logged events after `N` whose audience includes it, in order and with
//! their original bytes, followed by a new `login`; when the log no longer
//! reaches back to `N` (or `N` is unreadable or was never sent), or the
//! missed events exceed `--qa-replay-bytes`, it gets `login`, `reset`, the
//! `questions` snapshot and the answers of the question it follows. Without an identity a reconnect is a new
//! user with a fresh snapshot, as with the classic server.
//!
//! With PostgreSQL the ids are cluster-wide: PostgreSQL orders the changes
//! (each action commits under one advisory lock, after applying every
//! change committed before it), every node applies them in id order, and
//! only logged events take fresh ids. `login`, `ping`, snapshots and
//! notifications carry the id of the last change the node has applied, so
//! a client that resumes on another node gets exactly the logged events it
//! had not seen. A node that missed changes the log no longer holds reloads
//! the board and gives its streams `reset` and a snapshot. While PostgreSQL
//! is unreachable, actions are refused with 503, and a new login gets a
//! stream holding one `unavailable` event that then ends: EventSource
//! retries after `retry:` where a 503 would make it give up.

pub mod board;
mod db;
/// The tables in PostgreSQL (`--database`).
pub mod pg;
pub mod routes;

pub use board::{Action, Board};
pub use routes::routes;

/// Q&A settings (flattened into `rt-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct QaConfig {
    /// Interval between `ping` events on every Q&A stream.
    #[arg(long = "qa-ping-ms", default_value_t = 10_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_ms: u64,

    /// Reconnection delay announced to clients (`retry:`).
    #[arg(long = "qa-retry-ms", default_value_t = 2000, value_name = "MS")]
    pub retry_ms: u64,

    /// Longest question accepted, in characters (Unicode scalar values).
    #[arg(long = "qa-max-question", default_value_t = 300, value_name = "CHARS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_question_chars: u32,

    /// Longest answer accepted, in characters.
    #[arg(long = "qa-max-answer", default_value_t = 2000, value_name = "CHARS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_answer_chars: u32,

    /// Questions the board holds at most (each new one resends the whole
    /// list to everyone); more are refused with 409 and a notification.
    #[arg(long = "qa-max-questions", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_questions: u32,

    /// Answers one question holds at most (each new one resends the
    /// question's whole list to its followers).
    #[arg(long = "qa-max-answers-per-question", default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_answers_per_question: u32,

    /// Events kept in the durable log for resuming clients; a client that
    /// missed more gets `reset` and a snapshot.
    #[arg(long = "qa-log-events", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub log_events: u32,

    /// Bytes of events kept in the log at most (the oldest go first).
    #[arg(long = "qa-log-bytes", default_value_t = 64 << 20, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub log_bytes: u64,

    /// Bytes of missed events replayed to one resuming client at most; a
    /// larger gap gets `reset` and a snapshot instead.
    #[arg(long = "qa-replay-bytes", default_value_t = 8 << 20, value_name = "BYTES")]
    pub replay_bytes: u64,

    /// Events queued per subscriber at most; a subscriber that falls this far
    /// behind is disconnected (it can resume with Last-Event-ID).
    #[arg(long = "qa-queue", default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,

    /// A broadcast to at least this many streams is written by two threads
    /// (when there are two cores), halving how long the last stream waits.
    #[arg(long = "qa-parallel-fan-out", default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel_fan_out: u32,

    /// Forget users who have not logged in for this many days.
    #[arg(long = "qa-user-ttl-days", default_value_t = 30, value_name = "DAYS")]
    pub user_ttl_days: u64,

    /// Forget sooner users who never did anything (no question, answer,
    /// vote or followed question) once disconnected this many seconds: every
    /// anonymous login creates one, and they lose nothing by it (a new
    /// identity gets the same snapshot).
    #[arg(
        long = "qa-idle-user-ttl-secs",
        default_value_t = 3600,
        value_name = "SECS"
    )]
    pub idle_user_ttl_secs: u64,

    /// How often forgotten users are removed from the store (also at startup).
    #[arg(long = "qa-user-sweep-ms", default_value_t = 600_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub user_sweep_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
