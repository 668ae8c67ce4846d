//! `rt-tui doc …` against a real server.

mod support;

use serde_json::Value;
use support::{closed_port, rt_server, rt_tui};

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_insert_delete_and_watch() {
    let server = rt_server(5000).await;
    let url = server.url();
    let out = rt_tui(&["doc", "get", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let got = json_lines(&out);
    assert_eq!(got[0]["text"], "Hi!\n");
    assert_eq!(got[0]["v"], 1);

    // A watcher sees the next two changes.
    let watch_url = url.clone();
    let watcher = tokio::spawn(async move {
        rt_tui(&[
            "doc",
            "watch",
            "examples/richtext",
            "--count",
            "2",
            "--url",
            &watch_url,
        ])
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let out = rt_tui(&[
        "doc",
        "insert",
        "examples/richtext",
        "--at",
        "3",
        " 😀 there",
        "--url",
        &url,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_lines(&out)[0]["v"], 2);
    let out = rt_tui(&[
        "doc",
        "delete",
        "examples/richtext",
        "--at",
        "0",
        "--len",
        "1",
        "--url",
        &url,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json_lines(&out)[0]["v"], 3);
    let out = rt_tui(&["doc", "get", "examples/richtext", "--url", &url]).await;
    assert_eq!(json_lines(&out)[0]["text"], "i! 😀 there\n");

    let watched = watcher.await.unwrap();
    assert!(watched.status.success(), "{watched:?}");
    let lines = json_lines(&watched);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["v"], 1);
    assert_eq!(lines[0]["op"]["ops"][1]["insert"], " 😀 there");
    assert_eq!(lines[1]["op"], serde_json::json!({"ops": [{"delete": 1}]}));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_edits_missing_docs_and_unreachable_servers_fail() {
    let server = rt_server(5000).await;
    let url = server.url();
    // Past the end of the document.
    let out = rt_tui(&[
        "doc",
        "insert",
        "examples/richtext",
        "--at",
        "99",
        "x",
        "--url",
        &url,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid edit"));
    let out = rt_tui(&["doc", "get", "examples/nothing", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = rt_tui(&["doc", "get", "no-slash", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1));
    let out = rt_tui(&[
        "doc",
        "insert",
        "examples/richtext",
        "--at",
        "x",
        "y",
        "--url",
        &url,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    server.shutdown().await.unwrap();
    let out = rt_tui(&[
        "doc",
        "get",
        "--url",
        &format!("http://127.0.0.1:{}", closed_port()),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}
