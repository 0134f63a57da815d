//! The integration tests of the notifier: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod frames;
mod layout;
mod openapi;
mod repeats;
mod replays;
mod sse;
mod token_parser;
