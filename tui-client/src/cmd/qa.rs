//! `rt-tui qa …`: the Q&A board for scripts.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use rt_protocol::qa;
use rt_protocol::sse::Parser;
use rt_tui::net::ConnState;
use rt_tui::net::qa::{ActionOutcome, Position, QaCommand, StreamItem, act, follow};
use tokio::sync::{mpsc, watch};

use super::connect::DEFAULT_URL;
use rt_tui::net::Endpoint;
use rt_tui::net::http::HttpClient;

/// How long logging in for a one-off action may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

const ABOUT: &str = "\
Subcommands:
  listen                 print every event of the board as a JSON line:
                         {\"id\":\"12\",\"event\":\"message\",\"data\":{\"type\":\"questions\",…}}
                         (data is parsed JSON where it is JSON; event is login,
                         message, ping, meta or reset). Reconnects with
                         Last-Event-ID and the same identity; no event twice.
  ask TEXT               ask a question
  answer --question Q TEXT
                         follow question Q and answer it
  vote Q                 toggle your vote on Q; prints {\"question\",\"votes\",\"voted\"}

Identity: without --user (or RT_QA_USER) each run logs in as a new user.
`listen` prints the id it got in its first (login) line; pass it to --user to
act as that user.

Exit status: 0 on success; 1 when the server cannot be reached or refuses the
action (the reason goes to stderr); 2 for bad arguments.

Examples:
  rt-tui qa listen --count 5
  rt-tui qa ask 'Why is the sky blue?'
  rt-tui qa answer --question 'Why is the sky blue?' 'Rayleigh scattering'
  rt-tui qa vote 'Why is the sky blue?' --url http://127.0.0.1:9000";

/// `rt-tui qa` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = ABOUT)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,

    /// Server URL (http:// or https://).
    #[arg(long, global = true, default_value = DEFAULT_URL)]
    pub url: String,

    #[command(flatten)]
    pub server: super::server::ServerArgs,

    /// Act as this user (the id from a login event).
    #[arg(long, global = true, env = "RT_QA_USER", value_name = "ID")]
    pub user: Option<String>,
}

/// What to do on the board.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the board's events as JSON lines.
    Listen {
        /// Stop after this many events (pings included).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Ask a question.
    Ask { text: String },
    /// Answer a question (it is selected first).
    Answer {
        #[arg(long, value_name = "Q")]
        question: String,
        text: String,
    },
    /// Toggle your vote on a question.
    Vote { question: String },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base = args.server.endpoint(&args.url)?;
    match args.action {
        Action::Listen { count } => listen(&base, args.user, count).await,
        Action::Ask { text } => one_off(&base, args.user, &[QaCommand::Ask(text)]).await,
        Action::Answer { question, text } => {
            one_off(
                &base,
                args.user,
                &[QaCommand::Select(question), QaCommand::Answer(text)],
            )
            .await
        }
        Action::Vote { question } => one_off(&base, args.user, &[QaCommand::Vote(question)]).await,
    }
}

async fn listen(
    base: &Endpoint,
    user: Option<String>,
    count: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let (tx, mut rx) = mpsc::channel(256);
    let (id_tx, _id_rx) = watch::channel(None);
    let position = Position {
        user,
        ..Position::default()
    };
    let endpoint = base.clone();
    let task = tokio::spawn(async move { follow(endpoint, position, tx, id_tx).await });
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    let mut connected_once = false;
    let result = loop {
        let Some(item) = rx.recv().await else {
            break Ok(ExitCode::FAILURE);
        };
        match item {
            StreamItem::State(ConnState::Connected) => connected_once = true,
            StreamItem::State(ConnState::Retrying { error, .. }) => {
                eprintln!("rt-tui: {error}");
                if !connected_once {
                    break Ok(ExitCode::FAILURE);
                }
            }
            StreamItem::State(_) => {}
            StreamItem::Event(ev) => {
                let line = event_line(&ev);
                let mut out = stdout.lock();
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break Ok(ExitCode::SUCCESS);
                    }
                    break Err(e).context("cannot write to stdout");
                }
                printed += 1;
                if count.is_some_and(|n| printed >= n) {
                    break Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    task.abort();
    result
}

/// `{"id":…,"event":…,"data":…}` with the data as sent when it is JSON
/// (keeping the server's key order), as a JSON string otherwise.
fn event_line(ev: &rt_tui::net::qa::RawEvent) -> String {
    let is_json = serde_json::from_str::<serde::de::IgnoredAny>(&ev.data).is_ok();
    let data = if is_json {
        ev.data.clone()
    } else {
        serde_json::Value::String(ev.data.clone()).to_string()
    };
    format!(
        "{{\"id\":{},\"event\":{},\"data\":{data}}}",
        serde_json::to_string(&ev.id).expect("serializes"),
        serde_json::Value::String(ev.event.clone()),
    )
}

/// A new identity: opens the stream just long enough to read the login.
async fn login(client: &HttpClient, base: &str) -> anyhow::Result<String> {
    use http_body_util::BodyExt;
    let fut = async {
        let (status, mut body) = client
            .open(&format!("{base}/login"))
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        if status != 200 {
            bail!("{base} answered HTTP {status} to /login");
        }
        let mut parser = Parser::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the login stream failed")?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            for ev in parser.feed(&chunk) {
                if ev.event == qa::LOGIN_EVENT {
                    return serde_json::from_str::<String>(&ev.data)
                        .context("malformed login event");
                }
            }
        }
        bail!("{base} closed the stream before the login event")
    };
    tokio::time::timeout(LOGIN_TIMEOUT, fut)
        .await
        .with_context(|| format!("{base} sent no login event in time"))?
}

async fn one_off(
    endpoint: &Endpoint,
    user: Option<String>,
    cmds: &[QaCommand],
) -> anyhow::Result<ExitCode> {
    let base = endpoint.base();
    let client = HttpClient::new(
        endpoint,
        rt_tui::net::qa::ACTION_TIMEOUT,
        rt_tui::net::qa::CONNECT_TIMEOUT,
    );
    let user = match user {
        Some(u) => u,
        None => login(&client, base).await?,
    };
    let mut last = serde_json::json!({"ok": true});
    for cmd in cmds {
        match act(&client, base, &user, cmd).await {
            ActionOutcome::Done => {}
            ActionOutcome::AlreadyAsked => {
                last = serde_json::json!({"ok": true, "already_asked": true})
            }
            ActionOutcome::Voted(v) => last = serde_json::to_value(&v)?,
            ActionOutcome::Notified(_, error) | ActionOutcome::Failed(error) => {
                eprintln!("rt-tui: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    println!("{last}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_tui::net::qa::RawEvent;

    #[test]
    fn event_lines_keep_json_data_as_sent() {
        let ev = RawEvent {
            id: Some("7".into()),
            event: "message".into(),
            data: r#"{"type":"questions","questions":{"b":"x","a":"y"}}"#.into(),
        };
        assert_eq!(
            event_line(&ev),
            r#"{"id":"7","event":"message","data":{"type":"questions","questions":{"b":"x","a":"y"}}}"#
        );
        let ev = RawEvent {
            id: None,
            event: "x".into(),
            data: "not \"json".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&event_line(&ev)).unwrap();
        assert_eq!(v["data"], "not \"json");
        assert!(v["id"].is_null());
    }
}
