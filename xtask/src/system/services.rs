//! The Rust services as background processes: built with Cargo, started with their port
//! and logs, and awaited until `/readyz` answers 200.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cmd, paths, process};

pub use platform::{SERVICES, Service};

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The built binary of `service`; its path is also the marker that finds the running
/// process.
pub fn binary(service: &Service, release: bool) -> PathBuf {
    let profile = if release { "release" } else { "debug" };
    target_dir().join(profile).join(service.name)
}

pub fn log_path(service: &Service) -> PathBuf {
    paths::root()
        .join("target/system/logs")
        .join(format!("{}.log", service.name))
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    paths::target_dir()
}

/// Builds every service binary (Cargo does nothing when they are up to date).
pub fn build(release: bool) -> Result<()> {
    eprintln!("Building the services...");
    let mut cargo = Command::new("cargo");
    cargo.current_dir(paths::root()).arg("build");
    if release {
        cargo.arg("--release");
    }
    for service in SERVICES {
        cargo.args(["--package", service.name, "--bin", service.name]);
    }
    cmd::run(&mut cargo)
}

/// Starts `service` unless it already runs. Its environment is xtask's own, so
/// `RUST_LOG` and the `OTEL_*` variables reach it, plus its address and the OTLP
/// endpoint to export traces to.
pub fn start(service: &Service, release: bool, otlp_endpoint: &str) -> Result<()> {
    let program = binary(service, release);
    let marker = program.display().to_string();
    if let Some(pid) = process::pids(&marker)?.first() {
        eprintln!("{} is already running (pid {pid}).", service.name);
        return Ok(());
    }
    let other = binary(service, !release).display().to_string();
    if let Some(pid) = process::pids(&other)?.first() {
        bail!(
            "{} already runs from the {} build (pid {pid}): stop it with `cargo xtask down` \
             first",
            service.name,
            if release { "debug" } else { "release" }
        );
    }
    if std::net::TcpListener::bind(("127.0.0.1", service.port)).is_err() {
        bail!(
            "port {} ({}) is already in use by a process `cargo xtask` did not start. Find it \
             with `ss -ltnp 'sport = :{}'`, stop it, and run `cargo xtask up` again",
            service.port,
            service.name,
            service.port
        );
    }
    let log = log_path(service);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut command = Command::new(&program);
    command
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", service.port.to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint);
    if std::env::var_os("OTEL_EXPORTER_OTLP_PROTOCOL").is_none() {
        command.env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    }
    process::spawn_detached(service.name, &log, command)?;
    Ok(())
}

/// Waits until `/readyz` of `service` answers 200, showing progress.
pub fn wait_until_ready(service: &Service) -> Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        match probe(service.port, service.readiness_path) {
            Ok(status) if status == "200" => {
                eprintln!(
                    "{} ready on 127.0.0.1:{} after {:.1}s",
                    service.name,
                    service.port,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            _ if started.elapsed() > READY_TIMEOUT => {
                return Err(super::not_up(
                    service.name,
                    &log_path(service),
                    &format!("was not ready within {}s", READY_TIMEOUT.as_secs()),
                ));
            }
            _ => {}
        }
        let running = process::pids(&binary(service, false).display().to_string())?.len()
            + process::pids(&binary(service, true).display().to_string())?.len();
        if running == 0 {
            return Err(super::not_up(service.name, &log_path(service), "exited"));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {} not ready yet ({}s; log: {})",
                service.name,
                started.elapsed().as_secs(),
                paths::display(&log_path(service))
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET path` on 127.0.0.1:`port`; returns the status code as text.
pub fn probe(port: u16, path: &str) -> Result<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
            .context("not listening")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .split_whitespace()
        .nth(1)
        .context("no HTTP status line")?;
    Ok(status.to_owned())
}
