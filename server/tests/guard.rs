//! Origin checks and the access token, over raw HTTP and WebSockets: every
//! protocol refuses a foreign `Origin`, and with a token set every endpoint
//! but `/healthz` wants it by header, query or cookie.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rt_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(5);
const EVIL: &str = "http://evil.example";
const TOKEN: &str = "t0ken-for-the-guard-tests";

/// An answer's status line and headers, and what of its body came within
/// the read (a stream's body never ends; its head is enough).
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends `head` (a request without its final blank line) and reads the
/// answer's head and whatever body follows within a short while.
async fn raw(server: &Server, head: &str) -> Answer {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let req = format!("{head}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let end = loop {
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = got[end + 4..].to_vec();
    if (status != 101 && status != 200) || head.contains("content-length") {
        // A plain answer: read to its end (the connection closes).
        let _ = timeout(Duration::from_millis(500), tcp.read_to_end(&mut body)).await;
    }
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn get(path: &str, host: &str, extra: &[&str]) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}");
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    head
}

fn upgrade(path: &str, host: &str, extra: &[&str]) -> String {
    let mut headers = vec![
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    headers.extend_from_slice(extra);
    // `raw` adds `Connection: close`; an upgrade's own header comes first.
    get(path, host, &headers)
}

fn post(path: &str, host: &str, extra: &[&str]) -> String {
    let mut head = get(path, host, extra).replacen("GET", "POST", 1);
    head.push_str("\r\nContent-Length: 0");
    head
}

/// Each protocol's request, with `extra` headers.
fn every_protocol(host: &str, extra: &[&str]) -> Vec<(&'static str, String)> {
    vec![
        ("editor WebSocket", upgrade("/", host, extra)),
        (
            "socket.io polling",
            get("/socket.io/?EIO=4&transport=polling", host, extra),
        ),
        (
            "socket.io websocket",
            upgrade("/socket.io/?EIO=4&transport=websocket", host, extra),
        ),
        ("Q&A stream", get("/login", host, extra)),
        ("Q&A action", post("/askquestion/hello", host, extra)),
        ("ticker poll", get("/?symbol=IBM", host, extra)),
    ]
}

async fn server_with(f: impl FnOnce(&mut Config)) -> Server {
    let mut c = Config::for_tests();
    f(&mut c);
    common::server_with(c).await
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_protocol() {
    let server = common::server().await;
    let host = server.addr.to_string();
    let origin = format!("Origin: {EVIL}");
    let cookie = "Cookie: _sse_user_id_=abc";
    for (what, req) in every_protocol(&host, &[&origin, cookie]) {
        let a = raw(&server, &req).await;
        assert_eq!(a.status, 403, "{what}: {}", a.head);
        assert!(
            a.body.contains("origin http://evil.example may not"),
            "{what}: {}",
            a.body
        );
        assert_eq!(a.body.trim_end().lines().count(), 1, "{what}: one line");
    }
    // `null` (a sandboxed frame, a file: page) is foreign too.
    let a = raw(&server, &upgrade("/", &host, &["Origin: null"])).await;
    assert_eq!(a.status, 403);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_origin_the_servers_own_host_and_loopback_pages_are_allowed() {
    let server = common::server().await;
    let host = server.addr.to_string();
    let own = format!("Origin: http://{host}");
    for extra in [
        vec![],
        vec![own.as_str()],
        vec!["Origin: http://localhost:3000"],
        vec!["Origin: https://[::1]"],
    ] {
        for (what, req) in every_protocol(&host, &extra) {
            let a = raw(&server, &req).await;
            let want = match what {
                "editor WebSocket" | "socket.io websocket" => 101,
                // No user id: the board's own refusal, not the guard's.
                "Q&A action" => 401,
                _ => 200,
            };
            assert_eq!(a.status, want, "{what} with {extra:?}: {}", a.head);
        }
    }
    // A server reached by name: its own name is allowed over http and
    // https, another port of it is not.
    for (origin, want) in [
        ("Origin: http://rt.example:8080", 101),
        ("Origin: https://rt.example:8080", 101),
        ("Origin: http://rt.example:9090", 403),
    ] {
        let a = raw(&server, &upgrade("/", "rt.example:8080", &[origin])).await;
        assert_eq!(a.status, want, "{origin}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn allowed_origins_and_star_open_the_door() {
    let listed = server_with(|c| {
        c.guard.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let host = listed.addr.to_string();
    let ok = raw(
        &listed,
        &upgrade("/", &host, &["Origin: https://app.example"]),
    )
    .await;
    assert_eq!(ok.status, 101);
    let ok = raw(
        &listed,
        &post("/askquestion/x", &host, &["Origin: https://app.example"]),
    )
    .await;
    assert_eq!(ok.status, 401, "the board's refusal: no user");
    let refused = raw(&listed, &upgrade("/", &host, &[&format!("Origin: {EVIL}")])).await;
    assert_eq!(refused.status, 403);
    listed.shutdown().await.unwrap();

    let any = server_with(|c| c.guard.allowed_origins = vec!["*".into()]).await;
    let host = any.addr.to_string();
    for (what, req) in every_protocol(&host, &[&format!("Origin: {EVIL}")]) {
        let a = raw(&any, &req).await;
        assert_ne!(a.status, 403, "{what}");
    }
    any.shutdown().await.unwrap();
}

async fn token_server() -> Server {
    server_with(|c| c.guard.token = Some(TOKEN.into())).await
}

#[tokio::test]
async fn with_a_token_every_endpoint_but_healthz_wants_it() {
    let server = token_server().await;
    let host = server.addr.to_string();
    for (what, req) in every_protocol(&host, &[]) {
        let a = raw(&server, &req).await;
        assert_eq!(a.status, 401, "{what}: {}", a.head);
        assert!(
            a.body.contains("Authorization: Bearer TOKEN"),
            "{what}: {}",
            a.body
        );
        assert!(!a.body.contains(TOKEN));
        assert_eq!(
            a.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"rt\"")
        );
    }
    for path in [
        "/",
        "/qa/",
        "/socket.io/socket.io.js",
        "/stats",
        "/ticker/stream?symbols=IBM",
    ] {
        assert_eq!(
            raw(&server, &get(path, &host, &[])).await.status,
            401,
            "{path}"
        );
    }
    let health = raw(&server, &get("/healthz", &host, &[])).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_is_named_by_where_it_came_from_and_never_echoed() {
    let server = token_server().await;
    let host = server.addr.to_string();
    let guess = "guessed-token-123";
    for (req, source) in [
        (
            get(
                "/?symbol=IBM",
                &host,
                &[&format!("Authorization: Bearer {guess}")],
            ),
            "Authorization header",
        ),
        (
            get(&format!("/?symbol=IBM&token={guess}"), &host, &[]),
            "token query parameter",
        ),
        (
            get(
                "/?symbol=IBM",
                &host,
                &[&format!("Cookie: rt_token_1={guess}")],
            ),
            "rt_token cookie",
        ),
    ] {
        let a = raw(&server, &req).await;
        assert_eq!(a.status, 401);
        assert!(a.body.contains(source), "{}", a.body);
        assert!(
            !a.body.contains(guess) && !a.head.contains(guess),
            "{}",
            a.body
        );
        assert!(!a.body.contains(TOKEN) && !a.head.contains(TOKEN));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_token_works_by_header_query_and_the_cookie_a_page_visit_sets() {
    let server = token_server().await;
    let host = server.addr.to_string();
    let bearer = format!("Authorization: Bearer {TOKEN}");

    // Header and query on a ticker poll: the handler sees no token.
    for req in [
        get("/?symbol=IBM", &host, &[&bearer]),
        get(&format!("/?token={TOKEN}&symbol=IBM"), &host, &[]),
    ] {
        let a = raw(&server, &req).await;
        assert_eq!(a.status, 200, "{}", a.head);
        assert!(a.body.contains("\"symbol\":\"IBM\""), "{}", a.body);
    }

    // A page opened with ?token=: a cookie and a redirect to the clean URL.
    let visit = raw(
        &server,
        &get(
            &format!("/qa/?token={TOKEN}&theme=dark"),
            &host,
            &[
                "Accept: text/html,application/xhtml+xml",
                "Sec-Fetch-Mode: navigate",
            ],
        ),
    )
    .await;
    assert_eq!(visit.status, 303, "{}", visit.head);
    assert_eq!(visit.header("location").as_deref(), Some("/qa/?theme=dark"));
    let set = visit.header("set-cookie").unwrap();
    let port = server.addr.port();
    assert!(set.starts_with(&format!("rt_token_{port}=")), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "the cookie holds a digest: {set}");
    let cookie = format!("Cookie: {}", set.split(';').next().unwrap());

    // The cookie opens pages, event streams, sockets and actions.
    let page = raw(&server, &get("/qa/", &host, &[&cookie])).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<html") || page.body.contains("<!doctype"),
        "{}",
        page.body
    );
    let stream = raw(&server, &get("/login", &host, &[&cookie])).await;
    assert_eq!(stream.status, 200);
    assert!(stream.head.contains("text/event-stream"));
    let ws = raw(&server, &upgrade("/", &host, &[&cookie])).await;
    assert_eq!(ws.status, 101);
    let polling = raw(
        &server,
        &get("/socket.io/?EIO=4&transport=polling", &host, &[&cookie]),
    )
    .await;
    assert_eq!(polling.status, 200);
    let own = format!("Origin: http://{host}");
    let action = raw(&server, &post("/askquestion/x", &host, &[&cookie, &own])).await;
    assert_eq!(
        action.status, 401,
        "the board's refusal (no user), not the guard's"
    );
    assert!(action.body.contains("_sse_user_id_"), "{}", action.body);

    // A stream's ?token= (EventSource cannot send headers) is not
    // redirected: EventSource would follow, but a WebSocket cannot.
    let stream = raw(
        &server,
        &get(
            &format!("/login?token={TOKEN}"),
            &host,
            &["Accept: text/event-stream"],
        ),
    )
    .await;
    assert_eq!(stream.status, 200);
    let ws = raw(&server, &upgrade(&format!("/?token={TOKEN}"), &host, &[])).await;
    assert_eq!(ws.status, 101);
    server.shutdown().await.unwrap();
}

/// One `data:` line of a stream's given event.
async fn stream_event(resp: &mut reqwest::Response, event: &str) -> String {
    let mut got = String::new();
    timeout(WAIT, async {
        loop {
            let chunk = resp.chunk().await.unwrap().expect("the stream goes on");
            got.push_str(&String::from_utf8_lossy(&chunk));
            let marker = format!("event: {event}\n");
            if let Some(i) = got.find(&marker) {
                let rest = &got[i + marker.len()..];
                if let Some(line) = rest.lines().find(|l| l.starts_with("data:"))
                    && rest.contains("\n\n")
                {
                    return line["data:".len()..].trim().to_string();
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {event} event: {got:?}"))
}

/// Reads a stream until `needle` arrives; returns what was read.
async fn stream_until(resp: &mut reqwest::Response, needle: &str) -> String {
    let mut got = String::new();
    timeout(WAIT, async {
        while !got.contains(needle) {
            let chunk = resp.chunk().await.unwrap().expect("the stream goes on");
            got.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} on the stream: {got:?}"));
    got
}

#[tokio::test]
async fn every_app_works_with_the_token() {
    let server = token_server().await;
    let http = common::http();
    let url = server.url();

    // Ticker, by header.
    let quote: serde_json::Value = http
        .get(format!("{url}/?symbol=MSFT"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quote["quote"]["symbol"], "MSFT");

    // Q&A: the stream by query (as a browser's EventSource does), the
    // action by header; the question comes back on the stream.
    let mut login = http
        .get(format!("{url}/login?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let user: String = serde_json::from_str(&stream_event(&mut login, "login").await).unwrap();
    let asked = http
        .post(format!("{url}/askquestion/{}", "with%20a%20token"))
        .bearer_auth(TOKEN)
        .header("_sse_user_id_", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let questions = stream_until(&mut login, "\"questions\":{\"with a token\"").await;
    assert!(
        !questions.contains("token="),
        "the token never reaches the board"
    );

    // Editor: the WebSocket by header, and refused without it.
    let ws_url = url.replace("http://", "ws://");
    let mut req = format!("{ws_url}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hs = r#"{"a":"hs","id":null,"protocol":1,"protocolMinor":2}"#;
    ws.send(Message::text(hs)).await.unwrap();
    let hello = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"a\":\"hs\""), "{hello}");
    ws.close(None).await.unwrap();
    match tokio_tungstenite::connect_async(format!("{ws_url}/")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("connected without the token: {other:?}"),
    }

    // Drawing board: Socket.IO over a WebSocket with ?token= (the npm
    // client's `query: {token}`), and its polling handshake.
    let (mut sio, _) = tokio_tungstenite::connect_async(format!(
        "{ws_url}/socket.io/?EIO=4&transport=websocket&token={TOKEN}"
    ))
    .await
    .unwrap();
    let open = timeout(WAIT, sio.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"), "{open}");
    sio.send(Message::text("40")).await.unwrap();
    // Pings may come first on a loaded machine; answer them.
    let connected = loop {
        let frame = timeout(WAIT, sio.next()).await.unwrap().unwrap().unwrap();
        let text = frame.to_text().unwrap().to_string();
        if text == "2" {
            sio.send(Message::text("3")).await.unwrap();
            continue;
        }
        break text;
    };
    assert!(connected.starts_with("40"), "{connected}");
    let polling = http
        .get(format!(
            "{url}/socket.io/?EIO=4&transport=polling&token={TOKEN}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(polling.status(), 200);
    assert!(polling.text().await.unwrap().starts_with("0{"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn token_files_are_read_trimmed_and_an_empty_one_is_an_error() {
    let dir = std::env::temp_dir().join(format!("rt-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut c = Config::for_tests();
    c.guard.token_file = Some(file.clone());
    let server = common::server_with(c).await;
    let res = common::http()
        .get(format!("{}/?symbol=IBM", server.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.shutdown().await.unwrap();

    std::fs::write(&file, "\n").unwrap();
    let mut c = Config::for_tests();
    c.guard.token_file = Some(file.clone());
    let Err(e) = rt_server::spawn(c).await else {
        panic!("started with an empty token file");
    };
    assert!(format!("{e:#}").contains("empty"), "{e:#}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rt-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--data",
            ":memory:",
            "--token-file",
        ])
        .arg(&file)
        .env_remove("RT_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access token in --token-file is empty"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_token_never_reaches_the_log() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rt-server"))
        .args(["--bind", "127.0.0.1:0", "--data", ":memory:"])
        .env("RT_TOKEN", TOKEN)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .trim_start_matches("rt-server serving ")
        .trim_end_matches('/')
        .to_string();
    let http = common::http();
    for u in [
        format!("{url}/?symbol=IBM&token={TOKEN}"),
        format!("{url}/socket.io/?EIO=4&transport=polling&token={TOKEN}"),
        format!("{url}/?symbol=IBM&token=wrong-{TOKEN}"),
    ] {
        http.get(&u).send().await.unwrap();
    }
    let mut login = http
        .get(format!("{url}/login?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    stream_event(&mut login, "login").await;
    http.get(format!("{url}/?symbol=IBM"))
        .header("authorization", format!("Bearer x{TOKEN}"))
        .send()
        .await
        .unwrap();
    drop(login);
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string_sync(&mut log);
    child.wait().unwrap();
    assert!(
        log.contains("refused a request without the access token"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
}

trait ReadAll {
    fn read_to_string_sync(&mut self, out: &mut String);
}

impl<R: std::io::Read> ReadAll for R {
    fn read_to_string_sync(&mut self, out: &mut String) {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(self, &mut bytes).unwrap();
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
}

/// `GET https://rt.example{path}` (HTTP/2 carries the host as the
/// authority, not a `Host` header) with `headers`.
fn h2_get(path: &str, headers: &[(&str, &str)]) -> common::tls::Request {
    let mut b = axum::http::Request::builder()
        .method("GET")
        .uri(format!("https://rt.example{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn over_http2_origins_and_the_token_are_checked_the_same_way() {
    use common::tls::{self, Client, H2};
    let cert = tls::cert();
    let mut config = tls::config(&cert);
    config.guard.token = Some(TOKEN.into());
    let server = common::server_with(config).await;
    let stream = tls::connect(&server, &cert.ca, &[H2]).await;
    assert_eq!(tls::alpn(&stream).as_deref(), Some(H2));
    let mut client = Client::on(stream).await;
    let bearer = format!("Bearer {TOKEN}");

    // The authority is the server's own host; another origin is foreign.
    let own = client
        .send(h2_get(
            "/?symbol=IBM",
            &[("origin", "https://rt.example"), ("authorization", &bearer)],
        ))
        .await;
    assert_eq!(own.status(), 200);
    let foreign = client
        .send(h2_get(
            "/?symbol=IBM",
            &[("origin", EVIL), ("authorization", &bearer)],
        ))
        .await;
    assert_eq!(foreign.status(), 403);
    assert_eq!(client.send(h2_get("/?symbol=IBM", &[])).await.status(), 401);

    // A page opened with ?token= gets the cookie; the stream then opens.
    let visit = client
        .send(h2_get(
            &format!("/qa/?token={TOKEN}"),
            &[("sec-fetch-mode", "navigate")],
        ))
        .await;
    assert_eq!(visit.status(), 303);
    assert_eq!(visit.headers()["location"], "/qa/");
    let set = visit.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    let stream = client.send(h2_get("/login", &[("cookie", &cookie)])).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    drop(stream);
    server.shutdown().await.unwrap();
}
