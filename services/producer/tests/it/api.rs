//! The producer against the real Kafka: each command becomes one confirmed event, and bad
//! input gets the contract's problem and publishes nothing.

use events::{Event, EventType, Position, mime};
use rdkafka::Message;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::{TestApp, spawn_app};

async fn post(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    testkit::http()
        .post(format!("{}/documents", app.address))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// The `Document-Position` of a 2xx, which every one must carry.
pub fn position_of(response: &reqwest::Response) -> Position {
    let value = response
        .headers()
        .get(events::position::HEADER)
        .expect("a 2xx names its Document-Position");
    Position::parse(value.to_str().unwrap()).expect("a well-formed position")
}

#[tokio::test]
async fn create_answers_201_after_the_event_is_in_kafka() {
    let app = spawn_app().await;
    let response = post(
        &app,
        mime::CREATE_DOCUMENT,
        r#"{"author":"Author1", "text":"Some Text"}"#,
    )
    .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-type"], mime::DOCUMENT_ID);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let position = position_of(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(location, format!("/reader/documents/{id}"));

    // A 2xx means durable: the record is in the topic the moment the answer arrives, so
    // the end offsets say so at once, with no waiting (reading it back could wait out a
    // late write and hide an answer given too early).
    let end = testkit::end_offsets(&app.topic.name).await;
    assert_eq!(
        end.iter().sum::<i64>(),
        1,
        "the event is in the topic when the 201 arrives; end offsets {end:?}"
    );
    let records = testkit::read_records(&app.topic.name, 1).await;
    let record = &records[0];
    assert_eq!(
        position,
        Position::new(record.partition(), record.offset()),
        "Document-Position names where the event was stored"
    );
    assert_eq!(record.key(), Some(id.to_string().as_bytes()));
    assert_eq!(
        testkit::header(record, "content-type").as_deref(),
        Some(mime::EVENT)
    );
    let event = Event::from_json(record.payload().unwrap()).unwrap();
    assert_eq!(event.header.kind, EventType::Create);
    assert_eq!(event.payload.id, id);
    assert_eq!(event.payload.author.as_deref(), Some("Author1"));
    assert_eq!(event.payload.text.as_deref(), Some("Some Text"));
    let traceparent = testkit::header(record, "traceparent").expect("traceparent header");
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(event.header.trace_id.as_str())
    );
}

#[tokio::test]
async fn update_and_delete_publish_their_events_in_order() {
    let app = spawn_app().await;
    let id = Uuid::new_v4();
    let client = testkit::http();
    let update = client
        .put(format!("{}/documents", app.address))
        .header("content-type", mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), StatusCode::OK);
    assert_eq!(update.headers()["content-length"], "0");
    let updated = position_of(&update);
    let delete = client
        .delete(format!("{}/documents/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let deleted = position_of(&delete);

    // Both answers were 2xx, so both events are already in the topic.
    let end = testkit::end_offsets(&app.topic.name).await;
    assert_eq!(
        end.iter().sum::<i64>(),
        2,
        "both events are in the topic when the answers arrive; end offsets {end:?}"
    );
    let records = testkit::read_records(&app.topic.name, 2).await;
    let events: Vec<Event> = records
        .iter()
        .map(|r| Event::from_json(r.payload().unwrap()).unwrap())
        .collect();
    // Same key, so same partition, so this order.
    assert_eq!(records[0].partition(), records[1].partition());
    assert_eq!(
        [updated, deleted],
        [0, 1].map(|i| Position::new(records[i].partition(), records[i].offset())),
        "each answer names its own event's position"
    );
    assert_eq!(events[0].header.kind, EventType::Update);
    assert_eq!(events[0].payload.author.as_deref(), Some("Author2"));
    assert_eq!(events[0].payload.text, None);
    assert_eq!(events[1].header.kind, EventType::Delete);
    assert_eq!(
        (events[1].payload.id, &events[1].payload.author),
        (id, &None)
    );
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_publishes_nothing() {
    let app = spawn_app().await;
    let before = testkit::end_offsets(&app.topic.name).await;
    let client = testkit::http();
    for case in testkit::bad_commands() {
        testkit::assert_refused(&client, &app.address, &case).await;
    }
    // A valid command still goes through, and only it was published.
    let ok = post(&app, mime::CREATE_DOCUMENT, "{}").await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let after = testkit::end_offsets(&app.topic.name).await;
    let published: i64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    assert_eq!(
        published, 1,
        "bad input must publish nothing: {before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn a_body_of_exactly_64_kib_is_accepted() {
    let app = spawn_app().await;
    let overhead = r#"{"text":""}"#.len();
    let body = format!(
        r#"{{"text":"{}"}}"#,
        "x".repeat(web::MAX_BODY_BYTES - overhead)
    );
    assert_eq!(body.len(), web::MAX_BODY_BYTES);
    let response = post(&app, mime::CREATE_DOCUMENT, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let client = testkit::http();
    for path in ["/healthz", "/readyz"] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}
