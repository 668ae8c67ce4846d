//! Where things go on screen. Pure functions of the terminal size, shared by
//! drawing and mouse hit-testing so the two never disagree.
//!
//! Three layouts, by size: the 2×2 grid from [`GRID_MIN_WIDTH`]×
//! [`GRID_MIN_HEIGHT`] on; below that one pane at a time under a one-line
//! tab bar; below [`MIN_WIDTH`]×[`MIN_HEIGHT`] "terminal too small".

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this width the shell draws "terminal too small".
pub const MIN_WIDTH: u16 = 60;
/// Below this height the shell draws "terminal too small".
pub const MIN_HEIGHT: u16 = 16;
/// From this width on (and [`GRID_MIN_HEIGHT`]) the panes sit in a 2×2
/// grid; below it the focused pane takes the body under a tab bar.
pub const GRID_MIN_WIDTH: u16 = 140;
/// From this height on (and [`GRID_MIN_WIDTH`]) the panes sit in a 2×2 grid.
pub const GRID_MIN_HEIGHT: u16 = 40;

/// Which layout a terminal size gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Too small to draw the shell.
    TooSmall,
    /// One pane at a time, a tab bar naming all of them above it.
    Tabs,
    /// All four panes in a 2×2 grid.
    Grid,
}

/// The layout for a terminal of `size`.
pub fn mode(size: Rect) -> Mode {
    if size.width < MIN_WIDTH || size.height < MIN_HEIGHT {
        Mode::TooSmall
    } else if size.width >= GRID_MIN_WIDTH && size.height >= GRID_MIN_HEIGHT {
        Mode::Grid
    } else {
        Mode::Tabs
    }
}

/// Is `size` too small to draw the shell?
pub fn too_small(size: Rect) -> bool {
    mode(size) == Mode::TooSmall
}

/// The shell's bands, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shell {
    /// The tab bar (empty in the grid).
    pub tabs: Rect,
    pub panes: Rect,
    pub status: Rect,
    pub hints: Rect,
}

/// Splits the screen into tab bar, panes, status bar and hint bar.
pub fn shell(size: Rect) -> Shell {
    let tabs_height = u16::from(mode(size) == Mode::Tabs);
    let [tabs, panes, status, hints] = Layout::vertical([
        Constraint::Length(tabs_height),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(size);
    Shell {
        tabs,
        panes,
        status,
        hints,
    }
}

/// The area inside a pane's frame.
fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x.saturating_add(1),
        r.y.saturating_add(1),
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

/// The `(frame, inner)` rectangles of `count` panes on a screen of `size`.
/// A pane that is not shown gets empty rectangles; too small a screen shows
/// none.
///
/// In the grid the focused pane's row and column are larger, and an
/// `expanded` pane takes the whole grid. With tabs the focused pane takes
/// the body (`expanded` changes nothing there).
pub fn panes(size: Rect, count: usize, focus: usize, expanded: bool) -> Vec<(Rect, Rect)> {
    let area = shell(size).panes;
    let only = |shown: usize| {
        (0..count)
            .map(|i| {
                if i == shown {
                    (area, inner(area))
                } else {
                    (Rect::default(), Rect::default())
                }
            })
            .collect()
    };
    match mode(size) {
        Mode::TooSmall => vec![(Rect::default(), Rect::default()); count],
        Mode::Tabs => only(focus),
        Mode::Grid if expanded || count != 4 => only(focus),
        Mode::Grid => {
            let (frow, fcol) = (focus / 2, focus % 2);
            let weights = |focused: usize| -> [Constraint; 2] {
                if focused == 0 {
                    [Constraint::Percentage(60), Constraint::Percentage(40)]
                } else {
                    [Constraint::Percentage(40), Constraint::Percentage(60)]
                }
            };
            let rows: [Rect; 2] = Layout::vertical(weights(frow)).areas(area);
            rows.iter()
                .flat_map(|row| {
                    let cols: [Rect; 2] = Layout::horizontal(weights(fcol)).areas(*row);
                    cols
                })
                .map(|r| (r, inner(r)))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_size() {
        assert_eq!(mode(Rect::new(0, 0, 59, 40)), Mode::TooSmall);
        assert_eq!(mode(Rect::new(0, 0, 200, 15)), Mode::TooSmall);
        assert_eq!(mode(Rect::new(0, 0, 60, 16)), Mode::Tabs);
        assert_eq!(mode(Rect::new(0, 0, 139, 60)), Mode::Tabs);
        assert_eq!(mode(Rect::new(0, 0, 200, 39)), Mode::Tabs);
        assert_eq!(mode(Rect::new(0, 0, 140, 40)), Mode::Grid);
        assert!(too_small(Rect::new(0, 0, 59, 16)));
        assert!(!too_small(Rect::new(0, 0, 60, 16)));
    }

    #[test]
    fn the_grid_when_large() {
        let big = Rect::new(0, 0, 200, 50);
        assert_eq!(shell(big).tabs.height, 0);
        let r = panes(big, 4, 0, false);
        assert_eq!(r[0].0, Rect::new(0, 0, 120, 29));
        assert_eq!(r[1].0.x, 120);
        assert_eq!(r[2].0.y, 29);
        assert_eq!(r[0].1, Rect::new(1, 1, 118, 27));
        // Focus on pane 4 makes the bottom-right cell the large one.
        let r = panes(big, 4, 3, false);
        assert_eq!(r[3].0, Rect::new(80, 19, 120, 29));
        // Expanded, the focused pane takes the grid's place.
        let r = panes(big, 4, 2, true);
        assert_eq!(r[2].0, Rect::new(0, 0, 200, 48));
        assert!(r[0].0.is_empty() && r[1].0.is_empty() && r[3].0.is_empty());
    }

    #[test]
    fn tabs_below_the_grid_size() {
        let size = Rect::new(0, 0, 80, 24);
        let s = shell(size);
        assert_eq!(s.tabs, Rect::new(0, 0, 80, 1));
        assert_eq!(s.panes, Rect::new(0, 1, 80, 21));
        assert_eq!((s.status.y, s.hints.y), (22, 23));
        for expanded in [false, true] {
            let r = panes(size, 4, 1, expanded);
            assert_eq!(r[1], (s.panes, Rect::new(1, 2, 78, 19)));
            assert!(r[0].0.is_empty() && r[2].0.is_empty() && r[3].0.is_empty());
        }
        // The smallest drawn size still leaves the focused pane room.
        let r = panes(Rect::new(0, 0, MIN_WIDTH, MIN_HEIGHT), 4, 0, false);
        assert_eq!(r[0].1, Rect::new(1, 2, 58, 11));
    }

    #[test]
    fn too_small_shows_no_pane() {
        let r = panes(Rect::new(0, 0, 40, 12), 4, 0, false);
        assert!(r.iter().all(|(o, i)| o.is_empty() && i.is_empty()));
    }
}
