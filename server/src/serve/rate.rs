//! Per-address rate limits on the Q&A board's logins and actions: a token
//! bucket per IP address (an IPv6 /64) in a bounded table. Loopback peers
//! are exempt unless `--limit-loopback`, as for the connection caps: a
//! reverse proxy on this host and the benchmarks' thousands of logins all
//! come from loopback. The accept loop hands every request the server's
//! [`QaRates`] and its peer address; [`qa`] is the Q&A routes' middleware.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServeConfig;
use super::admit::ip_key;

/// Entries looked at to find one to forget when the table is full: an
/// address still using its bucket is moved to the back, once each.
const EVICTION_TRIES: usize = 8;

/// The server's Q&A rate limits, shared by every connection.
#[derive(Clone, Debug)]
pub struct QaRates(Arc<Rates>);

#[derive(Debug)]
struct Rates {
    login: Limiter,
    action: Limiter,
    limit_loopback: bool,
}

impl QaRates {
    pub fn new(config: &ServeConfig) -> QaRates {
        let cap = config.rate_limit_ips as usize;
        QaRates(Arc::new(Rates {
            login: Limiter::new(config.qa_login_rate, config.qa_login_burst, cap),
            action: Limiter::new(config.qa_action_rate, config.qa_action_burst, cap),
            limit_loopback: config.limit_loopback,
        }))
    }
}

/// One token bucket per address.
#[derive(Debug)]
pub struct Limiter {
    /// Tokens added per second.
    rate: f64,
    /// Tokens a bucket holds at most (and starts with).
    burst: f64,
    cap: usize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    /// Every address in `buckets`, oldest first.
    order: VecDeque<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Limiter {
    pub fn new(rate: f64, burst: u32, cap: usize) -> Limiter {
        Limiter {
            rate,
            burst: f64::from(burst),
            cap: cap.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// Takes a token for `ip` at `now`, or says how long until one is there.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = ip_key(ip);
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if !t.buckets.contains_key(&key) {
            if t.buckets.len() >= self.cap {
                self.evict(&mut t, now);
            }
            t.buckets.insert(
                key,
                Bucket {
                    tokens: self.burst,
                    last: now,
                },
            );
            t.order.push_back(key);
        }
        let bucket = t.buckets.get_mut(&key).expect("inserted above");
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
    }

    /// Forgets the oldest address, preferring one whose bucket has filled
    /// up again (forgetting it changes nothing).
    fn evict(&self, t: &mut Table, now: Instant) {
        for _ in 0..EVICTION_TRIES {
            let Some(oldest) = t.order.pop_front() else {
                return;
            };
            let mut bucket = t.buckets[&oldest];
            self.refill(&mut bucket, now);
            if bucket.tokens >= self.burst {
                t.buckets.remove(&oldest);
                return;
            }
            t.order.push_back(oldest);
        }
        if let Some(oldest) = t.order.pop_front() {
            t.buckets.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().buckets.len()
    }
}

/// Middleware of the Q&A routes: `/login` takes a login token, the rest an
/// action token; none left gets `429` with `Retry-After`. A request that
/// did not come through the accept loop (no peer) is not limited, nor one
/// from loopback without `--limit-loopback`.
pub async fn qa(req: Request, next: Next) -> Response {
    let ext = req.extensions();
    let (Some(rates), Some(ConnectInfo(peer))) =
        (ext.get::<QaRates>(), ext.get::<ConnectInfo<SocketAddr>>())
    else {
        return next.run(req).await;
    };
    if ip_key(peer.ip()).is_loopback() && !rates.0.limit_loopback {
        return next.run(req).await;
    }
    let (limiter, what, limit) = if req.uri().path() == "/login" {
        (&rates.0.login, "logins", "qa_login_rate")
    } else {
        (&rates.0.action, "actions", "qa_action_rate")
    };
    match limiter.check(peer.ip(), Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            crate::metrics::refused(limit);
            too_many(what, wait)
        }
    }
}

fn too_many(what: &str, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = serde_json::to_string(&rt_protocol::qa::ErrorBody {
        error: format!("too many Q&A {what} from your address: retry in {secs} s"),
    })
    .expect("serializes");
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = Limiter::new(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(ip("192.0.2.1"), t0).unwrap();
        }
        let wait = l.check(ip("192.0.2.1"), t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Another address has its own bucket.
        l.check(ip("192.0.2.2"), t0).unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        l.check(ip("192.0.2.1"), t1).unwrap();
        assert!(l.check(ip("192.0.2.1"), t1).is_err());
    }

    #[test]
    fn a_limiter_counts_loopback_like_any_address() {
        let l = Limiter::new(1.0, 1, 10);
        let t0 = Instant::now();
        l.check(ip("127.0.0.1"), t0).unwrap();
        assert!(l.check(ip("127.0.0.1"), t0).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_idle_addresses_first() {
        let l = Limiter::new(1.0, 2, 3);
        let t0 = Instant::now();
        // a is drained; b and c have used one token each.
        l.check(ip("10.0.0.1"), t0).unwrap();
        l.check(ip("10.0.0.1"), t0).unwrap();
        l.check(ip("10.0.0.2"), t0).unwrap();
        l.check(ip("10.0.0.3"), t0).unwrap();
        // 1.5 s on, b and c are full again, a is not: b goes.
        let t1 = t0 + Duration::from_millis(1500);
        l.check(ip("10.0.0.4"), t1).unwrap();
        assert_eq!(l.len(), 3);
        // a was kept, so it has no full burst to spend.
        l.check(ip("10.0.0.1"), t1).unwrap();
        assert!(l.check(ip("10.0.0.1"), t1).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let res = too_many("logins", Duration::from_millis(10));
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let res = too_many("logins", Duration::from_millis(2100));
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
    }
}
