//! Spans reach a receiver over OTLP/HTTP when `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`.

mod common;

#[test]
fn spans_are_exported_over_http_protobuf() {
    common::export_one_span("http/protobuf");
}
