//! The dashboards are proven against the running system: after some traffic, every query
//! of the data-flow dashboard and every recording rule returns at least one series from
//! the live Prometheus that scrapes the services (`CQRS_PROMETHEUS`, default the local
//! one of `cargo xtask up`).

use std::path::PathBuf;
use std::time::Duration;

use testkit::sse::SseClient;

const DEADLINE: Duration = Duration::from_secs(90);

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every expression of the dashboard, template variables filled in, and without the
/// `or vector(0)` fallbacks (the real query must return data on its own).
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        repository().join("observability/grafana/dashboards/data-flow.json"),
    )
    .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let expr = expr.replace("$job", ".*").replace(" or vector(0)", "");
            queries.push((panel["title"].as_str().unwrap_or_default().to_owned(), expr));
        }
    }
    queries
}

/// The recorded series names of the recording rules.
fn recording_rules() -> Vec<String> {
    let text =
        std::fs::read_to_string(repository().join("observability/prometheus/rules/recording.yml"))
            .expect("the recording rules");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- record:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_and_recording_rule_returns_data() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let Some(prometheus) = e2e::beside_gateway("CQRS_PROMETHEUS", || {
        format!(
            "http://127.0.0.1:{}",
            platform::observability::PROMETHEUS_PORT
        )
    }) else {
        return;
    };

    // A load that touches every part (a listener, creates, updates, reads, deletes) and
    // keeps going, bounded, while the queries run: rates and quantiles look at the last
    // minute, so traffic must not stop before every query was answered.
    let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
    stream
        .next_frame(Duration::from_secs(30))
        .await
        .expect("opening frame");
    let api = testkit::Api::new(&format!("{base}/producer"), &format!("{base}/reader"));
    let load = tokio::spawn(async move {
        for i in 0..600 {
            let id = api
                .create(&format!(r#"{{"author":"load","text":"{i}"}}"#))
                .await;
            api.update(&format!(r#"{{"id":"{id}","text":"again {i}"}}"#))
                .await;
            testkit::eventually("the document", Duration::from_secs(30), || {
                api.read_document(id)
            })
            .await;
            if i % 2 == 0 {
                api.delete(id).await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        drop(stream);
    });

    let mut queries = dashboard_queries();
    queries.extend(
        recording_rules()
            .into_iter()
            .map(|r| ("recording rule".to_owned(), r)),
    );
    let mut report = Vec::new();
    for (panel, query) in &queries {
        let url = format!("{prometheus}/api/v1/query");
        let value = testkit::eventually(
            &format!("{query:?} ({panel}) to return data"),
            DEADLINE,
            || async {
                let response = client
                    .get(&url)
                    .query(&[("query", query.as_str())])
                    .send()
                    .await
                    .ok()?;
                let body: serde_json::Value = response.json().await.ok()?;
                assert_eq!(body["status"], "success", "{query} fails: {body}");
                let result = body["data"]["result"].as_array()?;
                // A series whose value is a number: a quantile over a window without
                // samples is NaN, which would draw nothing.
                let first = result
                    .iter()
                    .find(|series| series["value"][1].as_str().is_some_and(|v| v != "NaN"))?;
                Some(format!(
                    "{} series, e.g. {} = {}",
                    result.len(),
                    first["metric"],
                    first["value"][1]
                ))
            },
        )
        .await;
        report.push(format!("{panel}: {query}\n    {value}"));
    }
    load.abort();
    println!("{}", report.join("\n"));
}
