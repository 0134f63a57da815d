//! The dead-letter topic: a record the persister cannot apply is copied there with its
//! headers, the reason, and where it came from, so that nothing is lost and the consumer
//! can go on.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// How long Kafka may take to store a dead letter before the send is retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a record was dead-lettered: a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The value is not an event of the contract.
    Unparseable,
    /// The `content-type` header is missing or names a format we do not know.
    UnknownContentType,
    /// The record's key is not its event's document id: its place in Kafka's order (the
    /// key picks the partition) says nothing about the document, so applying it could
    /// reorder that document's writes.
    KeyMismatch,
    /// The record's event id (derived from an idempotency key) was already applied for a
    /// different request: the client reused the key for another command.
    IdempotencyKeyReuse,
    /// The record's key belongs in another partition of the topic as the read model
    /// knows it, although the topic did not change: a producer with another partitioner
    /// (or a chosen partition) wrote it, so its offset does not order it after its
    /// document's earlier writes.
    Misplaced,
}

impl Reason {
    pub const ALL: [Self; 5] = [
        Self::Unparseable,
        Self::UnknownContentType,
        Self::KeyMismatch,
        Self::IdempotencyKeyReuse,
        Self::Misplaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unparseable => "unparseable",
            Self::UnknownContentType => "unknown-content-type",
            Self::KeyMismatch => "key-mismatch",
            Self::IdempotencyKeyReuse => "idempotency-key-reuse",
            Self::Misplaced => "misplaced",
        }
    }
}

/// Header names of a dead letter.
pub mod header {
    pub const REASON: &str = "dlq.reason";
    pub const ERROR: &str = "dlq.error";
    pub const ORIGIN_TOPIC: &str = "dlq.origin.topic";
    pub const ORIGIN_PARTITION: &str = "dlq.origin.partition";
    pub const ORIGIN_OFFSET: &str = "dlq.origin.offset";
}

/// Writes dead letters, confirmed like every other record (idempotent, `acks=all`).
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    pub fn new(kafka: &messaging::KafkaArgs, topic: &str) -> rdkafka::error::KafkaResult<Self> {
        let producer =
            messaging::durable_producer_config(&kafka.bootstrap_servers, SEND_TIMEOUT).create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Copies `message` to the dead-letter topic with `reason` and `error`, and waits
    /// until Kafka stored it.
    pub async fn send<M: Message>(
        &self,
        message: &M,
        reason: Reason,
        error: &str,
    ) -> rdkafka::error::KafkaResult<()> {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        for (key, value) in [
            (header::REASON, reason.as_str()),
            (header::ERROR, error),
            (header::ORIGIN_TOPIC, message.topic()),
            (header::ORIGIN_PARTITION, partition.as_str()),
            (header::ORIGIN_OFFSET, offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Timeout::After(SEND_TIMEOUT))
            .await
            .map_err(|(error, _)| error)?;
        Ok(())
    }
}
