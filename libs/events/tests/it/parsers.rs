//! The event and command parsers under generated input (proptest, on stable Rust): any
//! bytes are answered with a value or an error, never a panic, and every event the
//! platform can write reads back as itself.

use chrono::{TimeZone, Utc};
use events::{CreateDocument, Document, Event, EventHeader, EventType, Problem, UpdateDocument};
use proptest::prelude::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Text as clients send it: any Unicode, including quotes, escapes and control characters.
fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![
            Just(EventType::Create),
            Just(EventType::Update),
            Just(EventType::Delete)
        ],
        uuid(),
        // Any millisecond between 1970 and 2100.
        0i64..4_102_444_800_000,
        "[0-9a-f]{32}",
        uuid(),
        text(),
        text(),
    )
        .prop_map(
            |(kind, id, millis, trace_id, document, author, text)| Event {
                header: EventHeader {
                    kind,
                    id,
                    timestamp: Utc.timestamp_millis_opt(millis).unwrap(),
                    trace_id,
                },
                payload: Document {
                    id: document,
                    author,
                    text,
                },
            },
        )
}

/// JSON-ish bytes: mostly the characters JSON is made of, so that the parser goes deep.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "[{}\\[\\]\":,0-9a-zA-Z .\\-\\\\]{0,512}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_written_event_reads_back_as_itself(event in event()) {
        let read = Event::from_json(&event.to_json()).expect("an event the platform wrote");
        prop_assert_eq!(read, event);
    }

    #[test]
    fn any_bytes_are_an_event_or_an_error_never_a_panic(bytes in jsonish()) {
        let _ = Event::from_json(&bytes);
    }

    #[test]
    fn an_event_with_one_byte_changed_is_an_event_or_an_error(
        event in event(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = event.to_json();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(read) = Event::from_json(&bytes) {
            // Whatever parsed is a whole event that writes back to JSON.
            prop_assert!(Event::from_json(&read.to_json()).is_ok());
        }
    }

    #[test]
    fn any_bytes_are_a_command_or_an_error(bytes in jsonish()) {
        let _ = serde_json::from_slice::<CreateDocument>(&bytes);
        let _ = serde_json::from_slice::<UpdateDocument>(&bytes);
        let _ = serde_json::from_slice::<Problem>(&bytes);
    }
}
