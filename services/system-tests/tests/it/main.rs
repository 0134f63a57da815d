//! The system tests: one binary (telemetry is set up once per process, exporting to the
//! receiver of `system_tests::receiver`).

mod pipeline;
mod trace;
