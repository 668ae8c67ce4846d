//! The accept loop's flags: TLS, connection caps, keep-alive and the Q&A
//! rate limits (flattened into `rt-server --help`).

use std::path::PathBuf;

/// Connection and TLS settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Serve HTTPS with this certificate chain (PEM, leaf first). Browsers
    /// then get HTTP/2 (ALPN h2) for pages, event streams and actions;
    /// WebSockets use HTTP/1.1. Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Open connections at most (streams and WebSockets included). One more
    /// gets `503` with `Retry-After` and is closed.
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Open connections from one IP address (an IPv6 /64) at most; one more
    /// gets `503`. Loopback peers are exempt unless --limit-loopback.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,

    /// Apply --max-connections-per-ip and the Q&A rate limits to loopback
    /// peers too. Off by default:
    /// a reverse proxy on this host, rt-tui's embedded server and the
    /// benchmarks all connect from loopback.
    #[arg(long)]
    pub limit_loopback: bool,

    /// Close a connection that has had no request in flight for this long
    /// (HTTP/1.1 keep-alive and HTTP/2 alike; an HTTP/1.1 connection also
    /// closes after --header-timeout-ms without a new request).
    #[arg(long, value_name = "MS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_idle_ms: u64,

    /// Q&A logins (`GET /login`) one IP address may open per second, on
    /// average; more get `429` with `Retry-After`.
    #[arg(long, value_name = "PER_S", default_value_t = 20.0, value_parser = positive_rate)]
    pub qa_login_rate: f64,

    /// Q&A logins one IP address may open at once before --qa-login-rate
    /// applies.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub qa_login_burst: u32,

    /// Q&A actions (ask, select, answer, vote) one IP address may send per
    /// second, on average; more get `429` with `Retry-After`.
    #[arg(long, value_name = "PER_S", default_value_t = 100.0, value_parser = positive_rate)]
    pub qa_action_rate: f64,

    /// Q&A actions one IP address may send at once before --qa-action-rate
    /// applies.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub qa_action_burst: u32,

    /// IP addresses whose Q&A rates are remembered at most; beyond it the
    /// oldest is forgotten (and starts again with a full burst).
    #[arg(long, value_name = "N", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_ips: u32,
}

impl ServeConfig {
    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// A rate per second: finite and above zero.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate above 0 (events per second)")),
    }
}
