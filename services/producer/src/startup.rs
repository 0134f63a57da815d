//! Building and running the producer: `Application::build` binds the port and connects,
//! `run_until_stopped` serves until the shutdown token is cancelled.

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use web::Shell;

use crate::Config;
use crate::kafka::Publisher;
use crate::routes;

/// A producer ready to serve.
#[derive(Debug)]
pub struct Application {
    shell: Shell,
    publisher: Publisher,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        let shell = Shell::bind(&config.http).await?;
        let publisher = Publisher::new(&config).context("cannot create the Kafka producer")?;
        Ok(Self { shell, publisher })
    }

    /// The port it listens on (useful when configured with 0).
    pub fn port(&self) -> u16 {
        self.shell.port()
    }

    /// Serves until `shutdown` is cancelled, then finishes requests in flight and waits for
    /// their records to be confirmed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let publisher = self.publisher.clone();
        let ready = web::readiness(move || {
            let publisher = publisher.clone();
            async move { publisher.ping().await }
        });
        self.shell
            .serve(routes::router(self.publisher.clone()), ready, shutdown)
            .await?;
        let publisher = self.publisher;
        tokio::task::spawn_blocking(move || publisher.flush()).await?;
        tracing::info!("producer stopped");
        Ok(())
    }
}
