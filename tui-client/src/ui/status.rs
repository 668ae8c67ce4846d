//! The status bar: the server, each transport's state and the latest
//! notice. When the line is short of room the states get shorter, then the
//! browser hint, then the notice loses whole words ("…"); nothing is cut
//! mid-word.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::net::ConnState;
use crate::text::fit_words;

/// How the transports' states read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum States {
    /// `● ticker: connected`
    Long,
    /// `● ticker`
    Short,
    /// `●`
    Marks,
}

/// How the embedded server's "open in a browser" hint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Browser {
    Long,
    Short,
    Hidden,
}

/// The forms the line is tried in, most detailed first.
const FORMS: [(States, Browser); 6] = [
    (States::Long, Browser::Long),
    (States::Short, Browser::Long),
    (States::Short, Browser::Short),
    (States::Marks, Browser::Short),
    (States::Short, Browser::Hidden),
    (States::Marks, Browser::Hidden),
];

/// Draws the status bar for `app` into `area`.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let line = line(app, area.width as usize);
    frame.render_widget(Paragraph::new(line).style(app.theme.bar()), area);
}

/// The status bar in `width` columns: at most `width` wide.
pub fn line(app: &App, width: usize) -> Line<'static> {
    let fits = |l: &Line| l.width() <= width;
    let notice = app.notice();
    // Everything, in the most detailed form that fits.
    if let Some(l) = FORMS
        .iter()
        .map(|&(s, b)| build(app, s, b, notice))
        .find(fits)
    {
        return l;
    }
    // A notice matters more than detail: the most detailed form that leaves
    // the notice a fair share of the line, else the most compact, and as
    // many of the notice's words as fit.
    let (s, b) = FORMS[FORMS.len() - 1];
    if let Some(n) = notice {
        let share = NOTICE_SHARE.min(crate::text::width(n));
        let room = |s, b| width.saturating_sub(build(app, s, b, None).width() + NOTICE_GAP.len());
        let (s, b) = FORMS
            .iter()
            .copied()
            .find(|&(s, b)| room(s, b) >= share)
            .unwrap_or((s, b));
        if let Some(short) = fit_words(n, room(s, b)) {
            return build(app, s, b, Some(&short));
        }
    }
    // Still too wide (a long URL): whole spans from the end go.
    let mut l = build(app, s, b, None);
    while !fits(&l) && l.spans.len() > 1 {
        l.spans.pop();
    }
    if fits(&l) { l } else { Line::default() }
}

/// The columns a shortened notice gets before the states and the browser
/// hint give up detail for it.
const NOTICE_SHARE: usize = 24;

/// Between the states and the notice.
const NOTICE_GAP: &str = "  ";

fn build(app: &App, states: States, browser: Browser, notice: Option<&str>) -> Line<'static> {
    let theme = app.theme;
    let mut spans = vec![
        Span::styled(" rt ", theme.header()),
        Span::raw(app.server.url.clone()),
    ];
    if app.server.embedded {
        match browser {
            Browser::Long => spans.push(Span::styled(
                format!(" (embedded server: open {}/ in a browser)", app.server.url),
                theme.ok(),
            )),
            Browser::Short => spans.push(Span::styled("/ ← open in a browser", theme.ok())),
            Browser::Hidden => {}
        }
    }
    for (t, state) in app.transports() {
        let (mark, style) = match state {
            ConnState::Connected => ("●", theme.ok()),
            ConnState::Idle => ("○", theme.dim()),
            ConnState::Connecting => ("◌", theme.warn()),
            ConnState::Retrying { .. } => ("✕", theme.error()),
        };
        let (gap, text) = match states {
            States::Long => (
                "  ",
                format!("{mark} {}: {}", t.name(), app.describe_state(state)),
            ),
            States::Short => (" ", format!("{mark} {}", t.name())),
            States::Marks => (" ", mark.to_string()),
        };
        spans.push(Span::raw(gap));
        spans.push(Span::styled(text, style));
    }
    if let Some(n) = notice {
        spans.push(Span::raw(NOTICE_GAP));
        spans.push(Span::styled(n.to_string(), theme.warn()));
    }
    Line::from(spans)
}
