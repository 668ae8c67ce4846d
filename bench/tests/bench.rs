//! The load generator itself, against a server in this process with tiny
//! counts: the summary is well-formed and its counts agree with each other.
//! No assertion depends on speed.

mod support;

use clap::Parser;
use rt_bench::{Scenario, Summary, Target, measure};
use serde_json::Value;
use support::{rt_bench, rt_server};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

fn scenario(args: &[&str]) -> Scenario {
    let mut argv = vec!["bench"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .expect("valid bench flags")
        .scenario
}

fn figure(s: &Summary, key: &str) -> f64 {
    s.figures
        .get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("figure {key} missing from {:#?}", s.figures))
}

fn latency_count(s: &Summary, key: &str) -> u64 {
    s.latency
        .get(key)
        .and_then(|l| l.get("count"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("latency {key} missing from {:#?}", s.latency))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_counts_agree() {
    let server = rt_server(200).await;
    let target = Target::in_process(server.addr);
    let s = measure(
        &scenario(&[
            "ticker",
            "--clients",
            "3",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--symbols",
            "IBM,MSFT",
            "--quiet",
        ]),
        &target,
    )
    .await
    .expect("the run completes");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.scenario, "ticker");
    let polls = figure(&s, "polls");
    assert!(polls >= 1.0, "{polls}");
    assert_eq!(latency_count(&s, "poll") as f64, polls);
    let rate = figure(&s, "polls_per_s");
    assert!((rate - polls / s.elapsed_s).abs() < 1e-6 * polls.max(1.0));
    let server_fig = s.server.as_ref().expect("server figures");
    let per = server_fig.cpu_per_message_us.expect("per-poll CPU");
    let total_us = (server_fig.cpu_user_s + server_fig.cpu_system_s) * 1e6;
    assert!(
        (per * polls - total_us).abs() < 1.0,
        "{per} × {polls} vs {total_us}"
    );
    assert!(s.generator.is_some());
    let json: Value = serde_json::from_str(&s.to_json()).expect("JSON summary");
    assert_eq!(json["params"]["clients"], 3);
    assert_eq!(json["figures"]["polls"].as_f64(), Some(polls));
    let text = s.to_text();
    assert!(text.starts_with("bench ticker: clients=3"), "{text}");
    assert!(text.contains("poll latency"), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_every_stream_sees_every_round() {
    let server = rt_server(5000).await;
    let target = Target::in_process(server.addr);
    let s = measure(
        &scenario(&[
            "sse",
            "--streams",
            "12",
            "--rounds",
            "3",
            "--interval-ms",
            "10",
            "--settle",
            "0",
            "--sources",
            "2",
            "--quiet",
        ]),
        &target,
    )
    .await
    .expect("the run completes");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(figure(&s, "streams_open"), 12.0);
    assert_eq!(figure(&s, "rounds_complete"), 3.0);
    // One arrival per stream per round.
    assert_eq!(latency_count(&s, "broadcast"), 36);
    // Pings may add to the broadcasts, never subtract.
    assert!(figure(&s, "messages_delivered") >= 36.0);
    assert_eq!(s.figures["rounds_p99_ms"].as_array().map(Vec::len), Some(3));
    assert!(figure(&s, "server_rss_per_stream_kib") >= 0.0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_a_json_summary_and_finds_the_server_by_port() {
    let server = rt_server(200).await;
    let url = server.url();
    let out = rt_bench(&[
        "ticker",
        "--url",
        &url,
        "--clients",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--json",
        "--quiet",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["scenario"], "ticker");
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(0));
    // The listener is this test process, found through /proc.
    assert_eq!(json["server"]["pid"], std::process::id());
    assert_eq!(
        json["figures"]["polls"].as_u64(),
        json["latency"]["poll"]["count"].as_u64()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn remote_targets_are_refused() {
    let out = rt_bench(&["ticker", "--url", "http://192.0.2.1:80", "--quiet"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draw_deliveries_carry_latencies() {
    let server = rt_server(5000).await;
    let target = Target::in_process(server.addr);
    let s = measure(
        &scenario(&[
            "draw",
            "--clients",
            "4",
            "--drawers",
            "1",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--verify-every",
            "2",
            "--quiet",
        ]),
        &target,
    )
    .await
    .expect("the run completes");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(figure(&s, "clients_connected"), 4.0);
    let deliveries = figure(&s, "deliveries");
    assert!(deliveries >= 1.0, "{deliveries}");
    assert_eq!(latency_count(&s, "delivery") as f64, deliveries);
    // Three receivers per move; a move sent just before the end may arrive
    // after it, one sent just before the start may arrive within it.
    let sent = figure(&s, "moves_sent");
    assert!(sent >= 1.0);
    assert!(deliveries <= 3.0 * (sent + 2.0), "{deliveries} for {sent}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_converge() {
    let server = rt_server(5000).await;
    let target = Target::in_process(server.addr);
    let s = measure(
        &scenario(&[
            "editor",
            "--editors",
            "3",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--quiet",
        ]),
        &target,
    )
    .await
    .expect("the run completes");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(figure(&s, "editors_converged"), 3.0);
    let acked = figure(&s, "acked_ops");
    assert!(acked >= 1.0);
    assert_eq!(latency_count(&s, "ack") as f64, acked);
    // The create plus every op, the measured ones among them.
    assert!(figure(&s, "final_version") >= acked + 1.0);
    server.shutdown().await.unwrap();
}
