//! The ShareDB wire protocol 1.2 (sharedb 7), as spoken by `sharedb/lib/client`
//! with the rich-text OT type.
//!
//! Every message is one JSON object in one WebSocket text frame; the action is
//! field `a`. This module parses client frames into [`Request`]s, validates
//! them the way ShareDB's agent does (plus the stricter rich-text checks of
//! protocols.md §5.6), and builds the server's replies. A failed request is
//! answered by echoing the request object with `error: {code, message}`
//! attached ([`error_echo`]).
//!
//! # Lone surrogates
//!
//! JavaScript strings may hold unpaired UTF-16 surrogates and `JSON.stringify`
//! writes them as `\udXXX` escapes, which `serde_json` refuses. [`parse_frame`]
//! therefore rewrites every unpaired surrogate escape to `\uFFFD` before
//! parsing (same UTF-16 length) and reports that it did so. A repaired frame
//! is never applied as an op: the client's copy would hold the surrogate and
//! ours the replacement, so the documents would differ. Such an op gets an
//! `ERR_OT_OP_BADLY_FORMED` echo (the client rolls back and refetches). Other
//! messages (presence, handshakes) proceed with the repaired text, which only
//! affects what other users see of that field.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::delta::Delta;

/// Protocol major version (`protocol` in the handshake).
pub const PROTOCOL: u64 = 1;
/// Protocol minor version (`protocolMinor` in the handshake).
pub const PROTOCOL_MINOR: u64 = 2;
/// The default type's URI, sent in the handshake reply.
pub const JSON0_URI: &str = "http://sharejs.org/types/JSONv0";
/// The rich-text type's URI, as in snapshots and created docs.
pub const RICH_TEXT_URI: &str = "http://sharejs.org/types/rich-text/v1";
/// The rich-text type's short name, which clients may use in `create`.
pub const RICH_TEXT_NAME: &str = "rich-text";
/// `seq` values at or above 2^53 are refused, as by ShareDB.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Whether `t` names the rich-text type (by name or URI).
pub fn is_rich_text(t: &str) -> bool {
    t == RICH_TEXT_URI || t == RICH_TEXT_NAME
}

/// ShareDB's error codes that this server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MessageBadlyFormed,
    OpVersionNewerThanCurrentSnapshot,
    DocAlreadyCreated,
    DocWasDeleted,
    DocDoesNotExist,
    DocTypeNotRecognized,
    OtOpBadlyFormed,
    OtOpNotApplied,
    SubmitTransformOpsNotFound,
    OpSubmitRejected,
    TypeDoesNotSupportPresence,
    PresenceTransformFailed,
    ConnectionSeqIntegerOverflow,
    UnknownError,
}

impl ErrorCode {
    /// The code as ShareDB spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MessageBadlyFormed => "ERR_MESSAGE_BADLY_FORMED",
            ErrorCode::OpVersionNewerThanCurrentSnapshot => {
                "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"
            }
            ErrorCode::DocAlreadyCreated => "ERR_DOC_ALREADY_CREATED",
            ErrorCode::DocWasDeleted => "ERR_DOC_WAS_DELETED",
            ErrorCode::DocDoesNotExist => "ERR_DOC_DOES_NOT_EXIST",
            ErrorCode::DocTypeNotRecognized => "ERR_DOC_TYPE_NOT_RECOGNIZED",
            ErrorCode::OtOpBadlyFormed => "ERR_OT_OP_BADLY_FORMED",
            ErrorCode::OtOpNotApplied => "ERR_OT_OP_NOT_APPLIED",
            ErrorCode::SubmitTransformOpsNotFound => "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND",
            ErrorCode::OpSubmitRejected => "ERR_OP_SUBMIT_REJECTED",
            ErrorCode::TypeDoesNotSupportPresence => "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE",
            ErrorCode::PresenceTransformFailed => "ERR_PRESENCE_TRANSFORM_FAILED",
            ErrorCode::ConnectionSeqIntegerOverflow => "ERR_CONNECTION_SEQ_INTEGER_OVERFLOW",
            ErrorCode::UnknownError => "ERR_UNKNOWN_ERROR",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request failure, sent to the client as `error: {code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ShareDbError {
    pub code: ErrorCode,
    pub message: String,
}

impl ShareDbError {
    /// An error with `code` and a human-readable `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ShareDbError {
        ShareDbError {
            code,
            message: message.into(),
        }
    }

    /// `ERR_MESSAGE_BADLY_FORMED` with `message`.
    pub fn badly_formed(message: impl Into<String>) -> ShareDbError {
        ShareDbError::new(ErrorCode::MessageBadlyFormed, message)
    }

    /// The `{code, message}` object.
    pub fn to_value(&self) -> Value {
        json!({"code": self.code.as_str(), "message": self.message})
    }
}

/// A client frame that is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is not valid JSON: {0}")]
    NotJson(String),
    #[error("the frame is not a JSON object")]
    NotObject,
}

/// A parsed client frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The request object as sent (kept for error echoes).
    pub raw: Map<String, Value>,
    /// True when unpaired surrogate escapes were rewritten to U+FFFD.
    pub repaired_surrogates: bool,
}

/// Parses one text frame, repairing unpaired surrogate escapes (see the
/// module docs).
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let text = crate::delta::utf16::replace_lone_surrogate_escapes(text);
    let repaired = matches!(text, std::borrow::Cow::Owned(_));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(raw)) => Ok(Frame {
            raw,
            repaired_surrogates: repaired,
        }),
        Ok(_) => Err(FrameError::NotObject),
        Err(e) => Err(FrameError::NotJson(e.to_string())),
    }
}

/// The reply to a frame that is not a JSON object: there is no request to
/// echo, so the error stands alone (the client logs it).
pub fn frame_error_reply(err: &FrameError) -> String {
    json!({"error": ShareDbError::badly_formed(err.to_string()).to_value()}).to_string()
}

/// A version in a read request: absent/null (latest) or a number.
pub type Version = Option<u64>;

/// The doc ids of a bulk request.
#[derive(Debug, Clone, PartialEq)]
pub enum Bulk {
    /// `b: [id, …]`: snapshots wanted.
    Ids(Vec<String>),
    /// `b: {id: version, …}`: the ops since each version wanted
    /// (a null version asks for the snapshot).
    Versions(Vec<(String, Version)>),
}

/// The body of an `op` message.
#[derive(Debug, Clone, PartialEq)]
pub enum OpBody {
    /// `op`: an edit.
    Edit(Delta),
    /// `create`: the initial document (rich-text only).
    Create(Delta),
    /// `del: true`.
    Delete,
}

impl OpBody {
    /// The body's field name and value as sent to clients.
    pub fn wire_field(&self) -> (&'static str, Value) {
        match self {
            OpBody::Edit(op) => ("op", op.to_value()),
            OpBody::Create(data) => (
                "create",
                json!({"type": RICH_TEXT_URI, "data": data.to_value()}),
            ),
            OpBody::Delete => ("del", Value::Bool(true)),
        }
    }
}

/// An `op` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    pub c: String,
    pub d: String,
    /// The client's version of the doc (null: the current one).
    pub v: Version,
    pub seq: u64,
    /// Present only on a resend after reconnect.
    pub src: Option<String>,
    pub body: OpBody,
    /// Size of the op (or create data) as JSON, in bytes.
    pub op_bytes: usize,
}

/// A `p` (presence) request.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceUpdate {
    pub ch: String,
    pub id: String,
    pub p: Value,
    pub pv: u64,
    /// Doc presence only: collection, doc id, doc version, type.
    pub c: Option<String>,
    pub d: Option<String>,
    pub v: Option<u64>,
    pub t: Option<String>,
}

/// A validated client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `hs`: `id` is the previous connection id to adopt, if any.
    Handshake { id: Option<String> },
    /// `f`
    Fetch { c: String, d: String, v: Version },
    /// `s`
    Subscribe { c: String, d: String, v: Version },
    /// `u`
    Unsubscribe { c: String, d: String },
    /// `bf`
    BulkFetch { c: String, b: Bulk },
    /// `bs`
    BulkSubscribe { c: String, b: Bulk },
    /// `bu`
    BulkUnsubscribe { c: String, ids: Vec<String> },
    /// `op`
    Op(Submit),
    /// `nf`: a snapshot at a version.
    SnapshotFetch { c: String, d: String, v: Version },
    /// `pp`
    Ping,
    /// `p`
    Presence(PresenceUpdate),
    /// `ps`
    PresenceSubscribe { ch: String, seq: Option<u64> },
    /// `pu`
    PresenceUnsubscribe { ch: String, seq: Option<u64> },
    /// `pr`
    PresenceRequest { ch: String },
}

fn field<'a>(raw: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    raw.get(key).filter(|v| !v.is_null())
}

/// ShareDB refuses names that are Object.prototype properties (`__proto__`, …).
fn is_dangerous_name(name: &str) -> bool {
    matches!(
        name,
        "__proto__"
            | "constructor"
            | "hasOwnProperty"
            | "isPrototypeOf"
            | "propertyIsEnumerable"
            | "toLocaleString"
            | "toString"
            | "valueOf"
            | "__defineGetter__"
            | "__defineSetter__"
            | "__lookupGetter__"
            | "__lookupSetter__"
    )
}

fn name(raw: &Map<String, Value>, key: &str, what: &str) -> Result<String, ShareDbError> {
    match raw.get(key) {
        Some(Value::String(s)) if !is_dangerous_name(s) => Ok(s.clone()),
        _ => Err(ShareDbError::badly_formed(format!("Invalid {what}"))),
    }
}

fn version_value(v: Option<&Value>, what: &str) -> Result<Version, ShareDbError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                // JSON from JS may spell an integer as 3.0.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_SAFE_INTEGER as f64)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| ShareDbError::badly_formed(format!("Invalid {what}"))),
        Some(_) => Err(ShareDbError::badly_formed(format!("Invalid {what}"))),
    }
}

fn version(raw: &Map<String, Value>, key: &str, what: &str) -> Result<Version, ShareDbError> {
    version_value(raw.get(key), what)
}

fn bulk(raw: &Map<String, Value>) -> Result<Bulk, ShareDbError> {
    let bad = || ShareDbError::badly_formed("Invalid bulk subscribe data");
    match raw.get("b") {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| match id {
                Value::String(s) if !is_dangerous_name(s) => Ok(s.clone()),
                _ => Err(ShareDbError::badly_formed("Invalid id")),
            })
            .collect::<Result<_, _>>()
            .map(Bulk::Ids),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(id, v)| {
                if is_dangerous_name(id) {
                    return Err(ShareDbError::badly_formed("Invalid id"));
                }
                Ok((id.clone(), version_value(Some(v), "version")?))
            })
            .collect::<Result<_, _>>()
            .map(Bulk::Versions),
        _ => Err(bad()),
    }
}

/// Validates a parsed frame into a [`Request`]. Queries and unknown actions
/// are errors (`ERR_MESSAGE_BADLY_FORMED`).
pub fn parse_request(frame: &Frame) -> Result<Request, ShareDbError> {
    let raw = &frame.raw;
    // Checks ShareDB applies to every message.
    if field(raw, "c").is_some() {
        name(raw, "c", "collection")?;
    }
    if field(raw, "ch").is_some() {
        name(raw, "ch", "presence channel")?;
    }
    if let Some(seq) = field(raw, "seq")
        && !seq.is_number()
    {
        return Err(ShareDbError::badly_formed("Invalid seq"));
    }
    let action = match raw.get("a") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(ShareDbError::badly_formed("Invalid or unknown message")),
    };
    let doc = |raw| -> Result<(String, String), ShareDbError> {
        Ok((name(raw, "c", "collection")?, name(raw, "d", "id")?))
    };
    let channel = |raw| name(raw, "ch", "presence channel");
    let seq = |raw| version(raw, "seq", "seq");
    Ok(match action {
        "hs" => {
            for key in ["protocol", "protocolMinor"] {
                if let Some(p) = field(raw, key)
                    && !p.is_number()
                    && !p.is_string()
                {
                    return Err(ShareDbError::badly_formed("Invalid protocol"));
                }
            }
            let id = match field(raw, "id") {
                None => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(ShareDbError::badly_formed("Invalid id")),
            };
            Request::Handshake { id }
        }
        "f" | "s" | "nf" => {
            let (c, d) = doc(raw)?;
            let v = version(raw, "v", "version")?;
            match action {
                "f" => Request::Fetch { c, d, v },
                "s" => Request::Subscribe { c, d, v },
                _ => Request::SnapshotFetch { c, d, v },
            }
        }
        "u" => {
            let (c, d) = doc(raw)?;
            Request::Unsubscribe { c, d }
        }
        "bf" | "bs" => {
            let c = name(raw, "c", "collection")?;
            let b = bulk(raw)?;
            if action == "bf" {
                Request::BulkFetch { c, b }
            } else {
                Request::BulkSubscribe { c, b }
            }
        }
        "bu" => {
            let c = name(raw, "c", "collection")?;
            let ids = match bulk(raw)? {
                Bulk::Ids(ids) => ids,
                Bulk::Versions(v) => v.into_iter().map(|(id, _)| id).collect(),
            };
            Request::BulkUnsubscribe { c, ids }
        }
        "op" => Request::Op(parse_submit(frame)?),
        "pp" => Request::Ping,
        "p" => {
            let ch = channel(raw)?;
            let id = name(raw, "id", "presence ID")?;
            let pv = version(raw, "pv", "presence version")?
                .ok_or_else(|| ShareDbError::badly_formed("Invalid presence version"))?;
            let opt_name = |key: &str, what: &str| -> Result<Option<String>, ShareDbError> {
                match field(raw, key) {
                    None => Ok(None),
                    Some(_) => name(raw, key, what).map(Some),
                }
            };
            Request::Presence(PresenceUpdate {
                ch,
                id,
                p: raw.get("p").cloned().unwrap_or(Value::Null),
                pv,
                c: opt_name("c", "collection")?,
                d: opt_name("d", "id")?,
                v: version(raw, "v", "version")?,
                t: opt_name("t", "type")?,
            })
        }
        "ps" => Request::PresenceSubscribe {
            ch: channel(raw)?,
            seq: seq(raw)?,
        },
        "pu" => Request::PresenceUnsubscribe {
            ch: channel(raw)?,
            seq: seq(raw)?,
        },
        "pr" => Request::PresenceRequest { ch: channel(raw)? },
        "qf" | "qs" | "qu" => {
            return Err(ShareDbError::badly_formed(
                "Queries are not supported by this server",
            ));
        }
        _ => return Err(ShareDbError::badly_formed("Invalid or unknown message")),
    })
}

fn parse_submit(frame: &Frame) -> Result<Submit, ShareDbError> {
    let raw = &frame.raw;
    let c = name(raw, "c", "collection")?;
    let d = name(raw, "d", "id")?;
    let v = version(raw, "v", "version")?;
    let seq = match raw.get("seq") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s >= MAX_SAFE_INTEGER => {
                return Err(ShareDbError::new(
                    ErrorCode::ConnectionSeqIntegerOverflow,
                    "Connection seq has exceeded the max safe integer, maybe from being open for too long",
                ));
            }
            Some(s) => s,
            None => return Err(ShareDbError::badly_formed("Invalid seq")),
        },
        _ => return Err(ShareDbError::badly_formed("Invalid seq")),
    };
    let src = match field(raw, "src") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ShareDbError::badly_formed("Invalid src")),
    };
    let bodies = ["op", "create", "del"]
        .iter()
        .filter(|k| raw.contains_key(**k))
        .count();
    if bodies != 1 {
        return Err(ShareDbError::badly_formed("Invalid op message"));
    }
    let surrogates = || {
        ShareDbError::new(
            ErrorCode::OtOpBadlyFormed,
            "the op contains an unpaired UTF-16 surrogate",
        )
    };
    let (body, op_bytes) = if let Some(op) = raw.get("op") {
        if frame.repaired_surrogates {
            return Err(surrogates());
        }
        let delta = Delta::from_value(op)
            .map_err(|e| ShareDbError::new(ErrorCode::OtOpBadlyFormed, e.to_string()))?;
        (OpBody::Edit(delta), json_len(op))
    } else if let Some(create) = raw.get("create") {
        let Value::Object(create) = create else {
            return Err(ShareDbError::badly_formed("Invalid op message"));
        };
        match create.get("type") {
            Some(Value::String(t)) if is_rich_text(t) => {}
            Some(Value::String(t)) => {
                return Err(ShareDbError::new(
                    ErrorCode::DocTypeNotRecognized,
                    format!("Unknown type {t}: this server supports only rich-text"),
                ));
            }
            _ => {
                return Err(ShareDbError::new(
                    ErrorCode::DocTypeNotRecognized,
                    "Unknown type",
                ));
            }
        }
        if frame.repaired_surrogates {
            return Err(surrogates());
        }
        let data = create.get("data").cloned().unwrap_or(Value::Null);
        let op_bytes = json_len(&data);
        let delta = if data.is_null() {
            Delta::default()
        } else {
            Delta::from_value(&data)
                .map_err(|e| ShareDbError::new(ErrorCode::OtOpBadlyFormed, e.to_string()))?
        };
        (OpBody::Create(delta), op_bytes)
    } else {
        if raw.get("del") != Some(&Value::Bool(true)) {
            return Err(ShareDbError::badly_formed(
                "Invalid op message: del must be true",
            ));
        }
        (OpBody::Delete, 4)
    };
    Ok(Submit {
        c,
        d,
        v,
        seq,
        src,
        body,
        op_bytes,
    })
}

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v)
        .map(|s| s.len())
        .unwrap_or(usize::MAX)
}

/// `raw` with `error` attached: the reply to a failed request.
pub fn error_echo(raw: &Map<String, Value>, err: &ShareDbError) -> String {
    let mut echo = raw.clone();
    echo.insert("error".into(), err.to_value());
    Value::Object(echo).to_string()
}

/// The handshake reply (also the type the client must accept: json0).
pub fn handshake_reply(src: &str) -> String {
    json!({
        "a": "hs",
        "protocol": PROTOCOL,
        "protocolMinor": PROTOCOL_MINOR,
        "id": src,
        "type": JSON0_URI,
    })
    .to_string()
}

/// A snapshot payload `{v, data, type}`; a doc that does not exist (never
/// created, or deleted) is `{v, type: null}`.
pub fn snapshot_value(v: u64, data: Option<&Delta>) -> Value {
    match data {
        Some(data) => json!({"v": v, "data": data.to_value(), "type": RICH_TEXT_URI}),
        None => json!({"v": v, "type": null}),
    }
}

/// A create's body as sent: `{"data", "type"}`.
#[derive(Serialize)]
struct CreateWire<'a> {
    data: &'a Delta,
    #[serde(rename = "type")]
    ty: &'static str,
}

/// An op message (a broadcast, a catch-up op, or with no body an ack). The
/// fields are declared in sorted order so the text is the same as a
/// `serde_json::Map` (sorted keys) gives.
#[derive(Serialize)]
struct OpWire<'a> {
    a: &'static str,
    c: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    create: Option<CreateWire<'a>>,
    d: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    del: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'a Delta>,
    seq: u64,
    src: &'a str,
    v: u64,
}

impl<'a> OpWire<'a> {
    fn encode(&self) -> String {
        // Plain structs of strings and integers always serialize.
        serde_json::to_string(self).expect("an op message serializes")
    }
}

/// A committed op as sent to subscribers (and as catch-up).
pub fn op_message(c: &str, d: &str, v: u64, src: &str, seq: u64, body: &OpBody) -> String {
    let mut wire = OpWire {
        a: "op",
        c,
        create: None,
        d,
        del: None,
        op: None,
        seq,
        src,
        v,
    };
    match body {
        OpBody::Edit(op) => wire.op = Some(op),
        OpBody::Create(data) => {
            wire.create = Some(CreateWire {
                data,
                ty: RICH_TEXT_URI,
            })
        }
        OpBody::Delete => wire.del = Some(true),
    }
    wire.encode()
}

/// The ack of a submitted op: `v` is the version it was applied at.
pub fn ack(c: &str, d: &str, src: &str, seq: u64, v: u64) -> String {
    OpWire {
        a: "op",
        c,
        create: None,
        d,
        del: None,
        op: None,
        seq,
        src,
        v,
    }
    .encode()
}

/// A `f`/`s` reply: with a snapshot, or without (after catch-up ops).
pub fn read_reply(action: &str, c: &str, d: &str, snapshot: Option<Value>) -> String {
    match snapshot {
        Some(s) => json!({"a": action, "c": c, "d": d, "data": s}).to_string(),
        None => json!({"a": action, "c": c, "d": d}).to_string(),
    }
}

/// `u` reply.
pub fn unsubscribe_reply(c: &str, d: &str) -> String {
    json!({"a": "u", "c": c, "d": d}).to_string()
}

/// `nf` reply (a snapshot at a version).
pub fn snapshot_fetch_reply(
    raw: &Map<String, Value>,
    c: &str,
    d: &str,
    v: u64,
    data: Option<&Delta>,
) -> String {
    let mut m = Map::new();
    m.insert("a".into(), "nf".into());
    // ShareDB answers with the request's id when it has one, else c and d.
    match raw.get("id").filter(|id| is_truthy(id)) {
        Some(id) => {
            m.insert("id".into(), id.clone());
        }
        None => {
            m.insert("c".into(), c.into());
            m.insert("d".into(), d.into());
        }
    }
    m.insert("v".into(), v.into());
    match data {
        Some(data) => {
            m.insert("type".into(), RICH_TEXT_URI.into());
            m.insert("data".into(), data.to_value());
        }
        None => {
            m.insert("type".into(), Value::Null);
        }
    }
    m.insert("m".into(), Value::Null);
    Value::Object(m).to_string()
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The final reply of a bulk request: `data` for snapshot requests, an echo
/// of `b` for version requests.
pub fn bulk_reply(action: &str, c: &str, data: Option<Map<String, Value>>, b: &Value) -> String {
    match data {
        Some(data) => json!({"a": action, "c": c, "data": data}).to_string(),
        None => json!({"a": action, "c": c, "b": b}).to_string(),
    }
}

/// `pp` reply.
pub fn pong() -> &'static str {
    r#"{"a":"pp"}"#
}

/// `ps`/`pu` reply.
pub fn presence_subscription_reply(action: &str, ch: &str, seq: Option<u64>) -> String {
    json!({"a": action, "ch": ch, "seq": seq}).to_string()
}

/// `{"a":"pr","ch"}`: asks a subscriber to resend its presence.
pub fn presence_request(ch: &str) -> String {
    json!({"a": "pr", "ch": ch}).to_string()
}

/// The bare `{"a":"pr"}` reply to a client's `pr`.
pub fn presence_request_reply() -> &'static str {
    r#"{"a":"pr"}"#
}

/// A presence message as broadcast (and acked to its sender).
pub fn presence_message(src: &str, p: &PresenceUpdate) -> String {
    let mut m = Map::new();
    m.insert("a".into(), "p".into());
    m.insert("ch".into(), p.ch.clone().into());
    m.insert("src".into(), src.into());
    m.insert("id".into(), p.id.clone().into());
    m.insert("p".into(), p.p.clone());
    m.insert("pv".into(), p.pv.into());
    if let Some(c) = &p.c {
        m.insert("c".into(), c.clone().into());
    }
    if let Some(d) = &p.d {
        m.insert("d".into(), d.clone().into());
    }
    if let Some(v) = p.v {
        m.insert("v".into(), v.into());
    }
    if let Some(t) = &p.t {
        m.insert("t".into(), t.clone().into());
    }
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repair(text: &str) -> Option<String> {
        match crate::delta::utf16::replace_lone_surrogate_escapes(text) {
            std::borrow::Cow::Owned(fixed) => Some(fixed),
            std::borrow::Cow::Borrowed(_) => None,
        }
    }

    fn req(text: &str) -> Result<Request, ShareDbError> {
        parse_request(&parse_frame(text).unwrap())
    }

    #[test]
    fn paired_surrogates_are_kept_and_lone_ones_replaced() {
        assert_eq!(repair(r#"{"x":"\ud83d\ude00"}"#), None);
        assert_eq!(repair(r#"{"x":"plain é"}"#), None);
        assert_eq!(
            repair(r#"{"x":"\ud83dx\ude00"}"#).unwrap(),
            r#"{"x":"\uFFFDx\uFFFD"}"#
        );
        assert_eq!(repair(r#"{"x":"a\ud83d"}"#).unwrap(), r#"{"x":"a\uFFFD"}"#);
        // An escaped backslash followed by "ud83d" is not an escape.
        assert_eq!(repair(r#"{"x":"\\ud83d"}"#), None);
        // Two high surrogates in a row: both are lone.
        assert_eq!(
            repair(r#"["\uD83D\uD83D\uDE00"]"#).unwrap(),
            r#"["\uFFFD\uD83D\uDE00"]"#
        );
    }

    #[test]
    fn frames_with_lone_surrogates_parse_and_are_flagged() {
        let f = parse_frame(r#"{"a":"p","ch":"x","id":"i","pv":0,"p":{"name":"\udc00"}}"#).unwrap();
        assert!(f.repaired_surrogates);
        assert_eq!(f.raw["p"]["name"], "\u{FFFD}");
        let f = parse_frame(r#"{"a":"pp"}"#).unwrap();
        assert!(!f.repaired_surrogates);
    }

    #[test]
    fn an_op_with_a_lone_surrogate_is_refused() {
        let err = req(r#"{"a":"op","c":"x","d":"y","v":1,"seq":1,"op":[{"insert":"\ud83d"}]}"#)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::OtOpBadlyFormed);
    }

    #[test]
    fn non_objects_are_frame_errors() {
        assert_eq!(parse_frame("[1]"), Err(FrameError::NotObject));
        assert!(matches!(parse_frame("{"), Err(FrameError::NotJson(_))));
        let reply: Value =
            serde_json::from_str(&frame_error_reply(&FrameError::NotObject)).unwrap();
        assert_eq!(reply["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");
    }

    #[test]
    fn handshake_adopts_a_previous_id() {
        assert_eq!(
            req(r#"{"a":"hs","id":"abc","protocol":1,"protocolMinor":2}"#).unwrap(),
            Request::Handshake {
                id: Some("abc".into())
            }
        );
        assert_eq!(
            req(r#"{"a":"hs","id":null,"protocol":1,"protocolMinor":2}"#).unwrap(),
            Request::Handshake { id: None }
        );
        let reply: Value = serde_json::from_str(&handshake_reply("s1")).unwrap();
        assert_eq!(reply["protocol"], 1);
        assert_eq!(reply["type"], JSON0_URI);
        assert_eq!(reply["id"], "s1");
    }

    #[test]
    fn reads_validate_names_and_versions() {
        assert_eq!(
            req(r#"{"a":"s","c":"examples","d":"richtext","v":null}"#).unwrap(),
            Request::Subscribe {
                c: "examples".into(),
                d: "richtext".into(),
                v: None
            }
        );
        assert_eq!(
            req(r#"{"a":"f","c":"e","d":"r","v":3}"#).unwrap(),
            Request::Fetch {
                c: "e".into(),
                d: "r".into(),
                v: Some(3)
            }
        );
        assert!(req(r#"{"a":"f","c":"e","d":"r","v":-1}"#).is_err());
        assert!(req(r#"{"a":"f","c":"e","d":"r","v":"1"}"#).is_err());
        assert!(req(r#"{"a":"f","c":"e","d":5}"#).is_err());
        assert!(req(r#"{"a":"f","c":"e","d":"__proto__"}"#).is_err());
    }

    #[test]
    fn bulk_requests_take_arrays_or_version_maps() {
        assert_eq!(
            req(r#"{"a":"bs","c":"e","b":["a","b"]}"#).unwrap(),
            Request::BulkSubscribe {
                c: "e".into(),
                b: Bulk::Ids(vec!["a".into(), "b".into()])
            }
        );
        match req(r#"{"a":"bf","c":"e","b":{"a":1,"b":null}}"#).unwrap() {
            Request::BulkFetch {
                b: Bulk::Versions(v),
                ..
            } => {
                assert!(v.contains(&("a".into(), Some(1))));
                assert!(v.contains(&("b".into(), None)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(req(r#"{"a":"bs","c":"e","b":5}"#).is_err());
        assert!(req(r#"{"a":"bs","c":"e","b":[1]}"#).is_err());
    }

    #[test]
    fn ops_need_exactly_one_body() {
        let op = req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1,"op":{"ops":[{"insert":"x"}]}}"#)
            .unwrap();
        match op {
            Request::Op(s) => {
                assert_eq!(s.seq, 1);
                assert_eq!(s.v, Some(1));
                assert!(matches!(s.body, OpBody::Edit(_)));
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageBadlyFormed);
        assert_eq!(err.message, "Invalid op message");
        let err =
            req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1,"op":[],"del":true}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageBadlyFormed);
        let err = req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1,"del":false}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageBadlyFormed);
        let err =
            req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":9007199254740993,"op":[]}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConnectionSeqIntegerOverflow);
        let err = req(r#"{"a":"op","c":"e","d":"r","v":null,"seq":1,"create":{"type":"json0"}}"#)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::DocTypeNotRecognized);
        let err = req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1,"op":[{"retain":{"x":1}}]}"#)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::OtOpBadlyFormed);
        let err =
            req(r#"{"a":"op","c":"e","d":"r","v":1,"seq":1,"op":[{"retain":0}]}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::OtOpBadlyFormed);
    }

    #[test]
    fn create_and_resend_fields() {
        match req(
            r#"{"a":"op","c":"e","d":"r","v":null,"seq":4,"src":"old","create":{"type":"http://sharejs.org/types/rich-text/v1","data":[{"insert":"a\n"}]}}"#,
        )
        .unwrap()
        {
            Request::Op(s) => {
                assert_eq!(s.src.as_deref(), Some("old"));
                assert_eq!(s.v, None);
                assert!(matches!(s.body, OpBody::Create(_)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_actions_and_queries_are_badly_formed() {
        for text in [
            r#"{"a":"zz"}"#,
            r#"{"a":"qf","id":1,"c":"e","q":{}}"#,
            r#"{"b":1}"#,
            r#"{"a":"pp","seq":"x"}"#,
        ] {
            assert_eq!(req(text).unwrap_err().code, ErrorCode::MessageBadlyFormed);
        }
    }

    #[test]
    fn presence_fields() {
        match req(
            r#"{"a":"p","ch":"e.r","id":"me","p":{"index":1,"length":0},"pv":3,"c":"e","d":"r","v":7,"t":"http://sharejs.org/types/rich-text/v1"}"#,
        )
        .unwrap()
        {
            Request::Presence(p) => {
                assert_eq!(p.pv, 3);
                assert_eq!(p.v, Some(7));
                let m: Value = serde_json::from_str(&presence_message("s", &p)).unwrap();
                assert_eq!(m["src"], "s");
                assert_eq!(m["p"]["index"], 1);
                assert_eq!(m["t"], RICH_TEXT_URI);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(req(r#"{"a":"p","ch":"e.r","id":"me","p":null}"#).is_err());
        assert!(req(r#"{"a":"ps","ch":5,"seq":1}"#).is_err());
    }

    #[test]
    fn error_echo_keeps_the_request() {
        let f = parse_frame(r#"{"a":"op","c":"e","d":"r","v":9,"seq":2,"op":[]}"#).unwrap();
        let e = ShareDbError::new(ErrorCode::OpVersionNewerThanCurrentSnapshot, "too new");
        let echo: Value = serde_json::from_str(&error_echo(&f.raw, &e)).unwrap();
        assert_eq!(echo["seq"], 2);
        assert_eq!(echo["v"], 9);
        assert_eq!(
            echo["error"]["code"],
            "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"
        );
    }

    #[test]
    fn op_messages_have_the_text_of_the_value_form() {
        let edit = Delta::from_value(
            &json!([{"retain": 2}, {"insert": "é\"", "attributes": {"b": true}}]),
        )
        .unwrap();
        let create = Delta::from_value(&json!([{"insert": "x\n"}])).unwrap();
        for body in [OpBody::Edit(edit), OpBody::Create(create), OpBody::Delete] {
            let (key, value) = body.wire_field();
            let mut m = Map::new();
            for (k, v) in [
                ("a", json!("op")),
                ("c", json!("col")),
                ("d", json!("doc")),
                ("v", json!(7)),
                ("src", json!("s\u{7}")),
                ("seq", json!(3)),
                (key, value),
            ] {
                m.insert(k.into(), v);
            }
            assert_eq!(
                op_message("col", "doc", 7, "s\u{7}", 3, &body),
                Value::Object(m).to_string()
            );
        }
        assert_eq!(
            ack("col", "doc", "src", 3, 7),
            json!({"a": "op", "c": "col", "d": "doc", "src": "src", "seq": 3, "v": 7}).to_string()
        );
    }

    #[test]
    fn op_messages_carry_src_and_normalized_bodies() {
        let m: Value =
            serde_json::from_str(&op_message("e", "r", 4, "src1", 9, &OpBody::Delete)).unwrap();
        assert_eq!(m["del"], true);
        assert_eq!(m["src"], "src1");
        assert_eq!(m["v"], 4);
        assert!(m.get("x").is_none());
        let a: Value = serde_json::from_str(&ack("e", "r", "s", 3, 7)).unwrap();
        assert_eq!(a["v"], 7);
        assert!(a.get("op").is_none());
    }
}
