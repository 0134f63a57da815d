//! How far each partition was applied, made visible to the reader (`applied_positions`),
//! so that a read carrying a `Document-Position` can wait for its write.
//!
//! The consume loop only notes the offset of each record it dealt with, in memory; a task
//! of its own writes the newest offset of each partition that moved, then waits the flush
//! interval before it writes again. So the write path gains no Cassandra round trip, and
//! the positions cost at most one small write per partition per interval however many
//! records pass (one per record only when they come slower than the interval). What a
//! reader waits for is at most one interval later than the record's own write.
//!
//! A position is noted after its record was applied (or skipped, or dead-lettered), so a
//! recorded offset never runs ahead of the read model. Losing the last notes in a crash
//! only delays readers until the records are consumed again and noted anew.
//!
//! A partition that gets no new record after a start would never be noted by the loop,
//! and a token from before the start would wait in vain. So the task also notes, every
//! few seconds, the group's committed offsets less one: a committed offset is stored only
//! after its record was dealt with, so it is never ahead either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use store::DocumentWriter;
use telemetry::kafka::LagContext;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the group's committed offsets are noted too.
const COMMITTED_EVERY: Duration = Duration::from_secs(2);

/// How long a failed write waits before the next attempt (the notes are kept meanwhile).
const RETRY: Duration = Duration::from_millis(500);

/// The offsets noted since the last write, shared by the loop and the writing task.
#[derive(Debug, Clone, Default)]
pub struct AppliedPositions {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<i32, i64>>,
    noted: Notify,
}

impl AppliedPositions {
    /// Notes that every record of `partition` up to `offset` was dealt with. Cheap: a lock
    /// and a map entry, no I/O.
    pub fn advance(&self, partition: i32, offset: i64) {
        let mut pending = self.lock();
        let entry = pending.entry(partition).or_insert(offset);
        *entry = (*entry).max(offset);
        drop(pending);
        // A permit is kept when the writer is busy, so no note waits for the next one.
        self.shared.noted.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, i64>> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes what was noted, then at most once per `interval`, until `stop`; then writes
    /// what is left once more (the loop has stopped by then). Notes what `consumer`'s
    /// group committed every few seconds.
    pub async fn write_until(
        self,
        store: DocumentWriter,
        consumer: Arc<StreamConsumer<LagContext>>,
        interval: Duration,
        stop: CancellationToken,
    ) {
        let mut written = HashMap::new();
        let mut committed = tokio::time::interval(COMMITTED_EVERY);
        committed.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = self.shared.noted.notified() => {}
                _ = committed.tick() => {
                    self.note_committed(&consumer).await;
                    continue;
                }
            }
            let pause = if self.flush(&store, &mut written).await {
                interval
            } else {
                RETRY.max(interval)
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.flush(&store, &mut written).await;
    }

    /// Notes the group's committed offsets (less one) of this consumer's partitions.
    async fn note_committed(&self, consumer: &Arc<StreamConsumer<LagContext>>) {
        let consumer = Arc::clone(consumer);
        // A request to the group coordinator: off the runtime's threads.
        let committed =
            tokio::task::spawn_blocking(move || consumer.committed(Duration::from_secs(2))).await;
        let Ok(Ok(list)) = committed else {
            // Not assigned yet, or Kafka busy: the next tick asks again.
            return;
        };
        for element in list.elements() {
            if let Offset::Offset(next) = element.offset()
                && next > 0
            {
                self.advance(element.partition(), next - 1);
            }
        }
    }

    /// Writes the noted offsets that moved past what `written` holds; what fails is noted
    /// again for the next attempt. Returns whether all were written.
    async fn flush(&self, store: &DocumentWriter, written: &mut HashMap<i32, i64>) -> bool {
        let taken = std::mem::take(&mut *self.lock());
        let mut all = true;
        for (partition, offset) in taken {
            if written.get(&partition).is_some_and(|&w| w >= offset) {
                continue;
            }
            match store.record_position(partition, offset).await {
                Ok(()) => {
                    written.insert(partition, offset);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, partition, offset, "the applied position was not recorded; trying again");
                }
            }
            let mut pending = self.lock();
            let entry = pending.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
            all = false;
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_the_newest_offset_of_each_partition() {
        let positions = AppliedPositions::default();
        positions.advance(0, 5);
        positions.advance(0, 3);
        positions.advance(1, 9);
        positions.advance(0, 6);
        let pending = positions.lock().clone();
        assert_eq!(pending, HashMap::from([(0, 6), (1, 9)]));
    }
}
