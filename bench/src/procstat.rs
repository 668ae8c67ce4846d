//! CPU time and resident memory of a process, read from `/proc`.
//!
//! `/proc/<pid>/stat` counts user and system time of every thread of the
//! process, including threads that have exited, in clock ticks. Linux
//! reports those ticks at `USER_HZ`, which is 100 on every architecture it
//! exposes to user space, so one tick is 10 ms: runs of a few seconds keep
//! the rounding error under one percent.

use std::io;
use std::time::Duration;

/// Clock ticks per second in `/proc/<pid>/stat` (Linux `USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time a process has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// The time used between `earlier` and `self`.
    pub fn since(&self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Reads the CPU time of process `pid`.
pub fn cpu(pid: u32) -> io::Result<CpuTimes> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })
}

/// Reads the resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_rss(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status: no VmRSS line"),
        )
    })
}

/// `utime` and `stime` are fields 14 and 15; the command name (field 2) is
/// in parentheses and may itself contain spaces or parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<CpuTimes> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let tick = |t: u64| Duration::from_micros(t * 1_000_000 / TICKS_PER_SECOND);
    Some(CpuTimes {
        user: tick(utime),
        system: tick(stime),
    })
}

fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "4242 (rt (server) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 1000 200";
        let t = parse_stat(line).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(750));
        assert_eq!(t.total(), Duration::from_millis(3250));
    }

    #[test]
    fn status_rss_in_kib() {
        let text = "Name:\trt-server\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(text), Some(12345));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn own_process_is_readable_and_time_only_grows() {
        let pid = std::process::id();
        let a = cpu(pid).unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = cpu(pid).unwrap();
        assert!(b.total() >= a.total());
        assert_eq!(b.since(a).total(), b.total() - a.total());
        assert!(rss_kib(pid).unwrap() > 0);
    }
}
