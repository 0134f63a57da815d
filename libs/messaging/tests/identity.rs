//! A topic's identity against the real Kafka (`cargo xtask infra up`): the id is stable
//! across requests, new after a delete and re-create, and the partition count follows
//! CreatePartitions; the platform's producers place keys where `partition_of_key` says.

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| messaging::DEFAULT_BOOTSTRAP_SERVERS.to_owned())
}

/// Fails (never skips) when Kafka is not there, saying how to start it.
async fn kafka() -> String {
    let bootstrap = bootstrap();
    let probe = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        messaging::wait_for_broker(&probe, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}: start the local servers with `cargo xtask infra up`"))
    })
    .await
    .unwrap();
    bootstrap
}

/// Retries while a topic just created, deleted or grown settles in the broker's metadata.
async fn identity_until(
    bootstrap: &str,
    topic: &str,
    done: impl Fn(&messaging::TopicIdentity) -> bool,
) -> messaging::TopicIdentity {
    let started = Instant::now();
    loop {
        let last = messaging::topic_identity(bootstrap, topic).await;
        match &last {
            Ok(identity) if done(identity) => return *identity,
            _ if started.elapsed() > Duration::from_secs(30) => {
                panic!("topic {topic} did not settle: last answer {last:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn the_id_is_stable_new_after_recreate_and_partitions_follow_create_partitions() {
    let bootstrap = kafka().await;
    let admin = messaging::admin_client(&bootstrap).unwrap();
    let topic = format!("identity-{}", Uuid::new_v4().simple());
    messaging::ensure_topic(&admin, &topic, 2).await.unwrap();

    let first = identity_until(&bootstrap, &topic, |i| i.partitions == 2).await;
    let again = messaging::topic_identity(&bootstrap, &topic).await.unwrap();
    assert_eq!(first, again, "the same topic has the same identity");

    messaging::add_partitions(&admin, &topic, 3).await.unwrap();
    let grown = identity_until(&bootstrap, &topic, |i| i.partitions == 3).await;
    assert_eq!(grown.id, first.id, "adding partitions keeps the id");

    messaging::delete_topic(&admin, &topic).await.unwrap();
    let missing = identity_until_missing(&bootstrap, &topic).await;
    assert!(
        matches!(missing, messaging::AdminError::NoTopic(_)),
        "{missing}"
    );
    // The broker may still be removing the old topic: retry the creation for a while.
    let started = Instant::now();
    while !messaging::ensure_topic(&admin, &topic, 2)
        .await
        .unwrap_or(false)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "topic not re-created"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let recreated = identity_until(&bootstrap, &topic, |i| i.id != first.id).await;
    assert_eq!(recreated.partitions, 2);
    messaging::delete_topic(&admin, &topic).await.unwrap();
}

async fn identity_until_missing(bootstrap: &str, topic: &str) -> messaging::AdminError {
    let started = Instant::now();
    loop {
        match messaging::topic_identity(bootstrap, topic).await {
            Err(error @ messaging::AdminError::NoTopic(_)) => return error,
            other if started.elapsed() > Duration::from_secs(30) => {
                panic!("topic {topic} still described after delete: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn a_missing_topic_is_named() {
    let bootstrap = kafka().await;
    let topic = format!("absent-{}", Uuid::new_v4().simple());
    let error = messaging::topic_identity(&bootstrap, &topic)
        .await
        .unwrap_err();
    assert!(
        matches!(error, messaging::AdminError::NoTopic(ref t) if *t == topic),
        "{error}"
    );
}

/// The persister tells a record written under another partition count by its key: that
/// only holds if the producers' partitioner is the one `partition_of_key` computes.
#[tokio::test]
async fn producers_place_keys_where_partition_of_key_says() {
    let bootstrap = kafka().await;
    let admin = messaging::admin_client(&bootstrap).unwrap();
    let topic = format!("placement-{}", Uuid::new_v4().simple());
    messaging::ensure_topic(&admin, &topic, 5).await.unwrap();
    let producer: FutureProducer =
        messaging::durable_producer_config(&bootstrap, Duration::from_secs(10))
            .create()
            .unwrap();
    for _ in 0..40 {
        let key = Uuid::new_v4().to_string();
        let delivery = producer
            .send(
                FutureRecord::to(&topic).key(&key).payload("x"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(
            delivery.partition,
            messaging::partition_of_key(key.as_bytes(), 5),
            "key {key}"
        );
    }
    messaging::delete_topic(&admin, &topic).await.unwrap();
}
