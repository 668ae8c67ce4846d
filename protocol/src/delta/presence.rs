//! rich-text `transformPresence`: moving a Quill selection over an op.

use serde_json::{Map, Value};

use super::{Delta, DeltaError};

/// A Quill selection: `length` UTF-16 units starting at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start, in UTF-16 code units.
    pub index: usize,
    /// Length, in UTF-16 code units (0 for a caret).
    pub length: usize,
}

impl Range {
    /// Moves the range over `op` (rich-text `transformPresence`): both ends go
    /// through `op.transform_position(end, !own)`. `own` is true when the op
    /// was made by the range's owner, whose caret then moves past text
    /// inserted right at it.
    pub fn transform(self, op: &Delta, own: bool) -> Range {
        let start = op.transform_position(self.index, !own);
        let end = op.transform_position(self.index + self.length, !own);
        Range {
            index: start,
            length: end.saturating_sub(start),
        }
    }

    /// Reads `index` and `length` from a presence object.
    pub fn from_value(value: &Value) -> Result<Range, DeltaError> {
        let Value::Object(object) = value else {
            return Err(DeltaError::InvalidRange("a range must be an object".into()));
        };
        Ok(Range {
            index: field(object, "index")?,
            length: field(object, "length")?,
        })
    }
}

fn field(object: &Map<String, Value>, key: &str) -> Result<usize, DeltaError> {
    let n = object.get(key).and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= super::json::MAX_COUNT as f64)
                .map(|f| f as u64)
        })
    });
    n.filter(|n| *n <= super::json::MAX_COUNT)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| DeltaError::InvalidRange(format!("`{key}` must be a non-negative integer")))
}

/// rich-text `transformPresence(range, op, own)` on a wire presence value:
/// `null` stays `null`; otherwise `index` and `length` are moved over `op`
/// (see [`Range::transform`]) and every other field (such as a user name) is
/// kept as it is.
pub fn transform_presence(range: &Value, op: &Delta, own: bool) -> Result<Value, DeltaError> {
    if range.is_null() {
        return Ok(Value::Null);
    }
    let moved = Range::from_value(range)?.transform(op, own);
    let mut object = range.as_object().cloned().unwrap_or_default();
    object.insert("index".into(), Value::from(moved.index));
    object.insert("length".into(), Value::from(moved.length));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(v: Value) -> Delta {
        Delta::from_value(&v).unwrap()
    }

    #[test]
    fn caret_at_an_insert_moves_only_for_own_ops() {
        // §5.4: {2,0} against [retain 2, ins Z] → 3 for an own op, 2 otherwise.
        let op = d(json!([{"retain": 2}, {"insert": "Z"}]));
        let caret = json!({"index": 2, "length": 0, "name": "ann"});
        assert_eq!(
            transform_presence(&caret, &op, true).unwrap(),
            json!({"index": 3, "length": 0, "name": "ann"})
        );
        assert_eq!(
            transform_presence(&caret, &op, false).unwrap(),
            json!({"index": 2, "length": 0, "name": "ann"})
        );
    }

    #[test]
    fn selection_grows_over_foreign_insert_inside() {
        // §5.4: {2,3} against someone else's insert at 2 → {2,4}.
        let op = d(json!([{"retain": 2}, {"insert": "Z"}]));
        let range = json!({"index": 2, "length": 3});
        assert_eq!(
            transform_presence(&range, &op, false).unwrap(),
            json!({"index": 2, "length": 4})
        );
    }

    #[test]
    fn null_stays_null_and_junk_is_rejected() {
        let op = d(json!([{"insert": "x"}]));
        assert_eq!(
            transform_presence(&Value::Null, &op, true).unwrap(),
            Value::Null
        );
        assert!(transform_presence(&json!(5), &op, true).is_err());
        assert!(transform_presence(&json!({"index": -1, "length": 0}), &op, true).is_err());
        assert!(transform_presence(&json!({"index": 1}), &op, true).is_err());
    }

    #[test]
    fn deletes_shrink_the_range() {
        let op = d(json!([{"retain": 1}, {"delete": 3}]));
        let range = Range {
            index: 2,
            length: 4,
        };
        assert_eq!(
            range.transform(&op, false),
            Range {
                index: 1,
                length: 2
            }
        );
    }
}
