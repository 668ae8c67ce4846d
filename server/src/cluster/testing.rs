//! Test support: a database of its own per test, dropped afterwards, and
//! the Redis to use. Not an API.
//!
//! The server is `RT_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a role that may create
//! databases) and Redis is `RT_TEST_REDIS` (default
//! `redis://127.0.0.1:6379`). When either does not answer, the test fails:
//! `scripts/test` installs and starts both.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

/// The PostgreSQL server tests use, as an admin URL.
pub fn admin_url() -> String {
    std::env::var("RT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis tests use.
pub fn redis_url() -> String {
    std::env::var("RT_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh database, dropped (with any connection still open) when this
/// value drops.
pub struct TestDb {
    pub url: String,
    pub name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Creates `rt_test_<pid>_<n>`, first dropping databases left behind by
    /// test processes that no longer run.
    pub async fn create() -> TestDb {
        let admin = admin_url();
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap_or_else(|e| {
            panic!("tests need PostgreSQL at {admin} (RT_TEST_POSTGRES); scripts/test starts one: {e}")
        });
        tokio::spawn(conn);
        let stale = client
            .query(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'rt\\_test\\_%'",
                &[],
            )
            .await
            .expect("list test databases");
        for row in stale {
            let name: String = row.get(0);
            let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != std::process::id()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
        }
        let name = format!(
            "rt_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        let url = match admin.rfind('/') {
            Some(i) => format!("{}/{name}", &admin[..i]),
            None => panic!("RT_TEST_POSTGRES must end in /DATABASE: {admin}"),
        };
        TestDb { url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = admin_url();
        let name = self.name.clone();
        // Drop may run inside a runtime; the drop needs one of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = done.join();
    }
}

/// `url` (a PostgreSQL or Redis URL) pointing at `addr` instead of its own
/// host and port.
pub fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let user = match authority.rsplit_once('@') {
        Some((user, _)) => format!("{user}@"),
        None => String::new(),
    };
    format!("{scheme}://{user}{addr}{path}")
}

/// A TCP relay in front of a service that a test can cut: while cut, open
/// connections are closed and new ones are closed at once, as when the
/// service's host becomes unreachable; [`TcpCut::restore`] lets them
/// through again.
pub struct TcpCut {
    pub addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    _stop: tokio_util::sync::DropGuard,
}

impl TcpCut {
    /// Relays connections on a fresh loopback port to `target`.
    pub async fn start(target: std::net::SocketAddr) -> TcpCut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, watch) = tokio::sync::watch::channel(false);
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let mut watch = watch.clone();
                if *watch.borrow() {
                    continue;
                }
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        TcpCut {
            addr,
            cut,
            _stop: stop.drop_guard(),
        }
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

/// A redis-server of the test's own on a free loopback port, which the
/// test may restart (losing everything, as Redis without persistence
/// does). Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    /// Starts `redis-server` and waits until it answers.
    pub fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Self::spawn(port);
        PrivateRedis { port, child }
    }

    fn spawn(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("tests need redis-server on PATH (scripts/test installs it): {e}")
            });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and starts a new one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.port);
    }

    /// Kills the server; [`PrivateRedis::restart`] brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PostgreSQL server's address, from [`admin_url`].
pub fn postgres_addr() -> std::net::SocketAddr {
    let admin = admin_url();
    let rest = admin.split_once("://").map(|(_, r)| r).unwrap_or(&admin);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL host in {admin}"))
}
