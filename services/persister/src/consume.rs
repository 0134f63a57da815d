//! The consume loop: one record at a time, in partition order. A record is applied to
//! Cassandra (retrying with backoff, never moving past it, while Cassandra fails) or
//! dead-lettered, and only then is its offset stored for the next commit.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::{Event, mime};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use store::DocumentWriter;
use telemetry::kafka::LagContext;
use telemetry::names;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dead_letters::{DeadLetters, Reason};

/// Whether a record was dealt with or the loop was told to stop first.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Interrupted,
}

/// What the loop needs.
pub struct Projection {
    /// Shared with the readiness probe, which asks this client whether Kafka answers.
    pub consumer: Arc<StreamConsumer<LagContext>>,
    pub store: DocumentWriter,
    pub dead_letters: DeadLetters,
    pub group: String,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("group", &self.group)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Projection {
    /// Consumes until `shutdown`, then commits the offsets of what was applied.
    pub async fn run(self, shutdown: CancellationToken) {
        // One handle per topic, looked up once: the loop runs for every record.
        let mut consumed: Option<(String, metrics::Counter)> = None;
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "Kafka consumer error");
                    if pause(&shutdown, Duration::from_millis(500)).await == Outcome::Interrupted {
                        break;
                    }
                    continue;
                }
            };
            // One CONSUMER span per record, continuing the trace of the command.
            let span = telemetry::kafka::process_span(
                message.topic(),
                &self.group,
                message.partition(),
                message.offset(),
                message.headers(),
            );
            if self.handle(&message, &shutdown).instrument(span).await == Outcome::Interrupted {
                break;
            }
            // Stored here, committed by the next auto-commit or at shutdown: an offset is
            // never committed before its record was applied or dead-lettered.
            if let Err(error) = self.consumer.store_offset_from_message(&message) {
                // The partition was revoked meanwhile; its new owner applies the record
                // again, which is harmless (applying is idempotent).
                tracing::warn!(%error, "offset not stored");
            }
            match &consumed {
                Some((topic, counter)) if topic == message.topic() => counter.increment(1),
                _ => {
                    let counter = metrics::counter!(names::KAFKA_MESSAGES_CONSUMED, "topic" => message.topic().to_owned(), "group" => self.group.clone());
                    counter.increment(1);
                    consumed = Some((message.topic().to_owned(), counter));
                }
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("offsets committed at shutdown"),
            // Nothing stored since the last commit is not a problem.
            Err(error) => tracing::info!(%error, "no offsets committed at shutdown"),
        }
    }

    async fn handle(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> Outcome {
        let content_type = messaging::header_str(message.headers(), "content-type");
        if content_type.is_none_or(|ct| !mime::matches(ct, mime::EVENT)) {
            let detail = format!("content-type {content_type:?} is not {}", mime::EVENT);
            return self
                .dead_letter(message, Reason::UnknownContentType, &detail, shutdown)
                .await;
        }
        let event = match Event::from_json(message.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(error) => {
                let detail = format!("not an event: {error}");
                return self
                    .dead_letter(message, Reason::Unparseable, &detail, shutdown)
                    .await;
            }
        };
        let applied = messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            || self.store.apply(&event, message.offset()),
            |error, attempt, delay| {
                tracing::warn!(
                    %error,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    partition = message.partition(),
                    offset = message.offset(),
                    "Cassandra write failed; retrying the same record"
                );
            },
        )
        .await;
        if applied.is_none() {
            return Outcome::Interrupted;
        }
        let latency = (Utc::now() - event.header.timestamp)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(names::DOCUMENTS_PIPELINE_LATENCY, "stage" => "persisted")
            .record(latency.as_secs_f64());
        tracing::info!(
            event = event.header.kind.as_str(),
            document = %event.payload.id,
            partition = message.partition(),
            offset = message.offset(),
            "event applied"
        );
        Outcome::Done
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: Reason,
        detail: &str,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let sent = messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            || self.dead_letters.send(message, reason, detail),
            |error, attempt, delay| {
                tracing::warn!(
                    %error,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "dead letter not stored; retrying"
                );
            },
        )
        .await;
        if sent.is_none() {
            return Outcome::Interrupted;
        }
        tracing::warn!(
            reason = reason.as_str(),
            detail,
            partition = message.partition(),
            offset = message.offset(),
            "record sent to the dead-letter topic"
        );
        Outcome::Done
    }
}

/// Sleeps for `duration` unless `shutdown` comes first.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> Outcome {
    tokio::select! {
        () = shutdown.cancelled() => Outcome::Interrupted,
        () = tokio::time::sleep(duration) => Outcome::Done,
    }
}
