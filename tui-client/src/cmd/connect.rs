//! `rt-tui connect [URL[,URL…]] [--url URL]…`: the terminal UI.
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

/// How long the `/healthz` probe of the default address, or of each of
/// several URLs, may take (`--help` says 1 s).
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

Several URLs (URL1,URL2 and/or --url given more than once, positional ones
first): each is asked GET /healthz in turn (1 s each) and the first that
answers is used for the whole session; if none answers, the first is used and
retried. The status bar says which one was taken.

Layout: from 140×40 the four panes share a 2×2 grid; smaller terminals show the
focused pane under a tab bar (1-4, Tab or a click switch); below 60×16 the
screen asks for a larger terminal.

Keys: press ? in the UI for the full list (q quits).

Examples:
  rt-tui connect
  rt-tui connect http://127.0.0.1:9000
  rt-tui connect --url http://10.0.0.5:8080 --url http://127.0.0.1:8080";

/// `rt-tui connect` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = ABOUT)]
pub struct Args {
    /// Server URL (http:// or https://), e.g. http://127.0.0.1:8080, or
    /// several separated by commas (the first that answers is used).
    #[arg(value_name = "URL[,URL…]")]
    pub url: Option<String>,

    /// Server URL, as every other subcommand takes it; may be given more
    /// than once (the first that answers is used).
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,

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

/// The server URLs the user gave, checked and normalised, in order: the
/// positional list (`URL1,URL2`) first, then each `--url`. Repeats are
/// dropped; an empty entry or a bad URL is an error naming it.
pub fn server_urls(positional: Option<&str>, flags: &[String]) -> anyhow::Result<Vec<String>> {
    let listed = positional
        .into_iter()
        .flat_map(|list| list.split(','))
        .chain(flags.iter().map(String::as_str));
    let mut out: Vec<String> = Vec::new();
    for raw in listed {
        if raw.trim().is_empty() {
            bail!("an empty server URL was given (URLs are separated by single commas)");
        }
        let url = normalize_url(raw)?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Ok(out)
}

/// Does an rt server answer `GET /healthz` at `base`?
pub async fn server_answers(base: &str) -> bool {
    endpoint_answers(&Endpoint::new(base)).await
}

/// Does an rt server answer `GET /healthz` at `endpoint` (with its
/// certificates)? `/healthz` needs no token.
async fn endpoint_answers(endpoint: &Endpoint) -> bool {
    let client = HttpClient::new(endpoint, PROBE_TIMEOUT, PROBE_TIMEOUT);
    match client.get(&format!("{}/healthz", endpoint.base())).await {
        Ok(r) => r.status.is_success(),
        Err(_) => false,
    }
}

/// A random access token for an embedded server.
fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What [`discover`] found: the server to use, how to reach it, the
/// embedded one if this process started it, and a word for the status bar
/// about the choice.
struct Found {
    server: ServerInfo,
    endpoint: Endpoint,
    embedded: Option<rt_server::Server>,
    notice: Option<String>,
}

/// The server to use, and the embedded one if this process started it.
///
/// With one URL, that server, never an embedded one. With several, the
/// first that answers `/healthz` (else the first). Without, the server at
/// `embedded_config`'s address if it answers, else a new one started from
/// `embedded_config`.
///
/// The endpoint carries `access`'s token and certificates; an embedded
/// server requires that token, or a random one when none is given.
async fn discover(
    urls: Vec<String>,
    mut embedded_config: rt_server::Config,
    access: &super::server::ServerArgs,
) -> anyhow::Result<Found> {
    let remote = |url: &str, notice: Option<String>| -> anyhow::Result<Found> {
        let endpoint = access.endpoint(url)?;
        Ok(Found {
            server: ServerInfo {
                url: endpoint.base().to_string(),
                embedded: false,
            },
            endpoint,
            embedded: None,
            notice,
        })
    };
    match urls.as_slice() {
        [] => {}
        [one] => return remote(one, None),
        [first, ..] => {
            for url in &urls {
                if endpoint_answers(&access.endpoint(url)?).await {
                    let notice =
                        format!("using {url}, the first of {} URLs that answers", urls.len());
                    return remote(url, Some(notice));
                }
            }
            let notice = format!("none of the {} URLs answers; retrying {first}", urls.len());
            return remote(first, Some(notice));
        }
    }
    let default = format!("http://{}", embedded_config.bind);
    if server_answers(&default).await {
        return remote(&default, None);
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
    Ok(Found {
        server: ServerInfo {
            url: server.url(),
            embedded: true,
        },
        endpoint,
        embedded: Some(server),
        notice: None,
    })
}

/// Runs the UI until the user quits.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Bad URLs are refused before the terminal changes.
    let urls = server_urls(args.url.as_deref(), &args.urls)?;
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
    let Found {
        server,
        endpoint,
        embedded,
        notice: found,
    } = discover(urls.clone(), rt_server::Config::default(), &args.server).await?;
    // The editor fails over to the other URLs (nodes of one cluster) at
    // runtime, in the order given after the one in use.
    let chosen = urls.iter().position(|u| {
        args.server
            .endpoint(u)
            .is_ok_and(|e| e.base() == endpoint.base())
    });
    let doc_fallbacks: Vec<Endpoint> = match chosen {
        Some(i) => urls[i + 1..]
            .iter()
            .chain(&urls[..i])
            .filter_map(|u| args.server.endpoint(u).ok())
            .collect(),
        None => Vec::new(),
    };
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
            fallbacks: doc_fallbacks,
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
    // A settings problem outweighs which URL was taken.
    if let Some(n) = notice.or(found).or(browser_notice) {
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
                Cmd::Clipboard(text) => {
                    use std::io::Write;
                    let out = tui.terminal.backend_mut();
                    if let Err(e) = out
                        .write_all(rt_tui::clipboard::osc52(&text).as_bytes())
                        .and_then(|()| out.flush())
                    {
                        app.update(Msg::Notice(format!("cannot copy to the clipboard: {e}")));
                    }
                }
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
        let found = discover(
            Vec::new(),
            test_config(running.addr.port()),
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(found.server.url, running.url());
        assert!(!found.server.embedded && found.embedded.is_none());
        running.shutdown().await.unwrap();

        // Nothing answers: a server is started there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let found = discover(Vec::new(), test_config(port), &Default::default())
            .await
            .unwrap();
        assert!(found.server.embedded);
        assert_eq!(found.server.url, format!("http://127.0.0.1:{port}"));
        assert!(server_answers(&found.server.url).await);
        // It wants a random token, which the endpoint and browser URL carry.
        let token = found.endpoint.token().expect("a random token").to_string();
        assert_eq!(token.len(), 32);
        assert_eq!(
            found.endpoint.browser_url(),
            format!("http://127.0.0.1:{port}/?token={token}")
        );
        let poll = format!("{}/?symbol=IBM", found.server.url);
        let anonymous = HttpClient::new(
            &Endpoint::new(&found.server.url),
            PROBE_TIMEOUT,
            PROBE_TIMEOUT,
        );
        assert_eq!(anonymous.get(&poll).await.unwrap().status, 401);
        let with_token = HttpClient::new(&found.endpoint, PROBE_TIMEOUT, PROBE_TIMEOUT);
        assert_eq!(with_token.get(&poll).await.unwrap().status, 200);
        found.embedded.unwrap().shutdown().await.unwrap();

        // An explicit URL is taken as is, even when nothing answers there.
        let urls = server_urls(Some(&format!("http://127.0.0.1:{port}/")), &[]).unwrap();
        let found = discover(urls, test_config(port), &Default::default())
            .await
            .unwrap();
        assert_eq!(found.server.url, format!("http://127.0.0.1:{port}"));
        assert!(!found.server.embedded && found.embedded.is_none());
        assert!(found.notice.is_none());
        assert!(!server_answers(&found.server.url).await);
    }

    #[tokio::test]
    async fn another_program_on_the_default_address_is_a_clear_error() {
        // Something holds the port but is not an rt server.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let Err(err) = discover(Vec::new(), test_config(port), &Default::default()).await else {
            panic!("started a server on a taken port");
        };
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("no rt server answers at http://127.0.0.1:{port}")),
            "{text}"
        );
        assert!(text.contains("cannot listen on"), "{text}");
    }

    #[test]
    fn urls_come_positional_comma_separated_or_from_repeated_flags() {
        let flags = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(server_urls(None, &[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            server_urls(Some("http://127.0.0.1:9000/"), &[]).unwrap(),
            ["http://127.0.0.1:9000"]
        );
        assert_eq!(
            server_urls(None, &flags(&["http://a:1", "http://b:2/"])).unwrap(),
            ["http://a:1", "http://b:2"]
        );
        // Positional ones first, then the flags; repeats count once.
        assert_eq!(
            server_urls(
                Some("http://a:1, http://b:2"),
                &flags(&["http://c:3", "http://a:1/"])
            )
            .unwrap(),
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        let err =
            |p: Option<&str>, f: &[&str]| format!("{:#}", server_urls(p, &flags(f)).unwrap_err());
        assert!(err(Some("http://a:1,,http://b:2"), &[]).contains("empty server URL"));
        assert!(err(Some("http://a:1,"), &[]).contains("empty server URL"));
        assert!(err(None, &["ftp://a:1"]).contains("only http:// and https://"));
        assert_eq!(
            server_urls(None, &flags(&["https://a:1/"])).unwrap(),
            ["https://a:1"]
        );
        assert!(err(Some("http://a:1,b:2"), &[]).contains("\"b:2\""));
    }

    #[test]
    fn connect_takes_url_as_a_flag_and_positionally() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |argv: &[&str]| {
            let args = Cli::try_parse_from(std::iter::once("connect").chain(argv.iter().copied()))
                .unwrap()
                .args;
            server_urls(args.url.as_deref(), &args.urls).unwrap()
        };
        assert_eq!(parse(&["--url", "http://a:1"]), ["http://a:1"]);
        assert_eq!(parse(&["http://a:1"]), ["http://a:1"]);
        assert_eq!(
            parse(&[
                "--url",
                "http://a:1",
                "--url=http://b:2",
                "http://c:3,http://d:4"
            ]),
            ["http://c:3", "http://d:4", "http://a:1", "http://b:2"]
        );
    }

    #[tokio::test]
    async fn with_several_urls_the_first_that_answers_is_used() {
        let closed = format!(
            "http://127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        );
        let running = rt_server::spawn(rt_server::Config::for_tests())
            .await
            .unwrap();
        let unused = test_config(0);
        let found = discover(
            vec![closed.clone(), running.url()],
            unused.clone(),
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(found.server.url, running.url());
        assert!(found.embedded.is_none());
        let notice = found.notice.unwrap();
        assert!(notice.contains(&running.url()), "{notice}");
        running.shutdown().await.unwrap();
        // None answers: the first is used (and retried by the clients).
        let other = "http://127.0.0.1:9".to_string();
        let found = discover(vec![closed.clone(), other], unused, &Default::default())
            .await
            .unwrap();
        assert_eq!(found.server.url, closed);
        assert!(found.notice.unwrap().contains("none of the 2 URLs answers"));
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
