//! The JSON wire forms of a Delta, with strict validation.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::op::{Attributes, Insert, Op};
use super::{Delta, DeltaError};

/// The largest count JavaScript represents exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_COUNT: u64 = (1 << 53) - 1;

impl Delta {
    /// Parses the JavaScript wire forms: a bare array of ops or `{"ops": [...]}`.
    ///
    /// Stricter than JavaScript (which uses whatever it is given): every op
    /// must be exactly one of `insert` (a string or an embed object), `retain`
    /// or `delete` (positive integer counts), optionally with an object of
    /// `attributes` (not on deletes); unknown keys, object retains
    /// (quill-delta 5), zero-length ops and non-object attributes are
    /// rejected. `"attributes": {}` becomes absent. The ops are kept as given,
    /// not normalized.
    pub fn from_value(value: &Value) -> Result<Delta, DeltaError> {
        let ops = match value {
            Value::Array(ops) => ops,
            Value::Object(object) => match object.get("ops") {
                Some(Value::Array(ops)) if object.len() == 1 => ops,
                _ => return Err(DeltaError::NotADelta),
            },
            _ => return Err(DeltaError::NotADelta),
        };
        let ops = ops
            .iter()
            .enumerate()
            .map(|(index, op)| {
                parse_op(op).map_err(|reason| DeltaError::InvalidOp { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Delta::from_ops(ops))
    }

    /// The wire form `{"ops": [...]}` (what quill-delta's `JSON.stringify` gives).
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("ops".into(), self.ops_value());
        Value::Object(object)
    }

    /// The bare array of ops (rich-text `serialize`).
    pub fn ops_value(&self) -> Value {
        Value::Array(self.ops.iter().map(op_value).collect())
    }
}

fn parse_op(value: &Value) -> Result<Op, String> {
    let Value::Object(object) = value else {
        return Err("an op must be an object".into());
    };
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "insert" | "retain" | "delete" | "attributes"))
    {
        return Err(format!("unknown key `{key}`"));
    }
    let attributes = match object.get("attributes") {
        None => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err("`attributes` must be an object".into()),
    };
    let kinds = ["insert", "retain", "delete"]
        .iter()
        .filter(|k| object.contains_key(**k))
        .count();
    if kinds != 1 {
        return Err("an op must have exactly one of `insert`, `retain` and `delete`".into());
    }
    if let Some(insert) = object.get("insert") {
        let insert = match insert {
            Value::String(text) if text.is_empty() => return Err("empty insert".into()),
            Value::String(text) => Insert::Text(text.clone()),
            Value::Object(embed) if embed.is_empty() => return Err("empty embed".into()),
            Value::Object(embed) => Insert::Embed(embed.clone()),
            _ => return Err("`insert` must be a string or an embed object".into()),
        };
        return Ok(Op::Insert { insert, attributes });
    }
    if let Some(retain) = object.get("retain") {
        if retain.is_object() {
            return Err("object retains (embed changes) are not supported".into());
        }
        return Ok(Op::Retain {
            n: count(retain, "retain")?,
            attributes,
        });
    }
    let delete = object.get("delete").unwrap_or(&Value::Null);
    if object.contains_key("attributes") {
        return Err("a delete takes no attributes".into());
    }
    Ok(Op::Delete(count(delete, "delete")?))
}

/// A positive integer count (JSON integers, or floats with no fraction).
fn count(value: &Value, what: &str) -> Result<usize, String> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_COUNT as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    match n {
        Some(0) => Err(format!("`{what}` must be positive")),
        Some(n) if n <= MAX_COUNT => {
            usize::try_from(n).map_err(|_| format!("`{what}` is too large"))
        }
        Some(_) => Err(format!("`{what}` is too large")),
        None => Err(format!("`{what}` must be a positive integer")),
    }
}

fn attributes_into(object: &mut Map<String, Value>, attributes: Option<&Attributes>) {
    if let Some(attributes) = attributes {
        object.insert("attributes".into(), Value::Object(attributes.clone()));
    }
}

/// The JSON form of one op.
pub(crate) fn op_value(op: &Op) -> Value {
    let mut object = Map::new();
    match op {
        Op::Insert { insert, attributes } => {
            let insert = match insert {
                Insert::Text(text) => Value::String(text.clone()),
                Insert::Embed(embed) => Value::Object(embed.clone()),
            };
            object.insert("insert".into(), insert);
            attributes_into(&mut object, attributes.as_ref());
        }
        Op::Retain { n, attributes } => {
            object.insert("retain".into(), Value::from(*n));
            attributes_into(&mut object, attributes.as_ref());
        }
        Op::Delete(n) => {
            object.insert("delete".into(), Value::from(*n));
        }
    }
    Value::Object(object)
}

/// Writes `{"ops": [...]}` straight from the ops, with the same text as
/// `to_value()` gives (keys in sorted order, as `serde_json::Map` keeps them),
/// without building a `Value` tree first.
impl Serialize for Delta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("ops", &OpsSer(&self.ops))?;
        map.end()
    }
}

/// The bare array of ops (`ops_value()`'s text), serialized in place.
pub(crate) struct OpsSer<'a>(pub(crate) &'a [Op]);

impl Serialize for OpsSer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(OpSer))
    }
}

struct OpSer<'a>(&'a Op);

impl Serialize for OpSer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Sorted keys: "attributes" < "delete" < "insert" < "retain".
        let (attributes, len) = match self.0 {
            Op::Insert { attributes, .. } | Op::Retain { attributes, .. } => {
                (attributes.as_ref(), 1 + usize::from(attributes.is_some()))
            }
            Op::Delete(_) => (None, 1),
        };
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(attributes) = attributes {
            map.serialize_entry("attributes", attributes)?;
        }
        match self.0 {
            Op::Insert { insert, .. } => match insert {
                Insert::Text(text) => map.serialize_entry("insert", text)?,
                Insert::Embed(embed) => map.serialize_entry("insert", embed)?,
            },
            Op::Retain { n, .. } => map.serialize_entry("retain", n)?,
            Op::Delete(n) => map.serialize_entry("delete", n)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Delta::from_value(&value).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accepts_both_wire_forms() {
        let bare = Delta::from_value(&json!([{"insert": "a"}])).unwrap();
        let wrapped = Delta::from_value(&json!({"ops": [{"insert": "a"}]})).unwrap();
        assert_eq!(bare, wrapped);
        assert_eq!(bare.to_value(), json!({"ops": [{"insert": "a"}]}));
        assert_eq!(bare.ops_value(), json!([{"insert": "a"}]));
    }

    #[test]
    fn empty_attributes_become_absent() {
        let delta = Delta::from_value(&json!([{"insert": "a", "attributes": {}}])).unwrap();
        assert_eq!(delta.ops(), &[Op::text("a")]);
    }

    #[test]
    fn keeps_ops_as_given() {
        let value = json!([{"retain": 1}, {"retain": 2}, {"delete": 1}, {"insert": "x"}]);
        let delta = Delta::from_value(&value).unwrap();
        assert_eq!(delta.ops_value(), value);
    }

    #[test]
    fn integral_floats_count() {
        let delta = Delta::from_value(&json!([{"retain": 3.0}])).unwrap();
        assert_eq!(delta.ops(), &[Op::retain(3)]);
    }

    #[test]
    fn rejects_malformed_ops() {
        let bad = [
            json!("ops"),
            json!({"ops": 1}),
            json!({"ops": [], "extra": 1}),
            json!([1]),
            json!([{"retain": 0}]),
            json!([{"retain": -1}]),
            json!([{"retain": 1.5}]),
            json!([{"delete": 0}]),
            json!([{"delete": "1"}]),
            json!([{"retain": {"image": {"alt": "x"}}}]),
            json!([{"insert": "a", "attributes": "bold"}]),
            json!([{"insert": "a", "attributes": null}]),
            json!([{"insert": "a", "bold": true}]),
            json!([{"insert": "a", "retain": 1}]),
            json!([{}]),
            json!([{"insert": ""}]),
            json!([{"insert": 5}]),
            json!([{"insert": {}}]),
            json!([{"delete": 1, "attributes": {"bold": true}}]),
            json!([{"retain": 9007199254740992u64}]),
        ];
        for value in bad {
            assert!(Delta::from_value(&value).is_err(), "accepted {value}");
        }
    }

    #[test]
    fn error_messages_name_the_op() {
        let err = Delta::from_value(&json!([{"insert": "a"}, {"retain": 0}])).unwrap_err();
        assert_eq!(err.to_string(), "op 1: `retain` must be positive");
    }

    #[test]
    fn serialize_writes_the_same_text_as_to_value() {
        let value = json!({"ops": [
            {"insert": "a\"b\u{1}😀", "attributes": {"bold": true, "align": null}},
            {"insert": {"image": "x.png"}},
            {"retain": 3, "attributes": {"color": "#f00"}},
            {"retain": 2},
            {"delete": 4},
        ]});
        let delta = Delta::from_value(&value).unwrap();
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            delta.to_value().to_string()
        );
        assert_eq!(
            serde_json::to_string(&OpsSer(delta.ops())).unwrap(),
            delta.ops_value().to_string()
        );
    }

    #[test]
    fn serde_round_trip() {
        let delta: Delta =
            serde_json::from_str(r#"{"ops":[{"insert":"😀","attributes":{"bold":true}}]}"#)
                .unwrap();
        let text = serde_json::to_string(&delta).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back,
            json!({"ops": [{"insert": "😀", "attributes": {"bold": true}}]})
        );
        assert!(serde_json::from_str::<Delta>(r#"[{"retain":0}]"#).is_err());
    }
}
