//! The real Kafka and our rdkafka settings work together: an idempotent producer with
//! `acks=all` writes keyed records with headers, and a consumer reads back the same keys,
//! values and headers, in order within each partition.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const RECORDS: usize = 30;

#[tokio::test]
async fn idempotent_producer_records_come_back_with_keys_and_headers() {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;

    let producer: FutureProducer = infra
        .kafka_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");

    // Three keys, ten records each: a key's records must come back in the order sent.
    let mut sent = Vec::new();
    for i in 0..RECORDS {
        let key = format!("doc-{}", i % 3);
        let value = format!("{{\"seq\":{i}}}");
        let traceparent = format!("00-{:032x}-{:016x}-01", i + 1, i + 1);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some(traceparent.as_str()),
            })
            .insert(Header {
                key: "content-type",
                value: Some("application/vnd.kafka-cqrs.event.1+json"),
            });
        let delivery = producer
            .send(
                FutureRecord::to(&topic.name)
                    .key(&key)
                    .payload(&value)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("delivery report");
        assert!(delivery.offset >= 0, "the broker assigned an offset");
        let partition = delivery.partition;
        sent.push((key, value, traceparent, partition));
    }

    let consumer: StreamConsumer = infra
        .kafka_config()
        .set("group.id", format!("{}-reader", topic.name))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic.name]).expect("subscribe");

    let mut received = Vec::new();
    let mut stream = consumer.stream();
    while received.len() < RECORDS {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("records arrive within 30 s")
            .expect("stream goes on")
            .expect("no consumer error");
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).expect("UTF-8 header"))
        };
        received.push((
            String::from_utf8(message.key().expect("key").to_vec()).expect("UTF-8 key"),
            String::from_utf8(message.payload().expect("value").to_vec()).expect("UTF-8 value"),
            header("traceparent").expect("traceparent header"),
            message.partition(),
        ));
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/vnd.kafka-cqrs.event.1+json")
        );
    }

    // Same records, whatever the interleaving of partitions...
    let mut sorted_sent = sent.clone();
    let mut sorted_received = received.clone();
    sorted_sent.sort();
    sorted_received.sort();
    assert_eq!(sorted_received, sorted_sent);
    // ...and each key's records in the order they were sent.
    let by_key = |records: &[(String, String, String, i32)]| {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value, _, _) in records {
            map.entry(key.clone()).or_default().push(value.clone());
        }
        map
    };
    assert_eq!(by_key(&received), by_key(&sent));
}
