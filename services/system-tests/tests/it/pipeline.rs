//! The command and query half end to end, in one process: producer, persister and reader
//! on a topic and keyspace of their own, driven over HTTP as a client would.

use std::time::Duration;

use system_tests::*;

#[tokio::test]
async fn create_read_update_delete() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let (persister, _group) = spawn_persister(&topic, &dlq, &keyspace).await;

    let producer = spawn_producer(&topic).await;
    let reader = spawn_reader(&keyspace).await;
    let api = testkit::Api::new(&producer.address, &reader.address);
    let deadline = Duration::from_secs(30);

    // Create, then read it.
    let id = api
        .create(r#"{"author":"Author1", "text":"Some Text"}"#)
        .await;
    let document = testkit::eventually("the created document to be readable", deadline, || {
        api.read_document(id)
    })
    .await;
    assert_eq!(
        (document.author.as_deref(), document.text.as_deref()),
        (Some("Author1"), Some("Some Text"))
    );

    // Update the author only: the text stays.
    api.update(&format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .await;
    let document = testkit::eventually("the update to be readable", deadline, || async {
        api.read_document(id)
            .await
            .filter(|d| d.author.as_deref() == Some("Author2"))
    })
    .await;
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Delete: then 404.
    api.delete(id).await;
    testkit::eventually("the document to be gone", deadline, || async {
        api.read(id).await.filter(Option::is_none)
    })
    .await;

    producer.stop().await;
    reader.stop().await;
    persister.stop().await;
}
