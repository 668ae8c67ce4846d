//! The text pane and its network task against a real server: two panes
//! typing into one document converge.

mod support;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rt_tui::app::Cmd;
use rt_tui::net::doc::{DocClient, DocClientConfig};
use rt_tui::net::{EVENT_CHANNEL_CAPACITY, NetEvent};
use rt_tui::panes::text::TextPane;
use rt_tui::panes::{Handled, Pane};
use support::rt_server;
use tokio::sync::mpsc;

struct Editor {
    pane: TextPane,
    client: DocClient,
    rx: mpsc::Receiver<NetEvent>,
}

impl Editor {
    fn new(url: &str, name: &str) -> Editor {
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let client = DocClient::spawn(
            DocClientConfig {
                base_url: url.to_string(),
            },
            tx,
        );
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

    fn key(&mut self, code: KeyCode) {
        if let Handled::Consumed(cmds) = self
            .pane
            .handle_key(KeyEvent::new(code, KeyModifiers::NONE))
        {
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
