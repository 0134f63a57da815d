//! The platform's topics are a permanent log: created with `retention.ms=-1` and the
//! replica settings asked for, and a topic made before that gets the settings applied.

use std::time::Duration;

use messaging::{TopicChange, TopicSpec};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use uuid::Uuid;

async fn config_of(name: &str, key: &str) -> String {
    let admin = messaging::admin_client(&testkit::infra().bootstrap).unwrap();
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(name)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    resource
        .get(key)
        .and_then(|entry| entry.value.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn platform_topics_keep_their_records_forever() {
    let infra = testkit::infra();
    let admin = messaging::admin_client(&infra.bootstrap).unwrap();
    let [documents, _] = TopicSpec::platform(1, 1);
    let spec = TopicSpec {
        name: format!("test-{}", Uuid::new_v4().simple()),
        ..documents
    };
    let _topic = infra.adopt_topic(&spec.name, spec.partitions);

    let change = messaging::ensure_topic_spec(&admin, &spec).await.unwrap();
    assert_eq!(change, TopicChange::Created);
    assert_eq!(config_of(&spec.name, "retention.ms").await, "-1");
    assert_eq!(config_of(&spec.name, "min.insync.replicas").await, "1");
    let partitions = messaging::watermarks(infra.kafka_config(), &spec.name)
        .await
        .unwrap()
        .len();
    assert_eq!(partitions, 3);
}

#[tokio::test]
async fn an_older_topic_gets_the_permanent_settings() {
    let infra = testkit::infra();
    let admin = messaging::admin_client(&infra.bootstrap).unwrap();
    // A topic as the platform made it before: the broker's default retention.
    let topic = infra.topic(3).await;
    assert_ne!(config_of(&topic.name, "retention.ms").await, "-1");
    let [documents, _] = TopicSpec::platform(1, 1);
    let spec = TopicSpec {
        name: topic.name.clone(),
        ..documents
    };
    let change = messaging::ensure_topic_spec(&admin, &spec).await.unwrap();
    assert_eq!(change, TopicChange::Updated);
    // Kafka applies a config change asynchronously; it is visible within moments.
    testkit::eventually("retention.ms=-1", Duration::from_secs(10), || async {
        (config_of(&topic.name, "retention.ms").await == "-1").then_some(())
    })
    .await;
}
