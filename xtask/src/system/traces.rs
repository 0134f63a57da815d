//! The local trace backend: `otlp-sink` (from `e2e/`) on 127.0.0.1:4318, receiving the
//! services' OTLP/HTTP spans and serving them by trace id for the e2e tests. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the services export there instead and no sink
//! runs.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::{paths, process};

pub const PORT: u16 = 4318;

/// The built sink; its path is the marker that finds it.
pub fn binary() -> std::path::PathBuf {
    super::services::target_dir()
        .join("debug")
        .join("otlp-sink")
}

fn log_path() -> std::path::PathBuf {
    paths::root().join("target/system/logs/otlp-sink.log")
}

/// Where the services should export: the user's endpoint, or the local sink (started
/// here when needed).
pub fn start() -> Result<String> {
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !endpoint.is_empty()
    {
        eprintln!("The services export traces to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT).");
        return Ok(endpoint);
    }
    let endpoint = format!("http://127.0.0.1:{PORT}");
    let marker = binary().display().to_string();
    if let Some(pid) = process::pids(&marker)?.first() {
        eprintln!("The trace sink is already running (pid {pid}).");
        return Ok(endpoint);
    }
    if std::net::TcpListener::bind(("127.0.0.1", PORT)).is_err() {
        bail!(
            "port {PORT} (OTLP/HTTP) is already in use by a process `cargo xtask` did not \
             start. If it is a trace backend, point the services at it with \
             OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{PORT}; otherwise stop it"
        );
    }
    let mut command = Command::new(binary());
    command.args(["--listen", &format!("127.0.0.1:{PORT}")]);
    let mut child = process::spawn_detached("trace sink", &log_path(), command)?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", PORT)).is_err() {
        if let Some(status) = child.try_wait()? {
            return Err(super::not_up(
                "the trace sink",
                &log_path(),
                &format!("exited ({status})"),
            ));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(super::not_up(
                "the trace sink",
                &log_path(),
                "did not listen within 10s",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("Trace sink receives OTLP/HTTP on {endpoint}");
    Ok(endpoint)
}

pub fn pid() -> Result<Option<i32>> {
    Ok(process::pids(&binary().display().to_string())?
        .first()
        .copied())
}

pub fn stop() -> Result<()> {
    process::stop(
        "trace sink",
        &binary().display().to_string(),
        Signal::SIGTERM,
        Duration::from_secs(5),
    )?;
    Ok(())
}
