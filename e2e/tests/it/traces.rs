//! A command through the gateway makes one trace across the producer, persister and
//! notifier processes, in the Jaeger the deployment exports to (`CQRS_JAEGER`, default
//! the local one of `cargo xtask up`), read back through Jaeger's query API.

use std::collections::BTreeSet;
use std::time::Duration;

use events::{Event, EventType};
use serde_json::Value;
use testkit::sse::SseClient;

const DEADLINE: Duration = Duration::from_secs(60);

/// A span as Jaeger's API returns it, reduced to what the test checks.
#[derive(Debug)]
struct Span {
    id: String,
    parent: Option<String>,
    name: String,
    kind: String,
    service: String,
}

fn spans(trace: &Value) -> Vec<Span> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .map(|s| Span {
                    id: s["spanID"].as_str().unwrap_or_default().to_owned(),
                    parent: s["references"]
                        .as_array()
                        .and_then(|r| r.iter().find(|r| r["refType"] == "CHILD_OF"))
                        .and_then(|r| r["spanID"].as_str())
                        .map(str::to_owned),
                    name: s["operationName"].as_str().unwrap_or_default().to_owned(),
                    kind: s["tags"]
                        .as_array()
                        .and_then(|t| t.iter().find(|t| t["key"] == "span.kind"))
                        .and_then(|t| t["value"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    service: s["processID"]
                        .as_str()
                        .and_then(|p| processes[p]["serviceName"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_create_is_one_trace_across_the_services_in_jaeger() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let Some(jaeger) = e2e::beside_gateway("CQRS_JAEGER", || {
        format!(
            "http://127.0.0.1:{}",
            platform::observability::JAEGER_QUERY_PORT
        )
    }) else {
        return;
    };

    let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
    stream.next_frame(DEADLINE).await.expect("opening frame");
    let api = testkit::Api::new(&format!("{base}/producer"), &format!("{base}/reader"));
    let id = api.create(r#"{"author":"traced"}"#).await;
    let trace_id = loop {
        let frame = stream.next_event(DEADLINE).await;
        let event = Event::from_json(frame.data.unwrap_or_default().as_bytes()).unwrap();
        if event.payload.id == id && event.header.kind == EventType::Create {
            break event.header.trace_id;
        }
    };
    testkit::eventually("the document to be persisted", DEADLINE, || {
        api.read_document(id)
    })
    .await;

    let url = format!("{jaeger}/api/traces/{trace_id}");
    let spans = testkit::eventually(
        &format!("the spans of producer, persister and notifier at {url}"),
        DEADLINE,
        || async {
            let response = client.get(&url).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            let spans = spans(body["data"].get(0)?);
            let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
            let complete = ["producer", "persister", "notifier"]
                .iter()
                .all(|s| services.contains(s))
                && spans.iter().any(|s| s.name == "cassandra write")
                && spans.iter().any(|s| s.name == "sse deliver");
            complete.then_some(spans)
        },
    )
    .await;
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            !s.parent
                .as_ref()
                .is_some_and(|p| spans.iter().any(|o| &o.id == p))
        })
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    // The same trace through the gateway's read-only look-up route, as the GUI reads it.
    let through_gateway = format!(
        "{base}{}/api/traces/{trace_id}",
        platform::gateway::TRACES_PREFIX
    );
    let body: Value = client
        .get(&through_gateway)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = spans.len();
    let spans = self::spans(&body["data"][0]);
    assert!(
        spans.len() >= seen,
        "{through_gateway} has fewer spans than {url}"
    );
    assert_eq!(roots[0].service, "producer");
    assert_eq!(roots[0].kind, "server");
    assert_eq!(roots[0].name, "POST /documents");
}
