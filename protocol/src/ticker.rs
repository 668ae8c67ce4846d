//! The stock ticker protocol: `GET /?symbol=SYM` → `{"quote":{…},"callIn":ms}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most characters a symbol may have.
pub const MAX_SYMBOL_LEN: usize = 10;

/// `callIn` sent with an error: the classic client retries after 10 s.
pub const ERROR_CALL_IN_MS: u64 = 10_000;

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
