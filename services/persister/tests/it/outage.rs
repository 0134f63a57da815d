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
