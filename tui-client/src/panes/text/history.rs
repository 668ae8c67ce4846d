//! Undo and redo of one's own edits, as ShareDB's undo manager does it.
//!
//! Each local edit is kept as its inverse (`op.invert(document before)`).
//! Both stacks are in the coordinates of the local copy: a remote op that
//! arrives is transformed through every kept step, top first, so an undo
//! after someone else's edit removes only our text and leaves theirs.
//!
//! Grouping: consecutive typing is one step until a word ends: typing a
//! non-space after a space (or a newline) starts a new step, so "hello
//! world" undoes as "world" then "hello ". Consecutive single deletions
//! (Backspace, Delete) group the same way. A pause of more than [`PAUSE`],
//! a cursor move, a click, an undo or redo, or any other kind of edit (a
//! paste, a cut, formatting, typing over a selection) closes the step.

use std::time::{Duration, Instant};

use rt_protocol::delta::{Delta, Op};

/// A pause in typing longer than this starts a new undo step.
pub const PAUSE: Duration = Duration::from_secs(1);
/// Steps kept on each stack at most (the oldest go first).
pub const MAX_STEPS: usize = 500;

/// What kind of edit a step holds, for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// Typed text; `space` when it ended in whitespace.
    Typing { space: bool },
    /// A single Backspace or Delete.
    Deleting,
    /// Anything else: never grouped.
    Other,
}

impl EditKind {
    /// May an edit of kind `next` join a step of kind `self`?
    fn joins(self, next: EditKind) -> bool {
        match (self, next) {
            // A word after a space starts a new step.
            (EditKind::Typing { space: prev }, EditKind::Typing { space: now }) => !prev || now,
            (EditKind::Deleting, EditKind::Deleting) => true,
            _ => false,
        }
    }
}

/// One undo (or redo) step: the op that takes the document back.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    op: Delta,
    kind: EditKind,
    at: Instant,
}

/// The undo and redo stacks of one document.
#[derive(Debug, Clone, Default)]
pub struct History {
    undo: Vec<Step>,
    redo: Vec<Step>,
    /// The top undo step takes no more edits.
    sealed: bool,
}

impl History {
    /// A local edit was made; `inverse` undoes it. Clears the redo stack.
    pub fn record(&mut self, inverse: Delta, kind: EditKind, now: Instant) {
        self.redo.clear();
        if let Some(top) = self.undo.last_mut()
            && !self.sealed
            && top.kind.joins(kind)
            && now.saturating_duration_since(top.at) <= PAUSE
        {
            // Undoing both: first this edit, then the ones before it.
            top.op = inverse.compose(&top.op);
            top.kind = kind;
            top.at = now;
        } else {
            push(
                &mut self.undo,
                Step {
                    op: inverse,
                    kind,
                    at: now,
                },
            );
        }
        self.sealed = kind == EditKind::Other;
    }

    /// Closes the current step: the next edit starts a new one.
    pub fn seal(&mut self) {
        self.sealed = true;
    }

    /// The op that undoes the latest step, taken off the stack (steps that
    /// remote edits emptied are skipped).
    pub fn undo(&mut self) -> Option<Delta> {
        self.sealed = true;
        take(&mut self.undo)
    }

    /// The op that redoes the latest undo, taken off the stack.
    pub fn redo(&mut self) -> Option<Delta> {
        self.sealed = true;
        take(&mut self.redo)
    }

    /// An undo was applied; `inverse` redoes it.
    pub fn undone(&mut self, inverse: Delta, now: Instant) {
        push(
            &mut self.redo,
            Step {
                op: inverse,
                kind: EditKind::Other,
                at: now,
            },
        );
    }

    /// A redo was applied; `inverse` undoes it again (the redo stack stays).
    pub fn redone(&mut self, inverse: Delta, now: Instant) {
        push(
            &mut self.undo,
            Step {
                op: inverse,
                kind: EditKind::Other,
                at: now,
            },
        );
        self.sealed = true;
    }

    /// A remote op was applied to the local copy: every step is moved over
    /// it, so undoing never touches what others wrote.
    pub fn transform(&mut self, remote: &Delta) {
        transform_stack(&mut self.undo, remote);
        transform_stack(&mut self.redo, remote);
    }

    /// Forgets everything (the document was replaced).
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
        self.sealed = true;
    }

    /// Steps that can be undone and redone.
    #[cfg(test)]
    pub fn depth(&self) -> (usize, usize) {
        (self.undo.len(), self.redo.len())
    }

    #[cfg(test)]
    pub(crate) fn age_top(&mut self, by: Duration) {
        if let Some(top) = self.undo.last_mut() {
            top.at -= by;
        }
    }
}

fn push(stack: &mut Vec<Step>, step: Step) {
    if stack.len() >= MAX_STEPS {
        stack.remove(0);
    }
    stack.push(step);
}

fn take(stack: &mut Vec<Step>) -> Option<Delta> {
    while let Some(step) = stack.pop() {
        if !step.op.is_empty() {
            return Some(step.op);
        }
    }
    None
}

/// Moves a stack over `remote`, which applies to the state the top step
/// applies to. Each step applies to the state the one above it leads to, so
/// `remote` is carried down the stack, rebased over each step in turn.
fn transform_stack(stack: &mut [Step], remote: &Delta) {
    let mut remote = remote.clone();
    for step in stack.iter_mut().rev() {
        if remote.is_empty() {
            break;
        }
        let op = remote.transform(&step.op, true);
        remote = step.op.transform(&remote, false);
        step.op = op;
    }
}

/// Where the caret goes after `op` (undo or redo) is applied: the end of the
/// last text it inserted, or where it deleted (UTF-16 units); `None` when it
/// only formats.
pub fn caret_after(op: &Delta) -> Option<usize> {
    let mut at = 0;
    let mut caret = None;
    for o in op.ops() {
        match o {
            Op::Insert { insert, .. } => {
                at += insert.len();
                caret = Some(at);
            }
            Op::Delete(_) => caret = Some(at),
            Op::Retain { n, .. } => at += n,
        }
    }
    caret
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rt_protocol::delta::{Document, Insert};
    use serde_json::json;

    fn d(v: serde_json::Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    fn insert_at(at: usize, s: &str) -> Delta {
        let mut op = Delta::new();
        op.retain(at, None);
        op.insert(Insert::from(s), None);
        op
    }

    fn delete_at(at: usize, n: usize) -> Delta {
        let mut op = Delta::new();
        op.retain(at, None);
        op.delete(n);
        op
    }

    /// A local copy with its history, as the text pane keeps them.
    struct Local {
        doc: Document,
        history: History,
        now: Instant,
    }

    impl Local {
        fn new(text: &str) -> Local {
            Local {
                doc: Document::from_delta(&d(json!([{"insert": text}]))).unwrap(),
                history: History::default(),
                now: Instant::now(),
            }
        }

        fn edit(&mut self, op: Delta, kind: EditKind) {
            let inverse = op.invert(&self.doc.to_delta());
            self.doc.apply(&op).unwrap();
            self.history.record(inverse, kind, self.now);
        }

        fn typ(&mut self, at: usize, s: &str) {
            for (i, c) in s.chars().enumerate() {
                let kind = EditKind::Typing {
                    space: c.is_whitespace(),
                };
                self.edit(insert_at(at + i, &c.to_string()), kind);
            }
        }

        fn remote(&mut self, op: Delta) {
            self.doc.apply(&op).unwrap();
            self.history.transform(&op);
        }

        fn undo(&mut self) -> bool {
            let Some(op) = self.history.undo() else {
                return false;
            };
            let inverse = op.invert(&self.doc.to_delta());
            self.doc.apply(&op).unwrap();
            self.history.undone(inverse, self.now);
            true
        }

        fn redo(&mut self) -> bool {
            let Some(op) = self.history.redo() else {
                return false;
            };
            let inverse = op.invert(&self.doc.to_delta());
            self.doc.apply(&op).unwrap();
            self.history.redone(inverse, self.now);
            true
        }

        fn text(&self) -> String {
            self.doc.text()
        }
    }

    #[test]
    fn typing_groups_by_word_and_undo_redo_walk_the_steps() {
        let mut l = Local::new("\n");
        l.typ(0, "hello world");
        assert_eq!(l.history.depth(), (2, 0));
        assert!(l.undo());
        assert_eq!(l.text(), "hello \n");
        assert!(l.undo());
        assert_eq!(l.text(), "\n");
        assert!(!l.undo());
        assert!(l.redo());
        assert_eq!(l.text(), "hello \n");
        assert!(l.redo());
        assert_eq!(l.text(), "hello world\n");
        assert!(!l.redo());
        // A new edit after an undo drops the redo stack.
        l.undo();
        l.typ(6, "there");
        assert_eq!(l.history.depth().1, 0);
        assert_eq!(l.text(), "hello there\n");
    }

    #[test]
    fn a_pause_a_seal_or_another_kind_starts_a_new_step() {
        let mut l = Local::new("\n");
        l.typ(0, "ab");
        l.history.age_top(PAUSE + Duration::from_millis(1));
        l.typ(2, "cd");
        assert_eq!(l.history.depth().0, 2, "after a pause");
        l.history.seal();
        l.typ(4, "ef");
        assert_eq!(l.history.depth().0, 3, "after a cursor move");
        l.edit(delete_at(5, 1), EditKind::Deleting);
        l.edit(delete_at(4, 1), EditKind::Deleting);
        assert_eq!(l.history.depth().0, 4, "deletions group");
        l.edit(insert_at(0, "pasted"), EditKind::Other);
        l.typ(6, "x");
        assert_eq!(l.history.depth().0, 6, "a paste stands alone");
        l.undo();
        l.undo();
        assert_eq!(l.text(), "abcd\n");
        l.undo();
        assert_eq!(l.text(), "abcdef\n");
    }

    #[test]
    fn undo_after_a_remote_edit_removes_only_our_text() {
        let mut l = Local::new("base\n");
        l.typ(4, " mine");
        // Someone types in the middle of our word, and before it.
        l.remote(insert_at(6, "THEIRS"));
        l.remote(insert_at(0, ">>"));
        assert_eq!(l.text(), ">>base mTHEIRSine\n");
        assert!(l.undo(), "mine");
        assert_eq!(l.text(), ">>base THEIRS\n");
        assert!(l.undo(), "the space before it");
        assert_eq!(l.text(), ">>baseTHEIRS\n");
        assert!(l.redo());
        assert!(l.redo());
        assert_eq!(l.text(), ">>base mTHEIRSine\n");
    }

    #[test]
    fn undoing_a_delete_puts_back_the_text_with_its_formatting() {
        let mut l = Local {
            doc: Document::from_delta(&d(json!([
                {"insert": "plain "}, {"insert": "bold", "attributes": {"bold": true}}, {"insert": "\n"}
            ])))
            .unwrap(),
            history: History::default(),
            now: Instant::now(),
        };
        l.edit(delete_at(2, 7), EditKind::Other);
        l.remote(insert_at(0, "X"));
        assert!(l.undo());
        assert_eq!(
            l.doc.to_delta(),
            d(
                json!([{"insert": "Xplain "}, {"insert": "bold", "attributes": {"bold": true}}, {"insert": "\n"}])
            )
        );
    }

    #[test]
    fn a_step_emptied_by_others_is_skipped() {
        let mut l = Local::new("\n");
        l.typ(0, "one ");
        l.history.seal();
        l.typ(4, "two");
        // Someone deletes our second word: its undo has nothing left to do.
        l.remote(delete_at(4, 3));
        assert!(l.undo());
        assert_eq!(l.text(), "\n");
    }

    #[test]
    fn the_caret_goes_to_the_last_change() {
        assert_eq!(
            caret_after(&d(json!([{"retain": 3}, {"delete": 2}]))),
            Some(3)
        );
        assert_eq!(
            caret_after(&d(json!([{"retain": 3}, {"insert": "ab"}]))),
            Some(5)
        );
        assert_eq!(
            caret_after(&d(json!([{"retain": 3, "attributes": {"bold": true}}]))),
            None
        );
    }

    #[test]
    fn stacks_are_bounded() {
        let mut l = Local::new("\n");
        for i in 0..MAX_STEPS + 10 {
            l.edit(insert_at(i, "x"), EditKind::Other);
        }
        assert_eq!(l.history.depth().0, MAX_STEPS);
    }

    /// One random action: our typing or deleting, a remote insert or
    /// delete, or a seal.
    #[derive(Debug, Clone)]
    enum Action {
        Type(usize, char),
        Delete(usize),
        RemoteInsert(usize, String),
        RemoteDelete(usize, usize),
        Seal,
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (any::<usize>(), prop::sample::select(vec!['a', 'b', ' ', 'é'])).prop_map(|(a, c)| Action::Type(a, c)),
            1 => any::<usize>().prop_map(Action::Delete),
            2 => (any::<usize>(), "[XYZ]{1,3}").prop_map(|(a, s)| Action::RemoteInsert(a, s)),
            1 => (any::<usize>(), 1..3usize).prop_map(|(a, n)| Action::RemoteDelete(a, n)),
            1 => Just(Action::Seal),
        ]
    }

    proptest! {
        /// Whatever we type and others do in between, undoing everything
        /// leaves the remote text exactly as if we had never typed, and
        /// redoing everything brings our text back.
        #[test]
        fn undo_all_keeps_every_remote_edit(actions in prop::collection::vec(action(), 1..40)) {
            // Remote text is upper case, ours lower case: undoing all must
            // leave the upper-case text of the document that remote edits
            // alone would give, in order.
            let mut l = Local::new("BASE\n");
            let mut theirs = Local::new("BASE\n");
            for a in actions {
                let len = l.doc.len_utf16() - 1;
                match a {
                    Action::Type(at, c) => l.typ(at % (len + 1), &c.to_string()),
                    Action::Delete(at) if len > 0 => {
                        // Only our own (lower-case) text, so remote text is
                        // never deleted by us.
                        let text: Vec<char> = l.text().chars().collect();
                        let at = at % len;
                        if text[at].is_lowercase() || text[at] == ' ' {
                            l.edit(delete_at(at, 1), EditKind::Deleting);
                        }
                    }
                    Action::Delete(_) => {}
                    Action::RemoteInsert(at, s) => {
                        let at = at % (len + 1);
                        // The same insert lands in the other copy where the
                        // upper-case text before it ends.
                        let upper_before = l.text().chars().take(at).filter(|c| c.is_uppercase()).count();
                        l.remote(insert_at(at, &s));
                        theirs.remote(insert_at(upper_before, &s));
                    }
                    Action::RemoteDelete(at, n) if len > 0 => {
                        // Others delete only upper-case text.
                        let text: Vec<char> = l.text().chars().collect();
                        let at = at % len;
                        let n = n.min(len - at);
                        if text[at..at + n].iter().all(|c| c.is_uppercase()) {
                            let upper_before = text[..at].iter().filter(|c| c.is_uppercase()).count();
                            l.remote(delete_at(at, n));
                            theirs.remote(delete_at(upper_before, n));
                        }
                    }
                    Action::RemoteDelete(..) => {}
                    Action::Seal => l.history.seal(),
                }
            }
            let before_undo = l.text();
            while l.undo() {}
            prop_assert_eq!(l.text(), theirs.text());
            while l.redo() {}
            prop_assert_eq!(l.text(), before_undo);
        }
    }
}
