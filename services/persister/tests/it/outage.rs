//! The persister while Cassandra hangs: it retries the same record, does not move past
//! it (its offset is not committed), and applies it once Cassandra is back.
//!
//! This freezes the shared Cassandra, so its test is named `outage_*`: `cargo xtask test`
//! runs such tests alone, after all the others.

use std::time::{Duration, Instant};

use crate::common::*;
use testkit::documents::*;
use testkit::faults::{self, Server};
use uuid::Uuid;

#[tokio::test]
async fn outage_cassandra_hung_persister_holds_the_record_then_applies_it() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    config.cassandra.request_timeout_ms = 500;
    let persister = spawn_with(config).await;

    // One record applied before the outage, so the group has a committed position.
    publish(&topic, &create(Uuid::new_v4(), "before", "outage")).await;
    wait_until_committed(&topic, &persister.group).await;
    let before = testkit::committed_offsets(&topic.name, &persister.group).await;

    let paused = faults::pause(Server::Cassandra);
    let id = Uuid::new_v4();
    publish(&topic, &create(id, "during", "outage")).await;
    // Over a few auto-commit intervals, the offset must stay where it was.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            testkit::committed_offsets(&topic.name, &persister.group).await,
            before,
            "the persister moved past a record Cassandra did not store"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    paused.resume();

    wait_until_committed(&topic, &persister.group).await;
    let applied = rows(&keyspace).await;
    assert!(
        applied.iter().any(|d| d.id == id),
        "the held record was applied"
    );
    assert_eq!(
        testkit::end_offsets(&dlq.name).await,
        vec![0],
        "nothing was dead-lettered"
    );
    persister.stop().await;
}

/// The value of the `persister_stuck_seconds` gauge on the persister's `/metrics`.
async fn stuck_seconds(address: &str) -> f64 {
    let text = testkit::http()
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| {
            line.strip_prefix(&format!("{} ", telemetry::names::PERSISTER_STUCK_SECONDS))
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no {} in:\n{text}",
                telemetry::names::PERSISTER_STUCK_SECONDS
            )
        })
}

/// A record held past the bound (Cassandra frozen) makes `/readyz` fail with a problem
/// that names the record and the reason, and raises `persister_stuck_seconds`; once the
/// record goes through, both recover.
#[tokio::test]
async fn outage_cassandra_hung_a_held_record_makes_the_persister_not_ready_until_applied() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    // Long enough for the schema's DDL at start, short against the bound below.
    config.cassandra.request_timeout_ms = 1500;
    config.stuck_after_secs = 3;
    let persister = spawn_with(config).await;
    let address = persister.app.address.clone();
    let readyz = || async {
        let response = testkit::http()
            .get(format!("{address}/readyz"))
            .send()
            .await
            .expect("readyz");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    };

    publish(&topic, &create(Uuid::new_v4(), "before", "outage")).await;
    wait_until_committed(&topic, &persister.group).await;
    assert_eq!(readyz().await.0, 200);
    assert_eq!(stuck_seconds(&address).await, 0.0);

    let paused = faults::pause(Server::Cassandra);
    let id = Uuid::new_v4();
    let (partition, offset) = publish(&topic, &create(id, "during", "outage")).await;
    let body = testkit::eventually(
        "readyz to name the held record",
        Duration::from_secs(20),
        || async {
            let (status, body) = readyz().await;
            (status == 503 && body.contains("neither applied nor dead-lettered")).then_some(body)
        },
    )
    .await;
    assert!(
        body.contains(&format!("partition {partition}, offset {offset}"))
            && body.contains("Cassandra write failed"),
        "{body}"
    );
    testkit::eventually(
        "the stuck gauge to rise",
        Duration::from_secs(10),
        || async { (stuck_seconds(&address).await >= 3.0).then_some(()) },
    )
    .await;
    paused.resume();

    wait_until_committed(&topic, &persister.group).await;
    assert!(rows(&keyspace).await.iter().any(|d| d.id == id));
    testkit::eventually("readyz to recover", Duration::from_secs(20), || async {
        (readyz().await.0 == 200).then_some(())
    })
    .await;
    testkit::eventually(
        "the stuck gauge to return to 0",
        Duration::from_secs(10),
        || async { (stuck_seconds(&address).await == 0.0).then_some(()) },
    )
    .await;
    persister.stop().await;
}
