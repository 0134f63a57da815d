//! Cassandra calls as CLIENT spans with the database conventions' attributes, timed into
//! `cassandra_query_duration_seconds`.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use crate::names;

/// Runs `call` (one Cassandra statement) inside a CLIENT span named `cassandra
/// {verb}`, where `verb` is `write` or `read`, and records its duration by `operation`
/// (a bounded label such as `upsert`, `delete`, `get`) and outcome.
pub async fn cassandra<T, E, F>(
    verb: &'static str,
    operation: &'static str,
    collection: &str,
    call: F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let span = tracing::info_span!(
        "cassandra",
        otel.name = %format!("cassandra {verb}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        "db.system" = "cassandra",
        "db.operation.name" = operation,
        "db.collection.name" = %collection,
    );
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    metrics::histogram!(names::CASSANDRA_QUERY_DURATION, "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}
