//! The text and canvas panes' keys in a real terminal: tmux runs
//! `rt-tui connect URL` with `set-clipboard on`, so a copy over OSC 52 lands
//! in tmux's paste buffer; the document is read back with `rt-tui doc get`
//! and the saved canvas is decoded. tmux is required: the test fails when it
//! is missing.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The longest any wait may take.
const WAIT: Duration = Duration::from_secs(20);

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached 120×40 session running `sh` in `dir`.
    fn start(dir: &Path, envs: &[(&str, &str)]) -> Tmux {
        let tmux = Tmux {
            socket: format!("rt-tui-panes-{}", std::process::id()),
        };
        let mut args: Vec<String> = ["new-session", "-d", "-s", "rt", "-x", "160", "-y", "40"]
            .map(String::from)
            .to_vec();
        args.extend(["-c".to_string(), dir.to_string_lossy().into_owned()]);
        args.extend(["env".to_string(), "PS1=$ ".to_string()]);
        args.extend(envs.iter().map(|(k, v)| format!("{k}={v}")));
        args.push("sh".to_string());
        tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // Programs may set tmux's clipboard (a paste buffer) with OSC 52.
        tmux.run(&["set-option", "-g", "set-clipboard", "on"]);
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

    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "rt", "-l", text]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "rt"]).stdout).into_owned()
    }

    /// The newest paste buffer, if any.
    fn buffer(&self) -> Option<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "show-buffer"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}; screen:\n{screen}"
            );
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

/// The document as `rt-tui doc get` prints it.
fn doc(url: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rt-tui"))
        .args(["doc", "get", "examples/richtext", "--url", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until the server's document satisfies `pred`.
fn wait_doc(url: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let d = doc(url);
        if pred(&d) {
            return d;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn select_copy_cut_bold_undo_in_the_text_pane_and_save_the_canvas() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(support::rt_server(500));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tui.json");
    let tmux = Tmux::start(dir.path(), &[("RT_TUI_CONFIG", &config.to_string_lossy())]);
    tmux.type_text(&format!("{} connect {url}", env!("CARGO_BIN_EXE_rt-tui")));
    tmux.send(&["Enter"]);
    tmux.wait_for("the panes", |s| s.contains("4 Text") && s.contains("Hi!"));

    // The text pane: select "Hi" and copy it to the clipboard.
    tmux.send(&["4"]);
    tmux.wait_for("typing", |s| s.contains("Esc leave"));
    tmux.send(&["S-Right", "S-Right", "M-c"]);
    tmux.wait_for("the copy notice", |s| s.contains("copied 2 characters"));
    let start = Instant::now();
    while tmux.buffer().as_deref() != Some("Hi") {
        assert!(
            start.elapsed() < WAIT,
            "OSC 52 reached tmux: {:?}",
            tmux.buffer()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Bold it, then type over it: the typed text stays bold.
    tmux.send(&["C-b"]);
    wait_doc(&url, "bold", |d| {
        d["ops"][0] == json!({"insert": "Hi", "attributes": {"bold": true}})
    });
    tmux.type_text("Yo");
    let d = wait_doc(&url, "the replacement", |d| d["text"] == "Yo!\n");
    assert_eq!(
        d["ops"][0],
        json!({"insert": "Yo", "attributes": {"bold": true}})
    );
    // Cut it all; undo brings it back, formatting and all.
    tmux.send(&["Home", "S-End", "C-x"]);
    wait_doc(&url, "the cut", |d| d["text"] == "\n");
    let start = Instant::now();
    while tmux.buffer().as_deref() != Some("Yo!") {
        assert!(start.elapsed() < WAIT, "cut text: {:?}", tmux.buffer());
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.send(&["C-z"]);
    let d = wait_doc(&url, "the undo", |d| d["text"] == "Yo!\n");
    assert_eq!(
        d["ops"][0],
        json!({"insert": "Yo", "attributes": {"bold": true}})
    );
    // Search: the prompt replaces the footer.
    tmux.send(&["C-f"]);
    tmux.type_text("o!");
    tmux.wait_for("the match count", |s| {
        s.contains("find: o!") && s.contains("1 of 1")
    });
    // One Esc closes the search, the next stops typing (sent apart: two
    // at once read as Alt+Esc).
    tmux.send(&["Escape"]);
    tmux.wait_for("the search closed", |s| !s.contains("find: o!"));
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["Escape"]);
    tmux.wait_for("reading mode", |s| s.contains("i Enter type"));

    // The canvas: draw a line with the keys, then save it here.
    tmux.send(&["2"]);
    tmux.wait_for("the canvas keys", |s| s.contains("Space pen"));
    tmux.send(&["Space", "Right", "Right", "Right", "Right", "Space"]);
    let start = Instant::now();
    while runtime
        .block_on(server.state.draw.snapshot())
        .unwrap()
        .segments()
        == 0
    {
        assert!(start.elapsed() < WAIT, "the line reached the server");
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.send(&["s"]);
    let screen = tmux.wait_for("the saved path", |s| s.contains("saved "));
    let png: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(png.len(), 1, "{screen}");
    let name = png[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("rt-canvas-"), "{name}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png[0]).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((info.width, info.height), (2000, 1000));
    // The line runs right from the board's centre.
    let px = |x: usize, y: usize| &rgb[(y * 2000 + x) * 3..(y * 2000 + x) * 3 + 3];
    assert_ne!(px(1010, 500), [0xff, 0xff, 0xff], "ink on the line");
    assert_eq!(px(1010, 700), [0xff, 0xff, 0xff], "background off it");

    tmux.send(&["q"]);
    runtime.block_on(server.shutdown()).unwrap();
}
