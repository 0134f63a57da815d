//! The notifier's Kafka side: the one consumer that reads every partition into the hub,
//! and the bounded pool of replay readers for positions older than memory.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::{Event, mime};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use telemetry::events::{ConsumerFailed, RecordsConsumed, Stage, StageReached};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::hub::{Delivered, Hub, Item};
use crate::internal_events::{HistoryLoaded, NotAnEvent};
use crate::layout::LayoutWatch;
use telemetry::kafka::LagContext;

/// The consumer group name the notifier reports in metrics; it never commits.
pub const GROUP: &str = "notifier";

/// Errors of the Kafka side, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Topic(#[from] messaging::AdminError),
}

/// Watermarks of every partition of the topic: (low, high) by partition.
pub async fn watermarks(kafka: &messaging::KafkaArgs) -> Result<Vec<(i64, i64)>, KafkaError> {
    Ok(messaging::watermarks(kafka.client_config(), &kafka.topic).await?)
}

/// A consumer assigned to every partition at `start`.
pub fn live_consumer(
    kafka: &messaging::KafkaArgs,
    start: &[i64],
) -> Result<StreamConsumer<LagContext>, KafkaError> {
    let consumer: StreamConsumer<LagContext> = kafka
        .client_config()
        .set("group.id", GROUP)
        .set(
            "statistics.interval.ms",
            telemetry::kafka::STATISTICS_INTERVAL_MS,
        )
        // The notifier never commits: where each client stands is in its token.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create_with_context(LagContext::new(GROUP))?;
    let mut assignment = TopicPartitionList::new();
    for (partition, &offset) in start.iter().enumerate() {
        assignment.add_partition_offset(&kafka.topic, partition as i32, Offset::Offset(offset))?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// The event in a record, if it is one (the persister dead-letters the others; here
/// they only move the position on).
pub fn item_of(message: &BorrowedMessage<'_>) -> Option<Item> {
    let content_type = messaging::header_str(message.headers(), "content-type")?;
    if !mime::matches(content_type, mime::EVENT) {
        return None;
    }
    let payload = message.payload()?;
    let event = Event::from_json(payload).ok()?;
    Some(Arc::new(Delivered {
        partition: usize::try_from(message.partition()).ok()?,
        offset: message.offset(),
        document: event.payload.id,
        event: event.header.id,
        timestamp: event.header.timestamp,
        json: String::from_utf8(payload.to_vec()).ok()?,
    }))
}

/// Reads every partition into the hub until `shutdown`. Marks the hub caught up once
/// each partition reached `targets` (its end when the notifier started). A record whose
/// offset goes back is not published before `layout` confirmed the topic did not change.
pub async fn run_consumer(
    consumer: Arc<StreamConsumer<LagContext>>,
    hub: Arc<Hub>,
    targets: Vec<i64>,
    topic: String,
    layout: Arc<LayoutWatch>,
    shutdown: CancellationToken,
) {
    let caught_up = |hub: &Hub| {
        if !hub.is_caught_up() && hub.has_reached(&targets) {
            HistoryLoaded.emit();
            hub.mark_caught_up();
        }
    };
    caught_up(&hub);
    // Looked up once: the loop runs for every record.
    let consumed = RecordsConsumed::new(&topic, GROUP);
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                let Ok(partition) = usize::try_from(message.partition()) else {
                    continue;
                };
                // An offset below the next one expected: the topic may have been recreated
                // (its offsets restart). Nothing of it is published before Kafka says.
                if message.offset() < hub.next_offset(partition) && !layout.check().await {
                    break;
                }
                // One CONSUMER span per record, continuing the trace of the command.
                let span = telemetry::kafka::process_span(
                    message.topic(),
                    GROUP,
                    message.partition(),
                    message.offset(),
                    message.headers(),
                );
                let _entered = span.enter();
                let item = item_of(&message);
                if item.is_none() {
                    NotAnEvent {
                        partition,
                        offset: message.offset(),
                    }
                    .emit();
                }
                consumed.emit();
                let deliver = tracing::info_span!(
                    "sse deliver",
                    otel.kind = "internal",
                    "sse.clients_reached" = tracing::field::Empty,
                );
                let reached =
                    deliver.in_scope(|| hub.publish(partition, message.offset(), item.clone()));
                deliver.record("sse.clients_reached", reached);
                // History loaded at start-up is not a delivery: only live events count.
                if let Some(item) = item.as_ref().filter(|_| hub.is_caught_up()) {
                    let latency = (Utc::now() - item.timestamp).to_std().unwrap_or_default();
                    StageReached {
                        stage: Stage::Notified,
                        latency,
                    }
                    .emit();
                }
                caught_up(&hub);
            }
            Err(error) => {
                ConsumerFailed { error: &error }.emit();
                // A deleted topic shows as consumer errors.
                layout.suspect();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// At most `size` readers of older history at once, whatever the number of clients.
#[derive(Debug, Clone)]
pub struct ReplayPool {
    permits: Arc<Semaphore>,
    kafka: messaging::KafkaArgs,
}

/// Every replay reader is in use, and none came free within the wait.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("every replay reader is busy")]
pub struct ReplaysBusy;

/// A stream's right to read older history: one reader slot, held while the stream
/// replays, whatever the number of partitions it replays.
pub struct ReplayLease {
    kafka: messaging::KafkaArgs,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for ReplayLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayLease").finish_non_exhaustive()
    }
}

/// One partition read from Kafka, from an offset up to (not including) `until`.
pub struct ReplayReader {
    consumer: StreamConsumer,
    until: i64,
}

impl std::fmt::Debug for ReplayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayReader")
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// What a replay reader read next.
#[derive(Debug)]
pub enum Replayed {
    /// A record: its offset and its event, if it is one.
    Record(i64, Option<Item>),
    /// The end of the range.
    End,
    /// The offset asked for is no longer in the topic (retention or a deletion removed
    /// it, before or during the replay): the stream continues from the earliest offset
    /// the topic holds, after an `event: reset`.
    Lost,
}

impl ReplayPool {
    pub fn new(kafka: messaging::KafkaArgs, size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size.max(1))),
            kafka,
        }
    }

    /// The end offset of every partition (the next offset Kafka will write).
    pub async fn end_offsets(&self) -> Result<Vec<i64>, KafkaError> {
        // Every record written counts, committed or not: a position inside a transaction
        // still open exists, and is worth a wait (the project's producer writes none).
        let mut config = self.kafka.client_config();
        config.set("isolation.level", "read_uncommitted");
        let marks = messaging::watermarks(config, &self.kafka.topic).await?;
        Ok(marks.into_iter().map(|(_, high)| high).collect())
    }

    /// A reader slot, waiting at most `wait` for one to come free.
    pub async fn lease(&self, wait: Duration) -> Result<ReplayLease, ReplaysBusy> {
        let permit = tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ReplaysBusy)?
            .expect("the replay semaphore is never closed");
        Ok(ReplayLease {
            kafka: self.kafka.clone(),
            _permit: permit,
        })
    }
}

impl ReplayLease {
    /// Opens `partition` at `from`, to read up to `until`.
    pub fn open(
        &self,
        partition: usize,
        from: i64,
        until: i64,
    ) -> Result<ReplayReader, KafkaError> {
        let consumer: StreamConsumer = self
            .kafka
            .client_config()
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            // An offset the topic no longer holds is an error to report (as a reset),
            // never a silent jump to the end or the start.
            .set("auto.offset.reset", "error")
            // A replay reads one partition at the client's pace: a small prefetch keeps
            // the memory of each reader bounded (librdkafka's default is 64 MiB).
            .set("queued.max.messages.kbytes", "2048")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(
            &self.kafka.topic,
            partition as i32,
            Offset::Offset(from),
        )?;
        consumer.assign(&assignment)?;
        Ok(ReplayReader { consumer, until })
    }

    /// The earliest offset `partition` still holds.
    pub async fn earliest(&self, partition: usize) -> Result<i64, KafkaError> {
        let (low, _) = messaging::partition_watermarks(
            self.kafka.client_config(),
            &self.kafka.topic,
            partition as i32,
        )
        .await?;
        Ok(low)
    }
}

impl ReplayReader {
    /// The next record below `until`, the end of the range, or the news that the
    /// offset asked for is gone.
    pub async fn next(&mut self) -> Result<Replayed, KafkaError> {
        // The range ends below the memory's floor, so a record at or past `until` exists;
        // the timeout only guards against a topic truncated meanwhile.
        let received = tokio::time::timeout(Duration::from_secs(30), self.consumer.recv())
            .await
            .map_err(|_| {
                KafkaError::Client(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                ))
            })?;
        let message = match received {
            Ok(message) => message,
            Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::AutoOffsetReset,
            )) => return Ok(Replayed::Lost),
            Err(error) => return Err(error.into()),
        };
        let offset = message.offset();
        if offset >= self.until {
            return Ok(Replayed::End);
        }
        Ok(Replayed::Record(offset, item_of(&message)))
    }
}
