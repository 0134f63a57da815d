//! Spans reach a receiver over OTLP/gRPC when `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`.

mod common;

#[test]
fn spans_are_exported_over_grpc() {
    common::export_one_span("grpc", None);
}
