//! The ordering guard: the read model orders each document's writes by Kafka offset
//! (`USING TIMESTAMP` = offset), which holds only on the topic it was built from. A
//! recreated topic restarts every offset at 0, and added partitions move keys to
//! partitions whose offsets are lower; either way later UPDATEs and DELETEs would lose
//! against older writes in Cassandra, silently. So the persister records the topic's id
//! and partition count with the read model (`read_model_source`), refuses to start on
//! another, and stops before it applies a record that says the layout changed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use messaging::{TopicIdentity, TopicWatch};
use store::{DocumentWriter, ModelSource};

/// The topic is not the one the read model was built from; the message names what
/// changed and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LayoutChanged(pub String);

/// What the read model was built from, and what the topic is now.
#[derive(Debug)]
pub struct OrderingGuard {
    watch: TopicWatch,
    keyspace: String,
    recorded: ModelSource,
    /// Per partition, the last offset seen in this run: a record at or below it means the
    /// position went back (a rebalance, or a topic that restarted its offsets).
    seen: HashMap<i32, i64>,
    /// Set when the consumer reported an error: the topic may have been deleted.
    suspect: bool,
    checked: Instant,
    interval: Duration,
}

impl OrderingGuard {
    /// At start: records the topic's identity when the read model has none yet, and
    /// refuses a topic that differs from the recorded one.
    pub async fn at_start(
        store: &DocumentWriter,
        watch: TopicWatch,
        keyspace: &str,
        interval: Duration,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let now = watch.identity_at_start().await.with_context(|| {
            format!(
                "cannot tell which topic {} is (its id and partition count)",
                watch.topic()
            )
        })?;
        let recorded = store
            .source(watch.topic())
            .await
            .context("cannot read what the read model was built from")?;
        let recorded = match recorded {
            Some(recorded) => {
                check(watch.topic(), keyspace, recorded, now)?;
                recorded
            }
            None => {
                let source = ModelSource {
                    topic_id: now.id,
                    partitions: now.partitions,
                };
                store
                    .record_source(watch.topic(), source)
                    .await
                    .context("cannot record what the read model is built from")?;
                tracing::info!(
                    topic = watch.topic(),
                    topic_id = %now.id,
                    partitions = now.partitions,
                    "read model source recorded"
                );
                source
            }
        };
        Ok(Self {
            watch,
            keyspace: keyspace.to_owned(),
            recorded,
            seen: HashMap::new(),
            suspect: false,
            checked: Instant::now(),
            interval,
        })
    }

    /// The consumer reported an error: check the topic before the next record.
    pub fn suspect(&mut self) {
        self.suspect = true;
    }

    /// Whether the periodic check is due.
    pub fn due(&self) -> bool {
        self.checked.elapsed() >= self.interval
    }

    /// The time until the periodic check is due.
    pub fn until_due(&self) -> Duration {
        self.interval.saturating_sub(self.checked.elapsed())
    }

    /// Whether the record at `offset` of `partition` may be handled, asking Kafka first
    /// when something hints at a change: a partition the recorded layout does not have,
    /// the first record of a partition in this run (a start, or a new assignment), an
    /// offset that went back, an error of the consumer, or the periodic check.
    pub async fn admit(&mut self, partition: i32, offset: i64) -> Result<Verdict, LayoutChanged> {
        if partition >= self.recorded.partitions {
            // Certain: the topic has more partitions than the read model was built from.
            // Say how many it has now, if Kafka answers.
            let now = self.watch.identity().await.ok();
            return Err(LayoutChanged(running_message(
                self.watch.topic(),
                &self.keyspace,
                self.recorded,
                now,
                &format!("a record arrived from partition {partition}"),
            )));
        }
        let rewound = self.seen.get(&partition).is_none_or(|&last| offset <= last);
        if rewound || self.suspect || self.due() {
            let verdict = self.verify().await?;
            if verdict != Verdict::Fits {
                return Ok(verdict);
            }
        }
        self.seen.insert(partition, offset);
        Ok(Verdict::Fits)
    }

    /// A valid event whose key does not belong in its partition under the recorded
    /// count: written under another partition count, or by a producer with another
    /// partitioner. Asks Kafka which.
    pub async fn misplaced(
        &mut self,
        partition: i32,
        key: &[u8],
    ) -> Result<Verdict, LayoutChanged> {
        let expected = messaging::partition_of_key(key, self.recorded.partitions);
        if expected == partition {
            return Ok(Verdict::Fits);
        }
        match self.verify().await? {
            Verdict::Fits => Ok(Verdict::Misplaced { expected }),
            other => Ok(other),
        }
    }

    /// Asks Kafka what the topic is now. `Unknown` when Kafka does not answer (the
    /// caller holds the record and asks again).
    pub async fn verify(&mut self) -> Result<Verdict, LayoutChanged> {
        let now = match self.watch.identity().await {
            Ok(now) => now,
            Err(error) => {
                // The next record is checked first; the periodic check waits its interval
                // rather than asking a Kafka that does not answer in a tight loop.
                self.suspect = true;
                self.checked = Instant::now();
                return Ok(Verdict::Unknown(error.to_string()));
            }
        };
        check(self.watch.topic(), &self.keyspace, self.recorded, now)?;
        self.suspect = false;
        self.checked = Instant::now();
        Ok(Verdict::Fits)
    }
}

/// What the guard says of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The topic is the recorded one.
    Fits,
    /// Kafka did not say what the topic is now (the text says why).
    Unknown(String),
    /// The topic is the recorded one, but the record's key belongs in `expected`.
    Misplaced { expected: i32 },
}

/// Compares the topic now with what the read model was built from.
fn check(
    topic: &str,
    keyspace: &str,
    recorded: ModelSource,
    now: TopicIdentity,
) -> Result<(), LayoutChanged> {
    if recorded.topic_id != now.id {
        return Err(LayoutChanged(format!(
            "topic {topic} was recreated: the read model in keyspace {keyspace} was built from \
             topic id {}, the topic now has id {}. The new topic's offsets started again at 0, \
             and the read model orders each document's writes by offset, so applying it would \
             silently drop updates and deletes. Fix: rebuild the read model from the current \
             topic into a fresh keyspace (`cargo xtask rebuild`, then set CASSANDRA_KEYSPACE \
             to it), or restore the old topic.",
            recorded.topic_id, now.id
        )));
    }
    if recorded.partitions != now.partitions {
        return Err(LayoutChanged(partitions_message(
            topic,
            keyspace,
            recorded.partitions,
            &now.partitions.to_string(),
        )));
    }
    Ok(())
}

fn partitions_message(topic: &str, keyspace: &str, recorded: i32, now: &str) -> String {
    format!(
        "the partition count of topic {topic} changed: the read model in keyspace {keyspace} \
         was built from {recorded} partitions, the topic now has {now}. Adding partitions \
         moves documents to partitions whose offsets are lower, and the read model orders \
         each document's writes by offset, so their later updates and deletes would be \
         dropped. The partition count of {topic} must not change. Fix: Kafka cannot remove \
         partitions, so stop the producers, copy the events into a new topic with the \
         partition count you want (each document's events in their original order), and \
         rebuild the read model from it into a fresh keyspace (`cargo xtask rebuild`); \
         nothing was applied from the new layout meanwhile."
    )
}

/// The message of a change noticed while running, with what Kafka says now if it
/// answered.
fn running_message(
    topic: &str,
    keyspace: &str,
    recorded: ModelSource,
    now: Option<TopicIdentity>,
    noticed: &str,
) -> String {
    match now {
        Some(now) if now.id != recorded.topic_id => {
            check(topic, keyspace, recorded, now).map_or_else(|e| e.0, |()| String::new())
        }
        Some(now) => format!(
            "{noticed}; {}",
            partitions_message(
                topic,
                keyspace,
                recorded.partitions,
                &now.partitions.to_string()
            )
        ),
        None => format!(
            "{noticed}; {}",
            partitions_message(topic, keyspace, recorded.partitions, "more")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn source(id: Uuid, partitions: i32) -> ModelSource {
        ModelSource {
            topic_id: id,
            partitions,
        }
    }

    fn identity(id: Uuid, partitions: i32) -> TopicIdentity {
        TopicIdentity { id, partitions }
    }

    #[test]
    fn the_same_topic_passes() {
        let id = Uuid::new_v4();
        assert!(check("t", "ks", source(id, 3), identity(id, 3)).is_ok());
    }

    #[test]
    fn a_recreated_topic_is_named_with_its_fix() {
        let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
        let error = check("t", "ks", source(old, 3), identity(new, 3)).unwrap_err();
        for part in [
            "was recreated",
            &old.to_string(),
            &new.to_string(),
            "cargo xtask rebuild",
        ] {
            assert!(error.0.contains(part), "{part:?} missing: {error}");
        }
    }

    #[test]
    fn another_partition_count_is_named_with_its_fix() {
        let id = Uuid::new_v4();
        let error = check("t", "ks", source(id, 3), identity(id, 4)).unwrap_err();
        for part in [
            "built from 3 partitions",
            "now has 4",
            "must not change",
            "cargo xtask rebuild",
        ] {
            assert!(error.0.contains(part), "{part:?} missing: {error}");
        }
    }
}
