//! The producer while Kafka hangs: it answers 503 with `Retry-After` within its bound and
//! acknowledges nothing; once Kafka is back, commands succeed again.
//!
//! This freezes the shared Kafka, so its test is named `outage_*`: `cargo xtask test`
//! runs such tests alone, after all the others.

use std::time::{Duration, Instant};

use events::mime;
use producer::{Application, Config};
use reqwest::StatusCode;
use testkit::faults::{self, Server};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn outage_kafka_hung_gives_503_within_the_bound_then_recovers() {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.produce_timeout_ms = 2000;
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}/documents", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let create = || {
        testkit::http()
            .post(&url)
            .header("content-type", mime::CREATE_DOCUMENT)
            .body(r#"{"author":"a"}"#)
            .send()
    };
    // Warm up: the producer knows the partition leaders before Kafka hangs.
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED);
    let before = testkit::end_offsets(&topic.name).await;

    let paused = faults::pause(Server::Kafka);
    let started = Instant::now();
    let response = create().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    // The configured bound plus slack for a loaded machine, far from librdkafka's 5 min.
    assert!(took < Duration::from_secs(10), "503 took {took:?}");
    paused.resume();

    // Kafka is back: commands succeed again (the first may still wait for reconnects).
    testkit::eventually(
        "a create to succeed after Kafka resumed",
        Duration::from_secs(60),
        || async {
            let response = create().await.ok()?;
            (response.status() == StatusCode::CREATED).then_some(())
        },
    )
    .await;
    let after = testkit::end_offsets(&topic.name).await;
    let stored: i64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    // Every 201 is in the topic; the command answered 503 may or may not be (Kafka may
    // have stored it just as the bound ran out), but it was never acknowledged.
    assert!(stored >= 1, "the creates after recovery are in the topic");
    shutdown.cancel();
}
