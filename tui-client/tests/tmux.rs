//! The real binary in a real terminal: tmux runs `rt-tui connect URL`,
//! `capture-pane` reads the screen, `send-keys` types. tmux is required: the
//! test fails when it is missing.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest any wait for the screen may take.
const WAIT: Duration = Duration::from_secs(20);

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a detached `width`×`height` session running a plain `sh`
    /// with `envs`.
    fn start_sized(envs: &[(&str, &str)], width: u16, height: u16) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "rt-tui-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let tmux = Tmux { socket };
        let mut shell = vec!["env".to_string(), "PS1=$ ".to_string()];
        shell.extend(envs.iter().map(|(k, v)| format!("{k}={v}")));
        shell.push("sh".to_string());
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec!["new-session", "-d", "-s", "rt", "-x", &w, "-y", &h];
        args.extend(shell.iter().map(String::as_str));
        tmux.run(&args);
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux must be installed (Debian package tmux) to run this test");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        out
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "rt"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "rt", "-l", text]);
    }

    /// The pid of the shell running in the pane.
    fn shell_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "rt", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pane pid")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "rt"]).stdout).into_owned()
    }

    fn alternate_screen(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "rt", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Polls the screen until `pred` holds; panics with the screen otherwise.
    fn wait_for(&self, what: &str, pred: impl Fn(&Tmux, &str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(self, &screen) {
                return screen;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A table row for `symbol` with a price: `AAPL   191.10  ▲ 1.60 …`.
fn has_quote_row(screen: &str, symbol: &str) -> bool {
    screen.lines().any(|line| {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '┃' || c == '│')
            .filter(|w| !w.is_empty());
        words.next() == Some(symbol)
            && words
                .next()
                .is_some_and(|w| w.contains('.') && w.parse::<f64>().is_ok())
    })
}

fn shell_line(bin: &str, args: &str) -> String {
    // `$((40+2))` makes the echoed marker differ from the typed command.
    format!("{bin} {args}; echo EXIT-CODE-$? AFTER-$((40+2))")
}

fn start_marked_shell(envs: &[(&str, &str)]) -> Tmux {
    start_marked_shell_sized(envs, 120, 40)
}

fn start_marked_shell_sized(envs: &[(&str, &str)], width: u16, height: u16) -> Tmux {
    let tmux = Tmux::start_sized(envs, width, height);
    tmux.type_text("echo BEFORE-$((20+1))");
    tmux.send(&["Enter"]);
    tmux.wait_for("the shell", |_, s| s.contains("BEFORE-21"));
    tmux
}

fn settings_path(dir: &Path) -> String {
    dir.join("tui.json").to_string_lossy().into_owned()
}

#[test]
fn connect_shows_quotes_adds_a_symbol_and_quits_restoring_the_terminal() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(500));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell(&[("RT_TUI_CONFIG", &config)]);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url}"),
    ));
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("a ticker row", |t, s| {
        t.alternate_screen() && has_quote_row(s, "AAPL")
    });
    assert!(
        screen.contains("1 Ticker") && screen.contains("4 Text"),
        "{screen}"
    );
    assert!(
        screen.contains(&url),
        "the status bar names the server:\n{screen}"
    );
    assert!(screen.contains("ticker: connected"), "{screen}");
    assert!(
        !screen.contains("BEFORE-21"),
        "the UI is on the alternate screen"
    );

    // Add a symbol through the one-line input; `q` is typed into it, not a quit.
    tmux.send(&["a"]);
    tmux.wait_for("the symbol input", |_, s| s.contains("Add symbol:"));
    tmux.type_text("tslq");
    tmux.send(&["BSpace"]);
    tmux.type_text("a");
    tmux.send(&["Enter"]);
    tmux.wait_for("a TSLA row", |_, s| has_quote_row(s, "TSLA"));
    let saved = std::fs::read_to_string(&config).expect("the watchlist was saved");
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(
        saved["watchlist"],
        serde_json::json!(["AAPL", "MSFT", "IBM", "GOOGL", "AMZN", "TSLA"])
    );

    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    assert!(
        screen.contains("BEFORE-21"),
        "previous output is visible again:\n{screen}"
    );
    assert!(!screen.contains("1 Ticker"), "{screen}");
    runtime.block_on(server.shutdown()).unwrap();
}

#[test]
fn an_unreachable_server_is_reported_with_a_countdown_and_ctrl_c_quits() {
    let url = format!("http://127.0.0.1:{}", support::closed_port());
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell(&[("RT_TUI_CONFIG", &config), ("NO_COLOR", "1")]);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url}"),
    ));
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the retry message", |t, s| {
        t.alternate_screen() && s.contains(&format!("cannot reach {url}, retrying in"))
    });
    assert!(screen.contains("1 Ticker"), "{screen}");

    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    assert!(screen.contains("BEFORE-21"), "{screen}");
    assert!(
        !Path::new(&config).exists(),
        "nothing changed, nothing written"
    );
}

/// The pids of `pid`'s children (Linux `/proc`).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn sigterm_restores_the_terminal_too() {
    let url = format!("http://127.0.0.1:{}", support::closed_port());
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell(&[("RT_TUI_CONFIG", &config)]);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url}"),
    ));
    tmux.send(&["Enter"]);
    tmux.wait_for("the UI", |t, s| {
        t.alternate_screen() && s.contains("1 Ticker")
    });
    let shell = tmux.shell_pid();
    let kids = children(shell);
    assert_eq!(
        kids.len(),
        1,
        "the shell runs rt-tui and nothing else: {kids:?}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &kids[0].to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    assert!(screen.contains("BEFORE-21"), "{screen}");
    // Raw mode is off again: a typed line is echoed and run by the shell.
    tmux.type_text("echo COOKED-$((3+4))");
    tmux.send(&["Enter"]);
    tmux.wait_for("a cooked terminal", |_, s| s.contains("COOKED-7"));
}

#[test]
fn the_sse_transport_shows_live_rows() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(5000));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell(&[("RT_TUI_CONFIG", &config)]);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url} --ticker-transport sse"),
    ));
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("a live ticker row", |_, s| {
        has_quote_row(s, "IBM") && s.contains("live")
    });
    assert!(screen.contains("live stream (SSE)"), "{screen}");
    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    runtime.block_on(server.shutdown()).unwrap();
}

#[test]
fn the_qa_pane_asks_follows_answers_and_votes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(5000));
    let url = server.url();
    // A question from another user, with escape sequences that must stay inert.
    let out = Command::new(env!("CARGO_BIN_EXE_rt-tui"))
        .args([
            "qa",
            "ask",
            "Existing \u{1b}[2J\u{1b}]0;owned\u{7}question",
            "--url",
            &url,
        ])
        .output()
        .expect("rt-tui runs");
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell(&[("RT_TUI_CONFIG", &config)]);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url}"),
    ));
    tmux.send(&["Enter"]);
    tmux.wait_for("the Q&A stream", |t, s| {
        t.alternate_screen() && s.contains("qa: connected")
    });
    tmux.send(&["3", "e"]);
    tmux.wait_for("the question list", |_, s| {
        s.contains("Q&A · live") && s.contains("Existing [2J]0;ownedquestion")
    });
    tmux.send(&["a"]);
    tmux.type_text("Typed in tmux, q included?");
    tmux.send(&["Enter"]);
    tmux.wait_for("the new question", |_, s| {
        s.contains("2 questions") && s.contains("Typed in tmux, q included?")
    });
    // Newest first: the older question is the second row.
    tmux.send(&["j", "Enter"]);
    tmux.wait_for("the followed question", |_, s| s.contains("asked by"));
    tmux.send(&["r"]);
    tmux.type_text("an answer");
    tmux.send(&["Enter"]);
    tmux.wait_for("the answer", |_, s| s.contains("• an answer"));
    tmux.send(&["+"]);
    tmux.wait_for("the vote", |_, s| {
        s.lines()
            .any(|l| l.contains("▲1") && l.contains("✎1") && l.contains("Existing"))
    });
    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    runtime.block_on(server.shutdown()).unwrap();
}

/// `rt-tui doc get` against `url`: the document's text.
fn doc_text(url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rt-tui"))
        .args(["doc", "get", "examples/richtext", "--url", url])
        .output()
        .expect("rt-tui runs");
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    doc["text"].as_str().expect("text").to_string()
}

#[test]
fn the_text_pane_types_on_focus_takes_a_bracketed_paste_and_esc_leaves_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(5000));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    // Large enough for the grid, where e expands the pane.
    let tmux = start_marked_shell_sized(&[("RT_TUI_CONFIG", &config)], 160, 40);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect {url}"),
    ));
    tmux.send(&["Enter"]);
    tmux.wait_for("the document", |t, s| {
        t.alternate_screen() && s.contains("examples/richtext") && s.contains("v1 · synced")
    });
    // Focusing the pane starts typing; after Esc global keys work (e
    // expands) and i types again: q and digits go into the document.
    // (Esc goes alone: followed at once by a key it would read as Alt.)
    tmux.send(&["4"]);
    tmux.wait_for("typing", |_, s| s.contains("Esc leave"));
    tmux.send(&["Escape"]);
    tmux.wait_for("reading", |_, s| s.contains("i Enter type"));
    tmux.send(&["e", "i", "End"]);
    tmux.type_text(" q1 漢😀");
    tmux.send(&["C-Left", "C-Left"]);
    tmux.type_text("<");
    tmux.wait_for("the typed text, acknowledged", |_, s| {
        s.contains("Hi! <q1 漢😀")
            && s.contains("· synced")
            && s.contains("online: you")
            && !s.contains("1 Ticker")
    });
    // A bracketed paste arrives as one edit, line breaks included.
    tmux.run(&["set-buffer", "pasted\nline"]);
    tmux.run(&["paste-buffer", "-p", "-t", "rt"]);
    tmux.wait_for("the pasted lines", |_, s| {
        s.contains("Hi! <pasted") && s.lines().any(|l| l.contains("lineq1 漢😀"))
    });
    assert_eq!(doc_text(&url), "Hi! <pasted\nlineq1 漢😀\n");
    // Esc leaves typing: q quits again.
    tmux.send(&["Escape"]);
    tmux.wait_for("the reading hints", |_, s| s.contains("i Enter type"));
    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    runtime.block_on(server.shutdown()).unwrap();
}

/// Polls `check` until it holds or [`WAIT`] passes.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn at_80x24_keys_reach_every_pane_under_the_tab_bar_and_each_one_works() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(500));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = settings_path(dir.path());
    let tmux = start_marked_shell_sized(&[("RT_TUI_CONFIG", &config)], 80, 24);

    tmux.type_text(&shell_line(
        env!("CARGO_BIN_EXE_rt-tui"),
        &format!("connect --url {url}"),
    ));
    tmux.send(&["Enter"]);
    // The ticker: one pane under a tab bar naming all four, live quotes,
    // and the bars at the bottom whole.
    let screen = tmux.wait_for("the ticker under the tab bar", |t, s| {
        t.alternate_screen() && has_quote_row(s, "AAPL") && s.contains("● doc")
    });
    let first = screen.lines().next().unwrap_or_default();
    for tab in ["1 Ticker", "2 Canvas", "3 Q&A", "4 Text"] {
        assert!(
            first.contains(tab),
            "{tab} is not on the tab bar:\n{screen}"
        );
    }
    assert!(
        !screen.contains("┌ 2 Canvas"),
        "one pane at a time:\n{screen}"
    );
    assert!(
        screen.contains("? help") || screen.contains("? more keys"),
        "{screen}"
    );

    // The canvas: the pen goes down, the cursor moves, the stroke reaches
    // the server.
    tmux.send(&["2"]);
    tmux.wait_for("the canvas", |_, s| {
        s.contains("┏ 2 Canvas") && s.contains("● connected") && s.contains("pen up")
    });
    tmux.send(&["Space"]);
    tmux.wait_for("the pen down", |_, s| s.contains("pen down"));
    for _ in 0..6 {
        tmux.send(&["Right"]);
    }
    tmux.send(&["Down", "Space"]);
    tmux.wait_for("the pen up", |_, s| s.contains("pen up"));
    eventually("the stroke on the server", || {
        runtime
            .block_on(server.state.draw.snapshot())
            .is_some_and(|board| board.segments() > 0)
    });

    // Q&A: ask a question; it shows on the board. The tab bar counts who
    // is on the canvas meanwhile.
    tmux.send(&["3"]);
    let screen = tmux.wait_for("the board", |_, s| s.contains("Q&A · live"));
    assert!(screen.contains("2 Canvas 1 online"), "{screen}");
    tmux.send(&["a"]);
    tmux.wait_for("the question input", |_, s| s.contains("Enter send"));
    tmux.type_text("Asked at 80x24, q and 4 included?");
    tmux.send(&["Enter"]);
    tmux.wait_for("the new question", |_, s| {
        s.contains("1 question") && s.contains("Asked at 80x24, q and 4 included?")
    });

    // The text pane types on focus; the server's document gets it.
    tmux.send(&["4"]);
    tmux.wait_for("typing", |_, s| {
        s.contains("┏ 4 Text") && s.contains("Esc leave")
    });
    tmux.send(&["End"]);
    tmux.type_text(" typed at 80x24");
    tmux.wait_for("the typed text, acknowledged", |_, s| {
        s.contains("typed at 80x24") && s.contains("· synced")
    });
    assert_eq!(doc_text(&url), "Hi! typed at 80x24\n");
    // Back to the ticker with Tab (it leaves the typing pane).
    tmux.send(&["Tab"]);
    let screen = tmux.wait_for("the ticker again", |_, s| {
        s.contains("┏ 1 Ticker") && has_quote_row(s, "AAPL")
    });
    // A click on a tab focuses its pane (an SGR mouse press and release,
    // as a terminal reports them; columns count from 1).
    let tabs = screen.lines().next().unwrap_or_default();
    let byte = tabs.find("3 Q&A").expect("the Q&A tab");
    let column = tabs[..byte].chars().count() + 2;
    tmux.type_text(&format!("\u{1b}[<0;{column};1M\u{1b}[<0;{column};1m"));
    tmux.wait_for("the Q&A pane, by mouse", |_, s| s.contains("┏ 3 Q&A"));
    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell again", |t, s| {
        !t.alternate_screen() && s.contains("AFTER-42")
    });
    assert!(screen.contains("EXIT-CODE-0"), "{screen}");
    runtime.block_on(server.shutdown()).unwrap();
}
