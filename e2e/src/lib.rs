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

/// Where a service answers directly, not through the gateway: for what the gateway does
/// not route (metrics, readiness). `CQRS_<NAME>_URL` (e.g. `CQRS_PERSISTER_URL`) names it
/// for a remote deployment; otherwise the local port of `cargo xtask up`.
pub fn service_url(service: &platform::Service) -> String {
    let variable = format!("CQRS_{}_URL", service.name.to_uppercase());
    std::env::var(&variable)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", service.port))
        .trim_end_matches('/')
        .to_owned()
}

/// The variable that says how many replicas of each service the deployment runs locally
/// (`cargo xtask up --replicas N`; `cargo xtask e2e --replicas N` sets it).
pub const REPLICAS_VARIABLE: &str = "CQRS_REPLICAS";

/// Where each replica of `service` answers directly: `CQRS_<NAME>_URLS` (comma-separated)
/// for a remote deployment; otherwise the local ports of `CQRS_REPLICAS` replicas (1
/// when unset).
pub fn replica_urls(service: &platform::Service) -> Vec<String> {
    let variable = format!("CQRS_{}_URLS", service.name.to_uppercase());
    if let Ok(urls) = std::env::var(&variable)
        && !urls.trim().is_empty()
    {
        return urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .collect();
    }
    let replicas: u16 = std::env::var(REPLICAS_VARIABLE)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let first = service_url(service);
    (0..replicas.max(1))
        .map(|k| {
            if k == 0 {
                first.clone()
            } else {
                format!("http://127.0.0.1:{}", service.replica_port(k))
            }
        })
        .collect()
}
