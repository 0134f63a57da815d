//! Exports one span over `protocol` to a real receiver, configured as a user would (the
//! standard `OTEL_*` variables), and checks what arrived. Each protocol has a test binary
//! of its own, because telemetry is set up once per process.

use std::time::Duration;

use testkit::otlp::OtlpReceiver;

/// `log_filter`, when given, is set as `RUST_LOG`: logs that quiet must not cost traces.
pub fn export_one_span(protocol: &str, log_filter: Option<&str>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let receiver = if protocol == "grpc" {
            OtlpReceiver::start_grpc().await
        } else {
            OtlpReceiver::start().await
        };
        // SAFETY: this test binary holds this one test, and nothing reads the environment
        // concurrently before telemetry is set up below.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
            std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", protocol);
            std::env::set_var("OTEL_SERVICE_NAME", "export-test");
            if let Some(filter) = log_filter {
                std::env::set_var("RUST_LOG", filter);
            }
        }
        let guard = telemetry::init("ignored-when-otel-service-name-is-set");
        let trace_id = {
            let span = tracing::info_span!("exported", otel.kind = "server", "http.route" = "/x");
            let _entered = span.enter();
            // Only events from WARN up become span events; the JSON log line carries
            // the others.
            tracing::info!("routine");
            tracing::warn!("worth a look");
            telemetry::current_trace_id()
        };
        assert_ne!(trace_id, "0".repeat(32), "the info span was not traced");
        let spans = testkit::eventually("the span to arrive", Duration::from_secs(20), || {
            guard.flush();
            let spans = receiver.trace(&trace_id);
            std::future::ready((!spans.is_empty()).then_some(spans))
        })
        .await;
        assert_eq!(spans[0].name, "exported");
        assert_eq!(spans[0].kind, "SERVER");
        assert_eq!(spans[0].service, "export-test");
        assert_eq!(spans[0].attributes["http.route"], "/x");
        assert_eq!(spans[0].events, ["worth a look"]);
    });
}
