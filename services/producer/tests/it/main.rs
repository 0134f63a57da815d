//! The integration tests of the producer: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod api;
mod idempotency;
mod openapi;
mod outage;
