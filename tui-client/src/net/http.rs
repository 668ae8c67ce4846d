//! Plain HTTP requests (ticker polls, Q&A actions, the health probe) over
//! hyper with rustls, so `https://` servers and `--ca-cert` work the same
//! way here as on the event streams and WebSockets.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::endpoint::{Endpoint, HttpsConnector};

/// The largest answer body read (a poll, an action's reply); a longer one
/// is an error rather than unbounded memory.
pub const MAX_BODY: usize = 1024 * 1024;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0}")]
    BadUrl(String),
    #[error("timed out")]
    Timeout,
    /// The innermost cause (refused, reset, a certificate problem).
    #[error("{0}")]
    Transport(String),
    #[error("the answer is longer than {MAX_BODY} bytes")]
    TooLarge,
}

/// An answer: its status and whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A client for one endpoint; cloning shares its connections.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector, Full<Bytes>>,
    endpoint: Endpoint,
    timeout: Duration,
}

impl HttpClient {
    /// Each request (connecting included) may take `timeout`; connecting
    /// alone `connect_timeout`.
    pub fn new(endpoint: &Endpoint, timeout: Duration, connect_timeout: Duration) -> HttpClient {
        let client =
            Client::builder(TokioExecutor::new()).build(endpoint.connector(connect_timeout));
        HttpClient {
            client,
            endpoint: endpoint.clone(),
            timeout,
        }
    }

    /// `GET url`, read whole.
    pub async fn get(&self, url: &str) -> Result<Reply, HttpError> {
        self.send(Method::GET, url, &[]).await
    }

    /// `POST url` with an empty body and `headers`, read whole.
    pub async fn post(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, HttpError> {
        self.send(Method::POST, url, headers).await
    }

    /// `GET url`, returning as soon as the head arrives (an event stream).
    pub async fn open(&self, url: &str) -> Result<(StatusCode, Incoming), HttpError> {
        let res = tokio::time::timeout(self.timeout, self.request(Method::GET, url, &[]))
            .await
            .map_err(|_| HttpError::Timeout)??;
        Ok((res.status(), res.into_body()))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, HttpError> {
        let fut = async {
            let res = self.request(method, url, headers).await?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge
                    } else {
                        HttpError::Transport(innermost(e.as_ref()))
                    }
                })?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| HttpError::Timeout)?
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<hyper::Response<Incoming>, HttpError> {
        let uri: hyper::Uri = url.parse().map_err(|_| HttpError::BadUrl(url.into()))?;
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(auth) = self.endpoint.authorization() {
            b = b.header(hyper::header::AUTHORIZATION, auth.as_bytes());
        }
        let mut req = b
            .body(Full::new(Bytes::new()))
            .map_err(|e| HttpError::BadUrl(format!("{url}: {e}")))?;
        if let Some(v) = req.headers_mut().get_mut(hyper::header::AUTHORIZATION) {
            v.set_sensitive(true);
        }
        self.client
            .request(req)
            .await
            .map_err(|e| HttpError::Transport(innermost(&e)))
    }
}

/// The last cause in an error's chain: what a user can act on.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    inner.to_string()
}
