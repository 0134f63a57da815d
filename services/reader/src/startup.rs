//! Building and running the reader: `Application::build` binds the port and connects to
//! Cassandra, `run_until_stopped` serves until the shutdown token is cancelled.

use anyhow::{Context, Result};
use axum::Router;
use store::DocumentReader;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::routes;

/// A reader ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    store: DocumentReader,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        telemetry::install_metrics();
        let store = DocumentReader::open(&config.cassandra)
            .await
            .context("cannot open the read model in Cassandra")?;
        let listener = config.http.bind().await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then finishes requests in flight.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let store = self.store.clone();
        let ready = web::readiness(move || {
            let store = store.clone();
            async move { store.ping().await }
        });
        let router = telemetry::http::instrument(
            Router::new()
                .merge(routes::router(self.store))
                .merge(web::health_routes(ready))
                .merge(telemetry::http::metrics_route()),
        );
        web::serve(self.listener, router, shutdown).await?;
        tracing::info!("reader stopped");
        Ok(())
    }
}
