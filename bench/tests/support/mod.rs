//! Helpers for the generator's tests: a real rt server on 127.0.0.1 port 0
//! and the `rt-bench` binary.

use std::process::Output;
use std::time::Duration;

/// The longest any generator process in these tests may run.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

/// A real rt server with a fast market: polls are answered with `callIn`
/// `poll_ms` and the simulated market moves every 100 ms.
pub async fn rt_server(poll_ms: u64) -> rt_server::Server {
    let mut config = rt_server::Config::for_tests();
    config.ticker.poll_ms = poll_ms;
    config.ticker.tick_ms = 100;
    config.ticker.seed = Some(7);
    rt_server::spawn(config).await.expect("test server starts")
}

/// Runs `rt-bench ARGS` to completion (bounded by [`PROCESS_TIMEOUT`]).
pub async fn rt_bench(args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rt-bench"));
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(PROCESS_TIMEOUT, cmd.output())
        .await
        .expect("rt-bench finishes in time")
        .expect("rt-bench runs")
}
