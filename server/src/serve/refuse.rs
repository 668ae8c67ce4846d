//! The answer to a connection over a cap: one `503` with `Retry-After`,
//! written by the accept loop's side without hyper, then the connection
//! closes. What the client sent is read and dropped for a moment first, so
//! closing does not reset the connection before the answer is read.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::admit::Refusal;
use super::tls::Tls;

/// Seconds a refused client is asked to wait.
pub const RETRY_AFTER_SECS: u64 = 5;
/// Refusals being written at once at most; beyond it a refused connection
/// is closed at once (a flood must not buy a task per connection).
pub const REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refusal (its TLS handshake included) may take.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Bytes of the client's request read and dropped at most.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Room for refusals in flight.
pub fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT))
}

/// The whole answer.
pub fn response(why: Refusal) -> String {
    let body = format!(
        "rt-server is at its connection limit ({}); retry in {RETRY_AFTER_SECS} s\n",
        why.flag()
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: {RETRY_AFTER_SECS}\r\n\
         content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Writes the refusal on `tcp` (inside TLS when `tls`) and closes it.
pub async fn refuse(tcp: TcpStream, tls: Option<Tls>, why: Refusal) {
    crate::metrics::refused(match why {
        Refusal::Total => "max_connections",
        Refusal::PerIp => "max_connections_per_ip",
    });
    let done = tokio::time::timeout(REFUSAL_TIME, async move {
        match tls {
            None => answer(tcp, why).await,
            Some(tls) => match tls.refuse.accept(tcp).await {
                Ok(stream) => answer(stream, why).await,
                Err(e) => {
                    tracing::trace!(error = %e, "TLS handshake of a refused connection failed")
                }
            },
        }
    })
    .await;
    if done.is_err() {
        tracing::trace!("a refused connection took too long; dropped");
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, why: Refusal) {
    if io.write_all(response(why).as_bytes()).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match io.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let r = response(Refusal::PerIp);
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nretry-after: 5\r\n"));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(body.contains("max-connections-per-ip"));
    }
}
