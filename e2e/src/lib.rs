//! Tests against a running deployment, through its gateway: the local one that
//! `cargo xtask up` starts, minikube's ingress, or an EC2 instance. They need nothing
//! but the gateway's URL, so they never look inside the servers.
//!
//! Run them with `cargo xtask e2e [--gateway URL]`; `cargo xtask test` runs them against
//! the system it starts.

/// The variable that names the gateway under test.
pub const GATEWAY_VARIABLE: &str = "CQRS_GATEWAY";
/// The local gateway of `cargo xtask up`.
pub const DEFAULT_GATEWAY: &str = platform::gateway::LOCAL_URL;

/// The gateway's base URL, without a trailing slash.
pub fn gateway() -> String {
    std::env::var(GATEWAY_VARIABLE)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_GATEWAY.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Fails the test with what to do when the gateway does not answer at all.
pub async fn check_gateway(client: &reqwest::Client) -> String {
    let base = gateway();
    if let Err(error) = client.get(format!("{base}/")).send().await {
        panic!(
            "the gateway at {base} does not answer ({error}). Start the system with \
             `cargo xtask up`, or point {GATEWAY_VARIABLE} at a running deployment"
        );
    }
    base
}

/// Whether the gateway under test is the local system's (`cargo xtask up`). Only then do
/// the local defaults of what the suite reaches besides the gateway apply.
pub fn is_local() -> bool {
    gateway() == DEFAULT_GATEWAY
}

/// Says that a test is skipped and why, where a test run shows it: libtest captures what
/// `eprintln!` writes from a passing test, not what is written to stderr itself.
pub fn skipped(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped against {}: {reason}", gateway());
}

/// `true` (and the reason said) when the gateway under test is not the local system's:
/// for tests of what only the local system has, such as the local nginx's total cap.
pub fn local_only(reason: &str) -> bool {
    if is_local() {
        return false;
    }
    skipped(reason);
    true
}

/// What the suite reaches besides the gateway (Prometheus, Jaeger's query API, a service
/// directly): the value of `variable` (`cargo xtask deploy` prints these for a
/// deployment's port-forwards); else, against the local system, `local`; else `None`, and
/// the test says it is skipped and which variable would include it.
pub fn beside_gateway(variable: &str, local: impl FnOnce() -> String) -> Option<String> {
    if let Ok(value) = std::env::var(variable)
        && !value.trim().is_empty()
    {
        return Some(value.trim().trim_end_matches('/').to_owned());
    }
    if is_local() {
        return Some(local());
    }
    skipped(&format!(
        "it reaches more than the gateway; set {variable} (a port-forward) to include it"
    ));
    None
}

/// Where a service answers directly, not through the gateway: for what the gateway does
/// not route (metrics, readiness). `CQRS_<NAME>_URL` (e.g. `CQRS_PERSISTER_URL`) names it
/// for a deployment; against the local system, its port of `cargo xtask up`.
pub fn service_url(service: &platform::Service) -> Option<String> {
    beside_gateway(&format!("CQRS_{}_URL", service.name.to_uppercase()), || {
        format!("http://127.0.0.1:{}", service.port)
    })
}

/// The variable that says how many replicas of each service the deployment runs locally
/// (`cargo xtask up --replicas N`; `cargo xtask e2e --replicas N` sets it).
pub const REPLICAS_VARIABLE: &str = "CQRS_REPLICAS";

/// Where each replica of `service` answers directly: `CQRS_<NAME>_URLS` (comma-separated)
/// for a deployment; against the local system, the local ports of `CQRS_REPLICAS` replicas
/// (1 when unset).
pub fn replica_urls(service: &platform::Service) -> Option<Vec<String>> {
    let variable = format!("CQRS_{}_URLS", service.name.to_uppercase());
    let urls = beside_gateway(&variable, || {
        let replicas: u16 = std::env::var(REPLICAS_VARIABLE)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        (0..replicas.max(1))
            .map(|k| format!("http://127.0.0.1:{}", service.replica_port(k)))
            .collect::<Vec<_>>()
            .join(",")
    })?;
    Some(
        urls.split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .collect(),
    )
}
