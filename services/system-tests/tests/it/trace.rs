//! One trace per command, from the HTTP request through Kafka and Cassandra to SSE
//! delivery: producer, persister and notifier export their spans over OTLP to a real
//! receiver, and the test checks each trace's shape against the contract.

use std::collections::BTreeMap;
use std::time::Duration;

use events::{Event, EventType};
use system_tests::*;
use testkit::otlp::ReceivedSpan;
use testkit::sse::SseClient;

const WAIT: Duration = Duration::from_secs(30);

/// The spans every command's trace holds: (kind, name, consumer group or "").
const EXPECTED: [(&str, &str, &str); 5] = [
    ("PRODUCER", "{topic} publish", ""),
    ("CONSUMER", "{topic} process", "persister"),
    ("CLIENT", "cassandra write", ""),
    ("CONSUMER", "{topic} process", "notifier"),
    ("INTERNAL", "sse deliver", ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_is_one_trace_from_http_to_sse() {
    let receiver = receiver();
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let (persister, group) = spawn_persister(&topic, &dlq, &keyspace).await;
    let producer = spawn_producer(&topic).await;
    let notifier = spawn_notifier(&topic).await;
    let mut stream = SseClient::connect(&format!("{}/documents", notifier.address), None).await;
    stream.next_frame(WAIT).await.expect("opening frame");
    let api = testkit::Api::new(&producer.address, "http://unused");

    // Create, update, delete; each event names its trace in header.traceId.
    let id = api
        .create(r#"{"author":"Author1","text":"Some Text"}"#)
        .await;
    api.update(&format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .await;
    api.delete(id).await;
    let mut traces = BTreeMap::new();
    for frame in stream.events(3, WAIT).await {
        let event = Event::from_json(frame.data.unwrap().as_bytes()).unwrap();
        traces.insert(event.header.kind.as_str(), event.header.trace_id);
    }
    testkit::documents::wait_until_committed(&topic, &group).await;

    let expected_server = [
        (EventType::Create, "POST /documents"),
        (EventType::Update, "PUT /documents"),
        (EventType::Delete, "DELETE /documents/{id}"),
    ];
    for (kind, server_name) in expected_server {
        let trace_id = traces[kind.as_str()].clone();
        assert_eq!(trace_id.len(), 32);
        let spans = testkit::eventually(&format!("the {kind:?} trace to arrive"), WAIT, || {
            testkit::flush_telemetry();
            let spans = receiver.trace(&trace_id);
            let complete =
                spans.len() > EXPECTED.len() && spans.iter().any(|s| s.name == "sse deliver");
            std::future::ready(complete.then_some(spans))
        })
        .await;
        check_shape(&spans, server_name, &topic.name);
        if kind == EventType::Create {
            insta::assert_snapshot!(tree(&spans, &topic.name));
            // The persister's log line for this record carries the same trace id.
            let logged = testkit::log_lines().into_iter().any(|line| {
                line["message"] == "event applied" && line["trace_id"] == trace_id.as_str()
            });
            assert!(logged, "no persister log line with trace_id {trace_id}");
        }
    }

    producer.stop().await;
    notifier.stop().await;
    persister.stop().await;
}

/// One root (the SERVER span), and each span's parent and attributes as the contract says.
fn check_shape(spans: &[ReceivedSpan], server_name: &str, topic: &str) {
    let find = |kind: &str, name: &str, group: &str| -> &ReceivedSpan {
        let name = name.replace("{topic}", topic);
        let found: Vec<_> = spans
            .iter()
            .filter(|s| s.kind == kind && s.name == name)
            .filter(|s| {
                group.is_empty()
                    || s.attributes
                        .get("messaging.consumer.group.name")
                        .is_some_and(|g| g.contains(group))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {kind} {name} {group} span in {spans:#?}"
        );
        found[0]
    };
    let server = find("SERVER", server_name, "");
    let roots: Vec<_> = spans
        .iter()
        .filter(|s| !spans.iter().any(|p| p.span_id == s.parent_span_id))
        .collect();
    assert_eq!(roots.len(), 1, "exactly one root: {roots:#?}");
    assert_eq!(
        roots[0].span_id, server.span_id,
        "the root is the SERVER span"
    );
    for key in [
        "http.request.method",
        "http.route",
        "http.response.status_code",
    ] {
        assert!(server.attributes.contains_key(key), "SERVER lacks {key}");
    }
    let publish = find("PRODUCER", EXPECTED[0].1, "");
    assert_eq!(publish.parent_span_id, server.span_id);
    assert_eq!(publish.attributes["messaging.system"], "kafka");
    assert_eq!(publish.attributes["messaging.destination.name"], topic);
    assert!(
        publish
            .attributes
            .contains_key("messaging.kafka.message.key")
    );
    let persisted = find("CONSUMER", EXPECTED[1].1, "persister");
    assert_eq!(persisted.parent_span_id, publish.span_id);
    let write = find("CLIENT", EXPECTED[2].1, "");
    assert_eq!(write.parent_span_id, persisted.span_id);
    assert_eq!(write.attributes["db.system"], "cassandra");
    assert_eq!(write.attributes["db.collection.name"], "documents");
    assert!(write.attributes.contains_key("db.operation.name"));
    let notified = find("CONSUMER", EXPECTED[3].1, "notifier");
    assert_eq!(notified.parent_span_id, publish.span_id);
    let deliver = find("INTERNAL", EXPECTED[4].1, "");
    assert_eq!(deliver.parent_span_id, notified.span_id);
    assert_eq!(deliver.attributes["sse.clients_reached"], "1");
}

/// The trace as an indented tree of `KIND name [attribute keys]`, with the test topic's
/// random name replaced, children sorted: stable across runs.
fn tree(spans: &[ReceivedSpan], topic: &str) -> String {
    fn walk(
        spans: &[ReceivedSpan],
        parent: &str,
        depth: usize,
        topic: &str,
        out: &mut Vec<String>,
    ) {
        let mut children: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.parent_span_id == parent)
            .collect();
        children.sort_by_key(|s| {
            (
                s.name.clone(),
                s.attributes.get("messaging.consumer.group.name").cloned(),
            )
        });
        for span in children {
            let keys: Vec<&str> = span
                .attributes
                .keys()
                .map(String::as_str)
                .filter(|k| {
                    !k.starts_with("code.")
                        && !k.starts_with("thread.")
                        && *k != "busy_ns"
                        && *k != "idle_ns"
                        && *k != "target"
                        && *k != "level"
                })
                .collect();
            out.push(format!(
                "{}{} {} [{}]",
                "  ".repeat(depth),
                span.kind,
                span.name.replace(topic, "<topic>"),
                keys.join(", ")
            ));
            walk(spans, &span.span_id, depth + 1, topic, out);
        }
    }
    let root = spans
        .iter()
        .find(|s| !spans.iter().any(|p| p.span_id == s.parent_span_id))
        .expect("a root");
    let mut out = Vec::new();
    walk(spans, &root.parent_span_id, 0, topic, &mut out);
    out.join("\n")
}

/// Creates a document through `producer` with a caller's `traceparent` and returns the
/// SERVER span of that request, with the caller's trace id.
async fn server_span_of_a_traced_caller(producer: &testkit::RunningApp) -> (ReceivedSpan, String) {
    let caller_trace = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let created = testkit::http()
        .post(format!("{}/documents", producer.address))
        .header("content-type", events::mime::CREATE_DOCUMENT)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .body(r#"{"text":"from a traced caller"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let span = testkit::eventually("the request's SERVER span", WAIT, || {
        testkit::flush_telemetry();
        let found = receiver().spans().into_iter().find(|s| {
            s.kind == "SERVER"
                && (s.trace_id == caller_trace
                    || s.links.contains(&format!("{caller_trace}:{caller_span}")))
        });
        std::future::ready(found)
    })
    .await;
    (span, caller_trace)
}

/// An outside caller's trace context does not choose our trace: by default the request
/// starts a new trace that links to the caller's span; `HTTP_CALLER_TRACE=continue`
/// joins the caller's trace instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_traceparent_is_a_link_unless_told_to_continue_it() {
    let topic = testkit::infra().topic(1).await;

    let linking = spawn_producer(&topic).await;
    let (span, caller) = server_span_of_a_traced_caller(&linking).await;
    assert_ne!(span.trace_id, caller, "the caller chose our trace id");
    assert_eq!(span.parent_span_id, "", "a new trace begins at the edge");
    assert_eq!(span.links, [format!("{caller}:00f067aa0ba902b7")]);
    linking.stop().await;

    let continuing = spawn_producer_with(&topic, |config| {
        config.http.caller_trace = telemetry::http::CallerTrace::Continue;
    })
    .await;
    let (span, caller) = server_span_of_a_traced_caller(&continuing).await;
    assert_eq!(span.trace_id, caller);
    assert_eq!(span.parent_span_id, "00f067aa0ba902b7");
    continuing.stop().await;
}
