//! The integration tests of the wire formats: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod parsers;
mod wire;
