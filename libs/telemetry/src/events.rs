//! Occurrences that more than one service reports, each a type whose `emit()` writes its
//! log line and its metrics together, with typed label values (after vector's
//! `internal_events`). A service's own occurrences live in its `internal_events` module
//! and are built the same way; the metric names come from [`crate::names`].

use std::error::Error;
use std::time::Duration;

use crate::names;

/// A stage of the pipeline that `documents_pipeline_latency_seconds` measures from the
/// event's timestamp: a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The persister applied the event to Cassandra.
    Persisted,
    /// The notifier handed the event to the connected streams.
    Notified,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Persisted => "persisted",
            Self::Notified => "notified",
        }
    }
}

/// An event reached `stage`, `latency` after it was accepted.
#[derive(Debug, Clone, Copy)]
pub struct StageReached {
    pub stage: Stage,
    pub latency: Duration,
}

impl StageReached {
    pub fn emit(self) {
        metrics::histogram!(names::DOCUMENTS_PIPELINE_LATENCY, "stage" => self.stage.as_str())
            .record(self.latency.as_secs_f64());
    }
}

/// Records of one topic consumed by one group: the counter, looked up once, because
/// consumers report every record.
#[derive(Debug, Clone)]
pub struct RecordsConsumed {
    topic: String,
    counter: metrics::Counter,
}

impl RecordsConsumed {
    pub fn new(topic: &str, group: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            counter: metrics::counter!(
                names::KAFKA_MESSAGES_CONSUMED,
                "topic" => topic.to_owned(),
                "group" => group.to_owned()
            ),
        }
    }

    /// The topic whose records this counts.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// One more record consumed.
    pub fn emit(&self) {
        self.counter.increment(1);
    }
}

/// The Kafka consumer reported an error; it retries by itself.
#[derive(Debug)]
pub struct ConsumerFailed<'a> {
    pub error: &'a dyn Error,
}

impl ConsumerFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "Kafka consumer error");
    }
}
