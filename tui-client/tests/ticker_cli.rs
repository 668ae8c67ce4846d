//! `rt-tui ticker …` against a real server and a scripted fake one.

mod support;

use std::time::Duration;

use rt_protocol::ticker::Quote;
use support::{FakeTicker, closed_port, quote_body, rt_server, rt_tui};

fn stdout_quotes(out: &std::process::Output) -> Vec<Quote> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Quote>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn count_2_by_polling_prints_two_quote_lines() {
    let server = rt_server(200).await;
    let url = server.url();
    let out = rt_tui(&["ticker", "ibm", "--count", "2", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let quotes = stdout_quotes(&out);
    assert_eq!(quotes.len(), 2);
    for q in &quotes {
        assert_eq!(q.symbol, "IBM");
        assert!(q.latest_price > 0.0);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn count_2_over_sse_for_two_symbols() {
    let server = rt_server(5000).await;
    let url = server.url();
    let out = rt_tui(&[
        "ticker",
        "AAPL",
        "MSFT",
        "--count",
        "2",
        "--transport",
        "sse",
        "--url",
        &url,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let quotes = stdout_quotes(&out);
    assert_eq!(quotes.len(), 2);
    assert!(
        quotes
            .iter()
            .all(|q| q.symbol == "AAPL" || q.symbol == "MSFT")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_fails() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    for transport in ["poll", "sse"] {
        let out = rt_tui(&[
            "ticker",
            "IBM",
            "--count",
            "1",
            "--transport",
            transport,
            "--url",
            &url,
        ])
        .await;
        assert_eq!(out.status.code(), Some(1), "{transport}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot reach {url}")),
            "{transport}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_symbols_are_refused_before_any_request() {
    let out = rt_tui(&["ticker", "<script>", "--url", "http://127.0.0.1:1"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbol may contain only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn error_with_call_in_null_fails_and_error_with_call_in_retries() {
    let fake = FakeTicker::start(&[r#"{"error":"Unknown symbol","callIn":null}"#]).await;
    let out = rt_tui(&["ticker", "NOPE", "--url", &fake.url()]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOPE: Unknown symbol"));
    assert_eq!(
        fake.polls.lock().unwrap().len(),
        1,
        "no poll after callIn null"
    );

    let retry = FakeTicker::start(&[
        r#"{"error":"Received empty data set","callIn":300}"#,
        &quote_body("IBM", 100.0, Some(300)),
    ])
    .await;
    let out = rt_tui(&["ticker", "IBM", "--count", "2", "--url", &retry.url()]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("IBM: Received empty data set"));
    assert_eq!(stdout_quotes(&out).len(), 2);
    // Each poll waited for the callIn of the answer before it.
    let polls = retry.polls.lock().unwrap();
    assert_eq!(polls.len(), 3);
    for pair in polls.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(290), "polled after {gap:?}");
        assert_eq!(pair[1].1, "symbol=IBM");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quote_with_call_in_null_stops_that_symbol() {
    let fake = FakeTicker::start(&[&quote_body("IBM", 100.0, None)]).await;
    let out = rt_tui(&["ticker", "IBM", "--count", "5", "--url", &fake.url()]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout_quotes(&out).len(), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("IBM: the server stopped updates (callIn null)"),
        "{err}"
    );
    assert_eq!(fake.polls.lock().unwrap().len(), 1);
}
