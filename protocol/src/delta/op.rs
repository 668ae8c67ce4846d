//! Ops, inserts and attribute maps, with the JavaScript semantics of
//! quill-delta 4.2.2 (`Op.js`, `AttributeMap.js`).

use serde_json::{Map, Value};

use super::utf16;

/// Formatting attributes of an insert or a retain. A `null` value removes the
/// attribute when composed onto a document.
pub type Attributes = Map<String, Value>;

/// What an insert op inserts.
#[derive(Debug, Clone, PartialEq)]
pub enum Insert {
    /// Text; its length is its number of UTF-16 code units.
    Text(String),
    /// An embed such as `{"image": "url"}`; its length is 1.
    Embed(Map<String, Value>),
}

impl Insert {
    /// Length in UTF-16 code units (1 for an embed).
    pub fn len(&self) -> usize {
        match self {
            Insert::Text(text) => utf16::len(text),
            Insert::Embed(_) => 1,
        }
    }

    /// True for empty text (an embed is never empty).
    pub fn is_empty(&self) -> bool {
        matches!(self, Insert::Text(text) if text.is_empty())
    }
}

impl From<&str> for Insert {
    fn from(text: &str) -> Self {
        Insert::Text(text.to_owned())
    }
}

impl From<String> for Insert {
    fn from(text: String) -> Self {
        Insert::Text(text)
    }
}

impl From<Map<String, Value>> for Insert {
    fn from(embed: Map<String, Value>) -> Self {
        Insert::Embed(embed)
    }
}

/// One op of a Delta.
///
/// `attributes: None` is JavaScript's absent `attributes`; `Some` of an empty
/// map behaves like JavaScript's `{}` (present), which is why parsing and the
/// builders turn `{}` into `None`.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert text or an embed.
    Insert {
        /// What to insert.
        insert: Insert,
        /// Formatting of the inserted content.
        attributes: Option<Attributes>,
    },
    /// Keep `n` units, optionally changing their formatting.
    Retain {
        /// Number of UTF-16 units kept.
        n: usize,
        /// Formatting changes (`null` removes an attribute).
        attributes: Option<Attributes>,
    },
    /// Delete this many UTF-16 units.
    Delete(usize),
}

impl Op {
    /// A text insert without attributes.
    pub fn text(text: impl Into<String>) -> Op {
        Op::Insert {
            insert: Insert::Text(text.into()),
            attributes: None,
        }
    }

    /// A plain retain.
    pub fn retain(n: usize) -> Op {
        Op::Retain {
            n,
            attributes: None,
        }
    }

    /// Length in UTF-16 code units (`Op.length` in JavaScript).
    pub fn len(&self) -> usize {
        match self {
            Op::Insert { insert, .. } => insert.len(),
            Op::Retain { n, .. } => *n,
            Op::Delete(n) => *n,
        }
    }

    /// True for zero-length ops (empty text, retain 0, delete 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The op's attributes (deletes have none).
    pub fn attributes(&self) -> Option<&Attributes> {
        match self {
            Op::Insert { attributes, .. } | Op::Retain { attributes, .. } => attributes.as_ref(),
            Op::Delete(_) => None,
        }
    }

    /// True for inserts.
    pub fn is_insert(&self) -> bool {
        matches!(self, Op::Insert { .. })
    }

    /// True for deletes.
    pub fn is_delete(&self) -> bool {
        matches!(self, Op::Delete(_))
    }

    /// True for retains.
    pub fn is_retain(&self) -> bool {
        matches!(self, Op::Retain { .. })
    }
}

/// Deep equality like lodash `isEqual` on JSON values: numbers compare as
/// JavaScript numbers (so `1` equals `1.0`), objects ignore key order.
pub fn js_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| js_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => map_equal(x, y),
        _ => a == b,
    }
}

/// [`js_equal`] for maps.
pub fn map_equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| js_equal(v, w)))
}

/// [`js_equal`] for optional attribute maps (`None` is `undefined`).
pub fn attrs_equal(a: Option<&Attributes>, b: Option<&Attributes>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => map_equal(a, b),
        _ => false,
    }
}

/// JavaScript `===` on JSON values: objects and arrays are distinct
/// references, so two of them are never strictly equal.
fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(_), _) | (Value::Array(_), _) => false,
        _ => js_equal(a, b),
    }
}

/// `AttributeMap.compose(a, b, keepNull)`: a copy of `b` (without its `null`
/// values unless `keep_null`), plus `a`'s keys that `b` does not mention;
/// `None` when empty.
pub fn compose_attributes(
    a: Option<&Attributes>,
    b: Option<&Attributes>,
    keep_null: bool,
) -> Option<Attributes> {
    let mut out = Attributes::new();
    if let Some(b) = b {
        for (key, value) in b {
            if keep_null || !value.is_null() {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(a) = a {
        for (key, value) in a {
            if b.is_none_or(|b| !b.contains_key(key)) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `AttributeMap.transform(a, b, priority)`: `b`'s changes rebased over `a`'s.
pub fn transform_attributes(
    a: Option<&Attributes>,
    b: Option<&Attributes>,
    priority: bool,
) -> Option<Attributes> {
    let Some(a) = a else { return b.cloned() };
    let b = b?;
    if !priority {
        return Some(b.clone());
    }
    let out: Attributes = b
        .iter()
        .filter(|(key, _)| !a.contains_key(*key))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!out.is_empty()).then_some(out)
}

/// `AttributeMap.invert(attr, base)`: the base values of the keys `attr`
/// changed, and `null` for the keys `attr` added. Always a map (maybe empty).
pub fn invert_attributes(attr: Option<&Attributes>, base: Option<&Attributes>) -> Attributes {
    let empty = Attributes::new();
    let attr = attr.unwrap_or(&empty);
    let base = base.unwrap_or(&empty);
    let mut out = Attributes::new();
    for (key, value) in base {
        if let Some(changed) = attr.get(key)
            && !strict_equal(value, changed)
        {
            out.insert(key.clone(), value.clone());
        }
    }
    for key in attr.keys() {
        if !base.contains_key(key) {
            out.insert(key.clone(), Value::Null);
        }
    }
    out
}

/// `AttributeMap.diff(a, b)`: the keys whose values differ, with `b`'s value
/// or `null` when `b` lacks the key; `None` when nothing differs.
pub fn diff_attributes(a: Option<&Attributes>, b: Option<&Attributes>) -> Option<Attributes> {
    let empty = Attributes::new();
    let a = a.unwrap_or(&empty);
    let b = b.unwrap_or(&empty);
    let mut out = Attributes::new();
    for key in a.keys().chain(b.keys()) {
        let same = match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) => js_equal(x, y),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.insert(key.clone(), b.get(key).cloned().unwrap_or(Value::Null));
        }
    }
    (!out.is_empty()).then_some(out)
}
