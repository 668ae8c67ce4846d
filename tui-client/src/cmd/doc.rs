//! `rt-tui doc …`: read, edit and follow a collaborative document from
//! scripts, over the same ShareDB session as the text pane.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use rt_protocol::delta::{Delta, Insert};
use rt_tui::net::doc::{DocChange, DocSession, ws_url};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::connect::DEFAULT_URL;
use rt_tui::net::Endpoint;

/// How long connecting and loading the document may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to acknowledge an edit.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

const OUTPUT: &str = "\
DOC is collection/id (default examples/richtext). Positions and lengths count
UTF-16 code units, as JavaScript and the wire protocol do.

Output (stdout, JSON):
  get     {\"v\":7,\"text\":\"Hi!\\n\",\"ops\":[{\"insert\":\"Hi!\\n\"}]}
          (ops keep the formatting; text shows embeds as U+FFFC)
  insert  {\"v\":8}  the version after the edit was acknowledged
  delete  {\"v\":8}
  watch   one line per change by someone else: {\"v\":7,\"src\":\"…\",\"op\":{\"ops\":[…]}}

Exit status: 0 on success; 1 when the server cannot be reached, the document
does not exist or the server refuses the edit; 2 for bad arguments.

Examples:
  rt-tui doc get
  rt-tui doc insert examples/richtext --at 0 'Hello '
  rt-tui doc delete examples/richtext --at 0 --len 6
  rt-tui doc watch --count 5 | jq -c .op";

/// `rt-tui doc` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = OUTPUT)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,

    /// Server URL (http:// or https://). Several nodes of one cluster,
    /// comma-separated: the first that answers is used, and an edit or a
    /// watch goes on with the next one when its node goes away (edits not
    /// yet acknowledged are resent under their original src and seq).
    #[arg(long, global = true, default_value = DEFAULT_URL)]
    pub url: String,

    #[command(flatten)]
    pub server: super::server::ServerArgs,
}

/// What to do with the document.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print the document.
    Get {
        #[arg(default_value = "examples/richtext")]
        doc: String,
    },
    /// Insert TEXT at position N.
    Insert {
        doc: String,
        /// Where to insert, in UTF-16 units from the start.
        #[arg(long, value_name = "N")]
        at: usize,
        /// The text to insert (after `--` if it starts with a dash).
        text: String,
    },
    /// Delete L units at position N.
    Delete {
        doc: String,
        /// Where the deletion starts, in UTF-16 units from the start.
        #[arg(long, value_name = "N")]
        at: usize,
        /// How many UTF-16 units to delete.
        #[arg(long, value_name = "L")]
        len: usize,
    },
    /// Print every change others make, as JSON lines.
    Watch {
        #[arg(default_value = "examples/richtext")]
        doc: String,
        /// Stop after this many changes.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connection with a subscribed session, and the nodes to fail over to.
struct Live {
    ws: Ws,
    session: DocSession,
    endpoints: Vec<Endpoint>,
    /// The endpoint `ws` is connected to.
    at: usize,
}

/// Connects to the editor's socket at `endpoint`.
async fn connect_ws(endpoint: &Endpoint) -> anyhow::Result<Ws> {
    let base = endpoint.base();
    let url = ws_url(base);
    tokio::time::timeout(LOAD_TIMEOUT, endpoint.ws_connect(&url, None))
        .await
        .with_context(|| format!("cannot reach {base} in time"))?
        .with_context(|| format!("cannot reach {base}"))
}

fn split_doc(doc: &str) -> anyhow::Result<(&str, &str)> {
    match doc.split_once('/') {
        Some((c, d)) if !c.is_empty() && !d.is_empty() => Ok((c, d)),
        _ => bail!("{doc:?}: expected collection/id, e.g. examples/richtext"),
    }
}

impl Live {
    /// Opens `doc` on the first of `endpoints` that answers.
    async fn open(endpoints: Vec<Endpoint>, doc: &str) -> anyhow::Result<Live> {
        let (c, d) = split_doc(doc)?;
        let mut last = None;
        for at in 0..endpoints.len() {
            match connect_ws(&endpoints[at]).await {
                Ok(ws) => {
                    let mut live = Live {
                        ws,
                        session: DocSession::new(c, d),
                        endpoints,
                        at,
                    };
                    live.load().await?;
                    return Ok(live);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no server URL given")))
    }

    /// The connection broke: goes on with the next endpoints in turn (the
    /// session resends what is not acknowledged). Fails when none answers.
    async fn fail_over(&mut self, why: anyhow::Error) -> anyhow::Result<()> {
        self.session.on_close();
        for step in 1..self.endpoints.len() {
            let at = (self.at + step) % self.endpoints.len();
            if let Ok(ws) = connect_ws(&self.endpoints[at]).await {
                self.ws = ws;
                self.at = at;
                return self.load().await;
            }
        }
        Err(why)
    }

    /// Handshake and subscription on a fresh connection.
    async fn load(&mut self) -> anyhow::Result<()> {
        let live = self;
        let hello = live.session.on_open();
        live.send(hello).await?;
        tokio::time::timeout(LOAD_TIMEOUT, async {
            while !live.session.is_live() {
                if let Some(DocChange::Error(e)) = live.next().await?.1 {
                    bail!("{e}");
                }
            }
            Ok(())
        })
        .await
        .context("the document did not load in time")??;
        Ok(())
    }

    /// The next server message, failing over when the connection breaks.
    async fn next_or_fail_over(&mut self) -> anyhow::Result<(Value, Option<DocChange>)> {
        loop {
            match self.next().await {
                Ok(got) => return Ok(got),
                Err(e) if self.endpoints.len() > 1 => self.fail_over(e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    async fn send(&mut self, msgs: Vec<Value>) -> anyhow::Result<()> {
        for m in msgs {
            self.ws
                .send(Message::Text(m.to_string().into()))
                .await
                .context("the connection to the server broke")?;
        }
        Ok(())
    }

    /// The next server message, fed through the session.
    async fn next(&mut self) -> anyhow::Result<(Value, Option<DocChange>)> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let Ok(msg) = serde_json::from_str::<Value>(t.as_str()) else {
                        continue;
                    };
                    let (out, change) = self.session.on_message(&msg);
                    self.send(out).await?;
                    return Ok((msg, change));
                }
                Some(Ok(Message::Close(_))) | None => bail!("the server closed the connection"),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("the connection to the server broke: {e}"),
            }
        }
    }

    fn require_doc(&self) -> anyhow::Result<()> {
        if self.session.document().is_none() {
            bail!(
                "{}/{} does not exist",
                self.session.collection,
                self.session.id
            );
        }
        Ok(())
    }

    /// Submits `op` and waits for the server's acknowledgement.
    async fn edit(&mut self, op: Delta) -> anyhow::Result<u64> {
        self.require_doc()?;
        let out = self
            .session
            .submit(op)
            .map_err(|e| anyhow::anyhow!("invalid edit: {e}"))?;
        if let Err(e) = self.send(out).await {
            if self.endpoints.len() < 2 {
                return Err(e);
            }
            self.fail_over(e).await?;
        }
        tokio::time::timeout(ACK_TIMEOUT, async {
            while self.session.has_pending() {
                if let Some(DocChange::Error(e)) = self.next_or_fail_over().await?.1 {
                    bail!("the server refused the edit: {e}");
                }
            }
            Ok(())
        })
        .await
        .context("the server did not acknowledge the edit in time")??;
        Ok(self.session.version().unwrap_or(0))
    }
}

fn print(line: &Value) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        // A closed pipe (`| head -1`) is a normal way to stop.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Runs one `doc` action.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base: Vec<Endpoint> = args
        .url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| args.server.endpoint(u))
        .collect::<anyhow::Result<_>>()?;
    match args.action {
        Action::Get { doc } => {
            let live = Live::open(base, &doc).await?;
            live.require_doc()?;
            let document = live.session.document().expect("checked above");
            print(&json!({
                "v": live.session.version(),
                "text": document.text(),
                "ops": document.to_delta().to_value()["ops"],
            }))?;
        }
        Action::Insert { doc, at, text } => {
            let mut live = Live::open(base, &doc).await?;
            let mut op = Delta::new();
            op.retain(at, None);
            op.insert(Insert::from(text), None);
            let v = live.edit(op).await?;
            print(&json!({"v": v}))?;
        }
        Action::Delete { doc, at, len } => {
            let mut live = Live::open(base, &doc).await?;
            let mut op = Delta::new();
            op.retain(at, None);
            op.delete(len);
            let v = live.edit(op).await?;
            print(&json!({"v": v}))?;
        }
        Action::Watch { doc, count } => {
            let mut live = Live::open(base, &doc).await?;
            let mut printed = 0;
            loop {
                let (msg, change) = live.next_or_fail_over().await?;
                if let Some(DocChange::Remote(op)) = change {
                    let line = json!({"v": msg["v"], "src": msg["src"], "op": op.to_value()});
                    if !print(&line)? {
                        break;
                    }
                    printed += 1;
                    if count.is_some_and(|n| printed >= n) {
                        break;
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
