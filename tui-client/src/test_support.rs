//! Deterministic data for unit and snapshot tests.

use rt_protocol::ticker::Quote;

/// A quote for `symbol` at `price`, `change` from the previous close.
pub fn quote(symbol: &str, price: f64, change: f64) -> Quote {
    let previous_close = price - change;
    Quote {
        symbol: symbol.to_string(),
        company_name: format!("{symbol} Inc."),
        latest_price: price,
        change,
        change_percent: change / previous_close,
        open: previous_close,
        high: price.max(previous_close),
        low: price.min(previous_close),
        previous_close,
        volume: 1_000_000,
        latest_update: 1_700_000_000_000,
        extra: Default::default(),
    }
}
