//! The integration tests of the persister: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod common;
mod idempotent;
mod ordering;
mod outage;
mod positions;
mod projection;
