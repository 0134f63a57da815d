//! A small trace backend for the local system: receives OTLP/HTTP spans
//! (`POST /v1/traces`) and serves each trace as JSON (`GET /api/traces/{trace_id}`), so
//! that the e2e tests can check that a command made one trace across the services.
//! `cargo xtask up` runs it on 127.0.0.1:4318 unless `OTEL_EXPORTER_OTLP_ENDPOINT`
//! points elsewhere.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "otlp-sink",
    about = "Receives OTLP/HTTP spans and serves them by trace id"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4318")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("otlp-sink listening on http://{}", listener.local_addr()?);
    testkit::otlp::OtlpReceiver::serve(listener).wait().await;
    Ok(())
}
