//! Connection caps: at most `--max-connections` open in all and
//! `--max-connections-per-ip` from one address. A connection holds a
//! [`Permit`] for as long as its socket lives (an upgraded WebSocket
//! included); refusals are counted and logged once per interval.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often refusals are summed up in the log.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` are open.
    Total,
    /// `--max-connections-per-ip` are open from this address.
    PerIp,
}

impl Refusal {
    /// The flag whose limit was reached.
    pub fn flag(self) -> &'static str {
        match self {
            Refusal::Total => "max-connections",
            Refusal::PerIp => "max-connections-per-ip",
        }
    }
}

/// The counts, shared by the accept loop (which admits) and every
/// connection's permit (which gives its place back when dropped). The
/// per-address table has one entry per address with a connection open.
#[derive(Debug)]
pub struct Gate {
    max_total: usize,
    max_per_ip: u32,
    limit_loopback: bool,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    refused_total: AtomicU64,
    refused_per_ip: AtomicU64,
}

/// A connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    /// Counted in the per-address table.
    ip: Option<IpAddr>,
}

impl Gate {
    pub fn new(max_total: u32, max_per_ip: u32, limit_loopback: bool) -> Arc<Gate> {
        Arc::new(Gate {
            max_total: max_total as usize,
            max_per_ip,
            limit_loopback,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused_total: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
        })
    }

    /// A place for a connection from `ip`, or why not (counted for the log).
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Result<Permit, Refusal> {
        // Only the accept loop admits, so the check and the increment
        // cannot race another admission; drops only lower the count.
        if self.open.load(Ordering::Acquire) >= self.max_total {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        let key = ip_key(ip);
        let counted = if key.is_loopback() && !self.limit_loopback {
            None
        } else {
            let mut table = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let n = table.entry(key).or_insert(0);
            if *n >= self.max_per_ip {
                drop(table);
                self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::PerIp);
            }
            *n += 1;
            Some(key)
        };
        self.open.fetch_add(1, Ordering::AcqRel);
        Ok(Permit {
            gate: self.clone(),
            ip: counted,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Logs the refusals of the last interval (if any) until `shutdown`.
    pub async fn log_refusals(self: Arc<Gate>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(REFUSAL_LOG_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => {
                    self.log_once();
                    return;
                }
            }
            self.log_once();
        }
    }

    fn log_once(&self) {
        let secs = REFUSAL_LOG_INTERVAL.as_secs();
        for (counter, reason) in [
            (&self.refused_total, Refusal::Total),
            (&self.refused_per_ip, Refusal::PerIp),
        ] {
            let n = counter.swap(0, Ordering::Relaxed);
            if n > 0 {
                tracing::warn!(
                    refused = n,
                    limit = reason.flag(),
                    "refused {n} connections in the last {secs} s: {}",
                    reason.flag()
                );
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut table = self
                .gate
                .per_ip
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = table.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    table.remove(&ip);
                }
            }
        }
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address a limit counts: IPv4 as it is, IPv6 by its /64 (one
/// subscriber's network; a host can pick any address within it), an
/// IPv4-mapped IPv6 address as the IPv4 one.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            if v6.is_loopback() {
                return ip;
            }
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_total_cap_refuses_one_more_and_frees_on_drop() {
        let gate = Gate::new(2, 10, true);
        let a = gate.admit(ip("10.0.0.1")).unwrap();
        let _b = gate.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.3")).unwrap_err(), Refusal::Total);
        drop(a);
        assert_eq!(gate.open(), 1);
        gate.admit(ip("10.0.0.3")).unwrap();
    }

    #[test]
    fn the_per_ip_cap_counts_each_address_and_forgets_it_when_gone() {
        let gate = Gate::new(100, 2, false);
        let a1 = gate.admit(ip("192.0.2.1")).unwrap();
        let a2 = gate.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(gate.admit(ip("192.0.2.1")).unwrap_err(), Refusal::PerIp);
        gate.admit(ip("192.0.2.2")).unwrap();
        drop((a1, a2));
        assert!(gate.per_ip.lock().unwrap().is_empty());
        gate.admit(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn loopback_is_exempt_from_the_per_ip_cap_unless_asked() {
        let gate = Gate::new(100, 1, false);
        let _held: Vec<_> = (0..5)
            .map(|_| gate.admit(ip("127.0.0.1")).unwrap())
            .collect();
        let strict = Gate::new(100, 1, true);
        let _one = strict.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(strict.admit(ip("127.0.0.1")).unwrap_err(), Refusal::PerIp);
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let gate = Gate::new(100, 1, false);
        let _a = gate.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            gate.admit(ip("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refusal::PerIp
        );
        gate.admit(ip("2001:db8:1:3::1")).unwrap();
        assert_eq!(ip_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
