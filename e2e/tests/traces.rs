//! A command through the gateway makes one trace across the producer, persister and
//! notifier processes, in the trace backend the deployment exports to (the local sink of
//! `cargo xtask up`, or any backend with the same API at `CQRS_TRACES_URL`).

use std::collections::BTreeSet;
use std::time::Duration;

use events::{Event, EventType};
use testkit::otlp::ReceivedSpan;
use testkit::sse::SseClient;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_create_is_one_trace_across_the_services() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let traces =
        std::env::var("CQRS_TRACES_URL").unwrap_or_else(|_| "http://127.0.0.1:4318".into());

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

    let url = format!("{traces}/api/traces/{trace_id}");
    let spans: Vec<ReceivedSpan> = testkit::eventually(
        &format!("spans of producer, persister and notifier at {url}"),
        DEADLINE,
        || async {
            let response = client.get(&url).send().await.ok()?;
            let spans: Vec<ReceivedSpan> = response.json().await.ok()?;
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
    let roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| !spans.iter().any(|p| p.span_id == s.parent_span_id))
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!(roots[0].service, "producer");
    assert_eq!(roots[0].kind, "SERVER");
    assert_eq!(roots[0].name, "POST /documents");
}
