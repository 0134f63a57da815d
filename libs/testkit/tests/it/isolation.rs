//! The kit's promises: each test gets a topic and a keyspace of its own, and they are
//! gone once the test drops them.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

fn topic_exists(name: &str) -> bool {
    let consumer: BaseConsumer = testkit::infra().kafka_config().create().expect("client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata.topics().iter().any(|t| t.name() == name)
}

async fn keyspace_exists(name: &str) -> bool {
    let probe = testkit::infra().keyspace().await;
    let (count,): (i64,) = probe
        .session
        .query_unpaged(
            "SELECT count(*) FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (name,),
        )
        .await
        .expect("query")
        .into_rows_result()
        .expect("rows")
        .single_row()
        .expect("one row");
    count > 0
}

#[tokio::test]
async fn a_test_topic_has_its_partitions_and_is_deleted_on_drop() {
    let topic = testkit::infra().topic(3).await;
    let name = topic.name.clone();
    let consumer: BaseConsumer = testkit::infra().kafka_config().create().expect("client");
    let metadata = consumer
        .fetch_metadata(Some(&name), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    assert!(topic_exists(&name));

    drop(topic);
    // Deletion completes on the controller; give the broker's metadata a moment to follow.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while topic_exists(&name) {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} still exists 10 s after drop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_test_keyspace_has_the_schema_and_is_dropped_on_drop() {
    let keyspace = testkit::infra().keyspace().await;
    let name = keyspace.name().to_owned();
    keyspace
        .session
        .query_unpaged(format!("SELECT id, author, text FROM {name}.documents"), ())
        .await
        .expect("the schema's table exists");
    assert!(keyspace_exists(&name).await);

    drop(keyspace);
    assert!(
        !keyspace_exists(&name).await,
        "{name} still exists after drop"
    );
}

#[test]
fn unreachable_servers_fail_with_the_command_that_starts_them() {
    // Port 1 on loopback: nothing listens there.
    let error = testkit::check_reachable("127.0.0.1:1", "127.0.0.1:1", Duration::from_secs(1))
        .expect_err("nothing serves on port 1");
    assert!(error.contains("cargo xtask infra up"), "{error}");
    assert!(error.contains("Kafka is not reachable"), "{error}");
}
