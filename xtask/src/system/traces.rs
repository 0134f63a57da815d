//! The local trace backend: Jaeger v2 (all-in-one, in-memory storage), built from the Go
//! module proxy with the version pinned in `observability/jaeger/go.mod`. It receives the
//! services' OTLP on 127.0.0.1:4317 (gRPC) and :4318 (HTTP) and answers its query API on
//! http://127.0.0.1:16686/api/ (no web UI: see [`summary`]). When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the services export
//! there instead and no Jaeger runs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::{paths, process, tools};

pub const UI_PORT: u16 = platform::observability::JAEGER_QUERY_PORT;
const OTLP_HTTP_PORT: u16 = platform::observability::OTLP_HTTP_PORT;
/// Every port `observability/jaeger/config.yaml` listens on: OTLP in, the query UI and its
/// gRPC API, the health check.
const PORTS: [u16; 5] = [
    platform::observability::OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    UI_PORT,
    QUERY_GRPC_PORT,
    HEALTH_PORT,
];
const QUERY_GRPC_PORT: u16 = 16685;
const HEALTH_PORT: u16 = 13133;

/// The configuration Jaeger runs with (loopback only, a bounded in-memory store).
fn config_path() -> PathBuf {
    paths::root().join("observability/jaeger/config.yaml")
}

/// Jaeger, pinned in `observability/jaeger/go.mod`.
const JAEGER: tools::GoTool = tools::GoTool {
    name: "jaeger",
    module_dir: "observability/jaeger",
    packages: &["github.com/jaegertracing/jaeger/cmd/jaeger"],
    ldflags: "",
    cold_build: "about 6 minutes",
};

/// The built Jaeger; its path is the marker that finds it.
pub fn binary() -> PathBuf {
    JAEGER.path()
}

fn log_path() -> PathBuf {
    paths::root().join("target/system/logs/jaeger.log")
}

/// Builds Jaeger when it is missing or `go.sum` changed since the last build.
pub fn build() -> Result<()> {
    JAEGER.ensure().map(drop)
}

/// Where the services should export: the user's endpoint, or the local Jaeger (started
/// here when needed).
pub fn start() -> Result<String> {
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !endpoint.is_empty()
    {
        eprintln!("The services export traces to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT).");
        return Ok(endpoint);
    }
    let endpoint = format!("http://127.0.0.1:{OTLP_HTTP_PORT}");
    let marker = binary().display().to_string();
    if let Some(pid) = process::pids(&marker)?.first() {
        eprintln!("Jaeger is already running (pid {pid}).");
        return Ok(endpoint);
    }
    build()?;
    for port in PORTS {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!(
                "port {port} (Jaeger) is already in use by a process `cargo xtask` did not \
                 start. If it is a trace backend, point the services at it with \
                 OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{OTLP_HTTP_PORT}; otherwise stop it"
            );
        }
    }
    let mut child = process::spawn_detached("Jaeger", &log_path(), {
        let mut jaeger = Command::new(binary());
        jaeger.arg("--config").arg(config_path());
        jaeger
    })?;
    let started = Instant::now();
    while super::services::probe(UI_PORT, "/").is_err()
        || std::net::TcpStream::connect(("127.0.0.1", OTLP_HTTP_PORT)).is_err()
    {
        if let Some(status) = child.try_wait()? {
            return Err(super::not_up(
                "Jaeger",
                &log_path(),
                &format!("exited ({status})"),
            ));
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(super::not_up(
                "Jaeger",
                &log_path(),
                "did not listen within 30s",
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "Jaeger receives OTLP on {endpoint}; its query API answers on http://127.0.0.1:{UI_PORT}/api/"
    );
    Ok(endpoint)
}

/// The `traces` line of `up`'s summary. The local Jaeger is built from its Go module, which
/// has no web UI (only a placeholder page), so no UI address is printed: the GUI's trace view
/// reads each trace through the gateway's read-only route, and so can a user.
pub fn summary(gateway: &str, otlp: &str) -> String {
    if otlp == format!("http://127.0.0.1:{OTLP_HTTP_PORT}") {
        format!(
            "{gateway}{}/api/traces/{{trace id}}   (Jaeger's query API; \
             click a notification in the GUI for its trace view)",
            platform::gateway::TRACES_PREFIX
        )
    } else {
        format!("exported to {otlp} (OTEL_EXPORTER_OTLP_ENDPOINT)")
    }
}

pub fn pid() -> Result<Option<i32>> {
    Ok(process::pids(&binary().display().to_string())?
        .first()
        .copied())
}

pub fn stop() -> Result<()> {
    process::stop(
        "Jaeger",
        &binary().display().to_string(),
        Signal::SIGTERM,
        Duration::from_secs(10),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `up` names no Jaeger UI: the local build has none, and its port answers with a
    /// placeholder page. The line names the gateway's look-up route, which answers.
    #[test]
    fn the_summary_names_the_trace_route_not_a_ui() {
        let local = format!("http://127.0.0.1:{OTLP_HTTP_PORT}");
        let line = summary(platform::gateway::LOCAL_URL, &local);
        let route = format!(
            "{}{}/api/traces/",
            platform::gateway::LOCAL_URL,
            platform::gateway::TRACES_PREFIX
        );
        assert!(line.starts_with(&route), "{line}");
        assert!(!line.contains(&UI_PORT.to_string()), "{line}");
        let elsewhere = summary(platform::gateway::LOCAL_URL, "http://collector:4318");
        assert_eq!(
            elsewhere,
            "exported to http://collector:4318 (OTEL_EXPORTER_OTLP_ENDPOINT)"
        );
    }

    /// The committed configuration listens on loopback, on exactly the ports xtask checks
    /// and the services export to, and bounds the in-memory store.
    #[test]
    fn the_jaeger_configuration_uses_the_platform_ports_and_bounds_memory() {
        let text = std::fs::read_to_string(config_path()).unwrap();
        let mut listened: Vec<u16> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("endpoint: 127.0.0.1:"))
            .map(|port| port.parse().unwrap())
            .collect();
        listened.sort_unstable();
        let mut expected = PORTS.to_vec();
        expected.sort_unstable();
        assert_eq!(listened, expected);
        assert!(!text.contains("0.0.0.0"), "loopback only");
        assert!(text.contains("max_traces: 10000"), "a bounded store");
    }
}
