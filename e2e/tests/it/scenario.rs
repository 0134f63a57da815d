//! The seed's scenario through the gateway: listen, then create, read, update, read,
//! delete and read again, receiving each event on the stream. Other traffic may share the
//! deployment, so the stream is searched for this document's events. Each read sends the
//! `Document-Position` of the command before it, so it sees that command at once: no
//! polling, no sleep (the seed's scenario slept a second before each read).

use std::time::{Duration, Instant};

use events::{Event, EventType, mime, position};
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

/// The `Document-Position` a 2xx command answer names.
fn position_of(response: &reqwest::Response) -> String {
    let value = response
        .headers()
        .get(position::HEADER)
        .expect("a 2xx command names its Document-Position")
        .to_str()
        .unwrap()
        .to_owned();
    events::Position::parse(&value).expect("a well-formed position");
    value
}

/// Reads `id` at `at`: the document, or `None` for 404 (any other status fails).
async fn read_at(
    client: &reqwest::Client,
    base: &str,
    id: Uuid,
    at: &str,
) -> Option<events::Document> {
    let response = client
        .get(format!("{base}/reader/documents/{id}"))
        .header(position::HEADER, at)
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => Some(response.json().await.unwrap()),
        404 => None,
        other => panic!("read of {id} at {at}: {other}"),
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

    // Create: 201 with the id and its position, then its CREATE event.
    let created = client
        .post(format!("{base}/producer/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"Author1", "text":"Some Text"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let at = position_of(&created);
    let id = created.json::<events::DocumentId>().await.unwrap().id;
    let (event, _) = receive(&mut stream, EventType::Create, id).await;
    assert_eq!(event.payload.author.as_deref(), Some("Author1"));
    assert_eq!(event.header.trace_id.len(), 32);

    // Read it at the create's position: there at once.
    let document = read_at(&client, &base, id, &at)
        .await
        .expect("the created document, read at its position");
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Update the author only, then its UPDATE event; the text stays.
    let updated = client
        .put(format!("{base}/producer/documents"))
        .header("content-type", mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let at = position_of(&updated);
    let (event, _) = receive(&mut stream, EventType::Update, id).await;
    assert_eq!(event.payload.author.as_deref(), Some("Author2"));
    assert_eq!(
        event.payload.text, None,
        "an update carries only what changed"
    );
    let document = read_at(&client, &base, id, &at)
        .await
        .expect("the updated document, read at its position");
    assert_eq!(document.author.as_deref(), Some("Author2"));
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Delete: 204, its DELETE event, then 404 at its position.
    let deleted = client
        .delete(format!("{base}/producer/documents/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let at = position_of(&deleted);
    let (_, last_id) = receive(&mut stream, EventType::Delete, id).await;
    assert_eq!(read_at(&client, &base, id, &at).await, None);

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
