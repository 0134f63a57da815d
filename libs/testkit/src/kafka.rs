//! Kafka tools that service tests share: reading a topic, its end offsets and a group's
//! committed offsets, and producing a record.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, TopicPartitionList};
use uuid::Uuid;

use crate::infra;

/// The end offset (high watermark) of each partition of `topic`, by partition.
pub async fn end_offsets(topic: &str) -> Vec<i64> {
    messaging::watermarks(infra().kafka_config(), topic)
        .await
        .expect("watermarks")
        .into_iter()
        .map(|(_, high)| high)
        .collect()
}

/// Reads `count` records of `topic` from the beginning (all partitions), or panics after
/// 30 s. The records come in each partition's order.
pub async fn read_records(topic: &str, count: usize) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = infra()
        .kafka_config()
        .set("group.id", format!("reader-{}", Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {count} records arrived from {topic} within 30 s",
                    records.len()
                )
            })
            .expect("consumer error");
        records.push(message.detach());
    }
    records
}

/// The value of header `name` of a record, as text.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    messaging::header_str(message.headers(), name).map(str::to_owned)
}

/// Writes one record to `topic` and waits until Kafka stored it; returns its partition
/// and offset. `content_type` goes in the `content-type` header when given.
pub async fn produce(
    topic: &str,
    key: &str,
    value: &[u8],
    content_type: Option<&str>,
) -> (i32, i64) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| ("content-type", ct))
        .into_iter()
        .collect();
    produce_with_headers(topic, key, value, &headers).await
}

/// Writes one record with `headers` (name, value) to `topic` and waits until Kafka stored
/// it; returns its partition and offset.
pub async fn produce_with_headers(
    topic: &str,
    key: &str,
    value: &[u8],
    headers: &[(&str, &str)],
) -> (i32, i64) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    // One producer for the whole test process: rdkafka's producer runs on its own
    // threads, so it serves every test's runtime, and creating one per record is slow.
    static PRODUCER: std::sync::OnceLock<FutureProducer> = std::sync::OnceLock::new();
    let producer = PRODUCER.get_or_init(|| {
        messaging::durable_producer_config(&infra().bootstrap, Duration::from_secs(10))
            .set("linger.ms", "0")
            .create()
            .expect("producer")
    });
    let mut record_headers = OwnedHeaders::new();
    for &(name, value) in headers {
        record_headers = record_headers.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    let delivery = producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(value)
                .headers(record_headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("record stored");
    (delivery.partition, delivery.offset)
}

/// The offsets `group` has committed on each partition of `topic` (-1 where none).
pub async fn committed_offsets(topic: &str, group: &str) -> Vec<i64> {
    let (topic, group) = (topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = infra()
            .kafka_config()
            .set("group.id", &group)
            .create()
            .expect("client");
        let metadata = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let mut partitions = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            partitions.add_partition(&topic, p.id());
        }
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| e.offset().to_raw().unwrap_or(-1))
            .collect()
    })
    .await
    .expect("committed offsets probe")
}
