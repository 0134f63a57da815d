//! The Prometheus recorder behind every service's `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::names;

/// Latency buckets, in seconds: from a local cache hit to a slow broker.
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder once per process and returns its handle.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for histogram in [
            names::HTTP_SERVER_REQUEST_DURATION,
            names::KAFKA_PRODUCE_DURATION,
            names::CASSANDRA_QUERY_DURATION,
            names::DOCUMENTS_PIPELINE_LATENCY,
        ] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(histogram.to_owned()), &SECONDS)
                .expect("buckets are not empty");
        }
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder was installed first (a test harness): render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}
