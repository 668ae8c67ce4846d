//! The server's core surface: health, pages, shutdown.

mod common;

#[tokio::test]
async fn healthz_answers_ok() {
    let server = common::server().await;
    let res = common::http()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn landing_page_and_favicon_are_served() {
    let server = common::server().await;
    let http = common::http();
    let res = http.get(format!("{}/", server.url())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let res = http
        .get(format!("{}/favicon.ico", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/x-icon");
    let res = http
        .get(format!("{}/no/such/page", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{}/%2e%2e/Cargo.toml", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.shutdown().await.unwrap();
}
