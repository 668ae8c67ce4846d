//! An optional upstream quote provider (`--quotes-url`): one HTTP GET per
//! symbol, answered with an IEX-style quote object.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rt_protocol::ticker::{Quote, Symbol};

/// The placeholder in `--quotes-url` replaced by the symbol.
pub const SYMBOL_PLACEHOLDER: &str = "{symbol}";

/// The largest upstream quote body accepted, in bytes.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// Checks a `--quotes-url` value (clap value parser).
pub fn parse_quotes_url(s: &str) -> Result<String, String> {
    if !s.starts_with("http://") {
        return Err("the quotes URL must start with http:// (this build has no TLS)".into());
    }
    if !s.contains(SYMBOL_PLACEHOLDER) {
        return Err(format!(
            "the quotes URL must contain {SYMBOL_PLACEHOLDER}, e.g. http://host/quote/{SYMBOL_PLACEHOLDER}"
        ));
    }
    Ok(s.to_string())
}

/// Fetches quotes from the configured provider.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    url_template: String,
    timeout: Duration,
}

impl Upstream {
    /// `url_template` holds [`SYMBOL_PLACEHOLDER`]; every request gives up
    /// after `timeout`.
    pub fn new(url_template: String, timeout: Duration) -> Result<Upstream, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("rt-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstream {
            client,
            url_template,
            timeout,
        })
    }

    /// The URL for `symbol`. Symbols hold only `A–Z 0–9 . -`, which need no
    /// escaping in a path or query.
    pub fn url(&self, symbol: &Symbol) -> String {
        self.url_template
            .replace(SYMBOL_PLACEHOLDER, symbol.as_str())
    }

    /// One request for `symbol`. The error is the message sent to clients.
    pub async fn fetch(&self, symbol: &Symbol) -> Result<Quote, String> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(symbol)).await {
            Ok(r) => r,
            Err(_) => Err("quote provider timed out".into()),
        }
    }

    async fn fetch_inner(&self, symbol: &Symbol) -> Result<Quote, String> {
        let url = self.url(symbol);
        let mut res = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                tracing::debug!(%url, error = %e, "upstream request failed");
                if e.is_timeout() {
                    "quote provider timed out".to_string()
                } else {
                    "quote provider unreachable".to_string()
                }
            })?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(format!("quote provider answered {}", res.status().as_u16()));
        }
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
                        return Err("quote provider sent an oversized quote".into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err("quote provider timed out".into()),
                Err(_) => return Err("quote provider broke off its answer".into()),
            }
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| "quote provider sent garbage (not JSON)".to_string())?;
        Quote::from_upstream(value, symbol, now_ms())
            .map_err(|e| format!("quote provider sent garbage: {e}"))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Growing back-off after consecutive failures: `base`, `2·base`, `4·base`…
/// capped at `max`; a success starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.min(max);
        Backoff {
            base,
            max,
            next: base,
        }
    }

    /// The wait after this failure; the next one will be twice as long.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(700));
        let waits: Vec<_> = (0..5).map(|_| b.failed()).collect();
        assert_eq!(waits, vec![ms(100), ms(200), ms(400), ms(700), ms(700)]);
        b.reset();
        assert_eq!(b.failed(), ms(100));
    }

    #[test]
    fn quotes_url_is_checked() {
        assert!(parse_quotes_url("http://h/q/{symbol}").is_ok());
        assert!(parse_quotes_url("https://h/q/{symbol}").is_err());
        assert!(parse_quotes_url("http://h/q/").is_err());
        let up = Upstream::new(
            "http://h/q/{symbol}?x={symbol}".into(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            up.url(&Symbol::parse("brk.b").unwrap()),
            "http://h/q/BRK.B?x=BRK.B"
        );
    }
}
