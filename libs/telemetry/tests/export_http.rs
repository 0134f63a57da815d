//! Spans reach a receiver over OTLP/HTTP when `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`,
//! also when `RUST_LOG=warn` silences the info logs: the log level never decides which
//! spans are traced.

mod common;

#[test]
fn spans_are_exported_over_http_protobuf_whatever_the_log_level() {
    common::export_one_span("http/protobuf", Some("warn"));
}
