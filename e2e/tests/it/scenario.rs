//! The seed's scenario through the gateway: listen, then create, read, update, read,
//! delete and read again, receiving each event on the stream. Other traffic may share the
//! deployment, so the stream is searched for this document's events.

use std::time::{Duration, Instant};

use events::{Event, EventType, mime};
use testkit::sse::SseClient;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

/// Reads the stream until the event of `kind` about `document` arrives.
async fn receive(stream: &mut SseClient, kind: EventType, document: Uuid) -> (Event, String) {
    let started = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        assert!(
            !left.is_zero(),
            "no {kind:?} event for {document} within {DEADLINE:?}"
        );
        let frame = stream.next_event(left).await;
        let Ok(event) = Event::from_json(frame.data.as_deref().unwrap_or("").as_bytes()) else {
            continue;
        };
        if event.payload.id == document && event.header.kind == kind {
            return (event, frame.id.expect("every event has an id"));
        }
    }
}

#[tokio::test]
async fn create_update_delete_with_notifications() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;

    let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], mime::EVENT_STREAM);
    let opening = stream.next_frame(DEADLINE).await.expect("opening frame");
    assert!(opening.retry.is_some(), "a retry hint on connect");

    let api = testkit::Api::new(&format!("{base}/producer"), &format!("{base}/reader"));

    // Create: 201 with the id, then its CREATE event.
    let id = api
        .create(r#"{"author":"Author1", "text":"Some Text"}"#)
        .await;
    let (event, _) = receive(&mut stream, EventType::Create, id).await;
    assert_eq!(event.payload.author.as_deref(), Some("Author1"));
    assert_eq!(event.header.trace_id.len(), 32);

    // Read it: the persister may still be applying it, so poll with a deadline.
    let document = testkit::eventually("the document to be readable", DEADLINE, || {
        api.read_document(id)
    })
    .await;
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Update the author only, then its UPDATE event; the text stays.
    api.update(&format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .await;
    let (event, _) = receive(&mut stream, EventType::Update, id).await;
    assert_eq!(event.payload.author.as_deref(), Some("Author2"));
    assert_eq!(
        event.payload.text, None,
        "an update carries only what changed"
    );
    let document = testkit::eventually("the update to be readable", DEADLINE, || async {
        api.read_document(id)
            .await
            .filter(|d| d.author.as_deref() == Some("Author2"))
    })
    .await;
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Delete: 204, its DELETE event, then 404.
    api.delete(id).await;
    let (_, last_id) = receive(&mut stream, EventType::Delete, id).await;
    testkit::eventually("the document to be gone", DEADLINE, || async {
        api.read(id).await.filter(Option::is_none)
    })
    .await;

    // Resuming from the DELETE's id through the gateway starts after it.
    drop(stream);
    let mut resumed =
        SseClient::connect(&format!("{base}/notifier/documents"), Some(&last_id)).await;
    assert_eq!(resumed.status, 200);
    let opening = resumed.next_frame(DEADLINE).await.expect("opening frame");
    assert_eq!(opening.id.as_deref(), Some(last_id.as_str()));
}

/// The seed's own clients (its React GUI and its end-to-end scenario) call every route
/// with a trailing slash: `GET /notifier/documents/`, `POST /producer/documents/`, ... The
/// whole scenario runs that way, each call's answer compared with the contract's.
#[tokio::test]
async fn the_seed_clients_paths_with_trailing_slashes() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let mut stream = SseClient::connect(&format!("{base}/notifier/documents/"), None).await;
    assert_eq!(stream.status, 200, "GET /notifier/documents/");
    assert_eq!(stream.headers["content-type"], mime::EVENT_STREAM);

    let created = client
        .post(format!("{base}/producer/documents/"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"slash","text":"one"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "POST /producer/documents/");
    let id = created.json::<events::DocumentId>().await.unwrap().id;
    receive(&mut stream, EventType::Create, id).await;

    let read = |path: String| {
        let client = client.clone();
        async move {
            let response = client.get(path).send().await.ok()?;
            (response.status() == 200).then_some(response.json::<events::Document>().await.ok()?)
        }
    };
    let document = testkit::eventually("GET /reader/documents/{id}/", DEADLINE, || {
        read(format!("{base}/reader/documents/{id}/"))
    })
    .await;
    assert_eq!(document.text.as_deref(), Some("one"));

    let updated = client
        .put(format!("{base}/producer/documents/"))
        .header("content-type", mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","text":"two"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200, "PUT /producer/documents/");
    receive(&mut stream, EventType::Update, id).await;

    let deleted = client
        .delete(format!("{base}/producer/documents/{id}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204, "DELETE /producer/documents/{{id}}/");
    receive(&mut stream, EventType::Delete, id).await;
}
