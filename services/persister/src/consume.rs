//! The consume loop. One dispatcher reads the records in partition order, asks the
//! ordering guard about each and sorts it (apply, skip, or dead-letter); a fixed set of
//! lanes applies them to Cassandra concurrently (retrying with backoff, never moving past
//! a record, while Cassandra fails). A document's records always go to the same lane, in
//! offset order, so each document's events are applied in order; different documents'
//! are applied side by side. A partition's offset is stored for the next commit only up
//! to its lowest record not yet applied or dead-lettered (the low watermark), so a commit
//! never passes a record that is not done.
//!
//! Before a record is dispatched, the ordering guard says whether the topic is still the
//! one the read model was built from; when it is not, nothing more is dispatched, the
//! lanes finish what they hold, what was done is committed, and the error is returned.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::{Event, mime};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};
use store::DocumentWriter;
use telemetry::events::{ConsumerFailed, RecordsConsumed};
use telemetry::kafka::LagContext;
use tokio::sync::mpsc;
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

/// Whether a record was dealt with, or the loop was told to stop first.
#[derive(Debug)]
enum Outcome {
    Done,
    Interrupted,
}

/// How long a record is held before the guard asks Kafka again, when Kafka did not say
/// what the topic is.
const VERIFY_RETRY: Duration = Duration::from_secs(1);

/// Records each lane may hold waiting: enough to keep it busy, few enough that a stalled
/// lane holds back the dispatcher soon (and so the reading of more records).
const LANE_QUEUE: usize = 16;

/// The dispatcher's place among the lanes in health reports (it holds a record while the
/// guard cannot get an answer from Kafka).
const DISPATCHER: usize = usize::MAX;

/// What the loop needs.
pub struct Projection {
    /// Shared with the readiness probe, which asks this client whether Kafka answers.
    pub consumer: Arc<StreamConsumer<LagContext>>,
    pub store: DocumentWriter,
    pub dead_letters: DeadLetters,
    pub group: String,
    pub guard: OrderingGuard,
    pub health: std::sync::Arc<Health>,
    /// Lanes applying records side by side (1: one record at a time).
    pub lanes: usize,
    /// Where the read model stands is noted here, for readers waiting on a position.
    pub positions: AppliedPositions,
}

/// What the dispatcher hands a lane: a record, its span, and what to do with it.
struct Job {
    message: OwnedMessage,
    span: tracing::Span,
    at: At,
    work: Work,
}

enum Work {
    Apply {
        event: Box<Event>,
        keyed: Option<Keyed>,
    },
    DeadLetter {
        reason: Reason,
        detail: String,
    },
}

/// What the lanes share.
struct Lanes {
    consumer: Arc<StreamConsumer<LagContext>>,
    store: DocumentWriter,
    dead_letters: DeadLetters,
    health: Arc<Health>,
    progress: Mutex<Progress>,
    /// Where the read model stands, for readers waiting on a position: every record of a
    /// partition below its stored offset is done.
    positions: AppliedPositions,
}

/// Per partition, the records dispatched and not done yet, and the last dispatched: the
/// offset to store is the lowest of the first, or the one after the last.
#[derive(Debug, Default)]
pub struct Progress {
    /// By topic, then partition: looked up by `&str`, so a record costs no allocation.
    topics: HashMap<String, HashMap<i32, PartitionProgress>>,
}

#[derive(Debug)]
struct PartitionProgress {
    pending: BTreeSet<i64>,
    last: i64,
}

impl Default for PartitionProgress {
    fn default() -> Self {
        Self {
            pending: BTreeSet::new(),
            last: -1,
        }
    }
}

impl Progress {
    /// The record at `offset` was handed to a lane.
    pub fn dispatched(&mut self, topic: &str, partition: i32, offset: i64) {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.to_owned(), HashMap::new());
        }
        let entry = self
            .topics
            .get_mut(topic)
            .expect("inserted above")
            .entry(partition)
            .or_default();
        if offset <= entry.last {
            // The offsets start again lower (a rebalance gave the partition back from its
            // committed offset): what was pending before will be read again, so only the
            // new run of records counts.
            entry.pending.clear();
        }
        entry.pending.insert(offset);
        entry.last = offset;
    }

    /// The record at `offset` is applied or dead-lettered; returns the offset to store
    /// (the next one to consume: nothing below it is pending), or `None` when the record
    /// belongs to a run that a rebalance ended.
    pub fn done(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let entry = self.topics.get_mut(topic)?.get_mut(&partition)?;
        if !entry.pending.remove(&offset) {
            return None;
        }
        Some(entry.pending.first().copied().unwrap_or(entry.last + 1))
    }
}

/// The lane of a record: its key's (its document's), so that a document's records keep
/// their order; records without a key go by partition.
fn lane_of(key: Option<&[u8]>, partition: i32, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match key {
        Some(key) => key.hash(&mut hasher),
        None => partition.hash(&mut hasher),
    }
    (hasher.finish() % lanes.max(1) as u64) as usize
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("group", &self.group)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What the dispatcher decided about a record.
enum Triage {
    Dispatch(Work),
    Interrupted,
    Halted(LayoutChanged),
}

impl Projection {
    /// Consumes until `shutdown`, then commits the offsets of what was applied. Returns
    /// the error when it stopped because the topic changed under the read model.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), LayoutChanged> {
        let Self {
            consumer,
            store,
            dead_letters,
            group,
            mut guard,
            health,
            lanes: count,
            positions,
        } = self;
        let shared = Arc::new(Lanes {
            consumer: Arc::clone(&consumer),
            store,
            dead_letters,
            health: Arc::clone(&health),
            progress: Mutex::new(Progress::default()),
            positions,
        });
        let count = count.max(1);
        let mut senders = Vec::with_capacity(count);
        let mut workers = Vec::with_capacity(count);
        for lane in 0..count {
            let (sender, receiver) = mpsc::channel(LANE_QUEUE);
            senders.push(sender);
            workers.push(tokio::spawn(Arc::clone(&shared).work(
                lane,
                receiver,
                shutdown.clone(),
            )));
        }
        let mut dispatcher = Dispatcher {
            guard: &mut guard,
            health: &health,
            group: &group,
        };
        // One counter per topic, looked up once: the loop runs for every record.
        let mut consumed: Option<RecordsConsumed> = None;
        let mut stopped = Ok(());
        loop {
            let due = dispatcher.guard.until_due();
            let message = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                message = consumer.recv() => message,
                // The periodic check, when no record comes to trigger one.
                () = tokio::time::sleep(due) => {
                    match dispatcher.guard.verify().await {
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
                    dispatcher.guard.suspect();
                    if matches!(
                        pause(&shutdown, Duration::from_millis(500)).await,
                        Outcome::Interrupted
                    ) {
                        break;
                    }
                    continue;
                }
            };
            // One CONSUMER span per record, continuing the trace of the command; it lasts
            // until its lane is done with it.
            let span = telemetry::kafka::process_span(
                message.topic(),
                &group,
                message.partition(),
                message.offset(),
                message.headers(),
            );
            let at = At {
                partition: message.partition(),
                offset: message.offset(),
            };
            let work = match dispatcher
                .triage(&message, &shutdown)
                .instrument(span.clone())
                .await
            {
                Triage::Dispatch(work) => work,
                Triage::Interrupted => break,
                Triage::Halted(changed) => {
                    stopped = Err(changed);
                    break;
                }
            };
            let lane = lane_of(message.key(), message.partition(), count);
            shared
                .progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .dispatched(message.topic(), at.partition, at.offset);
            let job = Job {
                message: message.detach(),
                span,
                at,
                work,
            };
            let counter = match consumed.take() {
                Some(counter) if counter.topic() == job.message.topic() => counter,
                _ => RecordsConsumed::new(job.message.topic(), &group),
            };
            counter.emit();
            consumed = Some(counter);
            // A full lane holds the dispatcher back, and so the reading of more records.
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                sent = senders[lane].send(job) => if sent.is_err() { break },
            }
        }
        // No more records: the lanes finish what they hold (at shutdown, only the record
        // in hand), then what was done is committed.
        drop(senders);
        for worker in workers {
            let _ = worker.await;
        }
        if let Err(changed) = &stopped {
            health.halt(&changed.0);
            tracing::error!(error = %changed, "the documents topic changed under the read model: stopping");
        }
        let committed = consumer.commit_consumer_state(CommitMode::Sync);
        CommittedAtShutdown {
            result: committed.as_ref().map_err(|e| e as _).copied(),
        }
        .emit();
        stopped
    }
}

/// The part of the loop that reads in order: the guard, and the sorting of each record.
struct Dispatcher<'a> {
    guard: &'a mut OrderingGuard,
    health: &'a Health,
    group: &'a str,
}

impl Dispatcher<'_> {
    /// Asks the guard about the record at `partition`/`offset` (about its key's
    /// placement when `key` is given), holding the record while Kafka does not answer.
    async fn guarded(
        &mut self,
        shutdown: &CancellationToken,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
    ) -> Result<Verdict, Triage> {
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
                    tracing::warn!(%why, partition, offset, group = self.group, "holding the record");
                    self.health.begin(DISPATCHER, At { partition, offset });
                    self.health.failing(DISPATCHER, why);
                    if matches!(pause(shutdown, VERIFY_RETRY).await, Outcome::Interrupted) {
                        return Err(Triage::Interrupted);
                    }
                }
                Ok(verdict) => {
                    self.health.done(DISPATCHER);
                    return Ok(verdict);
                }
                Err(changed) => return Err(Triage::Halted(changed)),
            }
        }
    }

    /// Whether the record is applied or dead-lettered, and why.
    async fn triage(
        &mut self,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> Triage {
        let (partition, offset) = (message.partition(), message.offset());
        if let Err(triage) = self.guarded(shutdown, partition, offset, None).await {
            return triage;
        }
        let content_type = messaging::header_str(message.headers(), "content-type");
        if content_type.is_none_or(|ct| !mime::matches(ct, mime::EVENT)) {
            let detail = format!("content-type {content_type:?} is not {}", mime::EVENT);
            return dead_letter(Reason::UnknownContentType, detail);
        }
        let event = match Event::from_json(message.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(error) => {
                return dead_letter(Reason::Unparseable, format!("not an event: {error}"));
            }
        };
        let key = event.key();
        if message.key() != Some(key.as_bytes()) {
            let got = message.key().map(String::from_utf8_lossy);
            let detail = format!("record key {got:?} is not the event's document id {key}");
            return dead_letter(Reason::KeyMismatch, detail);
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
                return dead_letter(Reason::Misplaced, detail);
            }
            Ok(_) => {}
            Err(triage) => return triage,
        }
        let keyed = Keyed::of(message, &event);
        Triage::Dispatch(Work::Apply {
            event: Box::new(event),
            keyed,
        })
    }
}

fn dead_letter(reason: Reason, detail: String) -> Triage {
    Triage::Dispatch(Work::DeadLetter { reason, detail })
}

impl Lanes {
    /// One lane: its records one after the other, each until it is applied or
    /// dead-lettered (or shutdown interrupts it); then its offset counts as done.
    async fn work(
        self: Arc<Self>,
        lane: usize,
        mut jobs: mpsc::Receiver<Job>,
        shutdown: CancellationToken,
    ) {
        while let Some(job) = jobs.recv().await {
            if shutdown.is_cancelled() {
                // Not applied: it is read again after the restart.
                return;
            }
            self.health.begin(lane, job.at);
            let span = job.span.clone();
            let outcome = self.perform(lane, &job, &shutdown).instrument(span).await;
            if matches!(outcome, Outcome::Interrupted) {
                return;
            }
            self.health.done(lane);
            self.completed(&job);
        }
    }

    /// Stores the partition's offset up to its lowest record not done: never past one.
    fn completed(&self, job: &Job) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let topic = job.message.topic();
        let Some(next) = progress.done(topic, job.at.partition, job.at.offset) else {
            return;
        };
        let mut offsets = TopicPartitionList::new();
        let stored = offsets
            .add_partition_offset(topic, job.at.partition, Offset::Offset(next))
            .and_then(|()| self.consumer.store_offsets(&offsets));
        // Stored under the lock, so that a lower offset never overwrites a higher one.
        drop(progress);
        self.positions.advance(job.at.partition, next - 1);
        if let Err(error) = stored {
            // The partition was revoked meanwhile; its new owner applies the record
            // again, which is harmless (applying is idempotent).
            OffsetNotStored { error: &error }.emit();
        }
    }

    async fn perform(&self, lane: usize, job: &Job, shutdown: &CancellationToken) -> Outcome {
        let at = job.at;
        let (event, keyed) = match &job.work {
            Work::DeadLetter { reason, detail } => {
                return self
                    .dead_letter(lane, &job.message, *reason, detail, shutdown)
                    .await;
            }
            Work::Apply { event, keyed } => (event, keyed),
        };
        // A keyed command sent again is one event: apply its first record only.
        if let Some(keyed) = keyed {
            let Some(first) = self
                .retry(lane, shutdown, at, || {
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
                    DuplicateSkipped { event, at, first }.emit();
                    return Outcome::Done;
                }
                KeyVerdict::Reused(first) => {
                    let detail = format!(
                        "event {} was applied at {}:{} for another request; its idempotency key was reused",
                        keyed.event, first.partition, first.offset
                    );
                    return self
                        .dead_letter(
                            lane,
                            &job.message,
                            Reason::IdempotencyKeyReuse,
                            &detail,
                            shutdown,
                        )
                        .await;
                }
            }
        }
        let health = &self.health;
        let applied = messaging::retry(
            shutdown,
            messaging::Backoff::default(),
            || self.store.apply(event, at.offset),
            |error, attempt, retry_in| {
                health.failing(lane, format!("Cassandra write failed: {error}"));
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
        if let Some(keyed) = keyed {
            let first = keyed.applied_at(at);
            let remember = || {
                self.store
                    .remember_applied(keyed.document, keyed.event, &first)
            };
            if self.retry(lane, shutdown, at, remember).await.is_none() {
                return Outcome::Interrupted;
            }
        }
        EventApplied { event, at }.emit();
        Outcome::Done
    }

    /// Runs a store call until it succeeds or `shutdown`, like the write itself.
    async fn retry<T, F, Fut>(
        &self,
        lane: usize,
        shutdown: &CancellationToken,
        at: At,
        call: F,
    ) -> Option<T>
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
                    .failing(lane, format!("Cassandra did not answer: {error}"));
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
        lane: usize,
        message: &OwnedMessage,
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
                    .failing(lane, format!("the dead letter was not stored: {error}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_offset_never_passes_a_record_not_done() {
        let mut progress = Progress::default();
        for offset in 10..15 {
            progress.dispatched("t", 0, offset);
        }
        // Done out of order: the offset to store stays at the lowest pending one.
        assert_eq!(progress.done("t", 0, 12), Some(10));
        assert_eq!(progress.done("t", 0, 11), Some(10));
        assert_eq!(progress.done("t", 0, 10), Some(13));
        assert_eq!(progress.done("t", 0, 14), Some(13));
        assert_eq!(progress.done("t", 0, 13), Some(15));
        // Partitions are apart.
        progress.dispatched("t", 1, 3);
        assert_eq!(progress.done("t", 0, 15), None, "never dispatched");
        assert_eq!(progress.done("t", 1, 3), Some(4));
    }

    #[test]
    fn a_documents_records_always_take_the_same_lane_and_documents_spread() {
        let keys: Vec<String> = (0..200).map(|i| format!("document-{i}")).collect();
        let lanes: Vec<usize> = keys
            .iter()
            .map(|k| lane_of(Some(k.as_bytes()), 0, 8))
            .collect();
        for (key, &lane) in keys.iter().zip(&lanes) {
            assert_eq!(
                lane_of(Some(key.as_bytes()), 2, 8),
                lane,
                "the partition does not matter"
            );
        }
        let used: std::collections::BTreeSet<usize> = lanes.into_iter().collect();
        assert_eq!(used.len(), 8, "200 documents use every lane");
        assert_eq!(lane_of(None, 1, 1), 0);
    }

    #[test]
    fn after_a_rebalance_only_the_new_run_of_records_counts() {
        let mut progress = Progress::default();
        progress.dispatched("t", 0, 100);
        progress.dispatched("t", 0, 101);
        // The partition comes back from its committed offset, 50.
        progress.dispatched("t", 0, 50);
        assert_eq!(
            progress.done("t", 0, 101),
            None,
            "a record of the run that ended"
        );
        assert_eq!(progress.done("t", 0, 50), Some(51));
        progress.dispatched("t", 0, 51);
        assert_eq!(progress.done("t", 0, 100), None);
        assert_eq!(progress.done("t", 0, 51), Some(52));
    }
}
