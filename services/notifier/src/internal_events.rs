//! What the notifier reports, one type per occurrence: `emit()` writes the log line and
//! the metrics together. The shared ones (records consumed, pipeline stage, consumer
//! errors) come from `telemetry::events`.

use std::error::Error;

use telemetry::names;

/// The number of open streams, read after a change. Emitted one at a time (the hub
/// serialises them), each reading the count anew, so that the last value set is the
/// count once connects and disconnects settle, however they interleave.
#[derive(Debug, Clone, Copy)]
pub struct StreamsOpen {
    pub open: usize,
}

impl StreamsOpen {
    pub fn emit(self) {
        metrics::gauge!(names::SSE_CLIENTS).set(self.open as f64);
    }
}

/// A stream that had to read older history found every replay reader busy for the
/// whole wait: it was refused with 503.
#[derive(Debug, Clone, Copy)]
pub struct ReplaysBusy {
    pub waited: std::time::Duration,
}

impl ReplaysBusy {
    pub fn emit(self) {
        tracing::warn!(
            waited_ms = self.waited.as_millis() as u64,
            "every replay reader is busy: stream refused with 503"
        );
    }
}

/// A replaying stream's client read nothing for the idle bound: its connection was
/// closed to free the replay reader it held.
#[derive(Debug, Clone, Copy)]
pub struct ReplayStalled {
    pub idle: std::time::Duration,
}

impl ReplayStalled {
    pub fn emit(self) {
        tracing::warn!(
            idle_ms = self.idle.as_millis() as u64,
            "client stopped reading during a replay: connection closed to free its reader"
        );
    }
}

/// Event frames sent on one stream. Each stream holds the counter's handle: looking it up
/// in the metrics registry for every frame took about 3 % of the notifier's samples while
/// it fanned events out to 1,000 streams (`cargo xtask bench --profile`).
#[derive(Debug)]
pub struct EventsSent(metrics::Counter);

impl EventsSent {
    pub fn new() -> Self {
        Self(metrics::counter!(names::SSE_EVENTS_SENT))
    }

    /// One event frame went to this stream.
    pub fn emit(&self) {
        self.0.increment(1);
    }
}

/// A record repeated an event already read (a keyed command sent again): not sent.
#[derive(Debug, Clone, Copy)]
pub struct RepeatSkipped {
    pub event: uuid::Uuid,
    pub partition: usize,
    pub offset: i64,
}

impl RepeatSkipped {
    pub fn emit(self) {
        tracing::info!(
            event_id = %self.event,
            partition = self.partition,
            offset = self.offset,
            "repeated event not sent"
        );
    }
}

/// Streams whose queue was full were closed (they resume with their last id).
#[derive(Debug, Clone, Copy)]
pub struct SlowStreamsClosed {
    pub count: usize,
}

impl SlowStreamsClosed {
    pub fn emit(self) {
        tracing::warn!(
            kicked = self.count,
            "disconnected clients whose queue was full"
        );
    }
}

/// What a replay from Kafka was doing when it failed.
#[derive(Debug, Clone, Copy)]
pub enum ReplayStep {
    Open,
    Read,
    /// Looking up where the topic starts or ends (a replay's offset found gone, a token
    /// ahead of this notifier).
    Offsets,
}

/// A replay from Kafka failed: the stream ends, and the client resumes with its last id.
#[derive(Debug)]
pub struct ReplayFailed<'a> {
    pub step: ReplayStep,
    pub error: &'a dyn Error,
}

impl ReplayFailed<'_> {
    pub fn emit(self) {
        match self.step {
            ReplayStep::Open => tracing::warn!(
                error = %self.error,
                "cannot open a replay from Kafka; ending the stream"
            ),
            ReplayStep::Read => {
                tracing::warn!(error = %self.error, "replay from Kafka failed; ending the stream")
            }
            ReplayStep::Offsets => tracing::warn!(
                error = %self.error,
                "cannot read the topic's offsets from Kafka"
            ),
        }
    }
}

/// A record that is not an event of the contract: only the position moves on.
#[derive(Debug, Clone, Copy)]
pub struct NotAnEvent {
    pub partition: usize,
    pub offset: i64,
}

impl NotAnEvent {
    pub fn emit(self) {
        tracing::warn!(
            partition = self.partition,
            offset = self.offset,
            "record is not an event of the contract: not pushed"
        );
    }
}

/// Recent history is in memory: streams can start.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLoaded;

impl HistoryLoaded {
    pub fn emit(self) {
        tracing::info!("history loaded: streams can start");
    }
}

/// Connections still open after the shutdown grace period are closed.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionsCut {
    pub open: usize,
}

impl ConnectionsCut {
    pub fn emit(self) {
        tracing::warn!(
            open = self.open,
            "closing connections still open after the grace period"
        );
    }
}
