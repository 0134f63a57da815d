//! The metric names of the contract (ARCHITECTURE.md, "The contract"), in one place.
//! Units are in the names (`_seconds`, `_total`); label values are bounded sets.

/// Histogram, seconds; labels `method`, `route`, `status`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Histogram, seconds; labels `topic`, `outcome` (`ok`, `error`).
pub const KAFKA_PRODUCE_DURATION: &str = "kafka_produce_duration_seconds";
/// Counter; labels `topic`, `group`.
pub const KAFKA_MESSAGES_CONSUMED: &str = "kafka_messages_consumed_total";
/// Gauge; labels `topic`, `partition`, `group`.
pub const KAFKA_CONSUMER_LAG: &str = "kafka_consumer_lag";
/// Histogram, seconds; labels `operation` (`upsert`, `delete`, `get`), `outcome`.
pub const CASSANDRA_QUERY_DURATION: &str = "cassandra_query_duration_seconds";
/// Histogram, seconds; label `stage` (`persisted`, `notified`).
pub const DOCUMENTS_PIPELINE_LATENCY: &str = "documents_pipeline_latency_seconds";
/// Gauge.
pub const SSE_CLIENTS: &str = "sse_clients";
/// Counter.
pub const SSE_EVENTS_SENT: &str = "sse_events_sent_total";
/// Counter; label `reason` (`unparseable`, `unknown-content-type`, `key-mismatch`,
/// `idempotency-key-reuse`, `misplaced`).
pub const DLQ_MESSAGES: &str = "dlq_messages_total";
/// Counter: records the persister skipped because their event (a keyed command sent
/// again) was already applied at an earlier position.
pub const DOCUMENTS_DUPLICATES_SKIPPED: &str = "documents_duplicates_skipped_total";
/// Gauge, seconds: how long the persister has held one record it could neither apply nor
/// dead-letter, once that is longer than its bound (`PERSISTER_STUCK_AFTER_SECS`); 0
/// otherwise.
pub const PERSISTER_STUCK_SECONDS: &str = "persister_stuck_seconds";
