//! The store's round trip: one `store.call` at a time (what a document owner
//! that awaits each commit pays per op) against many in flight at once
//! (what group commit can batch), on a WAL file with `synchronous=NORMAL`
//! (the default durability) and in memory.
//!
//! ```text
//! cargo bench -p rt-server --bench store
//! ```

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rt_server::store::{Durability, Store};

/// Rows written per in-flight burst.
const BURST: usize = 64;

fn file_path() -> PathBuf {
    std::env::temp_dir().join(format!("rt-store-bench-{}.db", std::process::id()))
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

async fn insert(store: &Store, i: u64) {
    store
        .call(move |c| {
            c.execute(
                "INSERT INTO bench_rows(n, body) VALUES (?1, ?2)",
                rusqlite::params![i as i64, "a short op body of about forty bytes"],
            )
        })
        .await
        .expect("insert commits");
}

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let path = file_path();
    remove(&path);
    for (name, store) in [
        (
            "wal_file",
            rt.block_on(async { Store::open(&path, Durability::Process) })
                .expect("store opens"),
        ),
        ("memory", rt.block_on(async { Store::memory() })),
    ] {
        rt.block_on(
            store.call(|c| c.execute_batch("CREATE TABLE bench_rows (n INTEGER, body TEXT)")),
        )
        .expect("table");
        let mut g = c.benchmark_group(format!("store_{name}"));
        g.throughput(Throughput::Elements(1));
        let mut n = 0u64;
        g.bench_function("one_call_in_flight", |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(insert(&store, n))
            })
        });
        g.throughput(Throughput::Elements(BURST as u64));
        g.bench_function("64_calls_in_flight", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..BURST {
                        n += 1;
                        let s = store.clone();
                        let i = n;
                        set.spawn(async move { insert(&s, i).await });
                    }
                    while set.join_next().await.is_some() {}
                })
            })
        });
        g.finish();
    }
    remove(&path);
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
