//! Telemetry of the kafka-cqrs services. Today: logging set up in one call, and the
//! metric names of the contract defined once. OpenTelemetry traces, propagation and the
//! Prometheus exporter join here (issue 5), so that no other crate knows about them.

pub mod names;

use tracing_subscriber::EnvFilter;

/// Keeps telemetry running; dropping it flushes what is buffered.
#[derive(Debug)]
#[must_use = "telemetry stops when the guard is dropped"]
pub struct Guard {
    _private: (),
}

/// Sets up logging for `service`: one line per event on stderr, filtered by `RUST_LOG`
/// (default: `info`). Call once, first thing in `main`.
pub fn init(service: &'static str) -> Guard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
    tracing::info!(service, "telemetry initialised");
    Guard { _private: () }
}
