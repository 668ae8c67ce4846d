//! Q&A client: follows `GET /login` (Server-Sent Events, with the
//! `eventsource-client` crate) and posts the actions over HTTP.
//!
//! The stream task remembers the id from the `login` event and presents it
//! on every reconnect (`_sse_user_id_` header) together with `Last-Event-ID`,
//! so the server replays exactly what was missed. Event ids only grow, so an
//! event whose id is not above the last one seen is a duplicate and dropped.

use std::time::{Duration, Instant};

use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures_util::StreamExt;
use rt_protocol::qa::{
    self, AnswerMeta, ErrorBody, Message, MetaUpdate, QuestionMeta, VoteReply, encode_segment,
};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::http::HttpClient;
use super::{ConnState, Endpoint, NetEvent, Transport, describe_sse};

/// How long connecting to the stream may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an action may take.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Actions waiting to be sent at most; more are refused with a notice.
pub const ACTION_QUEUE: usize = 32;

/// One event as it came off the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// One question with what rt knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionInfo {
    pub text: String,
    pub meta: QuestionMeta,
}

/// One answer; `author` and `time` are absent from a classic server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerInfo {
    pub text: String,
    pub meta: Option<AnswerMeta>,
}

/// What the Q&A client tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QaEvent {
    /// Logged in (again) as this user.
    Login { user: String },
    /// The server could not replay what was missed; a snapshot follows.
    Reset,
    /// Every question, in asking order.
    Questions(Vec<QuestionInfo>),
    /// All answers to one question.
    Answers {
        question: String,
        answers: Vec<AnswerInfo>,
    },
    /// One question's votes or answer count changed.
    Meta(MetaUpdate),
    /// A message for the user (from the server, or about a failed action).
    Notification(String),
    /// The server's answer to our vote.
    Voted(VoteReply),
}

/// An action on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QaCommand {
    Ask(String),
    Select(String),
    Answer(String),
    Vote(String),
}

impl QaCommand {
    /// The request path, text percent-encoded as one segment.
    pub fn path(&self) -> String {
        let (prefix, text) = match self {
            QaCommand::Ask(t) => (qa::ASK_PATH, t),
            QaCommand::Select(t) => (qa::SELECT_PATH, t),
            QaCommand::Answer(t) => (qa::ANSWER_PATH, t),
            QaCommand::Vote(t) => (qa::VOTE_PATH, t),
        };
        format!("{prefix}{}", encode_segment(text))
    }
}

/// Decodes one stream event; pings and unknown events give `None`.
pub fn decode(event: &str, data: &str) -> Option<QaEvent> {
    match event {
        qa::LOGIN_EVENT => serde_json::from_str::<String>(data)
            .ok()
            .map(|user| QaEvent::Login { user }),
        qa::RESET_EVENT => Some(QaEvent::Reset),
        qa::META_EVENT => serde_json::from_str(data).ok().map(QaEvent::Meta),
        "message" => match serde_json::from_str::<Message>(data) {
            Ok(Message::Questions { questions, meta }) => Some(QaEvent::Questions(
                questions
                    .0
                    .into_iter()
                    .map(|(text, author)| {
                        let meta = meta
                            .0
                            .iter()
                            .find(|(q, _)| *q == text)
                            .map(|(_, m)| m.clone())
                            .unwrap_or(QuestionMeta {
                                author,
                                time: 0,
                                votes: 0,
                                answers: 0,
                            });
                        QuestionInfo { text, meta }
                    })
                    .collect(),
            )),
            Ok(Message::Answers {
                question,
                answers,
                meta,
            }) => Some(QaEvent::Answers {
                question,
                answers: answers
                    .into_iter()
                    .enumerate()
                    .map(|(i, text)| AnswerInfo {
                        text,
                        meta: meta.get(i).cloned(),
                    })
                    .collect(),
            }),
            Ok(Message::Notification { message }) => Some(QaEvent::Notification(message)),
            Err(e) => {
                tracing::warn!(error = %e, "malformed Q&A message");
                None
            }
        },
        _ => None,
    }
}

/// What [`follow`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    State(ConnState),
    Event(RawEvent),
}

/// Where the stream position and identity stand; kept across reconnects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub user: Option<String>,
    pub last_id: Option<String>,
    /// No event has arrived on the current connection yet.
    pub new_connection: bool,
}

impl Position {
    /// Takes in an event; returns false for a duplicate (an id not above the
    /// last one seen).
    pub fn accept(&mut self, ev: &RawEvent) -> bool {
        // A connection that starts with a login is a fresh start (possibly
        // from a server whose ids began again): it sets the position.
        let restart = std::mem::take(&mut self.new_connection) && ev.event == qa::LOGIN_EVENT;
        if let Some(id) = &ev.id {
            let new: Option<u64> = id.parse().ok();
            let old: Option<u64> = self.last_id.as_deref().and_then(|s| s.parse().ok());
            if let (Some(new), Some(old)) = (new, old)
                && new <= old
                && !restart
            {
                return false;
            }
            self.last_id = Some(id.clone());
        }
        if ev.event == qa::LOGIN_EVENT
            && let Ok(user) = serde_json::from_str::<String>(&ev.data)
        {
            self.user = Some(user);
        }
        true
    }
}

/// Follows the board's stream until `sink` closes: reports connection
/// states and every new event, reconnecting with backoff, identity and
/// `Last-Event-ID`. `identity` is published whenever the login changes it.
pub async fn follow(
    endpoint: impl Into<Endpoint>,
    mut position: Position,
    sink: mpsc::Sender<StreamItem>,
    identity: watch::Sender<Option<String>>,
) {
    let endpoint: Endpoint = endpoint.into();
    let base = endpoint.base();
    let transport = match endpoint.sse_transport(CONNECT_TIMEOUT, None) {
        Ok(t) => t,
        Err(e) => {
            let error = format!("cannot start the HTTP client: {e}");
            let at = Instant::now() + Duration::from_secs(3600);
            let _ = sink
                .send(StreamItem::State(ConnState::Retrying { at, error }))
                .await;
            return;
        }
    };
    let url = format!("{}/login", base.trim_end_matches('/'));
    let mut backoff = Backoff::default();
    let mut first = true;
    loop {
        if first
            && sink
                .send(StreamItem::State(ConnState::Connecting))
                .await
                .is_err()
        {
            return;
        }
        first = false;
        let mut builder = match endpoint.sse_builder(&url) {
            Ok(b) => b,
            Err(e) => {
                let error = format!("bad URL {url}: {e}");
                let at = Instant::now() + Duration::from_secs(3600);
                let _ = sink
                    .send(StreamItem::State(ConnState::Retrying { at, error }))
                    .await;
                return;
            }
        };
        if let Some(user) = position.user.as_deref().filter(|u| qa::is_user_id(u)) {
            builder = match builder.header(qa::USER_HEADER, user) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot present the Q&A identity");
                    endpoint.sse_builder(&url).expect("the URL parsed above")
                }
            };
        }
        if let Some(id) = &position.last_id {
            builder = builder.last_event_id(id.clone());
        }
        let client = builder
            .reconnect(ReconnectOptions::reconnect(false).build())
            .build_with_transport(transport.clone());
        let mut stream = client.stream();
        position.new_connection = true;
        let error = loop {
            match stream.next().await {
                Some(Ok(SSE::Connected(details))) => {
                    let status = details.response().status();
                    if status != 200 {
                        break format!("{base} answered HTTP {status}");
                    }
                    backoff.reset();
                    if sink
                        .send(StreamItem::State(ConnState::Connected))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Some(Ok(SSE::Event(ev))) => {
                    // The server's `retry:` sets the reconnection delay.
                    if let Some(ms) = ev.retry {
                        backoff.set_initial(Duration::from_millis(ms));
                    }
                    if ev.event_type == qa::UNAVAILABLE_EVENT {
                        // The server ends this stream; its reason is the error.
                        let why = serde_json::from_str::<qa::ErrorBody>(&ev.data)
                            .map(|b| b.error)
                            .unwrap_or(ev.data);
                        break format!("{base} is unavailable: {why}");
                    }
                    let raw = RawEvent {
                        id: ev.id,
                        event: ev.event_type,
                        data: ev.data,
                    };
                    let before = position.user.clone();
                    if !position.accept(&raw) {
                        continue;
                    }
                    if position.user != before {
                        identity.send_replace(position.user.clone());
                    }
                    if sink.send(StreamItem::Event(raw)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(SSE::Comment(_))) => {}
                Some(Err(e)) => break describe_sse(base, &e),
                None => break format!("{base} closed the stream"),
            }
        };
        let at = Instant::now() + backoff.next_delay();
        tracing::debug!(%error, "Q&A stream ended");
        if sink
            .send(StreamItem::State(ConnState::Retrying { at, error }))
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = sink.closed() => return,
        }
    }
}

/// What an action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Done,
    AlreadyAsked,
    Voted(VoteReply),
    /// Refused; the server also sent the reason as a notification.
    Notified(u16, String),
    /// Failed; nothing else tells the user why.
    Failed(String),
}

/// Sends one action as `user`.
pub async fn act(client: &HttpClient, base: &str, user: &str, cmd: &QaCommand) -> ActionOutcome {
    let url = format!("{}{}", base.trim_end_matches('/'), cmd.path());
    let res = match client.post(&url, &[(qa::USER_HEADER, user)]).await {
        Ok(r) => r,
        Err(e) => return ActionOutcome::Failed(format!("cannot reach {base}: {e}")),
    };
    let status = res.status.as_u16();
    let body = String::from_utf8_lossy(&res.body).into_owned();
    match status {
        200 if matches!(cmd, QaCommand::Vote(_)) => match serde_json::from_str(&body) {
            Ok(v) => ActionOutcome::Voted(v),
            Err(e) => ActionOutcome::Failed(format!("malformed vote reply: {e}")),
        },
        200 if body == "already asked" => ActionOutcome::AlreadyAsked,
        200 => ActionOutcome::Done,
        _ => {
            // The server's words reach a terminal: inert, like board text.
            let error = serde_json::from_str::<ErrorBody>(&body)
                .map(|b| crate::text::inert(&b.error))
                .unwrap_or_else(|_| format!("HTTP {status}"));
            // These refusals come with a notification on the stream.
            if matches!(status, 400 | 404 | 409 | 413) {
                ActionOutcome::Notified(status, error)
            } else {
                ActionOutcome::Failed(error)
            }
        }
    }
}

/// A running Q&A client for the UI. Dropping it stops its tasks.
pub struct QaClient {
    commands: mpsc::Sender<QaCommand>,
    tasks: Vec<JoinHandle<()>>,
}

impl QaClient {
    /// Starts following the board at `base`; events go to `events`.
    pub fn spawn(endpoint: impl Into<Endpoint>, events: mpsc::Sender<NetEvent>) -> QaClient {
        let endpoint: Endpoint = endpoint.into();
        let base = endpoint.base().to_string();
        let (items_tx, mut items_rx) = mpsc::channel::<StreamItem>(super::EVENT_CHANNEL_CAPACITY);
        let (id_tx, id_rx) = watch::channel(None);
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<QaCommand>(ACTION_QUEUE);
        let follow_task = {
            let endpoint = endpoint.clone();
            tokio::spawn(
                async move { follow(endpoint, Position::default(), items_tx, id_tx).await },
            )
        };
        let forward_task = {
            let events = events.clone();
            tokio::spawn(async move {
                while let Some(item) = items_rx.recv().await {
                    let ev = match item {
                        StreamItem::State(s) => NetEvent::State(Transport::Qa, s),
                        StreamItem::Event(raw) => match decode(&raw.event, &raw.data) {
                            Some(ev) => NetEvent::Qa(ev),
                            None => continue,
                        },
                    };
                    if events.send(ev).await.is_err() {
                        return;
                    }
                }
            })
        };
        let action_task = tokio::spawn(async move {
            let client = HttpClient::new(&endpoint, ACTION_TIMEOUT, CONNECT_TIMEOUT);
            while let Some(cmd) = cmd_rx.recv().await {
                let user = id_rx.borrow().clone();
                let outcome = match user {
                    Some(user) => act(&client, &base, &user, &cmd).await,
                    None => ActionOutcome::Failed("not connected to the board yet".into()),
                };
                let ev = match outcome {
                    ActionOutcome::Voted(v) => QaEvent::Voted(v),
                    ActionOutcome::AlreadyAsked => {
                        QaEvent::Notification("That question was already asked".into())
                    }
                    ActionOutcome::Failed(e) => QaEvent::Notification(e),
                    ActionOutcome::Done | ActionOutcome::Notified(..) => continue,
                };
                if events.send(NetEvent::Qa(ev)).await.is_err() {
                    return;
                }
            }
        });
        QaClient {
            commands: cmd_tx,
            tasks: vec![follow_task, forward_task, action_task],
        }
    }

    /// Queues an action; refused when too many are waiting.
    pub fn send(&self, cmd: QaCommand) -> Result<(), String> {
        self.commands
            .try_send(cmd)
            .map_err(|_| "too many actions waiting; try again".to_string())
    }
}

impl Drop for QaClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, event: &str, data: &str) -> RawEvent {
        RawEvent {
            id: Some(id.into()),
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn position_drops_replayed_duplicates_and_learns_the_login() {
        let mut p = Position::default();
        assert!(p.accept(&raw("5", "login", "\"abc\"")));
        assert_eq!(p.user.as_deref(), Some("abc"));
        assert!(p.accept(&raw("6", "message", "{}")));
        assert!(!p.accept(&raw("6", "message", "{}")));
        assert!(!p.accept(&raw("4", "message", "{}")));
        assert!(p.accept(&raw("9", "ping", "1")));
        assert_eq!(p.last_id.as_deref(), Some("9"));
        // A new connection that starts with a login restarts the position,
        // even with a lower id (a server whose store was replaced).
        p.new_connection = true;
        assert!(p.accept(&raw("2", "login", "\"other\"")));
        assert!(p.accept(&raw("3", "message", "{}")));
        // One that starts with replayed events is checked against it.
        p.new_connection = true;
        assert!(!p.accept(&raw("3", "message", "{}")));
    }

    #[test]
    fn messages_decode() {
        assert_eq!(
            decode("login", "\"u1\""),
            Some(QaEvent::Login { user: "u1".into() })
        );
        let q = decode(
            "message",
            r#"{"type":"questions","questions":{"b":"h1","a":"h2"},"meta":{"a":{"author":"h2","time":5,"votes":2,"answers":1}}}"#,
        );
        let Some(QaEvent::Questions(qs)) = q else {
            panic!("{q:?}")
        };
        assert_eq!(qs[0].text, "b");
        assert_eq!(qs[0].meta.author, "h1");
        assert_eq!((qs[1].meta.votes, qs[1].meta.answers), (2, 1));
        let a = decode(
            "message",
            r#"{"type":"answers","question":"b","answers":["x","y"]}"#,
        );
        assert!(
            matches!(a, Some(QaEvent::Answers { answers, .. }) if answers.len() == 2 && answers[0].meta.is_none())
        );
        assert_eq!(decode("ping", "1"), None);
        assert_eq!(decode("message", "{oops"), None);
        assert_eq!(decode("reset", "{}"), Some(QaEvent::Reset));
    }

    #[test]
    fn command_paths_are_one_encoded_segment() {
        assert_eq!(
            QaCommand::Ask("a/b c?".into()).path(),
            "/askquestion/a%2Fb%20c%3F"
        );
        assert_eq!(QaCommand::Vote("x".into()).path(), "/vote/x");
    }
}
