//! Which `Origin`s may talk to the server: its own host (over http or
//! https), loopback pages, and whatever `--allowed-origin` names.
//!
//! Browsers attach `Origin` to WebSocket handshakes, to every `POST` and to
//! cross-origin reads, so refusing a foreign one stops another site's page
//! from driving the server with the visitor's cookies (cross-site WebSocket
//! hijacking, CSRF). Programs (rt-tui, curl, the npm clients under Node)
//! send no `Origin` and are not affected.

use std::net::IpAddr;

/// A parsed `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    /// Lower-cased; an IPv6 address keeps its brackets.
    host: String,
    /// The explicit port, or the scheme's default.
    port: Option<u16>,
}

impl Origin {
    /// Parses an `Origin` header value or an `--allowed-origin` URL (a
    /// trailing `/` is allowed there). `None` for `null` and anything that
    /// is not `scheme://host[:port]`.
    pub fn parse(raw: &str) -> Option<Origin> {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once("://")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            || rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
        {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_host_port(rest)?;
        let port = port.or_else(|| default_port(&scheme));
        Some(Origin { scheme, host, port })
    }

    /// `localhost`, `127.0.0.0/8` or `[::1]`, on any port.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether this origin names the server the request was sent to: the
    /// same host and port as `Host`, over http or https alike (a proxy may
    /// terminate TLS in front of the server).
    pub fn is_host(&self, host_header: &str) -> bool {
        if !matches!(self.scheme.as_str(), "http" | "https") {
            return false;
        }
        let Some((host, port)) = split_host_port(host_header.trim()) else {
            return false;
        };
        // A Host without a port means the scheme's default, as it does in
        // the origin.
        host == self.host && port.or_else(|| default_port(&self.scheme)) == self.port
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]`, `[v6][:port]`: the host lower-cased, the port if given.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The allow-list.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    any: bool,
    listed: Vec<Origin>,
}

/// Why an `--allowed-origin` value was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "--allowed-origin {0:?} is not an origin: give scheme://host[:port] (e.g. https://rt.example:8443) or *"
)]
pub struct BadOrigin(pub String);

impl Origins {
    /// From the `--allowed-origin` values; `*` allows every origin.
    pub fn new(allowed: &[String]) -> Result<Origins, BadOrigin> {
        let mut origins = Origins::default();
        for raw in allowed {
            if raw.trim() == "*" {
                origins.any = true;
            } else {
                origins
                    .listed
                    .push(Origin::parse(raw).ok_or_else(|| BadOrigin(raw.clone()))?);
            }
        }
        Ok(origins)
    }

    /// Whether a request with this `Origin` header, sent to `host` (its
    /// `Host` header or HTTP/2 authority), may go on.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Some(origin) = Origin::parse(origin) else {
            // `null` (sandboxed frames, file: pages) and garbage.
            return false;
        };
        origin.is_loopback()
            || host.is_some_and(|h| origin.is_host(h))
            || self.listed.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(list: &[&str], origin: &str, host: &str) -> bool {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Origins::new(&list).unwrap().allows(origin, Some(host))
    }

    #[test]
    fn the_servers_own_host_is_allowed_over_http_and_https() {
        assert!(allows(&[], "http://rt.example:8080", "rt.example:8080"));
        assert!(allows(&[], "https://rt.example:8080", "rt.example:8080"));
        assert!(allows(&[], "https://RT.example", "rt.example:443"));
        assert!(allows(&[], "http://rt.example", "rt.example"));
        assert!(allows(&[], "http://10.0.0.5:9000", "10.0.0.5:9000"));
        assert!(allows(&[], "http://[fe80::1]:9000", "[fe80::1]:9000"));
        assert!(!allows(&[], "http://rt.example:8081", "rt.example:8080"));
        assert!(!allows(&[], "http://rt.example.evil", "rt.example"));
        assert!(!allows(&[], "ftp://rt.example", "rt.example"));
    }

    #[test]
    fn loopback_pages_are_allowed_on_any_port() {
        for o in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://127.4.5.6:1",
            "http://[::1]:8080",
        ] {
            assert!(allows(&[], o, "rt.example"), "{o}");
        }
        assert!(!allows(&[], "http://localhost.evil.example", "rt.example"));
        assert!(!allows(&[], "http://128.0.0.1", "rt.example"));
    }

    #[test]
    fn foreign_null_and_malformed_origins_are_refused() {
        for o in [
            "http://evil.example",
            "null",
            "",
            "evil.example",
            "http://",
            "http://a:b:c",
            "http://evil.example/path",
            "http://user@127.0.0.1",
            "http://evil.example:99999",
        ] {
            assert!(!allows(&[], o, "127.0.0.1:8080"), "{o:?}");
        }
        let none = Origins::new(&[]).unwrap();
        assert!(!none.allows("http://evil.example", None));
    }

    #[test]
    fn listed_origins_and_star_are_allowed() {
        let list = ["https://app.example", "http://tools.example:81/"];
        assert!(allows(&list, "https://app.example", "rt.example"));
        assert!(allows(&list, "https://app.example:443", "rt.example"));
        assert!(allows(&list, "http://tools.example:81", "rt.example"));
        assert!(!allows(&list, "http://app.example", "rt.example"));
        assert!(!allows(&list, "http://tools.example", "rt.example"));
        assert!(allows(&["*"], "http://evil.example", "rt.example"));
        assert!(allows(&["*"], "null", "rt.example"));
    }

    #[test]
    fn bad_allowed_origins_are_errors() {
        for bad in ["rt.example", "http://", "https://a.example/path", "null"] {
            assert!(Origins::new(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
