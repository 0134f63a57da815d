//! Read-your-writes across the services, in one process: the `Document-Position` a
//! producer's answer names, sent back to the reader, gives at least that write, because
//! the reader waits for the persister to apply it. The persister starts late here, so a
//! read that did not wait would find nothing.

use std::time::{Duration, Instant};

use events::{Position, mime, position};
use reqwest::StatusCode;
use system_tests::*;

fn position_of(response: &reqwest::Response) -> String {
    let value = response.headers()[position::HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    Position::parse(&value).expect("a well-formed position");
    value
}

#[tokio::test]
async fn reads_with_the_position_of_a_command_see_it() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let producer = spawn_producer(&topic).await;
    let reader = spawn_reader(&keyspace).await;
    let client = testkit::http();

    let created = client
        .post(format!("{}/documents", producer.address))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"A","text":"first"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let at = position_of(&created);
    let id = created.json::<events::DocumentId>().await.unwrap().id;
    let url = format!("{}/documents/{id}", reader.address);

    // No persister yet: a plain read finds nothing, a read at the position waits...
    let plain = client.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::NOT_FOUND);
    let started = Instant::now();
    let waiting = tokio::spawn({
        let (client, url, at) = (client.clone(), url.clone(), at.clone());
        async move { client.get(url).header(position::HEADER, at).send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "answered before the write was applied"
    );
    // ...until a persister applied it.
    let (persister, _group) = spawn_persister(&topic, &dlq, &keyspace).await;
    let response = waiting.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["text"], "first");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Each update, read back at once at its position, is never stale.
    for round in 0..50 {
        let text = format!("text {round}");
        let updated = client
            .put(format!("{}/documents", producer.address))
            .header("content-type", mime::UPDATE_DOCUMENT)
            .body(format!(r#"{{"id":"{id}","text":"{text}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(updated.status(), StatusCode::OK);
        let at = position_of(&updated);
        let read = client
            .get(format!("{url}?position={at}"))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK, "round {round}");
        let body: serde_json::Value = read.json().await.unwrap();
        assert_eq!(body["text"], text.as_str(), "a stale read in round {round}");
    }

    // A delete read back at its position is gone.
    let deleted = client
        .delete(format!("{}/documents/{id}", producer.address))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let at = position_of(&deleted);
    let read = client
        .get(&url)
        .header(position::HEADER, at)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    producer.stop().await;
    reader.stop().await;
    persister.stop().await;
}
