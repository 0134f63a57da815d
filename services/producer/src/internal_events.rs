//! What the producer reports, one type per occurrence: `emit()` writes the log line and
//! the metrics together, with typed label values.

use std::error::Error;
use std::time::Duration;

use events::Event;
use telemetry::names;

/// The outcome of a produce: a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// `kafka_produce_duration_seconds` of one topic, labelled once per outcome: the
/// producer records one sample per command.
#[derive(Debug, Clone)]
pub struct ProduceDurations {
    ok: metrics::Histogram,
    error: metrics::Histogram,
}

impl ProduceDurations {
    pub fn new(topic: &str) -> Self {
        let histogram = |outcome: Outcome| {
            metrics::histogram!(
                names::KAFKA_PRODUCE_DURATION,
                "topic" => topic.to_owned(),
                "outcome" => outcome.as_str()
            )
        };
        Self {
            ok: histogram(Outcome::Ok),
            error: histogram(Outcome::Error),
        }
    }

    /// A produce ended with `outcome` after `took`.
    pub fn emit(&self, outcome: Outcome, took: Duration) {
        let histogram = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::Error => &self.error,
        };
        histogram.record(took.as_secs_f64());
    }
}

/// Kafka confirmed an event: the command is accepted.
#[derive(Debug)]
pub struct EventPublished<'a> {
    pub event: &'a Event,
    pub partition: i32,
    pub offset: i64,
}

impl EventPublished<'_> {
    pub fn emit(self) {
        tracing::info!(
            event = self.event.header.kind.as_str(),
            document = %self.event.payload.id,
            partition = self.partition,
            offset = self.offset,
            "event published"
        );
    }
}

/// Kafka did not confirm an event in time: the command is answered 503.
#[derive(Debug)]
pub struct EventNotConfirmed<'a> {
    pub event: &'a Event,
    pub error: &'a dyn Error,
}

impl EventNotConfirmed<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, document = %self.event.payload.id, "event not confirmed");
    }
}

/// Records still unconfirmed when the producer stopped.
#[derive(Debug)]
pub struct UnconfirmedAtShutdown<'a> {
    pub error: &'a dyn Error,
}

impl UnconfirmedAtShutdown<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "records still unconfirmed at shutdown");
    }
}
