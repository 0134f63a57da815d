//! The gui-server binary: serves the GUI until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use gui_server::{Config, router};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address} (set HTTP_PORT to a free port)"))?;
    eprintln!(
        "gui-server serves {} on http://{address}/gui/",
        config.dir.display()
    );
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => eprintln!("SIGTERM received: shutting down"),
            _ = tokio::signal::ctrl_c() => eprintln!("Ctrl-C received: shutting down"),
        }
    };
    axum::serve(listener, router(&config.dir))
        .with_graceful_shutdown(stop)
        .await
        .context("the server failed")
}
