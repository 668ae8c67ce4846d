//! Faults, each against an `rt-server` process of its own: a full disk under
//! the SQLite store, SIGTERM under load, and clients that stop reading.
//!
//! The disk-full test mounts a small tmpfs, so it needs root (or
//! password-less sudo): it fails, never skips, without it. `scripts/test`
//! runs as root or through sudo.

mod fault_support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fault_support::{Drawer, Editor, Proc, WAIT, ask, is_ack, listing, qa_questions, qa_user};
use rt_protocol::draw::CanvasPart;
use serde_json::{Value, json};

/// A tmpfs of `size` mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

fn as_root(args: &[&str]) -> std::process::Output {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if root {
        std::process::Command::new(args[0])
    } else {
        let mut c = std::process::Command::new("sudo");
        c.arg("-n").arg(args[0]);
        c
    };
    cmd.args(&args[1..]).output().expect("the command runs")
}

impl Tmpfs {
    fn mount(name: &str, size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("rt-fault-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let out = as_root(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=1777"),
            "tmpfs",
            dir.to_str().expect("a UTF-8 path"),
        ]);
        assert!(
            out.status.success(),
            "cannot mount a tmpfs for the disk-full test (run as root or with password-less sudo): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = as_root(&["umount", "-l", self.dir.to_str().unwrap_or_default()]);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Fills the file system under `path` until a write fails; returns the
/// bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler file");
    let chunk = vec![0u8; 16 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = f.sync_all();
    written
}

/// Strokes and points on the canvas, as a fresh drawer receives it.
async fn canvas_of(addr: &str) -> (usize, usize) {
    let mut d = Drawer::connect(addr).await;
    let mut strokes = 0;
    let mut points = 0;
    loop {
        let part: CanvasPart =
            serde_json::from_value(d.expect("canvas").await).expect("a canvas part");
        strokes += part.strokes.len();
        points += part
            .strokes
            .iter()
            .map(|s| {
                serde_json::to_value(s).expect("entry")["points"]
                    .as_array()
                    .map_or(0, Vec::len)
            })
            .sum::<usize>();
        if part.part + 1 >= part.parts {
            return (strokes, points);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_the_server_recovers_when_space_returns() {
    let fs = Tmpfs::mount("full", "6m");
    let db = fs.dir.join("rt.db");
    let mut server = Proc::start(&["--data", db.to_str().unwrap(), "--draw-rate", "100000"]).await;
    let url = server.url();
    let mut editor = Editor::connect(&server.addr).await;
    assert!(is_ack(&editor.create("disk", "\n").await));
    let user = qa_user(&url).await;
    let mut drawer = Drawer::connect(&server.addr).await;
    drawer.expect("canvas").await;

    let filler = fs.dir.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "the filler wrote nothing: {}", listing(&fs.dir));

    // Q&A: writes go on until SQLite needs a page it cannot get; from then
    // on each is refused with 503 and a sentence, never a false 200.
    let mut asked: Vec<String> = Vec::new();
    let mut refused: Option<(String, String)> = None;
    for i in 0..3000 {
        let q = format!("question {i} {}", "x".repeat(250));
        let (status, body) = ask(&url, &user, &q).await;
        match status {
            200 => asked.push(q),
            503 => {
                refused = Some((q, body));
                break;
            }
            other => panic!("ask {i}: unexpected {other} {body}"),
        }
    }
    let (refused_q, body) =
        refused.unwrap_or_else(|| panic!("3000 questions fit a full disk? {}", listing(&fs.dir)));
    assert!(body.contains("could not save"), "{body}");

    // Editor: an op is refused with a ShareDB error, not acknowledged.
    let (mut v, _) = editor.fetch("disk").await;
    let mut acked_ops: Vec<String> = Vec::new();
    let mut op_error: Option<Value> = None;
    for i in 0..200 {
        let marker = format!("[e{i}]");
        let reply = editor.insert("disk", v, &marker).await;
        if is_ack(&reply) {
            acked_ops.push(marker);
            v += 1;
        } else {
            op_error = Some(reply);
            break;
        }
    }
    let op_error = op_error.expect("an op on a full disk is refused");
    assert!(
        op_error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{op_error}"
    );

    // Drawing: once a batch of strokes fails to commit, drawing is refused
    // with an `error` event (the strokes already shown are kept and retried).
    drawer.mv(10.0, 10.0, false).await;
    let mut refused_draw = None;
    for i in 0..400 {
        drawer.mv(10.0 + f64::from(i % 1000), 20.0, true).await;
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let text = tokio::time::timeout(WAIT, drawer.next_text())
            .await
            .expect("an error in time");
        if let Some(body) = text.strip_prefix("42") {
            let v: Value = serde_json::from_str(body).unwrap();
            if v[0] == "error" {
                refused_draw = Some(v[1].clone());
                break;
            }
        }
    }
    let refused_draw = refused_draw.expect("drawing on a full disk is refused");
    assert_eq!(refused_draw["code"], "unsaved", "{refused_draw}");

    // Space returns: every app takes writes again, without a restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    let recovered = Instant::now();
    let after_q = "asked once space returned".to_string();
    loop {
        let (status, body) = ask(&url, &user, &after_q).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(recovered.elapsed() < WAIT, "Q&A did not recover: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    asked.push(after_q);
    let (v, _) = editor.fetch("disk").await;
    let reply = editor.insert("disk", v, "[after]").await;
    assert!(is_ack(&reply), "{reply}");
    acked_ops.push("[after]".into());
    // Drawing is taken again once the kept changes are stored: a pen-down
    // move then adds to the canvas a fresh joiner gets.
    let (_, points_before) = canvas_of(&server.addr).await;
    let mut drawn_after = false;
    while recovered.elapsed() < WAIT {
        drawer.mv(500.0, 500.0, false).await;
        drawer.mv(600.0, 600.0, true).await;
        drawer.mv(600.0, 600.0, false).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if canvas_of(&server.addr).await.1 > points_before {
            drawn_after = true;
            break;
        }
    }
    assert!(drawn_after, "drawing did not recover");
    let (strokes_live, points_live) = canvas_of(&server.addr).await;

    // Everything acknowledged is on disk; nothing refused is.
    drop((editor, drawer));
    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(10)).await, Some(0));
    let server = Proc::start(&["--data", db.to_str().unwrap()]).await;
    let questions = qa_questions(&server.url()).await;
    for q in &asked {
        assert!(questions.contains(q), "acknowledged question lost: {q}");
    }
    assert!(
        !questions.contains(&refused_q),
        "a refused question was stored"
    );
    let mut editor = Editor::connect(&server.addr).await;
    let (_, text) = editor.fetch("disk").await;
    for m in &acked_ops {
        assert!(
            text.contains(m.as_str()),
            "acknowledged op {m} lost: {text:?}"
        );
    }
    assert_eq!(
        canvas_of(&server.addr).await,
        (strokes_live, points_live),
        "the stored canvas differs from the one shown before the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_within_the_grace_period_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("rt.db");
    let grace = Duration::from_millis(1000);
    let mut server = Proc::start(&[
        "--data",
        db.to_str().unwrap(),
        "--shutdown-grace-ms",
        "1000",
        "--draw-rate",
        "100000",
    ])
    .await;
    let addr = server.addr.clone();
    let url = server.url();
    let mut setup = Editor::connect(&addr).await;
    assert!(is_ack(&setup.create("load", "\n").await));
    let acked_ops = Arc::new(Mutex::new(Vec::<String>::new()));
    let acked_qs = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for e in 0..4 {
        let (addr, acked) = (addr.clone(), acked_ops.clone());
        load.push(tokio::spawn(async move {
            let mut ed = Editor::connect(&addr).await;
            let (mut v, _) = ed.fetch("load").await;
            for n in 0.. {
                let marker = format!("[{e}.{n}]");
                // A stale version is fine: the server transforms the op.
                let Ok(reply) =
                    tokio::time::timeout(WAIT, async { ed.insert_raw("load", v, &marker).await })
                        .await
                else {
                    return;
                };
                match reply {
                    Some(r) if is_ack(&r) => {
                        acked.lock().unwrap().push(marker);
                        v = r["v"].as_u64().map_or(v, |x| x + 1);
                    }
                    _ => return,
                }
            }
        }));
    }
    for t in 0..2 {
        let (url, acked) = (url.clone(), acked_qs.clone());
        load.push(tokio::spawn(async move {
            let user = qa_user(&url).await;
            let client = reqwest::Client::new();
            for n in 0.. {
                let q = format!("load question {t}.{n}");
                let res = client
                    .post(format!("{url}/askquestion/load%20question%20{t}.{n}"))
                    .header(rt_protocol::qa::USER_HEADER, &user)
                    .timeout(WAIT)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(q),
                    _ => return,
                }
            }
        }));
    }
    let a = addr.clone();
    load.push(tokio::spawn(async move {
        let mut d = Drawer::connect(&a).await;
        for i in 0u32.. {
            let x = f64::from(i % 1000);
            d.emit(
                "mousemove",
                serde_json::json!({"x": x, "y": 5.0, "drawing": i % 7 != 0}),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = (
        acked_ops.lock().unwrap().len(),
        acked_qs.lock().unwrap().len(),
    );
    assert!(
        before.0 > 0 && before.1 > 0,
        "no load was acknowledged: {before:?}"
    );

    let signalled = Instant::now();
    server.signal("TERM");
    let code = server.wait(grace + Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "rt-server's exit status after SIGTERM");
    assert!(
        took <= grace + Duration::from_secs(1),
        "exit took {took:?}, more than the grace period plus 1 s"
    );
    for task in load {
        task.abort();
    }

    let server = Proc::start(&["--data", db.to_str().unwrap()]).await;
    let mut ed = Editor::connect(&server.addr).await;
    let (_, text) = ed.fetch("load").await;
    let ops = acked_ops.lock().unwrap().clone();
    for m in &ops {
        assert!(text.contains(m.as_str()), "acknowledged op {m} lost");
    }
    let stored: HashSet<String> = qa_questions(&server.url()).await.into_iter().collect();
    let qs = acked_qs.lock().unwrap().clone();
    for q in &qs {
        assert!(stored.contains(q), "acknowledged question {q:?} lost");
    }
    eprintln!(
        "SIGTERM under load: exit in {took:?}; {} acked ops and {} acked questions all present",
        ops.len(),
        qs.len()
    );
}

/// Adds the id of a `clientdisconnect` frame to `gone`.
fn note_departure(text: &str, gone: &mut HashSet<String>) {
    if let Some(body) = text.strip_prefix("42")
        && let Ok(v) = serde_json::from_str::<Value>(body)
        && v[0] == "clientdisconnect"
        && let Some(id) = v[1].as_str()
    {
        gone.insert(id.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_are_cut_and_server_memory_stays_bounded() {
    const SLOW: usize = 20;
    let server = Proc::start(&[
        "--data",
        ":memory:",
        "--draw-rate",
        "100000",
        "--draw-join-rate",
        "1000",
    ])
    .await;
    let addr = server.addr.clone();
    let mut writer = Editor::connect(&addr).await;
    assert!(is_ack(&writer.create("slow", "\n").await));
    // Slow consumers: they connect, join, then never read again.
    let mut slow_editors = Vec::new();
    for _ in 0..SLOW {
        let mut e = Editor::connect(&addr).await;
        e.send(serde_json::json!({"a": "s", "c": "examples", "d": "slow"}))
            .await;
        let reply = e.recv().await;
        assert_eq!(reply["a"], "s", "{reply}");
        slow_editors.push(e);
    }
    let mut slow_drawers = Vec::new();
    for _ in 0..SLOW {
        let mut d = Drawer::connect(&addr).await;
        d.expect("canvas").await;
        slow_drawers.push(d);
    }
    let slow_ids: HashSet<String> = slow_drawers.iter().map(|d| d.id.clone()).collect();
    let mut drawer = Drawer::connect(&addr).await;
    drawer.expect("canvas").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib();

    // Traffic every slow client should receive: 4 KiB ops and moves.
    // Each pair of ops sends 16 KiB to every subscriber and leaves the
    // document as it was; 2,000 pairs outgrow any socket buffer.
    let chunk = "y".repeat(16 * 1024);
    let pad = "z".repeat(900);
    let mut gone = HashSet::new();
    let mut peak = baseline;
    let (mut v, _) = writer.fetch("slow").await;
    let started = Instant::now();
    for i in 0..2000u32 {
        let reply = writer.insert("slow", v, &chunk).await;
        assert!(is_ack(&reply), "{reply}");
        let reply = writer.delete("slow", v + 1, chunk.len()).await;
        assert!(is_ack(&reply), "{reply}");
        v += 2;
        for j in 0..4 {
            let x = f64::from((i * 4 + j) % 2000);
            // Unknown fields travel with the move: 900 bytes of them make
            // the relays outgrow the slow sockets' kernel buffers.
            drawer
                .emit(
                    "mousemove",
                    json!({"x": x, "y": 3.0, "drawing": false, "pad": pad}),
                )
                .await;
        }
        for text in drawer.ready().await {
            note_departure(&text, &mut gone);
        }
        if i % 100 == 0 {
            peak = peak.max(server.rss_kib());
        }
        if started.elapsed() > Duration::from_secs(40) {
            break;
        }
    }
    peak = peak.max(server.rss_kib());
    // Every slow drawer was cut: the active one saw each leave.
    let deadline = Instant::now() + WAIT;
    while gone.intersection(&slow_ids).count() < SLOW && Instant::now() < deadline {
        if let Some(text) = drawer.next_text_within(Duration::from_secs(1)).await {
            note_departure(&text, &mut gone);
        }
    }
    assert_eq!(
        gone.intersection(&slow_ids).count(),
        SLOW,
        "slow drawers still on the board after {:?}",
        started.elapsed()
    );
    // Every slow editor was cut: reading now drains what was queued, then
    // the socket ends.
    for mut e in slow_editors {
        assert!(
            e.drains_to_close(Duration::from_secs(20)).await,
            "a slow editor was not cut"
        );
    }
    let growth_mib = (peak.saturating_sub(baseline)) as f64 / 1024.0;
    eprintln!(
        "slow consumers: {SLOW} editors + {SLOW} drawers; server RSS {baseline} KiB at rest, peak {peak} KiB (+{growth_mib:.1} MiB)"
    );
    // The queues are bounded by count (--doc-send-queue frames per editor
    // connection, which share a broadcast's bytes; SOCKET_BUFFER packets per
    // Socket.IO socket), so growth stays far below what 40 unbounded queues
    // of this traffic would hold (20 × 32 MiB of ops + 20 × 8 MiB of moves).
    // Measured: about +70 MiB in a debug build (SECURITY.md).
    assert!(
        growth_mib < 160.0,
        "server memory grew by {growth_mib:.1} MiB"
    );
    drop(slow_drawers);
}
