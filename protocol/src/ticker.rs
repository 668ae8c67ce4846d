//! The stock ticker protocol.
//!
//! - Polling: `GET /?symbol=SYM` → `200 application/json`
//!   `{"quote":{…},"callIn":ms}`, or `{"error":"…","callIn":ms|null}`.
//!   `callIn` is the server's throttle: the client polls again after that many
//!   ms, and stops when it is `null`.
//! - Push: `GET /ticker/stream?symbols=IBM,MSFT` → `text/event-stream` with an
//!   event [`STREAM_EVENT`] (`quote`, data = the quote JSON) whenever a price
//!   changes, an increasing `id` on every event and heartbeat comments.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most characters a symbol may have.
pub const MAX_SYMBOL_LEN: usize = 10;

/// `callIn` sent with an error: the classic client retries after 10 s.
pub const ERROR_CALL_IN_MS: u64 = 10_000;

/// The SSE event name carrying a quote on `/ticker/stream`.
pub const STREAM_EVENT: &str = "quote";

/// The query parameter of `/ticker/stream` listing the symbols (comma-separated).
pub const STREAM_SYMBOLS_PARAM: &str = "symbols";

/// A validated, upper-cased ticker symbol: 1–10 characters of `A–Z 0–9 . -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

/// Why a symbol was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("symbol is empty")]
    Empty,
    #[error("symbol is longer than {MAX_SYMBOL_LEN} characters")]
    TooLong,
    #[error("symbol may contain only A-Z, 0-9, '.' and '-'")]
    BadCharacter,
}

impl Symbol {
    /// Validates and upper-cases `raw` (surrounding whitespace is trimmed).
    pub fn parse(raw: &str) -> Result<Self, SymbolError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(SymbolError::Empty);
        }
        if s.chars().count() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(SymbolError::BadCharacter);
        }
        Ok(Symbol(s.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Symbol::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One quote, IEX-shaped. Fields an upstream provider sends beyond these are
/// kept in `extra` and passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub symbol: String,
    pub company_name: String,
    pub latest_price: f64,
    pub change: f64,
    pub change_percent: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub previous_close: f64,
    pub volume: u64,
    /// Epoch milliseconds of the last trade.
    pub latest_update: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why an upstream quote object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("quote is not a JSON object")]
    NotAnObject,
    #[error("quote has no usable price (latestPrice)")]
    NoPrice,
    #[error("quote field `{0}` is not a finite number")]
    NotANumber(&'static str),
    #[error("quote field `{0}` is negative")]
    Negative(&'static str),
    #[error("quote field `{0}` is not a string")]
    NotAString(&'static str),
}

/// The fields every quote carries, in wire spelling.
const KNOWN_FIELDS: [&str; 11] = [
    "symbol",
    "companyName",
    "latestPrice",
    "change",
    "changePercent",
    "open",
    "high",
    "low",
    "previousClose",
    "volume",
    "latestUpdate",
];

/// Where a missing `latestPrice` may be taken from, in order (IEX names).
const PRICE_FALLBACKS: [&str; 3] = ["iexRealtimePrice", "delayedPrice", "close"];

impl Quote {
    /// Builds a quote from an upstream (IEX-style) quote object.
    ///
    /// A price is required: `latestPrice`, else `iexRealtimePrice`,
    /// `delayedPrice` or `close`. Every other required field may be missing or
    /// `null` and is then derived: `symbol` is the requested one,
    /// `companyName` the symbol, `previousClose` is `latestPrice - change` (or
    /// the price), `change` and `changePercent` follow from `previousClose`,
    /// `open` is `previousClose`, `high`/`low` bound the open and the price,
    /// `volume` is `latestVolume` or 0 and `latestUpdate` is `now_ms`. A field
    /// that is present with the wrong type makes the whole quote garbage.
    /// Numbers sent as numeric strings are accepted. Unknown fields are kept
    /// in [`Quote::extra`].
    pub fn from_upstream(value: Value, symbol: &Symbol, now_ms: u64) -> Result<Quote, QuoteError> {
        let Value::Object(mut map) = value else {
            return Err(QuoteError::NotAnObject);
        };
        let latest_price = match number(&map, "latestPrice")? {
            Some(p) => p,
            None => {
                let mut found = None;
                for name in PRICE_FALLBACKS {
                    if let Some(p) = number(&map, name)? {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or(QuoteError::NoPrice)?
            }
        };
        let change = number(&map, "change")?;
        let previous_close = match number(&map, "previousClose")? {
            Some(p) => p,
            None => latest_price - change.unwrap_or(0.0),
        };
        let change = change.unwrap_or(latest_price - previous_close);
        let change_percent = match number(&map, "changePercent")? {
            Some(p) => p,
            None if previous_close != 0.0 => change / previous_close,
            None => 0.0,
        };
        let open = number(&map, "open")?.unwrap_or(previous_close);
        let high = number(&map, "high")?.unwrap_or(open.max(latest_price));
        let low = number(&map, "low")?.unwrap_or(open.min(latest_price));
        let volume = match number(&map, "volume")? {
            Some(v) => Some(v),
            None => number(&map, "latestVolume")?,
        };
        let volume = match volume {
            Some(v) if v < 0.0 => return Err(QuoteError::Negative("volume")),
            Some(v) => v.round() as u64,
            None => 0,
        };
        let latest_update = match number(&map, "latestUpdate")? {
            Some(v) if v < 0.0 => return Err(QuoteError::Negative("latestUpdate")),
            Some(v) => v.round() as u64,
            None => now_ms,
        };
        let company_name = match map.get("companyName") {
            None | Some(Value::Null) => symbol.as_str().to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(QuoteError::NotAString("companyName")),
        };
        for name in KNOWN_FIELDS {
            map.remove(name);
        }
        Ok(Quote {
            symbol: symbol.as_str().to_string(),
            company_name,
            latest_price,
            change,
            change_percent,
            open,
            high,
            low,
            previous_close,
            volume,
            latest_update,
            extra: map,
        })
    }
}

/// A numeric field: `None` when absent or `null`, an error when it is neither
/// a finite number nor a string holding one.
fn number(map: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, QuoteError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(QuoteError::NotANumber(name)),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(QuoteError::NotANumber(name)),
        Some(_) => Err(QuoteError::NotANumber(name)),
    }
}

/// The body of a ticker poll. Either a quote or an error, always with
/// `callIn`: the ms until the client should poll again, or `null` to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PollResponse {
    Quote {
        quote: Quote,
        #[serde(rename = "callIn")]
        call_in: Option<u64>,
    },
    Error {
        error: String,
        #[serde(rename = "callIn")]
        call_in: Option<u64>,
    },
}

impl PollResponse {
    /// When the client should poll next (`None`: stop polling).
    pub fn call_in(&self) -> Option<u64> {
        match self {
            PollResponse::Quote { call_in, .. } | PollResponse::Error { call_in, .. } => *call_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_validated_and_uppercased() {
        assert_eq!(Symbol::parse(" ibm ").unwrap().as_str(), "IBM");
        assert_eq!(Symbol::parse("brk.b").unwrap().as_str(), "BRK.B");
        assert_eq!(Symbol::parse("RDS-A").unwrap().as_str(), "RDS-A");
        assert_eq!(Symbol::parse(""), Err(SymbolError::Empty));
        assert_eq!(Symbol::parse("ABCDEFGHIJK"), Err(SymbolError::TooLong));
        assert_eq!(Symbol::parse("<script>"), Err(SymbolError::BadCharacter));
        assert_eq!(Symbol::parse("ÄPFEL"), Err(SymbolError::BadCharacter));
        assert_eq!(Symbol::parse("A B"), Err(SymbolError::BadCharacter));
    }

    fn ibm() -> Symbol {
        Symbol::parse("IBM").unwrap()
    }

    #[test]
    fn full_upstream_quote_is_taken_as_is_and_extras_pass_through() {
        let v = serde_json::json!({
            "symbol": "IBM", "companyName": "IBM Corp", "latestPrice": 101.5, "change": 1.5,
            "changePercent": 0.015, "open": 100.0, "high": 102.0, "low": 99.0,
            "previousClose": 100.0, "volume": 1234, "latestUpdate": 1700000000000u64,
            "peRatio": 21.3, "primaryExchange": "NYSE"
        });
        let q = Quote::from_upstream(v, &ibm(), 5).unwrap();
        assert_eq!(q.company_name, "IBM Corp");
        assert_eq!(q.latest_price, 101.5);
        assert_eq!(q.volume, 1234);
        assert_eq!(q.latest_update, 1_700_000_000_000);
        assert_eq!(q.extra.len(), 2);
        assert_eq!(q.extra["primaryExchange"], "NYSE");
        let back = serde_json::to_value(&q).unwrap();
        assert_eq!(back["peRatio"], 21.3);
        assert_eq!(back["symbol"], "IBM");
    }

    #[test]
    fn missing_upstream_fields_are_derived() {
        let v = serde_json::json!({"latestPrice": 110.0, "change": 10.0, "open": null, "latestVolume": 7.0});
        let q = Quote::from_upstream(v, &ibm(), 42).unwrap();
        assert_eq!(q.symbol, "IBM");
        assert_eq!(q.company_name, "IBM");
        assert_eq!(q.previous_close, 100.0);
        assert_eq!(q.change, 10.0);
        assert!((q.change_percent - 0.1).abs() < 1e-12);
        assert_eq!(q.open, 100.0);
        assert_eq!(q.high, 110.0);
        assert_eq!(q.low, 100.0);
        assert_eq!(q.volume, 7);
        assert_eq!(q.latest_update, 42);
        assert!(q.extra.contains_key("latestVolume"));
        let q = Quote::from_upstream(serde_json::json!({"close": "12.5"}), &ibm(), 0).unwrap();
        assert_eq!(q.latest_price, 12.5);
        assert_eq!(q.change, 0.0);
        assert_eq!(q.change_percent, 0.0);
    }

    #[test]
    fn garbage_upstream_quotes_are_refused() {
        let s = ibm();
        assert_eq!(
            Quote::from_upstream(serde_json::json!([1, 2]), &s, 0),
            Err(QuoteError::NotAnObject)
        );
        assert_eq!(
            Quote::from_upstream(serde_json::json!({"companyName": "x"}), &s, 0),
            Err(QuoteError::NoPrice)
        );
        assert_eq!(
            Quote::from_upstream(serde_json::json!({"latestPrice": "abc"}), &s, 0),
            Err(QuoteError::NotANumber("latestPrice"))
        );
        assert_eq!(
            Quote::from_upstream(serde_json::json!({"latestPrice": 1, "high": {}}), &s, 0),
            Err(QuoteError::NotANumber("high"))
        );
        assert_eq!(
            Quote::from_upstream(serde_json::json!({"latestPrice": 1, "volume": -3}), &s, 0),
            Err(QuoteError::Negative("volume"))
        );
        assert_eq!(
            Quote::from_upstream(
                serde_json::json!({"latestPrice": 1, "companyName": 3}),
                &s,
                0
            ),
            Err(QuoteError::NotAString("companyName"))
        );
    }

    #[test]
    fn poll_response_wire_forms() {
        let q = Quote {
            symbol: "IBM".into(),
            company_name: "International Business Machines".into(),
            latest_price: 101.5,
            change: 1.5,
            change_percent: 0.015,
            open: 100.0,
            high: 102.0,
            low: 99.0,
            previous_close: 100.0,
            volume: 1000,
            latest_update: 1,
            extra: Map::new(),
        };
        let v = serde_json::to_value(PollResponse::Quote {
            quote: q,
            call_in: Some(5000),
        })
        .unwrap();
        assert_eq!(v["callIn"], 5000);
        assert_eq!(v["quote"]["latestPrice"], 101.5);
        assert_eq!(v["quote"]["companyName"], "International Business Machines");
        let e = serde_json::to_string(&PollResponse::Error {
            error: "bad".into(),
            call_in: None,
        })
        .unwrap();
        assert_eq!(e, r#"{"error":"bad","callIn":null}"#);
        let back: PollResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back.call_in(), Some(5000));
    }
}
