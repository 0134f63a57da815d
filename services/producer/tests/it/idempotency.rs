//! Commands with an `Idempotency-Key` against the real Kafka: the same key and request
//! give the same answer and the same event (id and document), a different request with
//! the key gets 422 and publishes nothing, and an invalid key gets 400.

use events::idempotency::{self, IdempotencyKey};
use events::{Event, EventType, mime};
use rdkafka::Message;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::api::position_of;
use crate::{TestApp, spawn_app};

/// A fresh key, unique to the test run.
fn new_key() -> String {
    format!("test-{}", Uuid::new_v4())
}

async fn create(app: &TestApp, key: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = testkit::http()
        .post(format!("{}/documents", app.address))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("request")
}

/// Every record of the app's topic, as events, with the idempotency headers.
async fn published(app: &TestApp) -> Vec<(Event, Option<String>, Option<String>)> {
    let count = testkit::end_offsets(&app.topic.name)
        .await
        .iter()
        .sum::<i64>();
    testkit::read_records(&app.topic.name, usize::try_from(count).unwrap())
        .await
        .iter()
        .map(|record| {
            (
                Event::from_json(record.payload().unwrap()).unwrap(),
                testkit::header(record, idempotency::record_header::IDEMPOTENCY_KEY),
                testkit::header(record, idempotency::record_header::REQUEST_FINGERPRINT),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_same_key_and_request_get_the_same_answer_and_the_same_event() {
    let app = spawn_app().await;
    let key = new_key();
    let body = r#"{"author":"A","text":"T"}"#;
    let first = create(&app, Some(&key), body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers()["location"].clone();
    let first_position = position_of(&first);
    let first: serde_json::Value = first.json().await.unwrap();
    // The same request, spelt differently: the same command.
    let again = create(
        &app,
        Some(&format!("\"{key}\"")),
        r#"{ "text":"T", "author":"A" }"#,
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(
        position_of(&again),
        first_position,
        "a repeat names the position of the first send"
    );
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first, again, "the same body: the same id");

    let id: Uuid = first["id"].as_str().unwrap().parse().unwrap();
    let parsed = IdempotencyKey::parse(key.as_bytes()).unwrap();
    assert_eq!(id, parsed.document_of_create(), "the id comes from the key");
    // Both sends are in the topic (the second may be a retry of a lost answer), as one
    // event: the same event id, which consumers apply once.
    let records = published(&app).await;
    assert_eq!(records.len(), 2);
    let stored = testkit::read_records(&app.topic.name, 1).await;
    assert_eq!(
        first_position,
        events::Position::new(stored[0].partition(), stored[0].offset())
    );
    for (event, record_key, fingerprint) in &records {
        assert_eq!(event.payload.id, id);
        assert_eq!(
            event.header.id,
            parsed.event_id(EventType::Create, id),
            "the event id comes from the key"
        );
        assert_eq!(record_key.as_deref(), Some(key.as_str()));
        assert_eq!(fingerprint, &records[0].2);
        assert!(fingerprint.is_some());
    }

    // Without a key, every create is a new document, as before.
    let a = create(&app, None, body)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let b = create(&app, None, body)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_ne!(a["id"], b["id"]);
    let unkeyed: Vec<_> = published(&app)
        .await
        .into_iter()
        .filter(|(event, _, _)| event.payload.id != id)
        .collect();
    assert_eq!(unkeyed.len(), 2);
    assert!(
        unkeyed
            .iter()
            .all(|(_, key, print)| key.is_none() && print.is_none()),
        "records of unkeyed commands carry no idempotency headers"
    );
}

#[tokio::test]
async fn update_and_delete_with_a_key_answer_the_same_and_publish_one_event_id() {
    let app = spawn_app().await;
    let client = testkit::http();
    let id = Uuid::new_v4();
    let (put_key, delete_key) = (new_key(), new_key());
    let mut positions = Vec::new();
    for _ in 0..2 {
        let update = client
            .put(format!("{}/documents", app.address))
            .header("content-type", mime::UPDATE_DOCUMENT)
            .header("idempotency-key", &put_key)
            .body(format!(r#"{{"id":"{id}","author":"B"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(update.status(), StatusCode::OK);
        positions.push(position_of(&update));
    }
    for _ in 0..2 {
        let delete = client
            .delete(format!("{}/documents/{id}", app.address))
            .header("idempotency-key", &delete_key)
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), StatusCode::NO_CONTENT);
        positions.push(position_of(&delete));
    }
    assert_eq!(
        positions[0], positions[1],
        "a repeated update: one position"
    );
    assert_eq!(
        positions[2], positions[3],
        "a repeated delete: one position"
    );
    assert!(positions[2].offset > positions[0].offset);
    let records = published(&app).await;
    let ids: Vec<(EventType, Uuid)> = records
        .iter()
        .map(|(e, _, _)| (e.header.kind, e.header.id))
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[1], "one event id per keyed update");
    assert_eq!(ids[2], ids[3], "one event id per keyed delete");
    assert_ne!(ids[0].1, ids[2].1);
    assert_eq!(ids[0].0, EventType::Update);
    assert_eq!(ids[2].0, EventType::Delete);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_and_publishes_nothing() {
    let app = spawn_app().await;
    let key = new_key();
    let first = create(&app, Some(&key), r#"{"author":"A"}"#).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let before = testkit::end_offsets(&app.topic.name).await;

    let other = create(&app, Some(&key), r#"{"author":"B"}"#).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.headers()["content-type"], mime::PROBLEM);
    let problem: serde_json::Value = other.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "urn:kafka-cqrs:problem:idempotency-key-reused"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(&key),
        "{problem}"
    );
    // A delete with the key is another request too.
    let id = Uuid::new_v4();
    let delete = testkit::http()
        .delete(format!("{}/documents/{id}", app.address))
        .header("idempotency-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        testkit::end_offsets(&app.topic.name).await,
        before,
        "a refused command publishes nothing"
    );
}

#[tokio::test]
async fn invalid_keys_get_400_naming_the_rule() {
    let app = spawn_app().await;
    for bad in [String::new(), "x".repeat(256), "two words".into()] {
        let response = create(&app, Some(&bad), "{}").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:kafka-cqrs:problem:invalid-parameter");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{problem}"
        );
    }
    assert_eq!(
        testkit::end_offsets(&app.topic.name)
            .await
            .iter()
            .sum::<i64>(),
        0
    );
}
