//! A stand-in pane that shows only what it is for: tests that look at one
//! real pane in the grid fill the other places with it.

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{Handled, Pane, PaneId, RenderCtx};
use crate::app::Cmd;
use crate::keymap::Hint;
use crate::net::NetEvent;

/// Shows the pane's description and nothing else.
#[derive(Debug, Clone)]
pub struct TitlePane {
    id: PaneId,
}

impl TitlePane {
    pub fn new(id: PaneId) -> TitlePane {
        TitlePane { id }
    }
}

impl Pane for TitlePane {
    fn id(&self) -> PaneId {
        self.id
    }

    fn handle_key(&mut self, _key: KeyEvent) -> Handled {
        Handled::Ignored
    }

    fn handle_mouse(&mut self, _event: MouseEvent, _area: Rect) -> Vec<Cmd> {
        Vec::new()
    }

    fn apply(&mut self, _event: &NetEvent) -> bool {
        false
    }

    fn render(&self, frame: &mut Frame, area: Rect, ctx: &RenderCtx) {
        let line = Line::styled(self.id.description(), ctx.theme.dim());
        frame.render_widget(Paragraph::new(line), area);
    }

    fn hints(&self) -> Vec<Hint> {
        Vec::new()
    }
}
