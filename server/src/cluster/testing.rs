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
