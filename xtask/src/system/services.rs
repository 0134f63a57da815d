//! The Rust services as background processes: built with Cargo, started with their port
//! and logs, and awaited until `/readyz` answers 200. Replica `k` of a service listens on
//! `Service::replica_port(k)`; its `--http-port=PORT` argument finds its process.

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

/// The name of replica `replica` in logs and messages: `notifier`, `notifier-2`, ...
pub fn replica_name(service: &Service, replica: u16) -> String {
    if replica == 0 {
        service.name.to_owned()
    } else {
        format!("{}-{}", service.name, replica + 1)
    }
}

pub fn log_path(service: &Service, replica: u16) -> PathBuf {
    paths::root()
        .join("target/system/logs")
        .join(format!("{}.log", replica_name(service, replica)))
}

/// The argument that sets a replica's port, and finds its process.
/// The environment of one replica on this machine, as a process or a container on the
/// host's network: the platform's launch description (loopback, the replica's port, the
/// trace receiver; Kafka and Cassandra at the services' local defaults), with what the
/// shell that ran xtask chose: its `RUST_LOG` and `OTEL_*` variables win, and its resource
/// attributes are kept beside the replica's instance id.
pub fn local_environment(
    service: &Service,
    replica: u16,
    otlp_endpoint: &str,
) -> Vec<(&'static str, String)> {
    let name = replica_name(service, replica);
    let launch = platform::Launch {
        host: "127.0.0.1",
        port: service.replica_port(replica),
        kafka: None,
        cassandra: None,
        otlp: Some(otlp_endpoint),
        // Each replica after the first is its own instance in the traces.
        instance: (replica > 0).then_some(name.as_str()),
    };
    let shell = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    service
        .environment(&launch)
        .into_iter()
        .filter_map(|(key, value)| match key {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some((key, value)),
            "OTEL_RESOURCE_ATTRIBUTES" => Some((
                key,
                shell(key).map_or(value.clone(), |given| format!("{given},{value}")),
            )),
            _ if key.starts_with("OTEL_") && shell(key).is_some() => None,
            _ => Some((key, value)),
        })
        .collect()
}

fn port_argument(service: &Service, replica: u16) -> String {
    format!("--http-port={}", service.replica_port(replica))
}

/// The running processes of one replica of `service` from the given build.
pub fn replica_pids(service: &Service, replica: u16, release: bool) -> Result<Vec<i32>> {
    let program = binary(service, release).display().to_string();
    process::pids_with(&[&program, &port_argument(service, replica)])
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

/// Starts replica `replica` of `service` unless it already runs. Its environment is
/// xtask's own, so `RUST_LOG` and the `OTEL_*` variables reach it, plus its address and
/// the OTLP endpoint to export traces to.
pub fn start(service: &Service, replica: u16, release: bool, otlp_endpoint: &str) -> Result<()> {
    let name = replica_name(service, replica);
    let port = service.replica_port(replica);
    if let Some(pid) = replica_pids(service, replica, release)?.first() {
        eprintln!("{name} is already running (pid {pid}).");
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
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} ({name}) is already in use by a process `cargo xtask` did not start. \
             Find it with `ss -ltnp 'sport = :{port}'`, stop it, and run `cargo xtask up` again"
        );
    }
    let log = log_path(service, replica);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut command = Command::new(binary(service, release));
    command
        .arg(port_argument(service, replica))
        .envs(local_environment(service, replica, otlp_endpoint));
    process::spawn_detached(&name, &log, command)?;
    Ok(())
}

/// Waits until `/readyz` of replica `replica` of `service` answers 200, showing progress.
pub fn wait_until_ready(service: &Service, replica: u16) -> Result<()> {
    let name = replica_name(service, replica);
    let port = service.replica_port(replica);
    let log = log_path(service, replica);
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        match probe(port, service.readiness_path) {
            Ok(status) if status == "200" => {
                eprintln!(
                    "{name} ready on 127.0.0.1:{port} after {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            _ if started.elapsed() > READY_TIMEOUT => {
                return Err(super::not_up(
                    &name,
                    &log,
                    &format!("was not ready within {}s", READY_TIMEOUT.as_secs()),
                ));
            }
            _ => {}
        }
        let running = replica_pids(service, replica, false)?.len()
            + replica_pids(service, replica, true)?.len();
        if running == 0 {
            return Err(super::not_up(&name, &log, "exited"));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {name} not ready yet ({}s; log: {})",
                started.elapsed().as_secs(),
                paths::display(&log)
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
