//! The system tests: one binary (telemetry is set up once per process, exporting to the
//! receiver of `system_tests::receiver`).

mod pipeline;
mod read_your_writes;
mod trace;
