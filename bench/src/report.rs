//! Figures of a run: latency percentiles, the progress line, and the final
//! summary (human-readable or JSON).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use super::procstat::{self, CpuTimes};

/// Latency samples in nanoseconds; percentiles by sorting (exact, and cheap
/// for the few million samples a bounded run can collect).
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn with_capacity(n: usize) -> Self {
        Latencies(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    pub fn push_nanos(&mut self, ns: u64) {
        self.0.push(ns);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted summary, or `None` without samples.
    pub fn summary(&mut self) -> Option<LatencySummary> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let pick = |p: f64| {
            let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
            self.0[i] as f64 / 1e6
        };
        let mean = self.0.iter().map(|&x| x as f64).sum::<f64>() / self.0.len() as f64 / 1e6;
        Some(LatencySummary {
            count: self.0.len() as u64,
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            max_ms: pick(1.0),
            mean_ms: mean,
        })
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// CPU and memory of one process over the measured phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessFigures {
    /// The (first) process measured.
    pub pid: u32,
    /// Processes summed (the nodes of a cluster; 1 otherwise).
    pub processes: usize,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    /// Share of one core over the phase.
    pub cpu_percent: f64,
    /// CPU time per counted message (delivery, poll, op), µs.
    pub cpu_per_message_us: Option<f64>,
    pub rss_kib: Option<u64>,
}

/// A CPU reading of one process, taken at the start of the measured phase.
#[derive(Debug, Clone)]
pub struct CpuMark {
    /// Each process measured (several nodes are summed) and its CPU then.
    marks: Vec<(u32, CpuTimes)>,
    at: Instant,
}

impl CpuMark {
    /// Reads `pid`'s CPU now; `None` when unreadable.
    pub fn take(pid: u32) -> Option<CpuMark> {
        CpuMark::take_all(&[pid])
    }

    /// Reads the CPU of every process in `pids` now (the nodes of a
    /// cluster); `None` when one is unreadable or there are none.
    pub fn take_all(pids: &[u32]) -> Option<CpuMark> {
        let marks = pids
            .iter()
            .map(|&pid| procstat::cpu(pid).ok().map(|c| (pid, c)))
            .collect::<Option<Vec<_>>>()?;
        (!marks.is_empty()).then(|| CpuMark {
            marks,
            at: Instant::now(),
        })
    }

    /// Figures since the mark, summed over its processes, with `messages`
    /// as the per-message divisor.
    pub fn figures(&self, messages: u64) -> Option<ProcessFigures> {
        let mut used = CpuTimes::default();
        let mut rss = 0;
        for &(pid, then) in &self.marks {
            let now = procstat::cpu(pid).ok()?.since(then);
            used.user += now.user;
            used.system += now.system;
            rss += procstat::rss_kib(pid).ok()?;
        }
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        Some(ProcessFigures {
            pid: self.marks[0].0,
            processes: self.marks.len(),
            cpu_user_s: used.user.as_secs_f64(),
            cpu_system_s: used.system.as_secs_f64(),
            cpu_percent: used.total().as_secs_f64() / wall * 100.0,
            cpu_per_message_us: (messages > 0)
                .then(|| used.total().as_secs_f64() * 1e6 / messages as f64),
            rss_kib: Some(rss),
        })
    }
}

/// The final report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: &'static str,
    /// The settings of the run.
    pub params: Map<String, Value>,
    /// Length of the measured phase.
    pub elapsed_s: f64,
    /// What the per-message CPU figures divide by.
    pub message: &'static str,
    /// Scenario figures, in order.
    pub figures: Map<String, Value>,
    /// Latency distributions, by name.
    pub latency: Map<String, Value>,
    /// The server process, when its pid is known.
    pub server: Option<ProcessFigures>,
    /// This load generator.
    pub generator: Option<ProcessFigures>,
    /// Problems seen during the run (errors, timeouts); empty when clean.
    pub errors: Vec<String>,
}

impl Summary {
    pub fn new(scenario: &'static str, message: &'static str) -> Summary {
        Summary {
            scenario,
            params: Map::new(),
            elapsed_s: 0.0,
            message,
            figures: Map::new(),
            latency: Map::new(),
            server: None,
            generator: None,
            errors: Vec::new(),
        }
    }

    pub fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.insert(key.into(), value.into());
    }

    pub fn figure(&mut self, key: &str, value: impl Into<Value>) {
        self.figures.insert(key.into(), value.into());
    }

    pub fn latency(&mut self, key: &str, mut samples: Latencies) {
        if let Some(s) = samples.summary() {
            self.latency
                .insert(key.into(), serde_json::to_value(s).expect("plain numbers"));
        }
    }

    /// The JSON form (one object).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain values")
    }

    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", plain(v)))
            .collect();
        out.push_str(&format!("bench {}: {}\n", self.scenario, params.join(" ")));
        out.push_str(&format!("  measured for {:.2} s\n", self.elapsed_s));
        for (k, v) in &self.figures {
            out.push_str(&format!("  {k:<28} {}\n", plain(v)));
        }
        for (k, v) in &self.latency {
            let get = |f: &str| v.get(f).and_then(Value::as_f64).unwrap_or(f64::NAN);
            out.push_str(&format!(
                "  {:<28} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (n={})\n",
                format!("{k} latency"),
                get("p50_ms"),
                get("p99_ms"),
                get("max_ms"),
                plain(v.get("count").unwrap_or(&Value::Null))
            ));
        }
        for (who, p) in [("server", &self.server), ("generator", &self.generator)] {
            match p {
                Some(p) => {
                    let per = p
                        .cpu_per_message_us
                        .map(|x| format!("{x:.2} µs per {}", self.message))
                        .unwrap_or_else(|| "-".into());
                    let rss = p
                        .rss_kib
                        .map(|r| format!("  RSS {:.1} MiB", r as f64 / 1024.0))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {who:<10} pid {}: CPU {:.2} s user + {:.2} s sys ({:.0}% of a core), {per}{rss}\n",
                        p.pid, p.cpu_user_s, p.cpu_system_s, p.cpu_percent
                    ));
                }
                None => out.push_str(&format!("  {who:<10} not measured (pid unknown)\n")),
            }
        }
        if self.errors.is_empty() {
            out.push_str("  errors: none\n");
        } else {
            out.push_str(&format!("  errors ({}):\n", self.errors.len()));
            for e in self.errors.iter().take(20) {
                out.push_str(&format!("    {e}\n"));
            }
        }
        out
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Counters the scenario bumps and the progress line reads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections open.
    pub open: AtomicU64,
    /// Messages counted (polls, deliveries, ops).
    pub messages: AtomicU64,
    /// Errors seen.
    pub errors: AtomicU64,
}

impl Counters {
    pub fn add_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }
}

/// Prints `label open=… msgs=… rate/s errors=…` to stderr about once a
/// second until dropped.
pub struct Progress {
    stop: tokio_util::sync::CancellationToken,
}

impl Progress {
    /// Starts the progress line; `enabled == false` prints nothing.
    pub fn start(label: &'static str, counters: Arc<Counters>, enabled: bool) -> Progress {
        let stop = tokio_util::sync::CancellationToken::new();
        if enabled {
            let token = stop.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut last = 0;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    let m = counters.messages.load(Ordering::Relaxed);
                    let line = format!(
                        "\r[{label} {:>5.1}s] open {:>6}  msgs {:>9}  {:>8}/s  errors {}   ",
                        start.elapsed().as_secs_f64(),
                        counters.open.load(Ordering::Relaxed),
                        m,
                        m - last,
                        counters.errors.load(Ordering::Relaxed),
                    );
                    last = m;
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(line.as_bytes());
                    let _ = err.flush();
                }
                let _ = std::io::stderr().write_all(b"\n");
            });
        }
        Progress { stop }
    }

    /// Ends the line.
    pub fn finish(self) {
        self.stop.cancel();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_hundred() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.push(Duration::from_millis(ms));
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn summary_text_and_json_name_every_figure() {
        let mut s = Summary::new("ticker", "poll");
        s.param("clients", 4);
        s.figure("polls", 10);
        s.figure("polls_per_s", 2.5);
        let mut l = Latencies::default();
        l.push(Duration::from_micros(1500));
        s.latency("poll", l);
        s.errors.push("x: refused".into());
        let text = s.to_text();
        assert!(text.contains("bench ticker: clients=4"), "{text}");
        assert!(text.contains("polls_per_s"), "{text}");
        assert!(text.contains("p50 1.500 ms"), "{text}");
        assert!(text.contains("x: refused"), "{text}");
        let v: Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["figures"]["polls"], 10);
        assert_eq!(v["latency"]["poll"]["count"], 1);
        assert_eq!(v["errors"][0], "x: refused");
    }
}
