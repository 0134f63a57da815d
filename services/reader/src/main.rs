//! The reader binary: configuration from the environment, then the application until
//! SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use reader::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = telemetry::init("reader");
    let app = Application::build(config)
        .await
        .context("cannot start the reader")?;
    tracing::info!(port = app.port(), "reader listening");
    app.run_until_stopped(web::shutdown_on_signal()).await
}
