//! The reader while Cassandra hangs: 503 with `Retry-After` and a problem body, and
//! `/readyz` says not ready; once Cassandra is back, reads succeed again.
//!
//! This freezes the shared Cassandra, so its test is named `outage_*`: `cargo xtask test`
//! runs such tests alone, after all the others.

use std::time::Duration;

use events::mime;
use reader::{Application, Config};
use reqwest::StatusCode;
use testkit::faults::{self, Server};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn outage_cassandra_hung_gives_503_then_recovers() {
    let infra = testkit::infra();
    let keyspace = infra.keyspace().await;
    let mut config = Config::for_tests(&infra.contact_points, keyspace.name());
    config.cassandra.request_timeout_ms = 1000;
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let url = format!("{base}/documents/{}", Uuid::new_v4());

    let paused = faults::pause(Server::Cassandra);
    let response = testkit::http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    let detail = response.text().await.unwrap();
    assert!(
        detail.contains("did not answer in time") && !detail.contains("Cassandra refused"),
        "the driver's words reached the client: {detail}"
    );
    let ready = testkit::http()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    paused.resume();

    testkit::eventually(
        "a read to succeed after Cassandra resumed",
        Duration::from_secs(60),
        || async {
            let response = testkit::http().get(&url).send().await.ok()?;
            (response.status() == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    shutdown.cancel();
}
