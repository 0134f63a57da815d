//! Several notifier replicas behind one gateway: a client that reconnects to another
//! replica with its last id resumes there with no gap, no duplicate and no spurious
//! `event: reset`. Each hop connects to one replica directly, makes changes through the
//! gateway, and resumes on the next replica (on one replica, the same one again).

use std::time::Duration;

use events::{Event, EventType};
use testkit::sse::SseClient;

const DEADLINE: Duration = Duration::from_secs(30);

/// The next event frame, parsed, with its id; a reset fails the test.
async fn next_event(stream: &mut SseClient) -> (Event, String) {
    let frame = stream
        .next_frame(DEADLINE)
        .await
        .expect("the stream goes on");
    assert_ne!(
        frame.event.as_deref(),
        Some("reset"),
        "a spurious reset: {frame:?}"
    );
    let event = Event::from_json(frame.data.as_deref().expect("an event").as_bytes())
        .unwrap_or_else(|e| panic!("not an event ({e}): {frame:?}"));
    (event, frame.id.expect("every event has an id"))
}

#[tokio::test]
async fn a_stream_resumes_on_another_notifier_replica_without_gap_duplicate_or_reset() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let api = testkit::Api::new(&format!("{base}/producer"), &format!("{base}/reader"));
    let Some(notifiers) = e2e::replica_urls(&platform::NOTIFIER) else {
        return;
    };
    println!("notifier replicas: {}", notifiers.join(", "));

    for (hop, from) in notifiers.iter().enumerate() {
        let to = &notifiers[(hop + 1) % notifiers.len()];
        // Listen on one replica, narrowed to a new document, and see it created.
        let mut first = SseClient::connect(&format!("{from}/documents"), None).await;
        assert_eq!(first.status, 200, "{from}");
        first.next_frame(DEADLINE).await.expect("an opening frame");
        let id = api
            .create(&format!(r#"{{"author":"hop{hop}", "text":"t"}}"#))
            .await;
        let token = loop {
            let (event, token) = next_event(&mut first).await;
            if event.payload.id == id {
                assert_eq!(event.header.kind, EventType::Create);
                break token;
            }
        };
        drop(first);

        // Changes while disconnected, then a resume on the next replica.
        for author in ["u1", "u2"] {
            api.update(&format!(r#"{{"id":"{id}","author":"{author}"}}"#))
                .await;
        }
        let mut resumed =
            SseClient::connect(&format!("{to}/documents?documentId={id}"), Some(&token)).await;
        assert_eq!(resumed.status, 200, "{to}");
        let opening = resumed
            .next_frame(DEADLINE)
            .await
            .expect("an opening frame");
        assert_eq!(opening.id.as_deref(), Some(token.as_str()), "{opening:?}");
        let mut authors = Vec::new();
        for _ in 0..2 {
            let (event, _) = next_event(&mut resumed).await;
            assert_eq!(event.header.kind, EventType::Update);
            authors.push(event.payload.author.unwrap_or_default());
        }
        assert_eq!(authors, ["u1", "u2"], "what was missed, once, in order");
        api.delete(id).await;
        let (event, _) = next_event(&mut resumed).await;
        assert_eq!(
            (event.header.kind, event.payload.id),
            (EventType::Delete, id),
            "then the live events, nothing repeated"
        );
        println!("hop {hop}: {from} -> {to}: resumed with no gap, duplicate or reset");
    }
}
