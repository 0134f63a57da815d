//! What the persister reports, one type per occurrence: `emit()` writes the log line and
//! the metrics together, so that a log and its counter cannot drift apart.

use std::error::Error;
use std::time::Duration;

use chrono::Utc;
use events::Event;
use telemetry::events::{Stage, StageReached};
use telemetry::names;

use crate::dead_letters::Reason;

/// Where a record was read.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub partition: i32,
    pub offset: i64,
}

/// An event was applied to Cassandra.
#[derive(Debug)]
pub struct EventApplied<'a> {
    pub event: &'a Event,
    pub at: At,
}

impl EventApplied<'_> {
    pub fn emit(self) {
        let latency = (Utc::now() - self.event.header.timestamp)
            .to_std()
            .unwrap_or_default();
        StageReached {
            stage: Stage::Persisted,
            latency,
        }
        .emit();
        tracing::info!(
            event = self.event.header.kind.as_str(),
            document = %self.event.payload.id,
            partition = self.at.partition,
            offset = self.at.offset,
            "event applied"
        );
    }
}

/// A Cassandra write failed; the same record is tried again after `retry_in`.
#[derive(Debug)]
pub struct WriteFailed<'a> {
    pub error: &'a dyn Error,
    pub attempt: u32,
    pub retry_in: Duration,
    pub at: At,
}

impl WriteFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(
            error = %self.error,
            attempt = self.attempt,
            retry_in_ms = self.retry_in.as_millis() as u64,
            partition = self.at.partition,
            offset = self.at.offset,
            "Cassandra write failed; retrying the same record"
        );
    }
}

/// A record was stored in the dead-letter topic.
#[derive(Debug)]
pub struct DeadLettered<'a> {
    pub reason: Reason,
    pub detail: &'a str,
    pub at: At,
}

impl DeadLettered<'_> {
    pub fn emit(self) {
        metrics::counter!(names::DLQ_MESSAGES, "reason" => self.reason.as_str()).increment(1);
        tracing::warn!(
            reason = self.reason.as_str(),
            detail = self.detail,
            partition = self.at.partition,
            offset = self.at.offset,
            "record sent to the dead-letter topic"
        );
    }

    /// Creates the counter of every reason at zero, so that a dashboard shows 0, not
    /// "no data".
    pub fn register() {
        for reason in Reason::ALL {
            metrics::counter!(names::DLQ_MESSAGES, "reason" => reason.as_str()).increment(0);
        }
    }
}

/// A keyed record was skipped: its event was already applied at an earlier position (the
/// same command sent again), so applying it now could undo later writes.
#[derive(Debug)]
pub struct DuplicateSkipped<'a> {
    pub event: &'a Event,
    pub at: At,
    pub first: At,
}

impl DuplicateSkipped<'_> {
    pub fn emit(self) {
        metrics::counter!(names::DOCUMENTS_DUPLICATES_SKIPPED).increment(1);
        tracing::info!(
            event = self.event.header.kind.as_str(),
            event_id = %self.event.header.id,
            document = %self.event.payload.id,
            partition = self.at.partition,
            offset = self.at.offset,
            first_partition = self.first.partition,
            first_offset = self.first.offset,
            "duplicate event skipped"
        );
    }

    /// Creates the counter at zero, so that a dashboard shows 0, not "no data".
    pub fn register() {
        metrics::counter!(names::DOCUMENTS_DUPLICATES_SKIPPED).increment(0);
    }
}

/// Storing a dead letter failed; it is tried again after `retry_in`.
#[derive(Debug)]
pub struct DeadLetterFailed<'a> {
    pub error: &'a dyn Error,
    pub attempt: u32,
    pub retry_in: Duration,
}

impl DeadLetterFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(
            error = %self.error,
            attempt = self.attempt,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "dead letter not stored; retrying"
        );
    }
}

/// An offset could not be stored because the partition was revoked meanwhile; its new
/// owner applies the record again, which is harmless (applying is idempotent).
#[derive(Debug)]
pub struct OffsetNotStored<'a> {
    pub error: &'a dyn Error,
}

impl OffsetNotStored<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "offset not stored");
    }
}

/// The final commit at shutdown: `Err` when nothing was stored since the last commit,
/// which is not a problem.
#[derive(Debug)]
pub struct CommittedAtShutdown<'a> {
    pub result: Result<(), &'a dyn Error>,
}

impl CommittedAtShutdown<'_> {
    pub fn emit(self) {
        match self.result {
            Ok(()) => tracing::info!("offsets committed at shutdown"),
            Err(error) => tracing::info!(%error, "no offsets committed at shutdown"),
        }
    }
}
