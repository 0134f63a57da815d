//! The command and query half end to end, in one process: producer, persister and reader
//! on a topic and keyspace of their own, driven over HTTP as a client would.

mod common;

use std::time::Duration;

use common::*;
use events::{Document, mime};
use reqwest::StatusCode;
use uuid::Uuid;

#[tokio::test]
async fn create_read_update_delete() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;

    let producer =
        producer::Application::build(producer::Config::for_tests(&infra.bootstrap, &topic.name))
            .await
            .unwrap();
    let producer = testkit::spawn(producer.port(), |stop| producer.run_until_stopped(stop));
    let producer_url = format!("{}/documents", producer.address);
    let reader = reader::Application::build(reader::Config::for_tests(
        &infra.contact_points,
        keyspace.name(),
    ))
    .await
    .unwrap();
    let reader = testkit::spawn(reader.port(), |stop| reader.run_until_stopped(stop));
    let reader_url = format!("{}/documents", reader.address);
    let http = testkit::http();

    let read = |id: Uuid| {
        let (http, url) = (http.clone(), format!("{reader_url}/{id}"));
        async move {
            let response = http.get(url).send().await.ok()?;
            match response.status() {
                StatusCode::OK => Some(Some(response.json::<Document>().await.ok()?)),
                StatusCode::NOT_FOUND => Some(None),
                _ => None,
            }
        }
    };
    let deadline = Duration::from_secs(30);

    // Create, then read it.
    let created = http
        .post(&producer_url)
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"Author1", "text":"Some Text"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<events::DocumentId>().await.unwrap().id;
    let document = testkit::eventually("the created document to be readable", deadline, || async {
        read(id).await.flatten()
    })
    .await;
    assert_eq!(
        (document.author.as_deref(), document.text.as_deref()),
        (Some("Author1"), Some("Some Text"))
    );

    // Update the author only: the text stays.
    let updated = http
        .put(&producer_url)
        .header("content-type", mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let document = testkit::eventually("the update to be readable", deadline, || async {
        read(id)
            .await
            .flatten()
            .filter(|d| d.author.as_deref() == Some("Author2"))
    })
    .await;
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    // Delete: then 404.
    let deleted = http
        .delete(format!("{producer_url}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    testkit::eventually("the document to be gone", deadline, || async {
        read(id).await.filter(Option::is_none)
    })
    .await;

    producer.stop().await;
    reader.stop().await;
    persister.stop().await;
}
