//! Telemetry of the kafka-cqrs services, and the only crate that knows about
//! OpenTelemetry and the Prometheus exporter.
//!
//! - [`init`]: one call at start-up: JSON logs carrying `trace_id` and `span_id`, traces
//!   exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C Trace Context
//!   propagation; the returned [`Guard`] flushes and shuts down in order.
//! - [`http`]: the axum layer that makes a SERVER span and the HTTP metrics of each
//!   request, and the `/metrics` route.
//! - [`kafka`]: trace context in Kafka record headers, and the PRODUCER and CONSUMER
//!   spans of the messaging conventions.
//! - [`db`]: a Cassandra call wrapped in a CLIENT span and timed.
//! - [`names`]: the metric names of the contract.
//! - [`logs`] and [`stderr`]: the JSON log line and the thread that writes the lines.
//! - [`events`]: occurrences that several services report, each a type whose `emit()`
//!   logs and counts with typed labels.

pub mod db;
pub mod events;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logs;
pub mod names;
mod prometheus;
pub mod stderr;

use std::io::Write;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use prometheus::install as install_metrics;

/// The one propagation format of the platform: W3C Trace Context. The helpers use it
/// directly, so propagation does not depend on global state being set up.
#[cfg(any(feature = "http", feature = "kafka"))]
static PROPAGATOR: std::sync::LazyLock<TraceContextPropagator> =
    std::sync::LazyLock::new(TraceContextPropagator::new);

/// Keeps telemetry running; dropping it exports what is buffered, then shuts down.
#[derive(Debug)]
#[must_use = "telemetry stops when the guard is dropped"]
pub struct Guard {
    provider: SdkTracerProvider,
    /// The thread that writes log lines to stderr ([`init`] only); dropped after the
    /// provider's shutdown, so that the lines of the shutdown are written too.
    logs: Option<stderr::Background>,
}

impl Guard {
    /// Exports the spans that are buffered now, and writes the log lines gathered.
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            eprintln!("telemetry: flushing spans failed: {error}");
        }
        if let Some(logs) = &self.logs {
            logs.flush();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Flush first so that the last spans (often those of the shutdown) are not lost.
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// The variable that chooses which spans are traced (an `EnvFilter` directive such as
/// `info` or `persister=debug`), independently of `RUST_LOG`, which chooses the logs.
pub const TRACES_FILTER_VARIABLE: &str = "TRACES_FILTER";

/// Sets up logs, traces and metrics for `service`, writing logs to stderr. Call once,
/// first thing in `main`, inside the Tokio runtime (the gRPC exporter needs it).
///
/// Log lines go to stderr from a thread of their own, in batches at most
/// [`stderr::FLUSH_EVERY`] (20 ms) late: a `write` system call per line was a good part
/// of what a logged Kafka record cost. Dropping the guard, and a panic, write what is
/// gathered.
pub fn init(service: &'static str) -> Guard {
    match stderr::Background::stderr() {
        Ok((background, lines)) => {
            flush_logs_on_panic(lines.clone());
            let mut guard = init_with_writer(service, lines);
            guard.logs = Some(background);
            guard
        }
        Err(error) => {
            eprintln!(
                "telemetry: cannot start the log output thread ({error}); logs are written \
                 line by line"
            );
            init_with_writer(service, std::io::stderr)
        }
    }
}

/// A panic's message goes to stderr directly (the default hook); the log lines before
/// it are written first, so that they are not lost if the panic ends the process.
fn flush_logs_on_panic(lines: stderr::Lines) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        lines.try_flush();
        previous(info);
    }));
}

/// What the tracing layer takes: every span, and events from WARN up (as span events of
/// the span they happen in). INFO events are left to the JSON log lines.
pub fn reaches_traces(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_span() || *metadata.level() <= tracing::Level::WARN
}

/// [`init`] with logs written to `writer` (tests read them back).
pub fn init_with_writer<W>(service: &'static str, writer: W) -> Guard
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    init_with(service, writer, otlp_exporter())
}

/// [`init`] exporting spans over OTLP/HTTP to `endpoint` (the base URL; `/v1/traces` is
/// added), whatever the environment says: for tests that run their own receiver.
pub fn init_exporting_to<W>(service: &'static str, writer: W, endpoint: &str) -> Guard
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .ok();
    init_with(service, writer, exporter)
}

fn init_with<W>(
    service: &'static str,
    writer: W,
    exporter: Option<opentelemetry_otlp::SpanExporter>,
) -> Guard
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service, exporter);
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service);
    // Logs and traces are filtered apart: with one filter, `RUST_LOG=warn` dropped the
    // info-level spans too, so traces lost their spans and events carried an all-zero
    // traceId. Logs follow `RUST_LOG`, spans `TRACES_FILTER` (both default to info).
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let trace_filter =
        EnvFilter::try_from_env(TRACES_FILTER_VARIABLE).unwrap_or_else(|_| EnvFilter::new("info"));
    // Per span, only what a trace needs. The source location and thread attributes, the
    // busy/idle timing (a clock read on every poll) and the activation of an
    // OpenTelemetry context on every entry (for OpenTelemetry-native instrumentation,
    // which the services do not use: propagation reads the tracing span's context) cost
    // allocations and time on every poll of every request and were in no view. Span
    // bookkeeping was about a fifth of the persister's samples in the bench's profiles
    // (`cargo xtask bench --profile`).
    //
    // Events reach the spans as span events only from WARN up: the INFO line per Kafka
    // record ("event published", "event applied") became a span event with its fields
    // copied into attributes, about as much work again as the line itself, for a view
    // (Jaeger's span logs) that the JSON line already gives through its trace_id. A
    // warning or an error inside a span still shows on it.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(trace_filter.and(tracing_subscriber::filter::filter_fn(reaches_traces)));
    // The JSON lines take their fields from the event and the span's name only
    // (`logs::JsonWithTrace`), so the formatter must not render every span's fields
    // when the span opens, as tracing-subscriber's default does.
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .fmt_fields(logs::NoSpanFields)
        .event_format(logs::JsonWithTrace)
        .with_writer(writer)
        .with_filter(log_filter);
    let registered = tracing_subscriber::registry()
        .with(traces)
        .with(logs)
        .try_init();
    if registered.is_err() {
        // A second init in one process (tests): the first subscriber stays.
        let _ = writeln!(std::io::stderr(), "telemetry: already initialised");
    }
    install_metrics();
    tracing::info!(
        service,
        otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
        "telemetry initialised"
    );
    Guard {
        provider,
        logs: None,
    }
}

/// The tracer provider: always there (so spans have real ids), exporting over OTLP only
/// when an endpoint is configured.
fn tracer_provider(
    service: &'static str,
    exporter: Option<opentelemetry_otlp::SpanExporter>,
) -> SdkTracerProvider {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if let Some(exporter) = exporter {
        builder = builder.with_batch_exporter(exporter);
    }
    builder.build()
}

/// The OTLP span exporter the standard variables ask for, if any.
fn otlp_exporter() -> Option<opentelemetry_otlp::SpanExporter> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|e| !e.is_empty()));
    if !configured {
        return None;
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".into());
    let built = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
        other => {
            eprintln!(
                "telemetry: OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported (use grpc or \
                 http/protobuf): traces are not exported"
            );
            return None;
        }
    };
    match built {
        Ok(exporter) => Some(exporter),
        Err(error) => {
            eprintln!(
                "telemetry: cannot build the OTLP exporter ({error}): traces are not exported"
            );
            None
        }
    }
}

/// The trace id of the current span, 32 lowercase hex digits (all zeros outside a trace).
pub fn current_trace_id() -> String {
    let context = tracing::Span::current().context();
    context.span().span_context().trace_id().to_string()
}
