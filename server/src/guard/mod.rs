//! Who may use the server: the `Origin` check (every request a browser
//! marks with a foreign origin is refused) and the access token (when one
//! is set, every endpoint but `/healthz` needs it).
//!
//! Both run in a tower layer outermost on the router, so they see every
//! request before any handler, socketioxide or the lean event-stream writer
//! produces an answer.

pub mod origin;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};

use origin::{BadOrigin, Origins};
use token::{Source, Token, TokenError};

/// The path that stays open without a token (health checks, rt-tui's
/// probe for a running server).
pub const OPEN_PATH: &str = "/healthz";
/// At most one log line per kind of refusal in this interval; the next
/// line says how many were not logged.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Origin and token flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuardConfig {
    /// Also accept browser requests whose Origin is this URL (scheme://host[:port]);
    /// repeatable. `*` accepts every origin. Always accepted: the server's own
    /// host (the Host header, over http or https) and loopback pages
    /// (localhost, 127.0.0.0/8, [::1]). Requests without Origin (programs) are
    /// never refused by this check.
    #[arg(long = "allowed-origin", value_name = "URL")]
    pub allowed_origins: Vec<String>,

    /// Require this access token on every endpoint except /healthz (read from
    /// the file, surrounding whitespace removed). Clients send
    /// `Authorization: Bearer TOKEN`, `?token=TOKEN`, or the cookie a page
    /// visited with ?token= sets.
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,

    /// The access token itself (secret). Prefer RT_TOKEN or --token-file: a
    /// command line is visible to other local users.
    #[arg(long, env = "RT_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Why the guard's settings were refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Origin(#[from] BadOrigin),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot read --token-file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl GuardConfig {
    /// Reads `--token-file` into `token` and checks every setting, so that
    /// [`Guard::new`] cannot fail. Called before the state is built.
    pub fn load(&mut self) -> Result<(), GuardError> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|source| GuardError::TokenFile {
                path: path.clone(),
                source,
            })?;
            Token::new(&text, "in --token-file")?;
            self.token = Some(text.trim().to_string());
        } else if let Some(t) = &self.token {
            Token::new(t, "in RT_TOKEN / --token")?;
        }
        Origins::new(&self.allowed_origins)?;
        Ok(())
    }
}

/// The checks, built once per router.
#[derive(Debug)]
pub struct Guard {
    origins: Origins,
    token: Option<Token>,
    origin_log: Throttle,
    token_log: Throttle,
}

impl Guard {
    /// From settings that passed [`GuardConfig::load`]; a setting that would
    /// not is dropped with an error log (allowing less, never more: a bad
    /// token makes every request fail).
    pub fn new(config: &GuardConfig) -> Guard {
        let origins = Origins::new(&config.allowed_origins).unwrap_or_else(|e| {
            tracing::error!(error = %e, "ignoring --allowed-origin");
            Origins::default()
        });
        let token = config.token.as_deref().map(|t| {
            Token::new(t, "in the configuration").unwrap_or_else(|e| {
                tracing::error!(error = %e, "no request can match the access token");
                // A random token nobody knows: refuse everything.
                let random: [u8; 32] = rand::random();
                Token::new(&token_hex(&random), "random").expect("hex is printable")
            })
        });
        Guard {
            origins,
            token,
            origin_log: Throttle::default(),
            token_log: Throttle::default(),
        }
    }

    /// The layer to put outermost on the router.
    pub fn layer(self) -> GuardLayer {
        GuardLayer {
            guard: Arc::new(self),
        }
    }

    /// The request to pass on (its `token` parameters removed), or the
    /// answer that refuses it or redirects it.
    pub fn check(&self, req: Request<Body>) -> Verdict {
        match self.decide(req) {
            Ok(req) => Verdict::Pass(req),
            Err(res) => Verdict::Answer(res),
        }
    }

    #[allow(clippy::result_large_err)] // Only between check and decide.
    fn decide(&self, mut req: Request<Body>) -> Result<Request<Body>, Response> {
        let host = request_host(&req).map(str::to_string);
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let text = String::from_utf8_lossy(origin.as_bytes());
            if !self.origins.allows(&text, host.as_deref()) {
                self.origin_log.warn(|suppressed| {
                    tracing::warn!(
                        origin = %text,
                        path = req.uri().path(),
                        suppressed,
                        "refused a request from a foreign origin"
                    );
                });
                return Err(refusal(
                    StatusCode::FORBIDDEN,
                    format!(
                        "origin {text} may not use this server: pages must come from the server itself or loopback, or the server must be started with --allowed-origin {text}\n"
                    ),
                ));
            }
        }
        let Some(token) = &self.token else {
            return Ok(req);
        };
        if req.uri().path() == OPEN_PATH {
            return Ok(req);
        }
        let query_tokens: Vec<String> = req
            .uri()
            .query()
            .map(|q| token::query_tokens(q).collect())
            .unwrap_or_default();
        let mut wrong = None;
        let mut ok = None;
        let headers = req.headers();
        for value in headers.get_all(header::AUTHORIZATION) {
            match value.to_str().ok().and_then(token::bearer) {
                Some(t) if token.matches(t) => ok = ok.or(Some(Source::Header)),
                _ => wrong = wrong.or(Some(Source::Header)),
            }
        }
        for t in &query_tokens {
            if token.matches(t) {
                ok = ok.or(Some(Source::Query));
            } else {
                wrong = wrong.or(Some(Source::Query));
            }
        }
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        for v in token::cookie_values(cookies) {
            if token.matches_cookie(v) {
                ok = ok.or(Some(Source::Cookie));
            } else {
                wrong = wrong.or(Some(Source::Cookie));
            }
        }
        let Some(_) = ok else {
            self.token_log.warn(|suppressed| {
                tracing::warn!(
                    path = req.uri().path(),
                    presented = wrong.map(Source::describe),
                    suppressed,
                    "refused a request without the access token"
                );
            });
            let message = match wrong {
                Some(source) => format!(
                    "the access token in the {} is wrong\n",
                    source.describe()
                ),
                None => "this server needs its access token: send Authorization: Bearer TOKEN, add ?token=TOKEN to the URL, or open a page with ?token=TOKEN once (it sets a cookie)\n".to_string(),
            };
            let mut res = refusal(StatusCode::UNAUTHORIZED, message);
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rt\""),
            );
            return Err(res);
        };
        if query_tokens.is_empty() {
            return Ok(req);
        }
        let stripped = strip_token(req.uri());
        if is_navigation(&req) {
            return Err(redirect_with_cookie(&stripped, token, host.as_deref()));
        }
        *req.uri_mut() = stripped;
        Ok(req)
    }
}

fn token_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host the request was sent to: the HTTP/2 authority, else `Host`.
fn request_host(req: &Request<Body>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
}

/// A browser opening a page (not a script's fetch, stream or socket): only
/// these are redirected to drop the token from the address bar.
fn is_navigation(req: &Request<Body>) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_upgrade(req.headers()) {
        return false;
    }
    let headers = req.headers();
    match headers.get("sec-fetch-mode") {
        Some(mode) => mode.as_bytes() == b"navigate",
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html"))),
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// `uri` without its `token` parameters (path and the rest of the query
/// kept byte for byte).
fn strip_token(uri: &Uri) -> Uri {
    let path = uri.path();
    let rebuilt = match uri.query().and_then(token::strip_query) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = rebuilt.parse().ok();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// 303 to the same page without the token, setting the cookie that stands
/// for it from now on.
fn redirect_with_cookie(to: &Uri, token: &Token, host: Option<&str>) -> Response {
    let location = to
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        token::cookie_name(host),
        token.cookie_value()
    );
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn refusal(status: StatusCode, line: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        line,
    )
        .into_response()
}

/// Logs at most once per [`REFUSAL_LOG_INTERVAL`], so a flood of refused
/// requests cannot flood the log.
#[derive(Debug, Default)]
struct Throttle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    fn warn(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL);
            if due {
                *last = Some(now);
            }
            due
        };
        if due {
            log(self.suppressed.swap(0, Ordering::Relaxed));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What [`Guard::check`] decided.
#[derive(Debug)]
pub enum Verdict {
    /// Go on to the handlers with this request.
    Pass(Request<Body>),
    /// Answer this instead (403, 401, or the redirect that sets the cookie).
    Answer(Response),
}

/// Tower layer running [`Guard::check`] before the inner service.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    guard: Arc<Guard>,
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            guard: self.guard.clone(),
            inner,
        }
    }
}

/// See [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    guard: Arc<Guard>,
    inner: S,
}

impl<S> tower::Service<Request<Body>> for GuardService<S>
where
    S: tower::Service<Request<Body>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        match self.guard.check(req) {
            Verdict::Pass(req) => Either::Right(self.inner.call(req)),
            Verdict::Answer(res) => Either::Left(ready(Ok(res))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(token: Option<&str>, allowed: &[&str]) -> Guard {
        Guard::new(&GuardConfig {
            allowed_origins: allowed.iter().map(|s| s.to_string()).collect(),
            token_file: None,
            token: token.map(str::to_string),
        })
    }

    fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut b = Request::builder().uri(uri).header("host", "127.0.0.1:8080");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn query_tokens_are_removed_before_the_handlers_see_the_request() {
        let g = guard(Some("t0k"), &[]);
        let req = g
            .decide(get("/socket.io/?EIO=4&token=t0k&transport=polling", &[]))
            .unwrap();
        assert_eq!(req.uri().to_string(), "/socket.io/?EIO=4&transport=polling");
        let req = g.decide(get("/login?token=t0k", &[])).unwrap();
        assert_eq!(req.uri().to_string(), "/login");
    }

    #[test]
    fn a_page_opened_with_the_token_is_redirected_with_a_cookie() {
        let g = guard(Some("t0k"), &[]);
        let res = g
            .decide(get("/qa/?token=t0k&x=1", &[("sec-fetch-mode", "navigate")]))
            .unwrap_err();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[header::LOCATION], "/qa/?x=1");
        let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("rt_token_8080="), "{cookie}");
        assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains("t0k"));
        let value = cookie.split(';').next().unwrap();
        assert!(g.decide(get("/qa/", &[("cookie", value)])).is_ok());
        // An upgrade with the token in its URL is not a page: no redirect.
        let ws = get(
            "/?token=t0k",
            &[("upgrade", "websocket"), ("accept", "text/html")],
        );
        assert_eq!(g.decide(ws).unwrap().uri().to_string(), "/");
    }

    #[test]
    fn without_a_token_configured_nothing_is_rewritten() {
        let g = guard(None, &[]);
        let req = g.decide(get("/?symbol=IBM&token=x", &[])).unwrap();
        assert_eq!(req.uri().to_string(), "/?symbol=IBM&token=x");
    }

    #[test]
    fn the_throttle_logs_once_per_interval_and_counts_the_rest() {
        let t = Throttle::default();
        let mut logged = Vec::new();
        for _ in 0..5 {
            t.warn(|n| logged.push(n));
        }
        assert_eq!(logged, vec![0]);
        assert_eq!(t.suppressed.load(Ordering::Relaxed), 4);
        *t.last.lock().unwrap() = Some(Instant::now() - REFUSAL_LOG_INTERVAL);
        t.warn(|n| logged.push(n));
        assert_eq!(logged, vec![0, 4]);
    }
}
