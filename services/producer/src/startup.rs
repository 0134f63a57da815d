//! Building and running the producer: `Application::build` binds the port and connects,
//! `run_until_stopped` serves until the shutdown token is cancelled.

use anyhow::{Context, Result};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::kafka::Publisher;
use crate::routes;

/// A producer ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    publisher: Publisher,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        telemetry::install_metrics();
        let publisher = Publisher::new(&config).context("cannot create the Kafka producer")?;
        let listener = config.http.bind().await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            publisher,
        })
    }

    /// The port it listens on (useful when configured with 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then finishes requests in flight and waits for
    /// their records to be confirmed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let publisher = self.publisher.clone();
        let ready = web::readiness(move || {
            let publisher = publisher.clone();
            async move { publisher.ping().await }
        });
        let router = telemetry::http::instrument(
            Router::new()
                .merge(routes::router(self.publisher.clone()))
                .merge(web::health_routes(ready))
                .merge(telemetry::http::metrics_route()),
        );
        web::serve(self.listener, router, shutdown).await?;
        let publisher = self.publisher;
        tokio::task::spawn_blocking(move || publisher.flush()).await?;
        tracing::info!("producer stopped");
        Ok(())
    }
}
