//! `rt-tui draw listen|line|clear|save`: the drawing board from scripts.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use rt_protocol::draw::{Board, Bounds, CanvasPart, event};
use rt_tui::board_png::{self, MAX_WIDTH, MIN_WIDTH};
use rt_tui::net::draw::{MOVE_INTERVAL, Session};
use serde_json::{Value, json};

use super::connect::DEFAULT_URL;
use rt_tui::net::Endpoint;

/// How long `clear` waits for the server to confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `save` waits for the whole canvas.
const CANVAS_TIMEOUT: Duration = Duration::from_secs(10);

const ABOUT: &str = "\
Subcommands:
  listen   print every board event as one JSON line on stdout:
             {\"event\":\"moving\",\"data\":{\"x\":10,\"y\":20,\"drawing\":true,\"id\":\"…\"}}
           (canvas, peers, peer, moving, clientdisconnect, cleared, undone,
            error)
  line     draw a straight line from (X1, Y1) to (X2, Y2), board coordinates
  clear    clear the board for everyone
  save     write the board as a PNG picture (white background, every stroke
           in its colour) and print {\"path\":…,\"width\":…,\"height\":…,\"bytes\":…,\"strokes\":…}

Exit status: 0 on success (listen: after --count events); 1 when the server
cannot be reached or the connection is lost; 2 for bad arguments
(coordinates outside the board included).

Examples:
  rt-tui draw listen --count 5
  rt-tui draw line 100 100 400 300 --url http://127.0.0.1:9000
  rt-tui draw save board.png --width 1000
  rt-tui draw listen | jq 'select(.event == \"moving\") | .data.id'";

/// `rt-tui draw` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = ABOUT)]
pub struct Args {
    #[command(subcommand)]
    pub action: DrawAction,

    /// Server URL (http:// or https://).
    #[arg(long, global = true, default_value = DEFAULT_URL)]
    pub url: String,

    #[command(flatten)]
    pub server: super::server::ServerArgs,
}

/// What to do on the board.
#[derive(Debug, clap::Subcommand)]
pub enum DrawAction {
    /// Print board events as JSON lines.
    Listen {
        /// Stop after this many events.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
    /// Draw a straight line.
    Line {
        #[arg(allow_negative_numbers = true)]
        x1: f64,
        #[arg(allow_negative_numbers = true)]
        y1: f64,
        #[arg(allow_negative_numbers = true)]
        x2: f64,
        #[arg(allow_negative_numbers = true)]
        y2: f64,
        /// Board units between the points sent along the line (0: just the
        /// two ends).
        #[arg(long, default_value_t = 0.0, value_name = "PX")]
        step: f64,
    },
    /// Clear the board for everyone.
    Clear,
    /// Save the board as a PNG file.
    Save {
        /// Where to write the picture (overwritten if it exists).
        file: std::path::PathBuf,
        /// Picture width in pixels (the height keeps the board's shape);
        /// default: one pixel per board unit.
        #[arg(long, value_name = "W",
              value_parser = clap::value_parser!(u32).range(i64::from(MIN_WIDTH)..=i64::from(MAX_WIDTH)))]
        width: Option<u32>,
    },
}

/// Runs one `draw` subcommand.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base = args.server.endpoint(&args.url)?;
    match args.action {
        DrawAction::Listen { count } => listen(&base, count).await,
        DrawAction::Line {
            x1,
            y1,
            x2,
            y2,
            step,
        } => line(&base, [x1, y1, x2, y2], step).await,
        DrawAction::Clear => clear(&base).await,
        DrawAction::Save { file, width } => save(&base, &file, width).await,
    }
}

async fn listen(base: &Endpoint, count: Option<u64>) -> anyhow::Result<ExitCode> {
    let mut session = Session::connect(base).await?;
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    loop {
        let (name, args) = match session.next_event().await {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("rt-tui: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let data = args.into_iter().next().unwrap_or(Value::Null);
        let line = json!({"event": name, "data": data}).to_string();
        let mut out = stdout.lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e).context("cannot write to stdout");
        }
        printed += 1;
        if count.is_some_and(|n| printed >= n) {
            session.close().await;
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// The board's size, from the first `canvas` part.
async fn board_size(session: &mut Session) -> anyhow::Result<(f64, f64)> {
    loop {
        let (name, args) = session.next_event().await?;
        if name == event::CANVAS {
            let part: CanvasPart =
                serde_json::from_value(args.into_iter().next().unwrap_or_default())
                    .context("malformed canvas event")?;
            return Ok((part.width, part.height));
        }
    }
}

/// Points from `a` to `b`, `step` apart (both ends included).
pub fn points_along(a: (f64, f64), b: (f64, f64), step: f64) -> Vec<(f64, f64)> {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let n = if step > 0.0 && len > step {
        (len / step).ceil().min(10_000.0) as usize
    } else {
        1
    };
    (0..=n)
        .map(|i| {
            let t = i as f64 / n as f64;
            (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
        })
        .collect()
}

async fn line(base: &Endpoint, c: [f64; 4], step: f64) -> anyhow::Result<ExitCode> {
    if c.iter().any(|v| !v.is_finite()) || !step.is_finite() || step < 0.0 {
        eprintln!("rt-tui: coordinates and --step must be finite numbers (step ≥ 0)");
        return Ok(ExitCode::from(2));
    }
    let mut session = match Session::connect(base).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rt-tui: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (w, h) = board_size(&mut session).await?;
    if [c[0], c[2]].iter().any(|x| !(0.0..=w).contains(x))
        || [c[1], c[3]].iter().any(|y| !(0.0..=h).contains(y))
    {
        eprintln!("rt-tui: the board is {w}×{h}; x must lie in 0..={w} and y in 0..={h}");
        session.close().await;
        return Ok(ExitCode::from(2));
    }
    let points = points_along((c[0], c[1]), (c[2], c[3]), step);
    let last = points.len() - 1;
    let mut moves = vec![(points[0].0, points[0].1, false)];
    moves.extend(points[1..].iter().map(|p| (p.0, p.1, true)));
    moves.push((points[last].0, points[last].1, false));
    for (i, (x, y, drawing)) in moves.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(MOVE_INTERVAL).await;
        }
        if let Err(e) = session.mouse_move(x, y, drawing).await {
            bail!("{e}");
        }
    }
    session.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn clear(base: &Endpoint) -> anyhow::Result<ExitCode> {
    let mut session = match Session::connect(base).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rt-tui: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    session.emit(event::CLEAR, vec![]).await?;
    let me = session.id.clone();
    let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, async {
        loop {
            let (name, args) = session.next_event().await?;
            if name == event::CLEARED && args.first().and_then(|a| a.get("by")) == Some(&json!(me))
            {
                return Ok::<_, anyhow::Error>(());
            }
            if name == event::ERROR {
                bail!(
                    "the server refused: {}",
                    args.first().cloned().unwrap_or_default()
                );
            }
        }
    })
    .await;
    match confirmed {
        Ok(Ok(())) => {
            session.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(e)) => {
            eprintln!("rt-tui: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!("rt-tui: the server did not confirm the clear in {CONFIRM_TIMEOUT:?}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The whole canvas as of joining: every `canvas` part, in order.
async fn whole_canvas(session: &mut Session) -> anyhow::Result<(Board, Bounds)> {
    let mut board = Board::new();
    loop {
        let (name, args) = session.next_event().await?;
        if name != event::CANVAS {
            continue;
        }
        let part: CanvasPart = serde_json::from_value(args.into_iter().next().unwrap_or_default())
            .context("malformed canvas event")?;
        board.load_part(&part);
        if part.part + 1 >= part.parts {
            let bounds = Bounds {
                width: part.width,
                height: part.height,
            };
            return Ok((board, bounds));
        }
    }
}

async fn save(
    base: &Endpoint,
    file: &std::path::Path,
    width: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let mut session = match Session::connect(base).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rt-tui: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let canvas = tokio::time::timeout(CANVAS_TIMEOUT, whole_canvas(&mut session)).await;
    session.close().await;
    let (board, bounds) = match canvas {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("rt-tui: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
        Err(_) => {
            eprintln!("rt-tui: the server did not send the whole canvas in {CANVAS_TIMEOUT:?}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let width = width.unwrap_or((bounds.width.round() as u32).clamp(MIN_WIDTH, MAX_WIDTH));
    let saved = board_png::save(&board, bounds, width, file)?;
    println!(
        "{}",
        json!({
            "path": saved.path.display().to_string(),
            "width": saved.width,
            "height": saved.height,
            "bytes": saved.bytes,
            "strokes": board.strokes().count(),
        })
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_along_a_line() {
        assert_eq!(
            points_along((0.0, 0.0), (10.0, 0.0), 0.0),
            vec![(0.0, 0.0), (10.0, 0.0)]
        );
        let p = points_along((0.0, 0.0), (10.0, 0.0), 4.0);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], (0.0, 0.0));
        assert_eq!(p[3], (10.0, 0.0));
        // A tiny step on a long line is capped.
        assert!(points_along((0.0, 0.0), (2000.0, 1000.0), 0.001).len() <= 10_001);
    }
}
