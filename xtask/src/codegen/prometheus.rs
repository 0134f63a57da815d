//! The local Prometheus configuration, generated from the table of services in
//! `libs/platform`: one scrape job per service, so that `job` names the service.

use std::fmt::Write as _;

use platform::SERVICES;

use super::HEADER_NOTE;

/// The text of `observability/prometheus/prometheus.yml`.
pub fn prometheus_yml() -> String {
    prometheus_yml_for(1, "rules")
}

/// The configuration for `replicas` of each service (`cargo xtask up --replicas N` writes
/// it under target/, with `rules` the path of the rules directory).
pub fn prometheus_yml_for(replicas: u16, rules: &str) -> String {
    let mut jobs = String::new();
    for service in SERVICES {
        let targets: Vec<String> = (0..replicas.max(1))
            .map(|k| format!("\"127.0.0.1:{}\"", service.replica_port(k)))
            .collect();
        let _ = write!(
            jobs,
            "  - job_name: {name}\n    metrics_path: {path}\n    static_configs:\n      - targets: [{targets}]\n",
            name = service.name,
            path = service.metrics_path,
            targets = targets.join(", "),
        );
    }
    format!(
        "# Prometheus for the local system: `cargo xtask up` runs it on 127.0.0.1:{prometheus} with this\n\
         # file. Each service is a job of its own, so `job` names the service (the services put no\n\
         # `service` label on their metrics).\n\
         # {HEADER_NOTE}\n\
         global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n\n\
         rule_files:\n  - {rules}/recording.yml\n  - {rules}/alerts.yml\n\n\
         scrape_configs:\n{jobs}",
        prometheus = platform::observability::PROMETHEUS_PORT,
    )
}
