//! The wire format of the stream, pinned: the frames of a create, an update and a delete,
//! with ids, timestamps and trace ids redacted.

use std::time::Duration;

use events::{CreateDocument, Event, UpdateDocument, mime};
use notifier::{Application, Config};
use testkit::sse::SseClient;
use uuid::Uuid;

#[tokio::test]
async fn frames_of_a_create_update_delete_sequence() {
    let topic = testkit::infra().topic(1).await;
    let app = Application::build(Config::for_tests(&testkit::infra().bootstrap, &topic.name))
        .await
        .unwrap();
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let mut client = SseClient::connect(&format!("{}/documents", app.address), None).await;
    client.next_frame(Duration::from_secs(20)).await.unwrap();

    let id = Uuid::new_v4();
    let trace = || Uuid::new_v4().simple().to_string();
    let create = CreateDocument {
        author: Some("Author1".into()),
        text: Some("Some Text".into()),
    };
    let update = UpdateDocument {
        id,
        author: Some("Author2".into()),
        text: None,
    };
    for event in [
        Event::created(id, create, trace()),
        Event::updated(update, trace()),
        Event::deleted(id, trace()),
    ] {
        testkit::produce(
            &topic.name,
            &event.key(),
            &event.to_json(),
            Some(mime::EVENT),
        )
        .await;
    }
    client.events(3, Duration::from_secs(20)).await;

    let redacted = redact(&client.transcript, id);
    insta::assert_snapshot!(redacted);
}

/// Replaces what changes from run to run with stable placeholders.
fn redact(transcript: &str, document: Uuid) -> String {
    let mut text = transcript.replace(&document.to_string(), "<document>");
    for (prefix, end, placeholder) in [
        ("\"id\":\"", "\"", "<event id>"),
        ("\"timestamp\":\"", "\"", "<timestamp>"),
        ("\"traceId\":\"", "\"", "<trace id>"),
    ] {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(prefix) {
            let value_start = start + prefix.len();
            let value_end = value_start + rest[value_start..].find(end).unwrap();
            out.push_str(&rest[..value_start]);
            let value = &rest[value_start..value_end];
            out.push_str(if value == "<document>" {
                value
            } else {
                placeholder
            });
            rest = &rest[value_end..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}
