//! The local Prometheus configuration, generated from the table of services in
//! `libs/platform`: one scrape job per service, so that `job` names the service.

use std::fmt::Write as _;

use platform::SERVICES;

use super::HEADER_NOTE;

/// The text of `observability/prometheus/prometheus.yml`.
pub fn prometheus_yml() -> String {
    let mut jobs = String::new();
    for service in SERVICES {
        let _ = write!(
            jobs,
            "  - job_name: {name}\n    metrics_path: {path}\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n",
            name = service.name,
            path = service.metrics_path,
            port = service.port,
        );
    }
    format!(
        "# Prometheus for the local system: `cargo xtask up` runs it on 127.0.0.1:{prometheus} with this\n\
         # file. Each service is a job of its own, so `job` names the service (the services put no\n\
         # `service` label on their metrics).\n\
         # {HEADER_NOTE}\n\
         global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n\n\
         rule_files:\n  - rules/recording.yml\n  - rules/alerts.yml\n\n\
         scrape_configs:\n{jobs}",
        prometheus = platform::observability::PROMETHEUS_PORT,
    )
}
