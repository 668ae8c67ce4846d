//! The server under test: its address (loopback only), and the process whose
//! CPU and memory are measured — started by the bench (`--spawn-server`),
//! named (`--server-pid`), or found through `/proc` as the listener of the
//! port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::procstat;

/// How long a spawned server may take to print its address.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the server is and how to measure it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Server under test")]
pub struct TargetArgs {
    /// Server URL; only loopback addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Start this `rt-server` binary on an ephemeral loopback port, measure
    /// it, and stop it at the end (`--url` is then ignored).
    #[arg(long, value_name = "PATH")]
    pub spawn_server: Option<PathBuf>,

    /// Data file of the spawned server: `:memory:` (no disk writes) or a
    /// path, to measure commits that reach the file.
    #[arg(long, default_value = ":memory:", value_name = "PATH")]
    pub server_data: PathBuf,

    /// Extra flag for the spawned server (repeatable), e.g.
    /// `--server-arg=--fsync`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,

    /// Pid of the server process to measure. Default: the process listening
    /// on the URL's port, found through /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Spawn this many nodes of one cluster (with `--server-database` and
    /// `--server-redis`); clients are spread over them in turn and the
    /// server figures are their sums.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub spawn_nodes: u8,

    /// PostgreSQL URL for the spawned server(s) (`--database`), instead of
    /// `--server-data`.
    #[arg(long, value_name = "URL")]
    pub server_database: Option<String>,

    /// Redis URL for the spawned servers (`--redis`).
    #[arg(long, value_name = "URL")]
    pub server_redis: Option<String>,
}

/// A resolved server.
#[derive(Debug)]
pub struct Target {
    /// The (first) node.
    pub addr: SocketAddr,
    /// Every node; clients are spread over them.
    pub addrs: Vec<SocketAddr>,
    /// The (first) process to measure, when known.
    pub pid: Option<u32>,
    /// Every process to measure.
    pub pids: Vec<u32>,
    children: Vec<Child>,
}

impl Target {
    /// Resolves `args`: spawns the server if asked, else parses the URL and
    /// looks for the pid.
    pub async fn resolve(args: &TargetArgs) -> anyhow::Result<Target> {
        if let Some(path) = &args.spawn_server {
            if args.spawn_nodes > 1
                && (args.server_database.is_none() || args.server_redis.is_none())
            {
                bail!("--spawn-nodes above 1 needs --server-database and --server-redis");
            }
            let mut target = Target {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                addrs: Vec::new(),
                pid: None,
                pids: Vec::new(),
                children: Vec::new(),
            };
            for node in 0..args.spawn_nodes {
                let mut extra = Vec::new();
                match &args.server_database {
                    Some(db) => extra.extend(["--database".to_string(), db.clone()]),
                    None => {
                        extra.extend(["--data".to_string(), args.server_data.display().to_string()])
                    }
                }
                if let Some(redis) = &args.server_redis {
                    extra.extend(["--redis".to_string(), redis.clone()]);
                }
                if args.spawn_nodes > 1 {
                    extra.extend(["--node-id".to_string(), format!("bench{node}")]);
                }
                extra.extend(args.server_args.iter().cloned());
                let (addr, child) = spawn(path, &extra).await?;
                target.addrs.push(addr);
                if let Some(pid) = child.id() {
                    target.pids.push(pid);
                }
                target.children.push(child);
            }
            target.addr = target.addrs[0];
            target.pid = target.pids.first().copied();
            return Ok(target);
        }
        let addr = parse_url(&args.url)?;
        let pid = match args.server_pid {
            Some(pid) => {
                procstat::cpu(pid).with_context(|| format!("--server-pid {pid}"))?;
                Some(pid)
            }
            None => listener_pid(addr.port()),
        };
        Ok(Target {
            addr,
            addrs: vec![addr],
            pid,
            pids: pid.into_iter().collect(),
            children: Vec::new(),
        })
    }

    /// A CPU mark over every node's process.
    pub fn cpu_mark(&self) -> Option<super::report::CpuMark> {
        super::report::CpuMark::take_all(&self.pids)
    }

    /// The nodes' resident memory, summed.
    pub fn rss_kib(&self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&p| procstat::rss_kib(p).ok()).sum()
    }

    /// A target in this very process (tests of the generator).
    pub fn in_process(addr: SocketAddr) -> Target {
        Target {
            addr,
            addrs: vec![addr],
            pid: Some(std::process::id()),
            pids: vec![std::process::id()],
            children: Vec::new(),
        }
    }

    /// `Host` header value.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops a spawned server.
    pub async fn stop(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }
}

/// `http://HOST:PORT[/…]` → a loopback socket address.
pub fn parse_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url:?}: only http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority
        .rsplit_once(':')
        .with_context(|| format!("{url:?}: the URL needs a port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("{url:?}: bad port {port:?}"))?;
    let ip: IpAddr = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("{url:?}: the host must be an IP address or localhost"))?,
    };
    if !ip.is_loopback() {
        bail!("{url:?}: the load generator only targets loopback addresses");
    }
    Ok(SocketAddr::new(ip, port))
}

/// Starts one server with `args`; its address and process.
async fn spawn(path: &PathBuf, args: &[String]) -> anyhow::Result<(SocketAddr, Child)> {
    let mut cmd = Command::new(path);
    cmd.args(["--bind", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn");
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(SPAWN_TIMEOUT, lines.next_line())
        .await
        .context("the server printed no address in time")??
        .context("the server exited before printing its address")?;
    let url = line
        .strip_prefix("rt-server serving ")
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?;
    let addr = parse_url(url)?;
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((addr, child))
}

/// The pid of the process listening on TCP `port`, from `/proc/net/tcp{,6}`
/// and the processes' fd tables. `None` when it cannot be told (another
/// user's process, a different network namespace).
pub fn listener_pid(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

/// The inode of the socket in state LISTEN (`0A`) on `port` in a
/// `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let local = f.get(1)?;
        let (_, p) = local.rsplit_once(':')?;
        if u16::from_str_radix(p, 16).ok()? != port || *f.get(3)? != "0A" {
            return None;
        }
        f.get(9)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_loopback() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_url("http://localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(parse_url("http://[::1]:80").unwrap().ip().is_loopback());
        assert!(parse_url("http://10.0.0.1:80").is_err());
        assert!(parse_url("http://example.com:80").is_err());
        assert!(parse_url("https://127.0.0.1:80").is_err());
        assert!(parse_url("http://127.0.0.1").is_err());
    }

    #[test]
    fn listen_table_lookup() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98765 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 11111 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inode(table, 8080), Some(98765));
        assert_eq!(listening_inode(table, 8081), None);
    }

    #[tokio::test]
    async fn finds_the_pid_of_a_listener_in_this_process() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
    }
}
