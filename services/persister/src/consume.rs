//! The consume loop: one record at a time, in partition order. A record is applied to
//! Cassandra (retrying with backoff, never moving past it, while Cassandra fails) or
//! dead-lettered, and only then is its offset stored for the next commit.

use std::sync::Arc;
use std::time::Duration;

use events::{Event, mime};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use store::DocumentWriter;
use telemetry::events::{ConsumerFailed, RecordsConsumed};
use telemetry::kafka::LagContext;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::dead_letters::{DeadLetters, Reason};
use crate::idempotent::{Keyed, Verdict};
use crate::internal_events::{
    At, CommittedAtShutdown, DeadLetterFailed, DeadLettered, DuplicateSkipped, EventApplied,
    OffsetNotStored, WriteFailed,
};

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
        // One counter per topic, looked up once: the loop runs for every record.
        let mut consumed: Option<RecordsConsumed> = None;
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = self.consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    ConsumerFailed { error: &error }.emit();
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
                OffsetNotStored { error: &error }.emit();
            }
            let counter = match consumed.take() {
                Some(counter) if counter.topic() == message.topic() => counter,
                _ => RecordsConsumed::new(message.topic(), &self.group),
            };
            counter.emit();
            consumed = Some(counter);
        }
        let committed = self.consumer.commit_consumer_state(CommitMode::Sync);
        CommittedAtShutdown {
            result: committed.as_ref().map_err(|e| e as _).copied(),
        }
        .emit();
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
        let key = event.key();
        if message.key() != Some(key.as_bytes()) {
            let got = message.key().map(String::from_utf8_lossy);
            let detail = format!("record key {got:?} is not the event's document id {key}");
            return self
                .dead_letter(message, Reason::KeyMismatch, &detail, shutdown)
                .await;
        }
        let at = At {
            partition: message.partition(),
            offset: message.offset(),
        };
        // A keyed command sent again is one event: apply its first record only.
        let keyed = Keyed::of(message, &event);
        if let Some(keyed) = &keyed {
            let Some(first) = self
                .retry(shutdown, at, || {
                    self.store.applied_at(keyed.document, keyed.event)
                })
                .await
            else {
                return Outcome::Interrupted;
            };
            match keyed.verdict(first, at) {
                Verdict::Apply => {}
                Verdict::Duplicate(first) => {
                    let first = At {
                        partition: first.partition,
                        offset: first.offset,
                    };
                    DuplicateSkipped {
                        event: &event,
                        at,
                        first,
                    }
                    .emit();
                    return Outcome::Done;
                }
                Verdict::Reused(first) => {
                    let detail = format!(
                        "event {} was applied at {}:{} for another request; its idempotency key was reused",
                        keyed.event, first.partition, first.offset
                    );
                    return self
                        .dead_letter(message, Reason::IdempotencyKeyReuse, &detail, shutdown)
                        .await;
                }
            }
        }
        let applied = messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            || self.store.apply(&event, message.offset()),
            |error, attempt, retry_in| {
                WriteFailed {
                    error,
                    attempt,
                    retry_in,
                    at,
                }
                .emit();
            },
        )
        .await;
        if applied.is_none() {
            return Outcome::Interrupted;
        }
        if let Some(keyed) = &keyed {
            let first = keyed.applied_at(at);
            let remember = || {
                self.store
                    .remember_applied(keyed.document, keyed.event, &first)
            };
            if self.retry(shutdown, at, remember).await.is_none() {
                return Outcome::Interrupted;
            }
        }
        EventApplied { event: &event, at }.emit();
        Outcome::Done
    }

    /// Runs a store call until it succeeds or `shutdown`, like the write itself.
    async fn retry<T, F, Fut>(&self, shutdown: &CancellationToken, at: At, call: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, store::StoreError>>,
    {
        messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            call,
            |error, attempt, retry_in| {
                WriteFailed {
                    error,
                    attempt,
                    retry_in,
                    at,
                }
                .emit();
            },
        )
        .await
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
            |error, attempt, retry_in| {
                DeadLetterFailed {
                    error,
                    attempt,
                    retry_in,
                }
                .emit();
            },
        )
        .await;
        if sent.is_none() {
            return Outcome::Interrupted;
        }
        DeadLettered {
            reason,
            detail,
            at: At {
                partition: message.partition(),
                offset: message.offset(),
            },
        }
        .emit();
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
