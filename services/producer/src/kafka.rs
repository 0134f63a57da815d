//! Publishing events: an idempotent producer with `acks=all`, and a publish that returns
//! only once the delivery report says the record is stored, or fails within the bound.
//! A failure says which of two things happened: the record never reached librdkafka's
//! queue (nothing was sent: safe to retry), or it was queued and not confirmed in time
//! (it may still be stored: the outcome is unknown).

use std::time::{Duration, Instant};

use events::idempotency::{self, IdempotencyKey};
use events::{Event, mime};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::internal_events::{Outcome, ProduceDurations, UnconfirmedAtShutdown};
use tracing::Instrument;

use crate::Config;

/// How often a full local queue is tried again, until the bound runs out.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(50);

/// Why an event was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The record never entered librdkafka's queue: nothing was sent to Kafka.
    #[error("the record was not queued for Kafka: {0}")]
    NotQueued(KafkaError),
    /// The record was queued, but no delivery report said it is stored within the bound:
    /// Kafka may have stored it, or may still store it.
    #[error("Kafka did not confirm the record within {bound:?} ({why})")]
    OutcomeUnknown { bound: Duration, why: String },
}

impl PublishError {
    /// Whether the record may be in Kafka although the command failed.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }
}

/// The idempotency key of a command and its request's fingerprint, sent as record headers.
#[derive(Debug, Clone)]
pub struct Keyed<'a> {
    pub key: &'a IdempotencyKey,
    pub fingerprint: &'a str,
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
            .set("linger.ms", config.linger_ms.to_string())
            .create()?;
        Ok(Self {
            producer,
            durations: ProduceDurations::new(&config.kafka.topic),
            topic: config.kafka.topic.clone(),
            timeout,
        })
    }

    /// The bound on a publish, from the call to the answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Publishes `event` keyed by its document id and waits for the delivery report, at
    /// most the configured bound in all (queueing included). Returns the partition and
    /// offset Kafka stored it at. `keyed` adds the idempotency headers.
    pub async fn publish(
        &self,
        event: &Event,
        keyed: Option<Keyed<'_>>,
    ) -> Result<(i32, i64), PublishError> {
        let key = event.key();
        let span = telemetry::kafka::publish_span(&self.topic, &key);
        self.send(event, &key, keyed).instrument(span).await
    }

    async fn send(
        &self,
        event: &Event,
        key: &str,
        keyed: Option<Keyed<'_>>,
    ) -> Result<(i32, i64), PublishError> {
        let started = Instant::now();
        // One deadline for queueing and delivery together: the client's answer comes
        // within the configured bound whatever librdkafka's own timers do (with the broker
        // down, it reported MsgTimedOut 9.5 s after a 5 s message.timeout.ms).
        let deadline = tokio::time::Instant::now() + self.timeout;
        let value = event.to_json();
        let mut headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some(mime::EVENT),
        });
        if let Some(keyed) = &keyed {
            for (name, value) in idempotency::record_headers(keyed.key, keyed.fingerprint) {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value.as_str()),
                });
            }
        }
        // The PRODUCER span's context travels in the headers, so that consumers' spans
        // join this trace.
        let headers = telemetry::kafka::inject(headers);
        let mut record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(&value)
            .headers(headers);
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(delivery) => break Ok(delivery),
                // The local queue is full: nothing was sent yet; wait for room while the
                // bound allows.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() + QUEUE_FULL_RETRY < deadline =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_RETRY).await;
                }
                Err((error, _)) => break Err(PublishError::NotQueued(error)),
            }
        };
        let result = match delivery {
            Err(error) => Err(error),
            Ok(delivery) => match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(delivery))) => Ok((delivery.partition, delivery.offset)),
                // Every failure after queueing leaves the record's fate open: a request
                // may have reached the broker before the error or the timeout.
                Ok(Ok(Err((error, _)))) => Err(PublishError::OutcomeUnknown {
                    bound: self.timeout,
                    why: error.to_string(),
                }),
                Ok(Err(_canceled)) => Err(PublishError::OutcomeUnknown {
                    bound: self.timeout,
                    why: "the delivery report was lost".to_owned(),
                }),
                Err(_elapsed) => Err(PublishError::OutcomeUnknown {
                    bound: self.timeout,
                    why: "no delivery report in time".to_owned(),
                }),
            },
        };
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
