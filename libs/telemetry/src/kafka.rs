//! Trace context through Kafka: injected into record headers on produce, extracted on
//! consume, so that one trace follows a document from its command to every consumer.
//! Also the PRODUCER and CONSUMER spans of the messaging conventions.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Adds the current span's `traceparent` (and `tracestate`) to `headers`.
pub fn inject(mut headers: OwnedHeaders) -> OwnedHeaders {
    let mut carrier = Carrier(HashMap::new());
    let context = Span::current().context();
    crate::PROPAGATOR.inject_context(&context, &mut carrier);
    let mut pairs: Vec<_> = carrier.0.into_iter().collect();
    pairs.sort();
    for (key, value) in &pairs {
        headers = headers.insert(Header {
            key: key.as_str(),
            value: Some(value.as_str()),
        });
    }
    headers
}

/// The trace context a record carries in its headers (empty when it carries none).
pub fn extract<H: Headers>(headers: Option<&H>) -> opentelemetry::Context {
    let Some(headers) = headers else {
        return opentelemetry::Context::new();
    };
    let extractor = HeadersExtractor(
        headers
            .iter()
            .filter_map(|h| Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?)))
            .collect(),
    );
    crate::PROPAGATOR.extract(&extractor)
}

/// The PRODUCER span of publishing a record keyed `key` to `topic`.
pub fn publish_span(topic: &str, key: &str) -> Span {
    tracing::info_span!(
        "kafka publish",
        otel.name = %format!("{topic} publish"),
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
        "messaging.system" = "kafka",
        "messaging.operation.type" = "send",
        "messaging.destination.name" = %topic,
        "messaging.kafka.message.key" = %key,
        "messaging.destination.partition.id" = tracing::field::Empty,
        "messaging.kafka.offset" = tracing::field::Empty,
    )
}

/// The CONSUMER span of processing one record, a child of the context in its headers.
pub fn process_span<H: Headers>(
    topic: &str,
    group: &str,
    partition: i32,
    offset: i64,
    headers: Option<&H>,
) -> Span {
    let span = tracing::info_span!(
        "kafka process",
        otel.name = %format!("{topic} process"),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        "messaging.system" = "kafka",
        "messaging.operation.type" = "process",
        "messaging.destination.name" = %topic,
        "messaging.consumer.group.name" = %group,
        "messaging.destination.partition.id" = %partition,
        "messaging.kafka.offset" = offset,
    );
    let _ = span.set_parent(extract(headers));
    span
}

/// Records the partition and offset Kafka stored a record at on its PRODUCER span.
pub fn record_delivery(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", partition.to_string());
    span.record("messaging.kafka.offset", offset);
}

/// Marks a span as failed (for trace views that colour errors).
pub fn record_error(span: &Span) {
    span.record("otel.status_code", "ERROR");
}

struct Carrier(HashMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HeadersExtractor(Vec<(String, String)>);

impl Extractor for HeadersExtractor {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// A consumer context that turns librdkafka's statistics into `kafka_consumer_lag`
/// (per partition: the partition's end minus the next offset handed to the
/// application). Set `statistics.interval.ms` on the consumer to enable it.
#[derive(Debug, Clone)]
pub struct LagContext {
    group: String,
}

impl LagContext {
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
        }
    }
}

impl rdkafka::ClientContext for LagContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (&partition, p) in &stats.partitions {
                // -1 is librdkafka's internal "unassigned" partition; negative offsets
                // mean "not known yet".
                if partition < 0 || p.hi_offset < 0 || p.app_offset < 0 {
                    continue;
                }
                metrics::gauge!(
                    crate::names::KAFKA_CONSUMER_LAG,
                    "topic" => topic.clone(),
                    "partition" => partition.to_string(),
                    "group" => self.group.clone(),
                )
                .set((p.hi_offset - p.app_offset).max(0) as f64);
            }
        }
    }
}

impl rdkafka::consumer::ConsumerContext for LagContext {
    /// Says which partitions this member of a group holds: with several replicas of a
    /// consumer, the log shows how the partitions were shared and when they moved.
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        let partitions = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match rebalance {
            rdkafka::consumer::Rebalance::Assign(list) => tracing::info!(
                group = %self.group,
                partitions = %partitions(list),
                "partitions assigned"
            ),
            rdkafka::consumer::Rebalance::Revoke(list) => tracing::info!(
                group = %self.group,
                partitions = %partitions(list),
                "partitions revoked"
            ),
            rdkafka::consumer::Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}

/// How often consumers report statistics (and so lag), in milliseconds.
pub const STATISTICS_INTERVAL_MS: &str = "5000";
