//! The access token: where a client may present it, and how it is checked.
//!
//! Clients that can set headers send `Authorization: Bearer T`. Browsers'
//! `EventSource` and `WebSocket` cannot, so `?token=T` works on any request
//! too, and a page visited with `?token=T` gets a cookie so that its own
//! requests carry the token from then on. The cookie holds a digest of the
//! token, never the token itself.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The query parameter.
pub const QUERY_PARAM: &str = "token";
/// Every cookie whose name starts with this is checked; the one set is
/// named after the server's port as well, since browsers share cookies
/// between ports of one host and two servers must not clobber each other's.
pub const COOKIE_PREFIX: &str = "rt_token";

/// Why a token is refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token {0} is empty")]
    Empty(&'static str),
    #[error(
        "the access token {0} holds a character other than printable ASCII (0x21-0x7e); it has to fit in an HTTP header"
    )]
    NotPrintable(&'static str),
}

/// The configured token, kept only as digests.
pub struct Token {
    digest: [u8; 32],
    cookie: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where a credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
    Cookie,
}

impl Source {
    /// As named in a 401.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Header => "Authorization header",
            Source::Query => "token query parameter",
            Source::Cookie => "rt_token cookie",
        }
    }
}

impl Token {
    /// Checks `raw` (surrounding whitespace removed, so a file's final
    /// newline does not count); `from` names its origin in errors.
    pub fn new(raw: &str, from: &'static str) -> Result<Token, TokenError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(TokenError::Empty(from));
        }
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(TokenError::NotPrintable(from));
        }
        let digest: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
        // A separate digest, so the cookie is not the token's own digest.
        let mut h = Sha256::new();
        h.update(b"rt cookie\0");
        h.update(raw.as_bytes());
        let cookie = hex(&h.finalize());
        Ok(Token { digest, cookie })
    }

    /// Whether `presented` is the token. Both sides are hashed first, so
    /// the comparison is constant-time and takes no length into account.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(d.ct_eq(&self.digest))
    }

    /// Whether a cookie value is the one [`Self::cookie_value`] gives.
    pub fn matches_cookie(&self, presented: &str) -> bool {
        let a: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let b: [u8; 32] = Sha256::digest(self.cookie.as_bytes()).into();
        bool::from(a.ct_eq(&b))
    }

    /// What the cookie holds.
    pub fn cookie_value(&self) -> &str {
        &self.cookie
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Bearer T` from an `Authorization` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Every `token` parameter of a raw query, decoded.
pub fn query_tokens(query: &str) -> impl Iterator<Item = String> + '_ {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == QUERY_PARAM)
        .map(|(_, v)| v.into_owned())
}

/// The query without its `token` parameters, every other byte as it was
/// (handlers such as the Q&A actions read the raw query); `None` when
/// nothing is left.
pub fn strip_query(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !form_urlencoded::parse(key.as_bytes()).any(|(k, _)| k == QUERY_PARAM)
        })
        .collect();
    let joined = kept.join("&");
    (!joined.is_empty()).then_some(joined)
}

/// The values of cookies named `rt_token…` in `Cookie` header values.
pub fn cookie_values<'a>(headers: impl Iterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    headers
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| k.starts_with(COOKIE_PREFIX))
        .map(|(_, v)| v.trim())
}

/// The cookie's name for a server reached at `host` (its `Host` header).
pub fn cookie_name(host: Option<&str>) -> String {
    let port = host
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match port {
        Some(p) => format!("{COOKIE_PREFIX}_{p}"),
        None => COOKIE_PREFIX.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_checked() {
        let t = Token::new("  s3cret\n", "in RT_TOKEN").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret "));
        assert!(!t.matches(""));
        assert!(matches!(Token::new(" \n", "x"), Err(TokenError::Empty(_))));
        assert!(matches!(
            Token::new("a b", "x"),
            Err(TokenError::NotPrintable(_))
        ));
        assert!(matches!(
            Token::new("é", "x"),
            Err(TokenError::NotPrintable(_))
        ));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn the_cookie_holds_a_digest_not_the_token() {
        let t = Token::new("s3cret", "x").unwrap();
        assert!(!t.cookie_value().contains("s3cret"));
        assert_eq!(t.cookie_value().len(), 64);
        assert!(t.matches_cookie(t.cookie_value()));
        assert!(!t.matches_cookie("s3cret"));
        assert!(!t.matches(t.cookie_value()));
    }

    #[test]
    fn bearer_values_are_parsed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn query_tokens_are_found_and_stripped_leaving_the_rest_as_is() {
        let q = "EIO=4&token=a%2Bb&transport=polling&t=x%20y";
        assert_eq!(query_tokens(q).collect::<Vec<_>>(), vec!["a+b"]);
        assert_eq!(
            strip_query(q).as_deref(),
            Some("EIO=4&transport=polling&t=x%20y")
        );
        assert_eq!(strip_query("token=a"), None);
        assert_eq!(strip_query("to%6Ben=a&x"), Some("x".into()));
        assert_eq!(strip_query("tokens=1&token"), Some("tokens=1".into()));
        assert_eq!(strip_query("symbol=IBM"), Some("symbol=IBM".into()));
    }

    #[test]
    fn cookies_with_the_prefix_are_read() {
        let headers = ["a=1; rt_token_8080=abc", "rt_token=def;other=2"];
        assert_eq!(
            cookie_values(headers.into_iter()).collect::<Vec<_>>(),
            vec!["abc", "def"]
        );
    }

    #[test]
    fn the_cookie_is_named_after_the_port() {
        assert_eq!(cookie_name(Some("127.0.0.1:8080")), "rt_token_8080");
        assert_eq!(cookie_name(Some("[::1]:9")), "rt_token_9");
        assert_eq!(cookie_name(Some("rt.example")), "rt_token");
        assert_eq!(cookie_name(Some("[::1]")), "rt_token");
        assert_eq!(cookie_name(None), "rt_token");
    }
}
