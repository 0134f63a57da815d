//! `cargo xtask up | down | status`: the whole system on this machine. The infrastructure
//! (`infra`), the services built with Cargo and started in the background with their logs
//! under `target/system/logs/`, and the nginx gateway on port 8080 in front of them.

pub mod containers;
mod gateway;
pub mod prometheus;
mod services;
mod traces;

use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::Signal;

use crate::{gui, infra, paths, process};

use services::{SERVICES, Service};

/// Options of `cargo xtask up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Build the services with optimisations (slower to build, faster to run).
    #[arg(long)]
    pub release: bool,
    /// Run the four services from their container images with podman (host network)
    /// instead of as local processes; `cargo xtask image` builds them first.
    #[arg(long, conflicts_with = "replicas")]
    pub containers: bool,
    /// Run N replicas of each service (replica k listens 100 × k ports above the first):
    /// the gateway balances between them, the persisters share the partitions in one
    /// consumer group, and Prometheus scrapes each. Running `up` again with another N
    /// starts the missing replicas and points the gateway at N (it stops none).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=platform::MAX_LOCAL_REPLICAS as i64))]
    pub replicas: u16,
}

impl UpArgs {
    /// The local system as the tests start it: debug build, one replica of each service.
    pub fn debug(replicas: u16) -> Self {
        Self {
            release: false,
            containers: false,
            replicas,
        }
    }
}

pub fn up(args: &UpArgs) -> Result<()> {
    let started = Instant::now();
    infra::up()?;
    if !args.containers {
        services::build(args.release)?;
    }
    gui::build()?;
    let otlp = traces::start()?;
    if args.containers {
        containers::start_all(&otlp, args.release)?;
    } else {
        for service in SERVICES {
            for replica in 0..args.replicas {
                services::start(service, replica, args.release, &otlp)?;
            }
        }
        for service in SERVICES {
            for replica in 0..args.replicas {
                services::wait_until_ready(service, replica)?;
            }
        }
    }
    gateway::start(args.replicas)?;
    prometheus::start(args.replicas)?;
    let gateway = format!("http://127.0.0.1:{}", platform::gateway::LOCAL_PORT);
    if args.replicas > 1 {
        println!(
            "\n{} replicas of each service run; the gateway balances between them.",
            args.replicas
        );
    }
    println!(
        "\nkafka-cqrs is up ({:.0}s). Through the gateway on {gateway}:\n  \
         GUI       {gateway}{gui}/\n  \
         producer  {gateway}/producer/documents   (POST, PUT, DELETE /{{id}})\n  \
         reader    {gateway}/reader/documents/{{id}}\n  \
         notifier  {gateway}/notifier/documents   (Server-Sent Events)\n  \
         traces    {traces}\n  \
         metrics   http://127.0.0.1:{prometheus} (Prometheus)\n\n\
         Try:\n  curl -i {gateway}/producer/documents \\\n    \
         -H 'Content-Type: application/vnd.kafka-cqrs.create-document.1+json' \\\n    \
         -d '{{\"author\":\"Author1\", \"text\":\"Some Text\"}}'\n\n\
         Logs: target/system/logs/   Status: cargo xtask status   Stop: cargo xtask down",
        started.elapsed().as_secs_f64(),
        gui = platform::gateway::GUI_PREFIX,
        traces = traces::summary(&gateway, &otlp),
        prometheus = platform::observability::PROMETHEUS_PORT,
    );
    Ok(())
}

pub fn down(clean: bool) -> Result<()> {
    stop_services_and_gateway()?;
    infra::down(clean)
}

/// Stops the gateway and the services, and leaves the infrastructure running.
pub fn stop_services_and_gateway() -> Result<()> {
    prometheus::stop()?;
    gateway::stop()?;
    for service in SERVICES.iter().rev() {
        stop_service(service)?;
    }
    containers::stop_all()?;
    traces::stop()
}

/// Builds the service binaries (Cargo does nothing when they are up to date).
pub fn services_build(release: bool) -> Result<()> {
    services::build(release)
}

pub use gateway::Gateway;
pub use services::{local_environment, probe};

/// Whether every service and the gateway run and answer.
pub fn is_up() -> bool {
    SERVICES
        .iter()
        .all(|s| services::probe(s.port, s.readiness_path).is_ok_and(|status| status == "200"))
        && process::pids(&gateway::marker()).is_ok_and(|p| !p.is_empty())
}

/// What `cargo xtask service` does to one service.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

/// The name `cargo xtask service` knows the local Jaeger by.
pub const JAEGER: &str = "jaeger";

/// `cargo xtask service start|stop|restart NAME`: one service of the running system, or
/// its Jaeger (the browser test restarts the notifier with it, and stops Jaeger to see
/// what the trace view says then).
pub fn service(action: Action, name: &str) -> Result<()> {
    if name == JAEGER {
        if matches!(action, Action::Stop | Action::Restart) {
            traces::stop()?;
        }
        if matches!(action, Action::Start | Action::Restart) {
            traces::start()?;
        }
        return Ok(());
    }
    let Some(service) = platform::service(name) else {
        anyhow::bail!(
            "no service named {name}: use one of {}, or {JAEGER}",
            SERVICES
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if matches!(action, Action::Stop | Action::Restart) {
        stop_service(service)?;
    }
    if matches!(action, Action::Start | Action::Restart) {
        let otlp = traces::start()?;
        services::start(service, 0, false, &otlp)?;
        services::wait_until_ready(service, 0)?;
    }
    Ok(())
}

fn stop_service(service: &Service) -> Result<()> {
    for release in [false, true] {
        let marker = services::binary(service, release).display().to_string();
        process::stop(
            service.name,
            &marker,
            Signal::SIGTERM,
            Duration::from_secs(20),
        )?;
    }
    Ok(())
}

pub fn status() -> Result<()> {
    infra::status()?;
    println!();
    println!(
        "{:<11} {:<8} {:<15} {:>7} {:>8}  ready",
        "service", "state", "address", "pid", "memory"
    );
    for service in SERVICES {
        for replica in 0..platform::MAX_LOCAL_REPLICAS {
            let pid = [false, true].into_iter().find_map(|release| {
                services::replica_pids(service, replica, release)
                    .ok()?
                    .first()
                    .copied()
            });
            // The first replica always has a row; the others when they run.
            if replica > 0 && pid.is_none() {
                continue;
            }
            let port = service.replica_port(replica);
            print_row(
                &services::replica_name(service, replica),
                &format!("127.0.0.1:{port}"),
                pid,
                || services::probe(port, "/readyz"),
            );
        }
    }
    let pid = process::pids(&gateway::marker())?.first().copied();
    let gateway = platform::gateway::LOCAL_PORT;
    print_row("gateway", &format!("127.0.0.1:{gateway}"), pid, || {
        services::probe(gateway, "/").map(|status| format!("answers ({status})"))
    });
    print_row(
        "prometheus",
        &format!("127.0.0.1:{}", prometheus::PORT),
        prometheus::pid()?,
        || {
            services::probe(prometheus::PORT, "/-/ready")
                .map(|status| format!("answers ({status})"))
        },
    );
    print_row(
        "jaeger",
        &format!("127.0.0.1:{}", traces::UI_PORT),
        traces::pid()?,
        || services::probe(traces::UI_PORT, "/").map(|status| format!("answers ({status})")),
    );
    Ok(())
}

fn print_row(name: &str, address: &str, pid: Option<i32>, probe: impl Fn() -> Result<String>) {
    let (state, pid, memory, ready) = match pid {
        None => ("stopped", "-".into(), "-".into(), "-".into()),
        Some(pid) => (
            "running",
            pid.to_string(),
            process::resident_mib(pid).map_or("?".into(), |m| format!("{m} MiB")),
            probe().unwrap_or_else(|e| format!("no ({e})")),
        ),
    };
    println!("{name:<11} {state:<8} {address:<15} {pid:>7} {memory:>8}  {ready}");
}

/// Fails with the tail of `log` when `what` did not come up.
fn not_up(what: &str, log: &std::path::Path, why: &str) -> anyhow::Error {
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = tail.lines().collect();
    let last = lines[lines.len().saturating_sub(20)..].join("\n");
    anyhow::anyhow!(
        "{what} {why}. Last lines of {}:\n{last}\n\nStop what was started with `cargo xtask down`.",
        paths::display(log)
    )
}
