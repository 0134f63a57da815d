//! The producer binary: configuration from the environment, then the application until
//! SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use producer::{Application, Config};

/// mimalloc instead of the C library's malloc: allocation was about a tenth of each
/// service's CPU in the bench's profiles (`cargo xtask bench --profile`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = telemetry::init("producer");
    let app = Application::build(config)
        .await
        .context("cannot start the producer")?;
    tracing::info!(port = app.port(), "producer listening");
    app.run_until_stopped(web::shutdown_on_signal()).await
}
