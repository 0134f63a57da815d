//! `cargo xtask up --containers`: the four services run from their images (`cargo xtask
//! image`) with podman instead of as local processes, on the host's network (so that they reach the local
//! Kafka, Cassandra and Jaeger as the processes do, and the gateway reaches them on the
//! same ports), with a read-only root filesystem as in Kubernetes. `cargo xtask down`
//! stops them.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::image::{DEFAULT_PROFILE, local_reference, podman};
use crate::{cmd, system};

/// Containers are named `kafka-cqrs-<service>`, which is also how `down` finds them.
const NAME_PREFIX: &str = "kafka-cqrs-";

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long podman waits after SIGTERM before it kills (the processes get 20s as well).
const STOP_GRACE_SECS: u32 = 20;

/// Builds the images and runs one container per service, each awaited until ready.
pub fn start_all(otlp_endpoint: &str, release: bool) -> Result<()> {
    let profile = if release { "release" } else { DEFAULT_PROFILE };
    let built = crate::image::build(profile)?;
    for service in platform::SERVICES {
        let name = format!("{NAME_PREFIX}{}", service.name);
        if running().contains(&name) {
            eprintln!("{name} is already running.");
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", service.port)).is_err() {
            bail!(
                "port {} ({}) is already in use: stop the local services with `cargo xtask \
                 down` before `cargo xtask up --containers`",
                service.port,
                service.name
            );
        }
        let Some(image) = built.iter().find(|b| b.image.name == service.name) else {
            bail!("no image was built for {}", service.name);
        };
        let mut run = podman::command("podman");
        run.args(["run", "--detach", "--replace", "--name", &name])
            .args(["--network", "host", "--read-only"])
            .arg(format!("--stop-timeout={STOP_GRACE_SECS}"));
        for (key, value) in system::local_environment(service, 0, otlp_endpoint) {
            run.arg("--env").arg(format!("{key}={value}"));
        }
        // What the local processes inherit from xtask's environment, a container must be
        // given.
        for (key, value) in std::env::vars() {
            if key == "RUST_LOG"
                || (key.starts_with("OTEL_")
                    && !matches!(
                        key.as_str(),
                        "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_RESOURCE_ATTRIBUTES"
                    ))
            {
                run.arg("--env").arg(format!("{key}={value}"));
            }
        }
        run.arg(local_reference(&image.reference));
        cmd::run(run.stdout(std::process::Stdio::null()))?;
    }
    for service in platform::SERVICES {
        wait_until_ready(service)?;
    }
    Ok(())
}

/// Waits until `/readyz` of the service's container answers 200.
fn wait_until_ready(service: &platform::Service) -> Result<()> {
    let name = format!("{NAME_PREFIX}{}", service.name);
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if system::probe(service.port, service.readiness_path).is_ok_and(|s| s == "200") {
            eprintln!(
                "{name} ready on 127.0.0.1:{} after {:.1}s",
                service.port,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        let exited = !running().contains(&name);
        if exited || started.elapsed() > READY_TIMEOUT {
            let logs = cmd::output(podman::command("podman").args(["logs", "--tail", "20", &name]))
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_default();
            bail!(
                "{name} {}. Its last lines (`podman logs {name}`):\n{logs}\n\
                 Stop what was started with `cargo xtask down`.",
                if exited {
                    "exited".to_owned()
                } else {
                    format!("was not ready within {}s", READY_TIMEOUT.as_secs())
                }
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {name} not ready yet ({}s; logs: podman logs {name})",
                started.elapsed().as_secs()
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The names of the running service containers; none when podman is not installed.
pub fn running() -> Vec<String> {
    list(false)
}

/// The service containers, running or not.
fn list(all: bool) -> Vec<String> {
    let mut ps = podman::command("podman");
    ps.arg("ps");
    if all {
        ps.arg("--all");
    }
    ps.args([
        "--filter",
        &format!("name=^{NAME_PREFIX}"),
        "--format",
        "{{.Names}}",
    ]);
    match ps.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Stops and removes the service containers (SIGTERM first, in reverse start order).
pub fn stop_all() -> Result<()> {
    let present = list(true);
    for service in platform::SERVICES.iter().rev() {
        let name = format!("{NAME_PREFIX}{}", service.name);
        if !present.contains(&name) {
            continue;
        }
        eprintln!("Stopping the {name} container...");
        let mut stop = podman::command("podman");
        stop.args(["stop", &format!("--time={STOP_GRACE_SECS}"), &name]);
        cmd::run(stop.stdout(std::process::Stdio::null()))?;
        cmd::run(
            podman::command("podman")
                .args(["rm", "--force", &name])
                .stdout(std::process::Stdio::null()),
        )?;
    }
    Ok(())
}
