//! The text pane and its network task against a real server: two panes
//! typing into one document converge; typing while the connection is down is
//! sent once it is back, exactly once.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rt_tui::app::Cmd;
use rt_tui::net::doc::{DocClient, DocClientConfig};
use rt_tui::net::{EVENT_CHANNEL_CAPACITY, NetEvent};
use rt_tui::panes::text::TextPane;
use rt_tui::panes::{Handled, Pane};
use support::rt_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct Editor {
    pane: TextPane,
    client: DocClient,
    rx: mpsc::Receiver<NetEvent>,
}

impl Editor {
    fn new(url: &str, name: &str) -> Editor {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let client = DocClient::spawn(DocClientConfig::single(url.to_string().into()), tx);
        Editor {
            pane: TextPane::new("examples", "richtext").with_name(name),
            client,
            rx,
        }
    }

    fn run(&self, cmds: Vec<Cmd>) {
        for cmd in cmds {
            if let Cmd::Doc(msgs) = cmd {
                self.client.send(msgs);
            }
        }
    }

    /// Feeds network events to the pane for a short while.
    async fn pump(&mut self) {
        while let Ok(Some(ev)) =
            tokio::time::timeout(Duration::from_millis(30), self.rx.recv()).await
        {
            self.pane.apply(&ev);
            let cmds = self.pane.take_cmds();
            self.run(cmds);
        }
    }

    fn paste(&mut self, text: &str) {
        let cmds = self.pane.paste(text);
        self.run(cmds);
    }

    fn typ(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    fn key(&mut self, code: KeyCode) {
        self.press(code, KeyModifiers::NONE);
    }

    fn press(&mut self, code: KeyCode, mods: KeyModifiers) {
        if let Handled::Consumed(cmds) = self.pane.handle_key(KeyEvent::new(code, mods)) {
            self.run(cmds);
        }
    }
}

async fn until(editors: &mut [&mut Editor], what: &str, done: impl Fn(&[&mut Editor]) -> bool) {
    for _ in 0..300 {
        for e in editors.iter_mut() {
            e.pump().await;
        }
        if done(editors) {
            return;
        }
    }
    let seen: Vec<_> = editors
        .iter()
        .map(|e| {
            (
                e.pane.session().version(),
                e.pane.session().remote_cursors(),
            )
        })
        .collect();
    panic!("timed out waiting for {what}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_panes_type_concurrently_and_converge() {
    let server = rt_server(5000).await;
    let mut a = Editor::new(&server.url(), "alice");
    let mut b = Editor::new(&server.url(), "bob");
    until(&mut [&mut a, &mut b], "both loaded", |e| {
        e.iter().all(|e| e.pane.text() == "Hi!")
    })
    .await;
    a.key(KeyCode::Char('i'));
    b.key(KeyCode::Char('i'));
    b.key(KeyCode::End);
    for c in "héllo😀".chars() {
        a.key(KeyCode::Char(c));
        b.key(KeyCode::Char(c.to_ascii_uppercase()));
    }
    a.key(KeyCode::Enter);
    b.key(KeyCode::Backspace);
    until(&mut [&mut a, &mut b], "convergence", |e| {
        e.iter().all(|e| !e.pane.session().has_pending())
            && e[0].pane.text() == e[1].pane.text()
            && e[0].pane.session().version() == e[1].pane.session().version()
    })
    .await;
    assert_eq!(a.pane.text(), "héllo😀\nHi!HéLLO");
    // Each sees the other's caret where it is: alice after her newline, bob
    // at the end.
    until(&mut [&mut a, &mut b], "the carets", |e| {
        let seen_by_b = e[1].pane.session().remote_cursors();
        let seen_by_a = e[0].pane.session().remote_cursors();
        seen_by_b.iter().any(|c| c.name == "alice" && c.index == 8)
            && seen_by_a.iter().any(|c| c.name == "bob" && c.index == 16)
    })
    .await;
    server.shutdown().await.unwrap();
}

fn converged(e: &[&mut Editor]) -> bool {
    e.iter().all(|e| !e.pane.session().has_pending())
        && e[0].pane.text() == e[1].pane.text()
        && e[0].pane.session().version() == e[1].pane.session().version()
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_in_one_pane_removes_only_its_own_text_and_formatting_survives() {
    let server = rt_server(5000).await;
    let mut a = Editor::new(&server.url(), "alice");
    let mut b = Editor::new(&server.url(), "bob");
    until(&mut [&mut a, &mut b], "both loaded", |e| {
        e.iter().all(|e| e.pane.text() == "Hi!")
    })
    .await;
    a.key(KeyCode::Char('i'));
    b.key(KeyCode::Char('i'));
    a.key(KeyCode::End);
    a.typ(" mine");
    b.typ("yours ");
    until(&mut [&mut a, &mut b], "convergence", converged).await;
    assert_eq!(a.pane.text(), "yours Hi! mine");
    // Bob makes his word bold.
    b.key(KeyCode::Home);
    b.press(KeyCode::Right, KeyModifiers::CONTROL | KeyModifiers::SHIFT);
    b.press(KeyCode::Char('b'), KeyModifiers::CONTROL);
    until(&mut [&mut a, &mut b], "bold everywhere", |e| {
        converged(e)
            && e[0]
                .pane
                .session()
                .document()
                .unwrap()
                .to_delta()
                .ops()
                .len()
                > 1
    })
    .await;
    // Alice undoes her typing: " mine" was two steps (the space, the word).
    a.press(KeyCode::Char('z'), KeyModifiers::CONTROL);
    a.press(KeyCode::Char('z'), KeyModifiers::CONTROL);
    until(&mut [&mut a, &mut b], "the undo everywhere", |e| {
        converged(e) && e[1].pane.text() == "yours Hi!"
    })
    .await;
    let bold = serde_json::json!({"ops": [
        {"insert": "yours", "attributes": {"bold": true}}, {"insert": " Hi!\n"}]});
    for e in [&a, &b] {
        assert_eq!(
            e.pane.session().document().unwrap().to_delta().to_value(),
            bold
        );
    }
    // Redo brings it back, still leaving Bob's formatting alone.
    a.press(KeyCode::Char('y'), KeyModifiers::CONTROL);
    a.press(KeyCode::Char('y'), KeyModifiers::CONTROL);
    until(&mut [&mut a, &mut b], "the redo everywhere", |e| {
        converged(e) && e[1].pane.text() == "yours Hi! mine"
    })
    .await;
    assert_eq!(
        b.pane.session().document().unwrap().to_delta().ops()[0],
        a.pane.session().document().unwrap().to_delta().ops()[0]
    );
    server.shutdown().await.unwrap();
}

/// A TCP proxy in front of the server: its connections can be cut, new ones
/// refused, and the server's replies dropped (so an op is committed but its
/// acknowledgement never arrives).
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    replies: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

/// Copies `from` to `to` while `pass` is set (drops the bytes otherwise).
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    pass: Option<Arc<AtomicBool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if pass.as_ref().is_none_or(|p| p.load(Ordering::SeqCst))
            && to.write_all(&buf[..n]).await.is_err()
        {
            return;
        }
    }
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let replies = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, replies2, conns2) = (up.clone(), replies.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue;
                }
                let replies = replies2.clone();
                let conn = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pipe(cr, sw, None) => {}
                        _ = pipe(sr, cw, Some(replies)) => {}
                    }
                });
                conns2.lock().unwrap().push(conn);
            }
        });
        Proxy {
            addr,
            up,
            replies,
            conns,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Accepts connections (and forwards replies) again.
    fn restore(&self) {
        self.replies.store(true, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_offline_is_sent_on_reconnect_exactly_once() {
    let server = rt_server(5000).await;
    let proxy = Proxy::start(server.addr).await;
    let mut a = Editor::new(&proxy.url(), "alice");
    let mut b = Editor::new(&server.url(), "bob");
    until(&mut [&mut a, &mut b], "both loaded", |e| {
        e.iter().all(|e| e.pane.text() == "Hi!")
    })
    .await;
    a.pane.focus_gained();
    a.key(KeyCode::End);
    a.typ(" one");
    until(&mut [&mut a, &mut b], "the first edit", |e| {
        e[1].pane.text() == "Hi! one" && !e[0].pane.session().has_pending()
    })
    .await;

    // The connection drops; alice keeps typing and pasting.
    proxy.cut();
    until(&mut [&mut a], "alice offline", |e| {
        !e[0].pane.session().is_live()
    })
    .await;
    a.typ(" two");
    a.paste(" three\r\nfour");
    assert_eq!(a.pane.text(), "Hi! one two three\nfour");
    assert_eq!(a.pane.session().pending_edits(), 5);
    // Nothing leaves while offline; bob still sees the old text.
    for _ in 0..5 {
        b.pump().await;
    }
    assert_eq!(b.pane.text(), "Hi! one");
    proxy.restore();
    until(&mut [&mut a, &mut b], "the offline edits to arrive", |e| {
        !e[0].pane.session().has_pending() && e[1].pane.text() == e[0].pane.text()
    })
    .await;
    assert_eq!(b.pane.text(), "Hi! one two three\nfour");

    // An op committed whose acknowledgement is lost: the resend after the
    // reconnect must not apply it twice.
    proxy.replies.store(false, Ordering::SeqCst);
    a.paste(" five");
    until(
        &mut [&mut a, &mut b],
        "the unacknowledged op to commit",
        |e| e[1].pane.text().ends_with("five"),
    )
    .await;
    assert!(a.pane.session().has_pending(), "the ack was dropped");
    proxy.cut();
    until(&mut [&mut a], "alice offline", |e| {
        !e[0].pane.session().is_live()
    })
    .await;
    a.typ(" six");
    proxy.restore();
    until(&mut [&mut a, &mut b], "convergence after the resend", |e| {
        !e[0].pane.session().has_pending()
            && e[0].pane.text() == e[1].pane.text()
            && e[0].pane.session().version() == e[1].pane.session().version()
    })
    .await;
    // A fresh client sees every edit once.
    let mut c = Editor::new(&server.url(), "carol");
    until(&mut [&mut c], "a fresh load", |e| {
        e[0].pane.session().version() == b.pane.session().version()
    })
    .await;
    let text = c.pane.text();
    assert_eq!(text, "Hi! one two three\nfour five six");
    for word in ["one", "two", "three", "four", "five", "six"] {
        assert_eq!(count(&text, word), 1, "{word} in {text:?}");
    }
    drop(a);
    server.shutdown().await.unwrap();
}
