//! Opt-in (`CQRS_TEST_INFRA=containers`): Kafka and ScyllaDB started with testcontainers,
//! for machines that have a Docker engine and no JDK. ScyllaDB stands in for Cassandra
//! because testcontainers-modules has no Cassandra module; both speak CQL v4.

use testcontainers_modules::kafka::apache::Kafka;
use testcontainers_modules::scylladb::ScyllaDB;
use testcontainers_modules::testcontainers::runners::SyncRunner;
use testcontainers_modules::testcontainers::{Container, ImageExt};

/// The running containers; they stop when this is dropped (or the process exits and
/// testcontainers' cleanup runs).
pub struct Running {
    pub bootstrap: String,
    pub contact_points: String,
    _kafka: Container<Kafka>,
    _scylla: Container<ScyllaDB>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("bootstrap", &self.bootstrap)
            .field("contact_points", &self.contact_points)
            .finish_non_exhaustive()
    }
}

/// Starts both containers, or panics with what went wrong (usually: no Docker engine).
pub fn start() -> Running {
    let hint = "CQRS_TEST_INFRA=containers needs a running Docker engine; without one, \
        unset it and run `cargo xtask infra up` instead";
    let kafka = Kafka::default()
        .with_tag("4.1.1")
        .start()
        .unwrap_or_else(|e| panic!("cannot start the Kafka container: {e}. {hint}"));
    let kafka_port = kafka
        .get_host_port_ipv4(testcontainers_modules::kafka::apache::KAFKA_PORT)
        .unwrap_or_else(|e| panic!("Kafka container has no mapped port: {e}"));
    let scylla = ScyllaDB::default()
        .start()
        .unwrap_or_else(|e| panic!("cannot start the ScyllaDB container: {e}. {hint}"));
    let cql_port = scylla
        .get_host_port_ipv4(9042)
        .unwrap_or_else(|e| panic!("ScyllaDB container has no mapped port: {e}"));
    Running {
        bootstrap: format!("127.0.0.1:{kafka_port}"),
        contact_points: format!("127.0.0.1:{cql_port}"),
        _kafka: kafka,
        _scylla: scylla,
    }
}
