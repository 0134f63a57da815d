//! Publishing events: an idempotent producer with `acks=all`, and a publish that returns
//! only once the delivery report says the record is stored, or fails within the bound.

use std::time::{Duration, Instant};

use events::{Event, mime};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use telemetry::names;

use crate::Config;

/// Why an event was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("Kafka did not confirm the record within {0:?}: {1}")]
    NotConfirmed(Duration, rdkafka::error::KafkaError),
    #[error("the delivery report was lost")]
    Canceled,
}

/// Where the platform's events are published.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
    bootstrap: String,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(config: &Config) -> Result<Self, rdkafka::error::KafkaError> {
        let timeout = config.produce_timeout();
        let producer = config
            .kafka
            .client_config()
            // Exactly once per partition and nothing acknowledged before every in-sync
            // replica has it: a 2xx must mean the command is durable.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Bound the wait for a delivery report (librdkafka's default is 5 minutes).
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("linger.ms", "2")
            .create()?;
        Ok(Self {
            producer,
            topic: config.kafka.topic.clone(),
            timeout,
            bootstrap: config.kafka.bootstrap_servers.clone(),
        })
    }

    /// Publishes `event` keyed by its document id and waits for the delivery report.
    /// Returns the partition and offset Kafka stored it at.
    pub async fn publish(&self, event: &Event) -> Result<(i32, i64), PublishError> {
        let started = Instant::now();
        let key = event.key();
        let value = event.to_json();
        let traceparent = format!("00-{}-{}-01", event.header.trace_id, span_id());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some(traceparent.as_str()),
            })
            .insert(Header {
                key: "content-type",
                value: Some(mime::EVENT),
            });
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        let result = self
            .producer
            .send(record, Timeout::After(self.timeout))
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(error, _)| PublishError::NotConfirmed(self.timeout, error));
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!(names::KAFKA_PRODUCE_DURATION, "topic" => self.topic.clone(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Whether Kafka answers now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        messaging::ping(&self.bootstrap).await
    }

    /// Waits for records still in flight, so that a shutdown loses no confirmed command.
    pub fn flush(&self) {
        if let Err(error) = self.producer.flush(self.timeout) {
            tracing::warn!(%error, "records still unconfirmed at shutdown");
        }
    }
}

/// A fresh span id for the `traceparent` header (16 lowercase hex digits).
fn span_id() -> String {
    let bits = uuid::Uuid::new_v4().as_u128() as u64;
    format!("{:016x}", bits.max(1))
}

/// A fresh trace id (32 lowercase hex digits) for a command.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
