//! Prometheus (from the system's packages) on 127.0.0.1:9090, scraping the services with
//! `observability/prometheus/prometheus.yml` and its rules; data under target/system.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::{cmd, paths, process};

pub const PORT: u16 = platform::observability::PROMETHEUS_PORT;

fn data_dir() -> PathBuf {
    paths::root().join("target/system/prometheus")
}

fn config() -> PathBuf {
    paths::root().join("observability/prometheus/prometheus.yml")
}

/// The `--storage.tsdb.path` argument, which finds our Prometheus among the processes.
fn marker() -> String {
    format!("--storage.tsdb.path={}", data_dir().display())
}

/// A program of the Prometheus package, or the command that installs it.
pub fn tool(name: &str) -> Result<Command> {
    match Command::new(name).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(Command::new(name)),
        _ => bail!(
            "cannot run `{name}`: install Prometheus (Debian/Ubuntu: `sudo apt-get install \
             prometheus`; it brings promtool) and run the command again"
        ),
    }
}

/// The configuration Prometheus runs with: the committed one's jobs, with a target for
/// each of `replicas` replicas of each service.
fn runtime_config() -> PathBuf {
    paths::root().join("target/system/prometheus.yml")
}

/// Starts Prometheus, scraping `replicas` of each service; when it runs already, rewrites
/// its configuration and has it reload (SIGHUP).
pub fn start(replicas: u16) -> Result<()> {
    let rules = paths::root().join("observability/prometheus/rules");
    std::fs::create_dir_all(data_dir())?;
    std::fs::write(
        runtime_config(),
        crate::codegen::prometheus::prometheus_yml_for(replicas, &rules.display().to_string()),
    )?;
    if let Some(&pid) = process::pids(&marker())?.first() {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP)?;
        eprintln!("Prometheus (pid {pid}) reloaded its configuration.");
        return Ok(());
    }
    let mut prometheus = tool("prometheus")?;
    if std::net::TcpListener::bind(("127.0.0.1", PORT)).is_err() {
        bail!(
            "port {PORT} (Prometheus) is already in use by a process `cargo xtask` did not \
             start (a system Prometheus? `sudo systemctl stop prometheus`). Stop it and run \
             `cargo xtask up` again"
        );
    }
    prometheus
        .arg(format!("--config.file={}", runtime_config().display()))
        .arg(marker())
        .arg(format!("--web.listen-address=127.0.0.1:{PORT}"))
        .arg("--storage.tsdb.retention.time=2d")
        .arg("--web.enable-lifecycle");
    let log = paths::root().join("target/system/logs/prometheus.log");
    let mut child = process::spawn_detached("Prometheus", &log, prometheus)?;
    let started = Instant::now();
    while super::services::probe(PORT, "/-/ready").map_or(true, |s| s != "200") {
        if let Some(status) = child.try_wait()? {
            return Err(super::not_up(
                "Prometheus",
                &log,
                &format!("exited ({status})"),
            ));
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(super::not_up(
                "Prometheus",
                &log,
                "was not ready within 30s",
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("Prometheus scrapes the services on http://127.0.0.1:{PORT}");
    Ok(())
}

pub fn pid() -> Result<Option<i32>> {
    Ok(process::pids(&marker())?.first().copied())
}

pub fn stop() -> Result<()> {
    process::stop(
        "Prometheus",
        &marker(),
        Signal::SIGTERM,
        Duration::from_secs(20),
    )?;
    Ok(())
}

/// `promtool check config`, `check rules` and `test rules`: the observability checks of
/// `cargo xtask test`.
pub fn check() -> Result<()> {
    let dir = paths::root().join("observability/prometheus");
    cmd::run(tool("promtool")?.args(["check", "config"]).arg(config()))?;
    let rules: Vec<PathBuf> = ["recording.yml", "alerts.yml"]
        .iter()
        .map(|f| dir.join("rules").join(f))
        .collect();
    cmd::run(tool("promtool")?.args(["check", "rules"]).args(&rules))?;
    cmd::run(tool("promtool")?.current_dir(dir.join("tests")).args([
        "test",
        "rules",
        "alerts_test.yml",
    ]))
}
