//! The integration tests of the test kit: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod cassandra_roundtrip;
mod isolation;
mod kafka_roundtrip;
mod topics;
