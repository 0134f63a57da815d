//! The integration tests of the reader: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod api;
mod openapi;
mod outage;
mod positions;
