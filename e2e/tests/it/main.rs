//! The integration tests of a running deployment, through its gateway: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod api;
mod dashboards;
mod limits;
mod methods;
mod metrics;
mod read_your_writes;
mod replicas;
mod scenario;
mod traces;
