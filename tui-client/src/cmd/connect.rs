//! `rt-tui connect [URL]`: the terminal UI.
//!
//! One `select!` loop owns the [`App`]: terminal events, network events and a
//! frame tick that redraws only when something changed. Commands returned by
//! `App::update` are carried out here (quit, follow and save the watchlist).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use rt_tui::app::{App, Cmd, Msg, ServerInfo};
use rt_tui::net::doc::{DocClient, DocClientConfig};
use rt_tui::net::draw::DrawClient;
use rt_tui::net::http::HttpClient;
use rt_tui::net::qa::QaClient;
use rt_tui::net::ticker::{TickerClient, TickerClientConfig, TickerTransport};
use rt_tui::net::{EVENT_CHANNEL_CAPACITY, Endpoint, NetEvent, Transport};
use rt_tui::panes::Pane;
use rt_tui::panes::canvas::CanvasPane;
use rt_tui::panes::qa::QaPane;
use rt_tui::panes::text::TextPane;
use rt_tui::panes::ticker::TickerPane;
use rt_tui::settings::{self, Settings};
use rt_tui::ui;
use rt_tui::ui::theme::Theme;
use tokio::sync::mpsc;

use crate::terminal;

/// Where a server is looked for when no URL is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How long the `/healthz` probe of the default address may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the loop wakes to redraw if something changed.
const FRAME: Duration = Duration::from_millis(50);

/// How long an embedded server gets to shut down on exit, beyond its own
/// grace period for connections stuck mid-request.
const SERVER_SHUTDOWN_SLACK: Duration = Duration::from_secs(2);

const ABOUT: &str = "\
Without URL: uses the server at http://127.0.0.1:8080 if one answers, otherwise
starts one inside this process on that address (default data file) and shows
the address to open in a browser. The embedded server requires an access token
(--token / RT_TOKEN, or a random one), so other local users cannot use it; the
browser address carries it (?token=). With URL: connects there and never starts
a server; while it cannot be reached the status bar says so and retries.

Keys: press ? in the UI for the full list (q quits).";

/// `rt-tui connect` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = ABOUT)]
pub struct Args {
    /// Server URL (http:// or https://), e.g. http://127.0.0.1:8080.
    pub url: Option<String>,

    #[command(flatten)]
    pub server: super::server::ServerArgs,

    /// How the ticker pane gets quotes.
    #[arg(long, value_enum, default_value_t = TickerTransport::Poll)]
    pub ticker_transport: TickerTransport,

    /// Settings file (watchlist). Default: rt/tui.json in the user's config
    /// directory.
    #[arg(long, env = settings::CONFIG_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The document the text pane edits, as collection/id.
    #[arg(
        long,
        default_value = "examples/richtext",
        value_name = "COLLECTION/ID"
    )]
    pub doc: String,

    /// Write logs to this file (the screen belongs to the UI); `RUST_LOG`
    /// sets the level, default info.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

impl Args {
    fn doc_collection(&self) -> &str {
        self.doc.split_once('/').map_or("examples", |(c, _)| c)
    }

    fn doc_id(&self) -> &str {
        self.doc
            .split_once('/')
            .map_or(self.doc.as_str(), |(_, d)| d)
    }
}

/// Sends logs to `path`, if given; without it nothing is logged.
fn init_logging(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

/// Checks and normalises a server URL: `http(s)://host[:port]`, no
/// trailing `/`.
pub fn normalize_url(raw: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(raw.trim()).with_context(|| format!("{raw:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{raw:?}: only http:// and https:// URLs are supported");
    }
    if url.host_str().is_none() {
        bail!("{raw:?} has no host");
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Does an rt server answer `GET /healthz` at `base`?
pub async fn server_answers(base: &str) -> bool {
    let client = HttpClient::new(&Endpoint::new(base), PROBE_TIMEOUT, PROBE_TIMEOUT);
    match client.get(&format!("{base}/healthz")).await {
        Ok(r) => r.status.is_success(),
        Err(_) => false,
    }
}

/// A random access token for an embedded server.
fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server to use, and the embedded one if this process started it.
///
/// With `url`, that server, never an embedded one. Without, the server at
/// `default`'s address if it answers, else a new one started from
/// `embedded_config` (whose `bind` is that address).
///
/// The endpoint carries `access`'s token; an embedded server requires that
/// token, or a random one when none is given.
async fn discover(
    url: Option<String>,
    mut embedded_config: rt_server::Config,
    access: &super::server::ServerArgs,
) -> anyhow::Result<(ServerInfo, Option<rt_server::Server>, Endpoint)> {
    if let Some(raw) = url {
        let endpoint = access.endpoint(&raw)?;
        return Ok((
            ServerInfo {
                url: endpoint.base().to_string(),
                embedded: false,
            },
            None,
            endpoint,
        ));
    }
    let default = format!("http://{}", embedded_config.bind);
    if server_answers(&default).await {
        return Ok((
            ServerInfo {
                url: default.clone(),
                embedded: false,
            },
            None,
            access.endpoint(&default)?,
        ));
    }
    let token = access
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(random_token);
    embedded_config.guard.token = Some(token.clone());
    embedded_config.guard.token_file = None;
    let server = rt_server::spawn(embedded_config).await.with_context(|| {
        format!("no rt server answers at {default} and an embedded server could not start")
    })?;
    let endpoint = Endpoint::new(server.url()).with_token(Some(token));
    Ok((
        ServerInfo {
            url: server.url(),
            embedded: true,
        },
        Some(server),
        endpoint,
    ))
}

/// Runs the UI until the user quits.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log.as_deref())?;
    let (doc_collection, doc_id) = (args.doc_collection().to_string(), args.doc_id().to_string());
    let (doc_collection, doc_id) = (doc_collection.as_str(), doc_id.as_str());
    let path = args
        .config
        .or_else(settings::default_path)
        .context("no configuration directory is known; pass --config PATH")?;
    // A settings file that cannot be read is left alone: the session uses the
    // defaults and does not overwrite it.
    let (settings, save_path, notice) = match Settings::load(&path) {
        Ok(s) => (s, Some(path), None),
        Err(e) => (
            Settings::default(),
            None,
            Some(format!(
                "{e}; using the default watchlist (changes are not saved)"
            )),
        ),
    };
    // rt_server's default bind address is DEFAULT_URL's.
    let (server, embedded, endpoint) =
        discover(args.url, rt_server::Config::default(), &args.server).await?;
    let browser_notice = embedded.as_ref().map(|_| {
        format!(
            "embedded server: open {} in a browser",
            endpoint.browser_url()
        )
    });
    if let Some(n) = &browser_notice {
        // Also left on the screen after the UI exits.
        eprintln!("rt-tui: {n}");
    }

    let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let ticker = TickerClient::spawn(
        TickerClientConfig {
            base_url: endpoint.clone(),
            transport: args.ticker_transport,
        },
        settings.watchlist.clone(),
        tx.clone(),
    );
    let draw = DrawClient::spawn(&endpoint, Default::default(), tx.clone());
    let qa = QaClient::spawn(&endpoint, tx.clone());
    let panes: Vec<Box<dyn Pane>> = vec![
        Box::new(TickerPane::new(
            settings.watchlist.clone(),
            args.ticker_transport,
        )),
        Box::new(CanvasPane::new()),
        Box::new(QaPane::new()),
        Box::new(TextPane::new(doc_collection, doc_id)),
    ];
    let doc = DocClient::spawn(
        DocClientConfig {
            base_url: endpoint.clone(),
        },
        tx,
    );
    let mut app = App::new(
        server,
        panes,
        &[
            Transport::Ticker,
            Transport::Draw,
            Transport::Qa,
            Transport::Doc,
        ],
        Theme::from_env(),
        Instant::now(),
    );
    if let Some(n) = notice.or(browser_notice) {
        app.update(Msg::Notice(n));
    }

    let result = match terminal::enter() {
        Ok(mut tui) => {
            let clients = Clients {
                ticker: &ticker,
                draw: &draw,
                qa: &qa,
                doc: &doc,
            };
            let r = event_loop(&mut tui, &mut app, rx, clients, save_path.as_deref()).await;
            drop(tui);
            r
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot set up the terminal")),
    };
    drop(ticker);
    drop(draw);
    drop(qa);
    drop(doc);
    if let Some(server) = embedded
        && tokio::time::timeout(
            Duration::from_millis(server.state.config.shutdown_grace_ms) + SERVER_SHUTDOWN_SLACK,
            server.shutdown(),
        )
        .await
        .is_err()
    {
        eprintln!("rt-tui: the embedded server did not stop in time");
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// The network clients commands go to.
struct Clients<'a> {
    ticker: &'a TickerClient,
    draw: &'a DrawClient,
    qa: &'a QaClient,
    doc: &'a DocClient,
}

async fn event_loop(
    tui: &mut terminal::Tui,
    app: &mut App,
    mut net: mpsc::Receiver<NetEvent>,
    clients: Clients<'_>,
    save_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let size = tui.terminal.size()?;
    app.update(Msg::Resize(size.width, size.height));
    loop {
        #[cfg(unix)]
        let signal = async {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
        };
        #[cfg(not(unix))]
        let signal = std::future::pending::<()>();
        let cmds = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => app.update(Msg::Key(k)),
                Some(Ok(Event::Mouse(m))) => app.update(Msg::Mouse(m)),
                Some(Ok(Event::Paste(text))) => app.update(Msg::Paste(text)),
                Some(Ok(Event::Resize(w, h))) => app.update(Msg::Resize(w, h)),
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("cannot read the terminal")),
                None => return Ok(()),
            },
            Some(ev) = net.recv() => app.update(Msg::Net(ev)),
            _ = frame.tick() => {
                app.update(Msg::Tick(Instant::now()));
                if app.take_dirty() {
                    tui.terminal.draw(|f| ui::draw(f, app))?;
                }
                Vec::new()
            }
            _ = signal => vec![Cmd::Quit],
        };
        for cmd in cmds {
            match cmd {
                Cmd::Quit => return Ok(()),
                Cmd::Qa(action) => {
                    if let Err(e) = clients.qa.send(action) {
                        app.update(Msg::Notice(e));
                    }
                }
                Cmd::Doc(msgs) => clients.doc.send(msgs),
                Cmd::Watchlist(list) => {
                    clients.ticker.set_watchlist(list.clone());
                    if let Some(path) = save_path
                        && let Err(e) = (Settings { watchlist: list }).save(path)
                    {
                        app.update(Msg::Notice(e.to_string()));
                    }
                }
                Cmd::Draw(c) => clients.draw.send(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalised() {
        assert_eq!(
            normalize_url("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            normalize_url(" http://localhost:8080 ").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalize_url("https://example.invalid/").unwrap(),
            "https://example.invalid"
        );
        assert!(normalize_url("ftp://example.invalid").is_err());
        assert!(normalize_url("127.0.0.1:8080").is_err());
        assert!(normalize_url("not a url").is_err());
    }

    #[test]
    fn the_embedded_server_binds_the_default_address() {
        assert_eq!(
            format!("http://{}", rt_server::Config::default().bind),
            DEFAULT_URL
        );
    }

    fn test_config(port: u16) -> rt_server::Config {
        let mut c = rt_server::Config::for_tests();
        c.bind.set_port(port);
        c
    }

    #[tokio::test]
    async fn discovery_uses_a_running_server_or_starts_one_but_never_with_a_url() {
        // A server answers at the "default" address: it is used.
        let running = rt_server::spawn(rt_server::Config::for_tests())
            .await
            .unwrap();
        let (info, embedded, _) =
            discover(None, test_config(running.addr.port()), &Default::default())
                .await
                .unwrap();
        assert_eq!(info.url, running.url());
        assert!(!info.embedded && embedded.is_none());
        running.shutdown().await.unwrap();

        // Nothing answers: a server is started there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (info, embedded, endpoint) = discover(None, test_config(port), &Default::default())
            .await
            .unwrap();
        assert!(info.embedded);
        assert_eq!(info.url, format!("http://127.0.0.1:{port}"));
        assert!(server_answers(&info.url).await);
        // It wants a random token, which the endpoint and browser URL carry.
        let token = endpoint.token().expect("a random token").to_string();
        assert_eq!(token.len(), 32);
        assert_eq!(
            endpoint.browser_url(),
            format!("http://127.0.0.1:{port}/?token={token}")
        );
        let poll = format!("{}/?symbol=IBM", info.url);
        let anonymous = HttpClient::new(&Endpoint::new(&info.url), PROBE_TIMEOUT, PROBE_TIMEOUT);
        assert_eq!(anonymous.get(&poll).await.unwrap().status, 401);
        let with_token = HttpClient::new(&endpoint, PROBE_TIMEOUT, PROBE_TIMEOUT);
        assert_eq!(with_token.get(&poll).await.unwrap().status, 200);
        embedded.unwrap().shutdown().await.unwrap();

        // An explicit URL is taken as is, even when nothing answers there.
        let (info, embedded, _) = discover(
            Some(format!("http://127.0.0.1:{port}/")),
            test_config(port),
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(info.url, format!("http://127.0.0.1:{port}"));
        assert!(!info.embedded && embedded.is_none());
        assert!(!server_answers(&info.url).await);
    }

    #[tokio::test]
    async fn another_program_on_the_default_address_is_a_clear_error() {
        // Something holds the port but is not an rt server.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let Err(err) = discover(None, test_config(port), &Default::default()).await else {
            panic!("started a server on a taken port");
        };
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("no rt server answers at http://127.0.0.1:{port}")),
            "{text}"
        );
        assert!(text.contains("cannot listen on"), "{text}");
    }

    #[tokio::test]
    async fn probe_says_no_when_nothing_listens() {
        // Bind and drop to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!server_answers(&format!("http://127.0.0.1:{port}")).await);
    }
}
