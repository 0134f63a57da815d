//! Small tools that every test shares: an HTTP client, and waiting for a condition with a
//! deadline (never a fixed sleep).

use std::future::Future;
use std::time::{Duration, Instant};

/// An HTTP client for tests: no proxy, a 30 s bound on every request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `deadline` naming
/// `what` was awaited.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that the service at `address` serves `expected` (its OpenAPI description, as
/// the code generates it) at `/openapi.json`, as OpenAPI 3.1.
pub async fn assert_serves_openapi(address: &str, expected: serde_json::Value) {
    let served: serde_json::Value = http()
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("a JSON description");
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served, expected);
}
