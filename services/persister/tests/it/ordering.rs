//! The ordering guard against the real Kafka and Cassandra. The read model orders each
//! document's writes by offset, so a topic whose offsets restart under it (partitions
//! added, or the topic recreated) would make later UPDATEs lose silently: the persister
//! must stop before applying such a record, leave it uncommitted, and refuse to start
//! again with an error naming the fix.

use std::time::Duration;

use crate::common::*;
use events::Event;
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::documents::*;
use testkit::{TestKeyspace, TestTopic};
use uuid::Uuid;

fn config(topic: &TestTopic, dlq: &TestTopic, keyspace: &TestKeyspace) -> persister::Config {
    let infra = testkit::infra();
    persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    )
}

/// A document id whose key the producers put in `before` of 2 partitions and in `after`
/// of 3.
fn moving_key(before: i32, after: i32) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        let key = id.to_string();
        if messaging::partition_of_key(key.as_bytes(), 2) == before
            && messaging::partition_of_key(key.as_bytes(), 3) == after
        {
            return id;
        }
    }
}

/// Publishes `event` to `partition`, as a producer that knows the new partition count
/// places it (the test's shared producer may not have seen the new count yet).
async fn publish_to(topic: &TestTopic, partition: i32, event: &Event) -> i64 {
    let producer: FutureProducer =
        messaging::durable_producer_config(&testkit::infra().bootstrap, Duration::from_secs(10))
            .create()
            .expect("producer");
    let key = event.key();
    let json = event.to_json();
    let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: "content-type",
        value: Some(events::mime::EVENT),
    });
    let delivery = producer
        .send(
            FutureRecord::to(&topic.name)
                .partition(partition)
                .key(&key)
                .payload(&json)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("record stored");
    assert_eq!(delivery.partition, partition);
    delivery.offset
}

async fn author_of(keyspace: &TestKeyspace, id: Uuid) -> Option<String> {
    rows(keyspace)
        .await
        .into_iter()
        .find(|d| d.id == id)
        .and_then(|d| d.author)
}

async fn wait_for_author(keyspace: &TestKeyspace, id: Uuid, author: &str) {
    testkit::eventually("the row", Duration::from_secs(30), || async {
        (author_of(keyspace, id).await.as_deref() == Some(author)).then_some(())
    })
    .await;
}

/// Partitions added while the persister runs: an UPDATE whose key moved to the new
/// partition stops it (the periodic check), unapplied and uncommitted, and a restart
/// refuses with the fix named.
#[tokio::test]
async fn partitions_added_an_update_in_a_new_partition_stops_the_persister() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(2).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let mut config = config(&topic, &dlq, &keyspace);
    config.topic_check_secs = 1;
    let persister = spawn_with(config.clone()).await;

    let id = moving_key(1, 2);
    publish(&topic, &create(id, "before", "text")).await;
    wait_for_author(&keyspace, id, "before").await;

    topic.add_partitions(3).await;
    let offset = publish_to(&topic, 2, &update(id, Some("after"), None)).await;

    let error = persister
        .app
        .ended(Duration::from_secs(30))
        .await
        .expect_err("the persister must stop when partitions are added");
    let message = format!("{error:#}");
    assert!(
        message.contains("partition count") && message.contains("must not change"),
        "{message}"
    );
    assert_eq!(author_of(&keyspace, id).await.as_deref(), Some("before"));
    // Not committed either: the update is still ahead of the group, not skipped.
    let committed = testkit::committed_offsets(&topic.name, &config.group_id).await;
    assert!(committed[2] <= offset, "committed {committed:?}");

    let refused = persister::Application::build(config)
        .await
        .expect_err("a restart must refuse the re-partitioned topic");
    let message = format!("{refused:#}");
    assert!(
        message.contains("was built from 2 partitions, the topic now has 3")
            && message.contains("cargo xtask rebuild"),
        "{message}"
    );
}

/// Partitions added, and a key moves to an existing partition whose offsets are lower
/// than its document's last write: without the guard, Cassandra would keep the older
/// write and the persister would commit past the update. The periodic check is off here,
/// so only the record's own placement can tell.
#[tokio::test]
async fn partitions_added_an_update_moved_below_its_history_stops_the_persister() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(2).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let mut config = config(&topic, &dlq, &keyspace);
    config.topic_check_secs = 3600;
    let persister = spawn_with(config.clone()).await;

    // Partition 1 gets a few writes first, so the document's create sits at offset 3
    // there, while partition 0 holds one record (offset 0).
    for _ in 0..3 {
        let other = moving_key(1, 1);
        publish(&topic, &create(other, "filler", "p1")).await;
    }
    let filler = moving_key(0, 0);
    publish(&topic, &create(filler, "filler", "p0")).await;
    let id = moving_key(1, 0);
    let (partition, created_at) = publish(&topic, &create(id, "before", "text")).await;
    assert_eq!((partition, created_at), (1, 3));
    wait_for_author(&keyspace, id, "before").await;
    wait_for_author(&keyspace, filler, "filler").await;

    topic.add_partitions(3).await;
    let offset = publish_to(&topic, 0, &update(id, Some("after"), None)).await;
    assert!(
        offset < created_at,
        "the update sits below the create: {offset}"
    );

    let error = persister
        .app
        .ended(Duration::from_secs(30))
        .await
        .expect_err("the persister must stop before applying the moved update");
    assert!(
        format!("{error:#}").contains("partition count"),
        "{error:#}"
    );
    assert_eq!(author_of(&keyspace, id).await.as_deref(), Some("before"));
    let committed = testkit::committed_offsets(&topic.name, &config.group_id).await;
    assert!(committed[0] <= offset, "committed {committed:?}");
}

/// The topic deleted and created again under the same name (offsets from 0): the
/// persister that built the read model from the old one refuses to start.
#[tokio::test]
async fn topic_recreated_a_restart_refuses() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let config = config(&topic, &dlq, &keyspace);

    let first = spawn_with(config.clone()).await;
    let id = Uuid::new_v4();
    publish(&topic, &create(id, "before", "text")).await;
    wait_for_author(&keyspace, id, "before").await;
    first.stop().await;
    // The same topic again: it starts.
    spawn_with(config.clone()).await.stop().await;

    topic.recreate().await;
    publish(&topic, &update(id, Some("after"), None)).await;
    let refused = persister::Application::build(config)
        .await
        .expect_err("a persister must not apply a recreated topic to the old read model");
    let message = format!("{refused:#}");
    assert!(
        message.contains("was recreated") && message.contains("cargo xtask rebuild"),
        "{message}"
    );
    assert_eq!(author_of(&keyspace, id).await.as_deref(), Some("before"));
}

/// The topic recreated while the persister runs: it stops (the periodic check sees the
/// new id) without applying the new topic's records to the old read model.
#[tokio::test]
async fn topic_recreated_while_running_stops_the_persister() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let mut config = config(&topic, &dlq, &keyspace);
    config.topic_check_secs = 1;
    let persister = spawn_with(config).await;
    let id = Uuid::new_v4();
    publish(&topic, &create(id, "before", "text")).await;
    wait_for_author(&keyspace, id, "before").await;

    topic.recreate().await;
    publish(&topic, &update(id, Some("after"), None)).await;
    let error = persister
        .app
        .ended(Duration::from_secs(30))
        .await
        .expect_err("the persister must stop when its topic is recreated");
    assert!(format!("{error:#}").contains("was recreated"), "{error:#}");
    assert_eq!(author_of(&keyspace, id).await.as_deref(), Some("before"));
}
