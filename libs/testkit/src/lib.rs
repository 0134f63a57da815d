//! The test kit: every test of the workspace reaches the real Kafka and Cassandra through
//! here, and gets a topic and a keyspace of its own that are removed when it ends.
//!
//! By default the servers are the ones `cargo xtask infra up` runs (addresses from
//! `KAFKA_BOOTSTRAP_SERVERS` and `CASSANDRA_CONTACT_POINTS`, local defaults otherwise).
//! When they do not answer, the test fails with a message that says to start them: a test
//! that cannot reach its servers never passes by skipping. With
//! `CQRS_TEST_INFRA=containers`, where a Docker engine runs, the kit starts Kafka and
//! ScyllaDB (Cassandra's wire protocol) with testcontainers instead.

mod api;
#[cfg(feature = "infra")]
mod app;
mod cases;
#[cfg(feature = "infra")]
mod containers;
#[cfg(feature = "infra")]
pub mod documents;
#[cfg(feature = "infra")]
pub mod faults;
mod helpers;
#[cfg(feature = "infra")]
mod infra;
#[cfg(feature = "infra")]
mod kafka;
#[cfg(feature = "infra")]
mod logs;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "sse")]
pub mod sse;

pub use api::Api;
#[cfg(feature = "infra")]
pub use app::{RunningApp, spawn};
pub use cases::{BadCommand, assert_refused, bad_commands};
pub use helpers::{assert_serves_openapi, eventually, http};
#[cfg(feature = "infra")]
pub use infra::*;
#[cfg(feature = "infra")]
pub use kafka::{
    committed_offsets, end_offsets, header, produce, produce_with_headers, read_records,
};
