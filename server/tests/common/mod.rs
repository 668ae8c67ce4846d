//! Shared helpers for the integration tests: a real server on port 0.
#![allow(dead_code)]

pub mod tls;

use rt_server::{Config, Server};

/// A server on an ephemeral loopback port with an in-memory store.
pub async fn server() -> Server {
    server_with(Config::for_tests()).await
}

/// A server with a customised test config.
pub async fn server_with(config: Config) -> Server {
    rt_server::spawn(config).await.expect("test server starts")
}

/// A plain HTTP client for the tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}
