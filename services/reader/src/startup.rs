//! Building and running the reader: `Application::build` binds the port and connects to
//! Cassandra, `run_until_stopped` serves until the shutdown token is cancelled.

use anyhow::{Context, Result};
use store::DocumentReader;
use tokio_util::sync::CancellationToken;
use web::Shell;

use crate::Config;
use crate::positions::Positions;
use crate::routes;

/// A reader ready to serve.
#[derive(Debug)]
pub struct Application {
    shell: Shell,
    store: DocumentReader,
    config: Config,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        let shell = Shell::bind(&config.http).await?;
        let store = DocumentReader::open(&config.cassandra)
            .await
            .context("cannot open the read model in Cassandra")?;
        Ok(Self {
            shell,
            store,
            config,
        })
    }

    pub fn port(&self) -> u16 {
        self.shell.port()
    }

    /// Serves until `shutdown` is cancelled, then finishes requests in flight.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let store = self.store.clone();
        let ready = web::readiness(move || {
            let store = store.clone();
            async move { store.ping().await }
        });
        let positions = Positions::start(
            self.store.clone(),
            self.config.position_poll(),
            self.config.position_wait(),
            shutdown.child_token(),
        );
        self.shell
            .serve(routes::router(self.store, positions), ready, shutdown)
            .await?;
        tracing::info!("reader stopped");
        Ok(())
    }
}
