//! The persister binary: configuration from the environment, then the application until
//! SIGTERM or Ctrl-C; or, as `persister migrate`, the schema's migrations alone.

use anyhow::Context;
use clap::Parser;
use persister::configuration::Command;
use persister::{Application, Config};

/// mimalloc instead of the C library's malloc: allocation was about a tenth of each
/// service's CPU in the bench's profiles (`cargo xtask bench --profile`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = telemetry::init("persister");
    if config.command == Some(Command::Migrate) {
        let migrated = store::migrate(&config.cassandra)
            .await
            .context("cannot apply the schema migrations")?;
        tracing::info!(
            keyspace = config.cassandra.keyspace,
            version = migrated.version,
            applied = ?migrated.applied,
            "the schema is at its newest migration"
        );
        return Ok(());
    }
    let app = Application::build(config)
        .await
        .context("cannot start the persister")?;
    tracing::info!(port = app.port(), "persister listening");
    app.run_until_stopped(web::shutdown_on_signal()).await
}
