//! Publishing events: an idempotent producer with `acks=all`, and a publish that returns
//! only once the delivery report says the record is stored, or fails within the bound.

use std::time::{Duration, Instant};

use events::{Event, mime};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::internal_events::{Outcome, ProduceDurations, UnconfirmedAtShutdown};
use tracing::Instrument;

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
    durations: ProduceDurations,
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
        // A 2xx must mean the command is durable: idempotent, acks=all, bounded wait.
        let producer = messaging::durable_producer_config(&config.kafka.bootstrap_servers, timeout)
            .set("linger.ms", "2")
            .create()?;
        Ok(Self {
            producer,
            durations: ProduceDurations::new(&config.kafka.topic),
            topic: config.kafka.topic.clone(),
            timeout,
        })
    }

    /// Publishes `event` keyed by its document id and waits for the delivery report.
    /// Returns the partition and offset Kafka stored it at.
    pub async fn publish(&self, event: &Event) -> Result<(i32, i64), PublishError> {
        let key = event.key();
        let span = telemetry::kafka::publish_span(&self.topic, &key);
        self.send(event, &key).instrument(span).await
    }

    async fn send(&self, event: &Event, key: &str) -> Result<(i32, i64), PublishError> {
        let started = Instant::now();
        let value = event.to_json();
        // The PRODUCER span's context travels in the headers, so that consumers' spans
        // join this trace.
        let headers = telemetry::kafka::inject(OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some(mime::EVENT),
        }));
        let record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(&value)
            .headers(headers);
        let result = self
            .producer
            .send(record, Timeout::After(self.timeout))
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(error, _)| PublishError::NotConfirmed(self.timeout, error));
        let span = tracing::Span::current();
        match &result {
            Ok((partition, offset)) => {
                telemetry::kafka::record_delivery(&span, *partition, *offset)
            }
            Err(_) => telemetry::kafka::record_error(&span),
        }
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        self.durations.emit(outcome, started.elapsed());
        result
    }

    /// Whether Kafka answers this producer's own client now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        messaging::ping_with(move |timeout| producer.client().fetch_metadata(None, timeout)).await
    }

    /// Waits for records still in flight, so that a shutdown loses no confirmed command.
    pub fn flush(&self) {
        if let Err(error) = self.producer.flush(self.timeout) {
            UnconfirmedAtShutdown { error: &error }.emit();
        }
    }
}
