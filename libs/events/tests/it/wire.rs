//! Snapshots pin every wire format of the contract: a change to one of these files is a
//! change to the API that clients, the GUI and the other services see.

use chrono::DateTime;
use events::idempotency::{self, IdempotencyKey, Request};
use events::{CreateDocument, DocumentId, Event, Problem, ProblemKind, UpdateDocument};
use uuid::Uuid;

const DOCUMENT: Uuid = Uuid::from_u128(0x0f8e_1b4c_9a7d_4e21_8c3b_5d6f_7a8b_9c0d);
const EVENT_ID: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_8555_6666_7777_8888);
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Fixed ids and time, so that the snapshot shows the exact bytes.
fn pinned(mut event: Event) -> Event {
    event.header.id = EVENT_ID;
    event.header.timestamp = DateTime::from_timestamp_millis(1_795_788_551_123).unwrap();
    event
}

fn json(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn create_event() {
    let command: CreateDocument =
        serde_json::from_str(r#"{"author":"Author1", "text":"Some Text"}"#).unwrap();
    let event = pinned(Event::created(DOCUMENT, command, TRACE.into()));
    insta::assert_snapshot!(json(&event.to_json()));
    assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
    assert_eq!(event.key(), DOCUMENT.to_string());
}

#[test]
fn update_event_carries_null_for_fields_left_alone() {
    let command: UpdateDocument =
        serde_json::from_str(&format!(r#"{{"id":"{DOCUMENT}","author":"Author2"}}"#)).unwrap();
    let event = pinned(Event::updated(command, TRACE.into()));
    insta::assert_snapshot!(json(&event.to_json()));
    assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
}

#[test]
fn delete_event() {
    let event = pinned(Event::deleted(DOCUMENT, TRACE.into()));
    insta::assert_snapshot!(json(&event.to_json()));
}

#[test]
fn create_response() {
    let body = serde_json::to_string(&DocumentId { id: DOCUMENT }).unwrap();
    insta::assert_snapshot!(body);
}

#[test]
fn problem_bodies() {
    let kinds = [
        ProblemKind::UnsupportedMediaType,
        ProblemKind::MalformedJson,
        ProblemKind::InvalidCommand,
        ProblemKind::PayloadTooLarge,
        ProblemKind::InvalidParameter,
        ProblemKind::IdempotencyKeyReused,
        ProblemKind::Unavailable,
        ProblemKind::OutcomeUnknown,
        ProblemKind::NotCaughtUp,
        ProblemKind::TooManyRequests,
        ProblemKind::Internal,
    ];
    let bodies: Vec<String> = kinds
        .iter()
        .map(|&kind| json(&Problem::new(kind, "what was wrong, and the fix").to_json()))
        .collect();
    insta::assert_snapshot!(bodies.join("\n"));
}

#[test]
fn keyed_record_headers() {
    // A keyed command's record carries these headers besides `content-type` and the
    // trace context; the event JSON is the same as without a key.
    let key = IdempotencyKey::parse(b"\"order-42\"").unwrap();
    let command: CreateDocument =
        serde_json::from_str(r#"{"author":"Author1", "text":"Some Text"}"#).unwrap();
    let fingerprint = idempotency::fingerprint(Request::Create(&command));
    let lines: Vec<String> = idempotency::record_headers(&key, &fingerprint)
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn keyed_create_event() {
    // The ids of a keyed create come from its key: pinned, since a change would give a
    // retried command a second document.
    let key = IdempotencyKey::parse(b"order-42").unwrap();
    let command: CreateDocument =
        serde_json::from_str(r#"{"author":"Author1", "text":"Some Text"}"#).unwrap();
    let document = key.document_of_create();
    let mut event = Event::created(document, command, TRACE.into())
        .with_id(key.event_id(events::EventType::Create, document));
    event.header.timestamp = DateTime::from_timestamp_millis(1_795_788_551_123).unwrap();
    insta::assert_snapshot!(json(&event.to_json()));
}

#[test]
fn commands_refuse_what_the_contract_refuses() {
    // Unknown fields and wrong types are refused...
    assert!(serde_json::from_str::<CreateDocument>(r#"{"author":"a","title":"t"}"#).is_err());
    assert!(serde_json::from_str::<CreateDocument>(r#"{"author":1}"#).is_err());
    // ...an update needs an id, and a valid one...
    assert!(serde_json::from_str::<UpdateDocument>(r#"{"author":"a"}"#).is_err());
    assert!(serde_json::from_str::<UpdateDocument>(r#"{"id":"nope"}"#).is_err());
    // ...and every field of a create is optional.
    let empty: CreateDocument = serde_json::from_str("{}").unwrap();
    assert_eq!(
        empty,
        CreateDocument {
            author: None,
            text: None
        }
    );
}

#[test]
fn events_with_bad_timestamps_or_types_are_refused() {
    let good = json(&pinned(Event::deleted(DOCUMENT, TRACE.into())).to_json());
    assert!(Event::from_json(good.as_bytes()).is_ok());
    let bad_time = good.replace("2026-11-27T", "yesterday-");
    assert!(Event::from_json(bad_time.as_bytes()).is_err());
    let bad_type = good.replace("DELETE", "PURGE");
    assert!(Event::from_json(bad_type.as_bytes()).is_err());
}
