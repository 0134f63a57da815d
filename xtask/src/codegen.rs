//! `cargo xtask codegen`: writes the generated files of the repository. Today the Grafana
//! data-flow dashboard, built here so that every query is written once and the JSON is
//! checked (a test fails when the committed file is stale, as in rust-analyzer).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::paths;

/// Where the dashboard is committed.
pub fn dashboard_path() -> PathBuf {
    paths::root().join("observability/grafana/dashboards/data-flow.json")
}

/// The dashboard file's text, as committed.
pub fn dashboard_text() -> String {
    let mut text = serde_json::to_string_pretty(&data_flow()).expect("JSON");
    text.push('\n');
    text
}

pub fn run() -> Result<()> {
    let path = dashboard_path();
    fs::write(&path, dashboard_text())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", paths::display(&path));
    crate::kube::manifests::write()?;
    Ok(())
}

const PROMETHEUS: &str = "prometheus";

/// A time-series panel: title, unit, queries (legend, expression), grid position.
fn panel(
    id: u32,
    title: &str,
    unit: &str,
    queries: &[(&str, &str)],
    pos: (u32, u32, u32, u32),
) -> Value {
    let targets: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (legend, expr))| {
            json!({
                "refId": char::from(b'A' + i as u8).to_string(),
                "datasource": { "type": "prometheus", "uid": PROMETHEUS },
                "expr": expr,
                "legendFormat": legend,
            })
        })
        .collect();
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": { "type": "prometheus", "uid": PROMETHEUS },
        "gridPos": { "x": pos.0, "y": pos.1, "w": pos.2, "h": pos.3 },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "targets": targets,
    })
}

/// A latency panel whose series lead to the service's traces in Jaeger for the time range
/// shown (the Prometheus exporter emits no exemplars).
fn latency_panel(
    id: u32,
    title: &str,
    service: &str,
    queries: &[(&str, &str)],
    pos: (u32, u32, u32, u32),
) -> Value {
    let mut panel = panel(id, title, "s", queries, pos);
    panel["fieldConfig"]["defaults"]["links"] = json!([{
        "title": format!("Traces of {service} in Jaeger"),
        "url": format!("${{jaeger}}/search?service={service}&start=${{__from}}000&end=${{__to}}000"),
        "targetBlank": true
    }]);
    panel
}

/// A single-number panel of the flow row.
fn stat(id: u32, title: &str, expr: &str, x: u32) -> Value {
    json!({
        "id": id,
        "type": "stat",
        "title": title,
        "datasource": { "type": "prometheus", "uid": PROMETHEUS },
        "gridPos": { "x": x, "y": 0, "w": 4, "h": 4 },
        "fieldConfig": { "defaults": { "unit": "reqps", "decimals": 1 }, "overrides": [] },
        "options": { "reduceOptions": { "calcs": ["lastNotNull"] }, "graphMode": "area" },
        "targets": [{
            "refId": "A",
            "datasource": { "type": "prometheus", "uid": PROMETHEUS },
            "expr": expr,
        }],
    })
}

/// The data-flow dashboard.
pub fn data_flow() -> Value {
    let consumed = |group: &str| {
        format!("sum(rate(kafka_messages_consumed_total{{group=~\"{group}\"}}[1m])) or vector(0)")
    };
    let panels = vec![
        // The flow, left to right: commands into Kafka, out to the persister and Cassandra,
        // out to the notifier and the browsers.
        stat(
            1,
            "producer → Kafka (commands/s)",
            "sum(command:requests:rate1m) or vector(0)",
            0,
        ),
        stat(
            2,
            "Kafka → persister (records/s)",
            &consumed(".*persister.*"),
            4,
        ),
        stat(
            3,
            "persister → Cassandra (writes/s)",
            "sum(rate(cassandra_query_duration_seconds_count{job=\"persister\"}[1m])) or vector(0)",
            8,
        ),
        stat(4, "Kafka → notifier (records/s)", &consumed("notifier"), 12),
        stat(
            5,
            "notifier → browsers (events/s)",
            "sum(rate(sse_events_sent_total[1m])) or vector(0)",
            16,
        ),
        stat(6, "browsers connected", "sum(sse_clients)", 20),
        panel(
            7,
            "Commands per second by type",
            "reqps",
            &[(
                "{{method}} {{status}}",
                "sum by (method, status) (command:requests:rate1m)",
            )],
            (0, 4, 12, 8),
        ),
        latency_panel(
            8,
            "Produce latency p99",
            "producer",
            &[("{{outcome}}", "topic:kafka_produce_duration_seconds:p99_1m")],
            (12, 4, 12, 8),
        ),
        panel(
            9,
            "Consumer lag by group and partition",
            "short",
            &[("{{group}} p{{partition}}", "kafka_consumer_lag")],
            (0, 12, 12, 8),
        ),
        latency_panel(
            10,
            "Cassandra latency p99 by operation",
            "persister",
            &[(
                "{{operation}}",
                "operation:cassandra_query_duration_seconds:p99_1m",
            )],
            (12, 12, 12, 8),
        ),
        latency_panel(
            11,
            "Pipeline latency: event to persisted / notified",
            "persister",
            &[
                (
                    "p50 {{stage}}",
                    "stage:documents_pipeline_latency_seconds:p50_1m",
                ),
                (
                    "p99 {{stage}}",
                    "stage:documents_pipeline_latency_seconds:p99_1m",
                ),
            ],
            (0, 20, 12, 8),
        ),
        panel(
            12,
            "SSE clients and events per second",
            "short",
            &[
                ("clients", "sum(sse_clients)"),
                ("events/s", "sum(rate(sse_events_sent_total[1m]))"),
            ],
            (12, 20, 12, 8),
        ),
        panel(
            13,
            "Dead letters (last 5 minutes) by reason",
            "short",
            &[(
                "{{reason}}",
                "sum by (reason) (increase(dlq_messages_total[5m]))",
            )],
            (0, 28, 12, 8),
        ),
        panel(
            14,
            "HTTP: 5xx ratio and requests by status",
            "short",
            &[
                ("5xx ratio {{job}}", "job:http_5xx:ratio1m{job=~\"$job\"}"),
                (
                    "{{job}} {{status}}/s",
                    "job:http_requests:rate1m{job=~\"$job\"}",
                ),
            ],
            (12, 28, 12, 8),
        ),
    ];
    json!({
        "uid": "kafka-cqrs-data-flow",
        "title": "kafka-cqrs data flow",
        "description": "Generated by `cargo xtask codegen` from xtask/src/codegen.rs: do not edit by hand.",
        "tags": ["kafka-cqrs"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": { "from": "now-15m", "to": "now" },
        "templating": { "list": [
            {
                "name": "job",
                "label": "service",
                "type": "query",
                "datasource": { "type": "prometheus", "uid": PROMETHEUS },
                "query": { "query": "label_values(up, job)", "refId": "job" },
                "definition": "label_values(up, job)",
                "includeAll": true,
                "multi": true,
                "current": { "text": "All", "value": "$__all" },
                "allValue": ".*",
                "refresh": 2
            },
            {
                "name": "jaeger",
                "label": "Jaeger URL",
                "type": "constant",
                "query": "http://127.0.0.1:16686",
                "hide": 2
            }
        ]},
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_committed_dashboard_is_up_to_date() {
        let committed = fs::read_to_string(dashboard_path()).unwrap_or_default();
        assert!(
            committed == dashboard_text(),
            "observability/grafana/dashboards/data-flow.json is stale: run `cargo xtask codegen`"
        );
    }

    #[test]
    fn the_dashboard_is_well_formed() {
        let dashboard = data_flow();
        let panels = dashboard["panels"].as_array().unwrap();
        let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), panels.len(), "panel ids are unique");
        // Every data source is one that provisioning defines.
        let provisioned = fs::read_to_string(
            paths::root().join("observability/grafana/provisioning/datasources/datasources.yml"),
        )
        .unwrap();
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for panel in panels {
            let uid = panel["datasource"]["uid"].as_str().unwrap();
            assert!(
                provisioned.contains(&format!("uid: {uid}")),
                "{uid} is not provisioned"
            );
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                // No dangling variables: every $name is defined.
                for (i, _) in expr.match_indices('$') {
                    let name: String = expr[i + 1..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(variables.contains(&name.as_str()), "${name} is not defined");
                }
            }
        }
    }

    #[test]
    fn panels_and_queries_are_pinned() {
        let dashboard = data_flow();
        let mut lines = vec![format!("uid {}", dashboard["uid"].as_str().unwrap())];
        for panel in dashboard["panels"].as_array().unwrap() {
            lines.push(format!(
                "{} [{}]",
                panel["title"].as_str().unwrap(),
                panel["type"].as_str().unwrap()
            ));
            for target in panel["targets"].as_array().unwrap() {
                lines.push(format!("    {}", target["expr"].as_str().unwrap()));
            }
        }
        insta::assert_snapshot!(lines.join("\n"));
    }
}
