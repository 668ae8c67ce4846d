//! The keymap is data: one table of `(keys, action, description)` rows.
//!
//! Dispatch ([`lookup`]), the `?` help overlay and the bottom hint bar all
//! read [`BINDINGS`], so a key cannot work without being documented.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Anywhere, unless a pane is taking raw input.
    Global,
    /// While the help overlay is open.
    Help,
    /// The ticker pane has focus.
    Ticker,
    /// The ticker's one-line symbol input is open.
    TickerInput,
    /// The Q&A pane has focus.
    Qa,
    /// The Q&A pane's one-line input (a question or an answer) is open.
    QaInput,
    /// The text pane has focus.
    Text,
    /// The text pane is in typing mode (it is when focused): printable keys
    /// are typed into the document.
    TextEdit,
    /// The canvas pane has focus.
    Canvas,
    /// The canvas asks whether to clear the board.
    CanvasConfirm,
}

impl Scope {
    /// Heading of the scope's section in the help overlay.
    pub fn heading(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Help => "Help",
            Scope::Ticker => "Ticker pane",
            Scope::TickerInput => "Ticker: adding a symbol",
            Scope::Qa => "Q&A pane",
            Scope::QaInput => "Q&A: writing a question or answer",
            Scope::Text => "Text pane (after Esc: reading)",
            Scope::TextEdit => "Text pane: typing (every printable key is typed)",
            Scope::Canvas => "Canvas pane",
            Scope::CanvasConfirm => "Canvas: clear the board?",
        }
    }
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    ToggleHelp,
    CloseHelp,
    /// Scroll the help overlay by a line.
    ScrollDown,
    ScrollUp,
    FocusNext,
    FocusPrev,
    /// Focus the pane whose number is the key's digit.
    FocusNumber,
    ToggleExpand,
    SelectDown,
    SelectUp,
    AddSymbol,
    RemoveSymbol,
    Submit,
    Cancel,
    /// Follow the selected question (its answers appear beside it).
    Follow,
    ToggleOrder,
    Ask,
    Answer,
    Vote,
    /// Cursor movement and deletion in a text field (the key says which;
    /// in the text pane, what the key does while typing).
    Edit,
    EditText,
    CursorLeft,
    CursorRight,
    CursorUp,
    CursorDown,
    LineStart,
    LineEnd,
    PageUp,
    PageDown,
    WordLeft,
    WordRight,
    DeleteBack,
    DeleteForward,
    Newline,
    /// Move the canvas cursor in the arrow key's direction.
    MoveCursor,
    TogglePen,
    NextColour,
    UndoMine,
    ClearBoard,
    Confirm,
}

/// One key pattern: a code and the modifiers that must be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn plain(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

const fn alt(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::ALT,
    }
}

const fn with(code: KeyCode, mods: KeyModifiers) -> Key {
    Key { code, mods }
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    /// How the keys are written in help and hints.
    pub label: &'static str,
    pub action: Action,
    pub description: &'static str,
    /// Short text for the bottom hint bar, if the row is shown there (help
    /// always shows every row, with `description`).
    pub hint: Option<&'static str>,
}

impl Binding {
    /// The row's hint-bar entry, if it has one.
    pub fn hint(&self) -> Option<Hint> {
        let (priority, short) = HINT_RANKS
            .iter()
            .find(|r| r.0 == self.scope && r.1 == self.action)
            .map_or((Priority::Normal, None), |r| (r.2, r.3));
        self.hint.map(|text| Hint {
            label: self.label,
            description: text,
            priority,
            short: short.unwrap_or(self.label),
        })
    }
}

/// How much a hint matters when the hint bar is short of room: the lowest
/// go first (behind "? more keys"), the essential ones last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Normal,
    High,
    /// The way out of a mode, or of the program.
    Essential,
}

/// Hint-bar ranks and short key labels, for the rows whose hint is not
/// [`Priority::Normal`] or whose label has a shorter form. Rows not listed
/// rank normal and keep their label.
const HINT_RANKS: &[(Scope, Action, Priority, Option<&str>)] = &[
    (Scope::Global, Action::Quit, Priority::Essential, Some("q")),
    (Scope::Global, Action::ToggleHelp, Priority::Essential, None),
    (Scope::Global, Action::FocusNext, Priority::Normal, None),
    (Scope::Global, Action::FocusNumber, Priority::Low, None),
    (Scope::Global, Action::ToggleExpand, Priority::Low, None),
    (
        Scope::Help,
        Action::CloseHelp,
        Priority::Essential,
        Some("Esc"),
    ),
    (Scope::Help, Action::PageDown, Priority::High, Some("PgDn")),
    (Scope::Help, Action::PageUp, Priority::High, None),
    (Scope::Ticker, Action::SelectDown, Priority::Low, Some("j")),
    (Scope::Ticker, Action::SelectUp, Priority::Low, Some("k")),
    (Scope::Ticker, Action::AddSymbol, Priority::High, None),
    (
        Scope::TickerInput,
        Action::Submit,
        Priority::Essential,
        None,
    ),
    (
        Scope::TickerInput,
        Action::Cancel,
        Priority::Essential,
        None,
    ),
    (Scope::Qa, Action::SelectDown, Priority::Low, Some("j")),
    (Scope::Qa, Action::SelectUp, Priority::Low, Some("k")),
    (Scope::Qa, Action::Follow, Priority::High, None),
    (Scope::Qa, Action::ToggleOrder, Priority::Low, None),
    (Scope::Qa, Action::Ask, Priority::High, None),
    (Scope::QaInput, Action::Submit, Priority::Essential, None),
    (Scope::QaInput, Action::Cancel, Priority::Essential, None),
    (Scope::Text, Action::EditText, Priority::High, Some("i")),
    (Scope::TextEdit, Action::Cancel, Priority::Essential, None),
    (Scope::Canvas, Action::MoveCursor, Priority::High, None),
    (Scope::Canvas, Action::TogglePen, Priority::High, None),
    (Scope::Canvas, Action::ClearBoard, Priority::Low, None),
    (
        Scope::CanvasConfirm,
        Action::Confirm,
        Priority::Essential,
        None,
    ),
    (
        Scope::CanvasConfirm,
        Action::Cancel,
        Priority::Essential,
        None,
    ),
];

const fn bind(
    scope: Scope,
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    description: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        scope,
        keys,
        label,
        action,
        description,
        hint,
    }
}

/// Every key binding of the client.
pub const BINDINGS: &[Binding] = &[
    bind(
        Scope::Global,
        &[plain('q'), ctrl('c')],
        "q C-c",
        Action::Quit,
        "quit",
        Some("quit"),
    ),
    bind(
        Scope::Global,
        &[plain('?')],
        "?",
        Action::ToggleHelp,
        "help",
        Some("help"),
    ),
    bind(
        Scope::Global,
        &[code(KeyCode::Tab)],
        "Tab",
        Action::FocusNext,
        "next pane",
        Some("next"),
    ),
    bind(
        Scope::Global,
        &[
            code(KeyCode::BackTab),
            Key {
                code: KeyCode::BackTab,
                mods: KeyModifiers::SHIFT,
            },
        ],
        "S-Tab",
        Action::FocusPrev,
        "previous pane",
        None,
    ),
    bind(
        Scope::Global,
        &[plain('1'), plain('2'), plain('3'), plain('4')],
        "1-4",
        Action::FocusNumber,
        "focus pane by number",
        Some("focus"),
    ),
    bind(
        Scope::Global,
        &[plain('e')],
        "e",
        Action::ToggleExpand,
        "expand / restore the focused pane (in the 2×2 grid)",
        Some("expand"),
    ),
    bind(
        Scope::Help,
        &[code(KeyCode::Esc), plain('?'), plain('q')],
        "Esc ? q",
        Action::CloseHelp,
        "close help",
        Some("close"),
    ),
    bind(
        Scope::Help,
        &[plain('j'), code(KeyCode::Down)],
        "j/↓",
        Action::ScrollDown,
        "scroll down a line",
        Some("down"),
    ),
    bind(
        Scope::Help,
        &[plain('k'), code(KeyCode::Up)],
        "k/↑",
        Action::ScrollUp,
        "scroll up a line",
        Some("up"),
    ),
    bind(
        Scope::Help,
        &[code(KeyCode::PageDown), plain(' ')],
        "PgDn Space",
        Action::PageDown,
        "scroll down a page",
        Some("page down"),
    ),
    bind(
        Scope::Help,
        &[code(KeyCode::PageUp)],
        "PgUp",
        Action::PageUp,
        "scroll up a page",
        Some("page up"),
    ),
    bind(
        Scope::Ticker,
        &[plain('j'), code(KeyCode::Down)],
        "j/↓",
        Action::SelectDown,
        "select next symbol",
        Some("down"),
    ),
    bind(
        Scope::Ticker,
        &[plain('k'), code(KeyCode::Up)],
        "k/↑",
        Action::SelectUp,
        "select previous symbol",
        Some("up"),
    ),
    bind(
        Scope::Ticker,
        &[plain('a')],
        "a",
        Action::AddSymbol,
        "add a symbol to the watchlist",
        Some("add"),
    ),
    bind(
        Scope::Ticker,
        &[plain('d')],
        "d",
        Action::RemoveSymbol,
        "remove the selected symbol",
        Some("remove"),
    ),
    bind(
        Scope::TickerInput,
        &[code(KeyCode::Enter)],
        "Enter",
        Action::Submit,
        "add the typed symbol",
        Some("add"),
    ),
    bind(
        Scope::TickerInput,
        &[code(KeyCode::Esc)],
        "Esc",
        Action::Cancel,
        "cancel",
        Some("cancel"),
    ),
    bind(
        Scope::Qa,
        &[plain('j'), code(KeyCode::Down)],
        "j/↓",
        Action::SelectDown,
        "select next question",
        Some("down"),
    ),
    bind(
        Scope::Qa,
        &[plain('k'), code(KeyCode::Up)],
        "k/↑",
        Action::SelectUp,
        "select previous question",
        Some("up"),
    ),
    bind(
        Scope::Qa,
        &[code(KeyCode::Enter)],
        "Enter",
        Action::Follow,
        "follow the selected question and show its answers",
        Some("follow"),
    ),
    bind(
        Scope::Qa,
        &[plain('o')],
        "o",
        Action::ToggleOrder,
        "order questions by newest or by votes",
        Some("order"),
    ),
    bind(
        Scope::Qa,
        &[plain('a')],
        "a",
        Action::Ask,
        "ask a question",
        Some("ask"),
    ),
    bind(
        Scope::Qa,
        &[plain('r')],
        "r",
        Action::Answer,
        "answer the followed question",
        Some("answer"),
    ),
    bind(
        Scope::Qa,
        &[plain('+')],
        "+",
        Action::Vote,
        "vote for the selected question (again to withdraw)",
        Some("vote"),
    ),
    bind(
        Scope::QaInput,
        &[code(KeyCode::Enter)],
        "Enter",
        Action::Submit,
        "send",
        Some("send"),
    ),
    bind(
        Scope::QaInput,
        &[code(KeyCode::Esc)],
        "Esc",
        Action::Cancel,
        "cancel",
        Some("cancel"),
    ),
    bind(
        Scope::QaInput,
        &[
            code(KeyCode::Left),
            code(KeyCode::Right),
            code(KeyCode::Home),
            code(KeyCode::End),
            code(KeyCode::Backspace),
            code(KeyCode::Delete),
        ],
        "←→⌂⌫",
        Action::Edit,
        "edit: ← → move, Home End jump, Backspace Delete erase",
        None,
    ),
    bind(
        Scope::Text,
        &[plain('i'), code(KeyCode::Enter)],
        "i Enter",
        Action::EditText,
        "type (focusing the pane starts typing too)",
        Some("type"),
    ),
    bind(
        Scope::Text,
        &[
            code(KeyCode::Left),
            code(KeyCode::Right),
            code(KeyCode::Up),
            code(KeyCode::Down),
            with(KeyCode::Left, KeyModifiers::CONTROL),
            with(KeyCode::Left, KeyModifiers::ALT),
            alt('b'),
            with(KeyCode::Right, KeyModifiers::CONTROL),
            with(KeyCode::Right, KeyModifiers::ALT),
            alt('f'),
            code(KeyCode::Home),
            code(KeyCode::End),
            code(KeyCode::PageUp),
            code(KeyCode::PageDown),
        ],
        "←↑→↓…",
        Action::Edit,
        "move the cursor, as while typing",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Esc)],
        "Esc",
        Action::Cancel,
        "stop typing (global keys work again)",
        Some("leave"),
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Left)],
        "←",
        Action::CursorLeft,
        "cursor left",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Right)],
        "→",
        Action::CursorRight,
        "cursor right",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Up)],
        "↑",
        Action::CursorUp,
        "cursor up a line",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Down)],
        "↓",
        Action::CursorDown,
        "cursor down a line",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[
            with(KeyCode::Left, KeyModifiers::CONTROL),
            with(KeyCode::Left, KeyModifiers::ALT),
            alt('b'),
        ],
        "C-← A-←",
        Action::WordLeft,
        "to the start of the word (also A-b)",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[
            with(KeyCode::Right, KeyModifiers::CONTROL),
            with(KeyCode::Right, KeyModifiers::ALT),
            alt('f'),
        ],
        "C-→ A-→",
        Action::WordRight,
        "to the end of the word (also A-f)",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Home)],
        "Home",
        Action::LineStart,
        "start of the line",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::End)],
        "End",
        Action::LineEnd,
        "end of the line",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::PageUp)],
        "PgUp",
        Action::PageUp,
        "up a screen",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::PageDown)],
        "PgDn",
        Action::PageDown,
        "down a screen",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Backspace)],
        "Bksp",
        Action::DeleteBack,
        "delete before the cursor",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Delete)],
        "Del",
        Action::DeleteForward,
        "delete at the cursor",
        None,
    ),
    bind(
        Scope::TextEdit,
        &[code(KeyCode::Enter)],
        "Enter",
        Action::Newline,
        "new line (a paste is one edit)",
        None,
    ),
    bind(
        Scope::Canvas,
        &[
            code(KeyCode::Left),
            code(KeyCode::Right),
            code(KeyCode::Up),
            code(KeyCode::Down),
        ],
        "←↑→↓",
        Action::MoveCursor,
        "move the cursor (draws while the pen is down)",
        Some("move"),
    ),
    bind(
        Scope::Canvas,
        &[plain(' ')],
        "Space",
        Action::TogglePen,
        "pen down / up (or drag with the mouse)",
        Some("pen"),
    ),
    bind(
        Scope::Canvas,
        &[plain('c')],
        "c",
        Action::NextColour,
        "next colour",
        Some("colour"),
    ),
    bind(
        Scope::Canvas,
        &[plain('u')],
        "u",
        Action::UndoMine,
        "undo my last stroke",
        Some("undo"),
    ),
    bind(
        Scope::Canvas,
        &[plain('C')],
        "C",
        Action::ClearBoard,
        "clear the board for everyone (asks y/n first)",
        Some("clear"),
    ),
    bind(
        Scope::CanvasConfirm,
        &[plain('y')],
        "y",
        Action::Confirm,
        "yes, clear it",
        Some("clear"),
    ),
    bind(
        Scope::CanvasConfirm,
        &[plain('n'), code(KeyCode::Esc)],
        "n/Esc",
        Action::Cancel,
        "keep the drawing",
        Some("keep"),
    ),
];

fn matches(pattern: &Key, key: &KeyEvent) -> bool {
    if pattern.code != key.code {
        return false;
    }
    // Terminals disagree on whether Shift is reported with a shifted
    // character ('?' arrives with or without SHIFT), so Shift is ignored for
    // characters; Control and Alt must match exactly.
    let strict = KeyModifiers::CONTROL | KeyModifiers::ALT;
    match key.code {
        KeyCode::Char(_) => (key.modifiers & strict) == (pattern.mods & strict),
        _ => key.modifiers == pattern.mods || (key.modifiers - KeyModifiers::SHIFT) == pattern.mods,
    }
}

/// The action `key` triggers in `scope`, if any.
pub fn lookup(scope: Scope, key: &KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .find(|b| b.keys.iter().any(|k| matches(k, key)))
        .map(|b| b.action)
}

/// The bindings of `scope`, in table order.
pub fn bindings(scope: Scope) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.scope == scope)
}

/// One entry of the hint bar: `label` `description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub label: &'static str,
    pub description: &'static str,
    /// Which hints go first when the bar is short of room.
    pub priority: Priority,
    /// The label when the bar is short of room (the label itself if it
    /// has no shorter form).
    pub short: &'static str,
}

/// The hint-bar entries of `scope`.
pub fn hints(scope: Scope) -> Vec<Hint> {
    bindings(scope).filter_map(Binding::hint).collect()
}

/// Is `key` Ctrl-C? It quits even while a pane takes raw input.
pub fn is_interrupt(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn global_keys_resolve() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Char('q'), none)),
            Some(Action::Quit)
        );
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(lookup(Scope::Global, &k(KeyCode::Char('c'), none)), None);
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Tab, none)),
            Some(Action::FocusNext)
        );
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Char('3'), none)),
            Some(Action::FocusNumber)
        );
        assert_eq!(lookup(Scope::Global, &k(KeyCode::Char('5'), none)), None);
        // '?' arrives with SHIFT on some terminals.
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::ToggleHelp)
        );
        // Alt-q is not q.
        assert_eq!(
            lookup(Scope::Global, &k(KeyCode::Char('q'), KeyModifiers::ALT)),
            None
        );
    }

    #[test]
    fn scopes_are_separate() {
        let j = k(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(lookup(Scope::Ticker, &j), Some(Action::SelectDown));
        assert_eq!(lookup(Scope::Global, &j), None);
        let esc = k(KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(lookup(Scope::Help, &esc), Some(Action::CloseHelp));
        assert_eq!(lookup(Scope::TickerInput, &esc), Some(Action::Cancel));
    }

    #[test]
    fn every_binding_is_documented_and_reachable() {
        for b in BINDINGS {
            assert!(!b.description.is_empty(), "{:?}", b.action);
            assert!(!b.label.is_empty());
            assert!(!b.keys.is_empty());
            // The first binding of a scope to claim a key wins; no row may be
            // fully shadowed by an earlier one.
            for key in b.keys {
                let ev = KeyEvent::new(key.code, key.mods);
                let first = bindings(b.scope)
                    .find(|other| other.keys.iter().any(|p| matches(p, &ev)))
                    .expect("own key matches");
                assert_eq!(first.action, b.action, "{} is shadowed", b.label);
            }
        }
    }

    #[test]
    fn every_hint_rank_names_a_row_with_a_hint() {
        for (scope, action, _, short) in HINT_RANKS {
            let row = bindings(*scope)
                .find(|b| b.action == *action)
                .unwrap_or_else(|| panic!("{scope:?} {action:?} is not in the table"));
            assert!(row.hint.is_some(), "{scope:?} {action:?} has no hint");
            if let Some(short) = short {
                assert!(short.len() < row.label.len(), "{short:?} is not shorter");
            }
        }
        let quit = hints(Scope::Global)[0];
        assert_eq!((quit.label, quit.short), ("q C-c", "q"));
        assert_eq!(quit.priority, Priority::Essential);
        let next = hints(Scope::Global)[2];
        assert_eq!((next.short, next.priority), ("Tab", Priority::Normal));
    }

    #[test]
    fn hints_follow_the_table() {
        let labels: Vec<_> = hints(Scope::Global).iter().map(|h| h.label).collect();
        assert_eq!(labels, ["q C-c", "?", "Tab", "1-4", "e"]);
        assert!(is_interrupt(&k(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_interrupt(&k(KeyCode::Char('c'), KeyModifiers::NONE)));
    }
}
