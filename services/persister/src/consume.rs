//! The consume loop: one record at a time, in partition order. A record is applied to
//! Cassandra (retrying with backoff, never moving past it, while Cassandra fails) or
//! dead-lettered, and only then is its offset stored for the next commit.
//!
//! Before a record is handled, the ordering guard says whether the topic is still the one
//! the read model was built from; when it is not, the loop stops before applying the
//! record or storing its offset, commits what was applied, and returns the error.

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
use crate::guard::{LayoutChanged, OrderingGuard, Verdict};
use crate::health::Health;
use crate::idempotent::{Keyed, Verdict as KeyVerdict};
use crate::internal_events::{
    At, CommittedAtShutdown, DeadLetterFailed, DeadLettered, DuplicateSkipped, EventApplied,
    OffsetNotStored, WriteFailed,
};
use crate::positions::AppliedPositions;

/// Whether a record was dealt with, the loop was told to stop first, or the topic is no
/// longer the one the read model was built from.
#[derive(Debug)]
enum Outcome {
    Done,
    Interrupted,
    Halted(LayoutChanged),
}

/// How long a record is held before the guard asks Kafka again, when Kafka did not say
/// what the topic is.
const VERIFY_RETRY: Duration = Duration::from_secs(1);

/// What the loop needs.
pub struct Projection {
    /// Shared with the readiness probe, which asks this client whether Kafka answers.
    pub consumer: Arc<StreamConsumer<LagContext>>,
    pub store: DocumentWriter,
    pub dead_letters: DeadLetters,
    pub group: String,
    pub guard: OrderingGuard,
    pub health: std::sync::Arc<Health>,
    /// Where each record dealt with is noted, for readers waiting on a position.
    pub positions: AppliedPositions,
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
    /// Consumes until `shutdown`, then commits the offsets of what was applied. Returns
    /// the error when it stopped because the topic changed under the read model.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), LayoutChanged> {
        // One counter per topic, looked up once: the loop runs for every record.
        let mut consumed: Option<RecordsConsumed> = None;
        let mut stopped = Ok(());
        // Its own handle: a record borrows the consumer while `handle` borrows `self`.
        let consumer = Arc::clone(&self.consumer);
        loop {
            let due = self.guard.until_due();
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = consumer.recv() => message,
                // The periodic check, when no record comes to trigger one.
                () = tokio::time::sleep(due) => {
                    match self.guard.verify().await {
                        Ok(Verdict::Unknown(error)) => {
                            tracing::warn!(%error, "cannot tell whether the topic changed; asking again later");
                        }
                        Ok(_) => {}
                        Err(changed) => {
                            stopped = Err(changed);
                            break;
                        }
                    }
                    continue;
                }
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    ConsumerFailed { error: &error }.emit();
                    // A deleted topic shows as consumer errors: check it before the next
                    // record is applied.
                    self.guard.suspect();
                    if matches!(
                        pause(&shutdown, Duration::from_millis(500)).await,
                        Outcome::Interrupted
                    ) {
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
            self.health.begin(At {
                partition: message.partition(),
                offset: message.offset(),
            });
            match self.handle(&message, &shutdown).instrument(span).await {
                Outcome::Done => {}
                Outcome::Interrupted => break,
                Outcome::Halted(changed) => {
                    stopped = Err(changed);
                    break;
                }
            }
            self.health.done();
            self.positions
                .advance(message.partition(), message.offset());
            // Stored here, committed by the next auto-commit or at shutdown: an offset is
            // never committed before its record was applied or dead-lettered.
            if let Err(error) = consumer.store_offset_from_message(&message) {
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
        if let Err(changed) = &stopped {
            self.health.halt(&changed.0);
            tracing::error!(error = %changed, "the documents topic changed under the read model: stopping");
        }
        let committed = consumer.commit_consumer_state(CommitMode::Sync);
        CommittedAtShutdown {
            result: committed.as_ref().map_err(|e| e as _).copied(),
        }
        .emit();
        stopped
    }

    /// Asks the guard about the record at `partition`/`offset` (about its key's
    /// placement when `key` is given), holding the record while Kafka does not answer.
    async fn guarded(
        &mut self,
        shutdown: &CancellationToken,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
    ) -> Result<Verdict, Outcome> {
        loop {
            let answer = match key {
                None => self.guard.admit(partition, offset).await,
                Some(key) => self.guard.misplaced(partition, key).await,
            };
            match answer {
                Ok(Verdict::Unknown(error)) => {
                    let why = format!(
                        "cannot tell whether the topic is still the one the read model was \
                         built from: {error}"
                    );
                    tracing::warn!(%why, partition, offset, "holding the record");
                    self.health.failing(why);
                    if matches!(pause(shutdown, VERIFY_RETRY).await, Outcome::Interrupted) {
                        return Err(Outcome::Interrupted);
                    }
                }
                Ok(verdict) => return Ok(verdict),
                Err(changed) => return Err(Outcome::Halted(changed)),
            }
        }
    }

    async fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let (partition, offset) = (message.partition(), message.offset());
        if let Err(outcome) = self.guarded(shutdown, partition, offset, None).await {
            return outcome;
        }
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
        // Only a record that is about to be applied must sit where its key says: its
        // offset orders it after its document's earlier writes only there.
        match self
            .guarded(shutdown, partition, offset, Some(key.as_bytes()))
            .await
        {
            Ok(Verdict::Misplaced { expected }) => {
                let detail = format!(
                    "key {key} belongs in partition {expected}, not {partition}, of a topic \
                     that did not change: a producer placed it by another rule"
                );
                return self
                    .dead_letter(message, Reason::Misplaced, &detail, shutdown)
                    .await;
            }
            Ok(_) => {}
            Err(outcome) => return outcome,
        }
        let at = At { partition, offset };
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
                KeyVerdict::Apply => {}
                KeyVerdict::Duplicate(first) => {
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
                KeyVerdict::Reused(first) => {
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
        let health = &self.health;
        let applied = messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            || self.store.apply(&event, message.offset()),
            |error, attempt, retry_in| {
                health.failing(format!("Cassandra write failed: {error}"));
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
                self.health
                    .failing(format!("Cassandra did not answer: {error}"));
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
                self.health
                    .failing(format!("the dead letter was not stored: {error}"));
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
