//! Where things go on screen. Pure functions of the terminal size, shared by
//! drawing and mouse hit-testing so the two never disagree.

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this width the shell draws "terminal too small".
pub const MIN_WIDTH: u16 = 40;
/// Below this height the shell draws "terminal too small".
pub const MIN_HEIGHT: u16 = 12;
/// From this width on the panes sit in a 2×2 grid; below it they stack.
pub const GRID_MIN_WIDTH: u16 = 100;
/// From this height on the panes sit in a 2×2 grid; below it they stack.
pub const GRID_MIN_HEIGHT: u16 = 24;

/// The shell's three bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shell {
    pub panes: Rect,
    pub status: Rect,
    pub hints: Rect,
}

/// Is `size` too small to draw the shell?
pub fn too_small(size: Rect) -> bool {
    size.width < MIN_WIDTH || size.height < MIN_HEIGHT
}

/// Splits the screen into panes, status bar and hint bar.
pub fn shell(size: Rect) -> Shell {
    let [panes, status, hints] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(size);
    Shell {
        panes,
        status,
        hints,
    }
}

/// The `(frame, inner)` rectangles of `count` panes in `area`. A pane that is
/// not shown (another one is expanded) gets empty rectangles.
///
/// Wide and tall terminals get a 2×2 grid whose focused row and column are
/// larger; smaller ones stack the panes, the focused one taking the room and
/// the others shrinking to their title line.
pub fn panes(area: Rect, count: usize, focus: usize, expanded: bool) -> Vec<(Rect, Rect)> {
    let inner = |r: Rect| {
        Rect::new(
            r.x.saturating_add(1),
            r.y.saturating_add(1),
            r.width.saturating_sub(2),
            r.height.saturating_sub(2),
        )
    };
    if count == 0 {
        return Vec::new();
    }
    if expanded {
        return (0..count)
            .map(|i| {
                if i == focus {
                    (area, inner(area))
                } else {
                    (Rect::default(), Rect::default())
                }
            })
            .collect();
    }
    let rects: Vec<Rect> =
        if count == 4 && area.width >= GRID_MIN_WIDTH && area.height >= GRID_MIN_HEIGHT {
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
                .collect()
        } else {
            // Collapsed panes keep a three-line frame while the focused pane
            // still gets at least half of the height, else just their title.
            let others = (count - 1) as u16;
            let collapsed = if area.height >= others * 3 * 2 { 3 } else { 1 };
            let constraints: Vec<Constraint> = (0..count)
                .map(|i| {
                    if i == focus {
                        Constraint::Fill(1)
                    } else {
                        Constraint::Length(collapsed)
                    }
                })
                .collect();
            Layout::vertical(constraints).split(area).to_vec()
        };
    rects.into_iter().map(|r| (r, inner(r))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_when_large_stack_when_narrow() {
        let big = Rect::new(0, 0, 120, 38);
        let r = panes(big, 4, 0, false);
        assert_eq!(r[0].0, Rect::new(0, 0, 72, 23));
        assert_eq!(r[1].0.x, 72);
        assert_eq!(r[2].0.y, 23);
        // Focus on pane 4 makes the bottom-right cell the large one.
        let r = panes(big, 4, 3, false);
        assert_eq!(r[3].0, Rect::new(48, 15, 72, 23));

        let narrow = Rect::new(0, 0, 80, 30);
        let r = panes(narrow, 4, 1, false);
        assert!(r.iter().all(|(o, _)| o.width == 80));
        assert_eq!(r[0].0.height, 3);
        assert_eq!(r[1].0.height, 30 - 9);
        assert_eq!(r[1].1, Rect::new(1, 4, 78, 19));

        let short = Rect::new(0, 0, 80, 10);
        let r = panes(short, 4, 0, false);
        assert_eq!(r[1].0.height, 1);
    }

    #[test]
    fn expanded_pane_takes_everything() {
        let area = Rect::new(0, 0, 120, 38);
        let r = panes(area, 4, 2, true);
        assert_eq!(r[2].0, area);
        assert!(r[0].0.is_empty() && r[1].0.is_empty() && r[3].0.is_empty());
    }

    #[test]
    fn minimum_size() {
        assert!(too_small(Rect::new(0, 0, 39, 40)));
        assert!(too_small(Rect::new(0, 0, 100, 11)));
        assert!(!too_small(Rect::new(0, 0, 40, 12)));
    }
}
