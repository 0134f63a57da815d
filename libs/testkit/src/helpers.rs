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
