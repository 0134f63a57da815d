//! The seed's create / read / update / delete calls, and the contract's error table,
//! through the gateway of a running deployment.

use std::time::Duration;

use events::{Document, DocumentId, mime};
use reqwest::StatusCode;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

/// The document as the reader serves it now: `Some(None)` for 404.
async fn read(client: &reqwest::Client, base: &str, id: Uuid) -> Option<Option<Document>> {
    let response = client
        .get(format!("{base}/reader/documents/{id}"))
        .send()
        .await
        .ok()?;
    match response.status() {
        StatusCode::OK => {
            assert_eq!(response.headers()["content-type"], mime::DOCUMENT);
            Some(Some(response.json().await.ok()?))
        }
        StatusCode::NOT_FOUND => Some(None),
        _ => None,
    }
}

#[tokio::test]
async fn create_read_update_delete_through_the_gateway() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;

    let created = client
        .post(format!("{base}/producer/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"Author1", "text":"Some Text"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["content-type"], mime::DOCUMENT_ID);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = created.json::<DocumentId>().await.unwrap().id;
    assert_eq!(location, format!("/reader/documents/{id}"));

    // The Location is a gateway path: following it reads the document.
    let document = testkit::eventually("the created document to be readable", DEADLINE, || async {
        let response = client.get(format!("{base}{location}")).send().await.ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        response.json::<Document>().await.ok()
    })
    .await;
    assert_eq!(document.author.as_deref(), Some("Author1"));
    assert_eq!(document.text.as_deref(), Some("Some Text"));

    let updated = client
        .put(format!("{base}/producer/documents"))
        .header("content-type", mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","author":"Author2"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let document = testkit::eventually("the update to be readable", DEADLINE, || async {
        read(&client, &base, id)
            .await
            .flatten()
            .filter(|d| d.author.as_deref() == Some("Author2"))
    })
    .await;
    assert_eq!(
        document.text.as_deref(),
        Some("Some Text"),
        "update kept the text"
    );

    let deleted = client
        .delete(format!("{base}/producer/documents/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    testkit::eventually("the document to be gone", DEADLINE, || async {
        read(&client, &base, id).await.filter(Option::is_none)
    })
    .await;
}

#[tokio::test]
async fn the_error_table_holds_through_the_gateway() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let producer = format!("{base}/producer");
    for case in testkit::bad_commands() {
        testkit::assert_refused(&client, &producer, &case).await;
    }
    // The reader's own errors: 400 with a problem for a bad id, 404 with nothing.
    let bad_id = client
        .get(format!("{base}/reader/documents/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad_id.headers()["content-type"], mime::PROBLEM);
    let missing = client
        .get(format!("{base}/reader/documents/{}", Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await.unwrap(), "");
}

#[tokio::test]
async fn every_service_is_ready_behind_the_gateway() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    for service in ["producer", "reader", "notifier"] {
        let response = client
            .get(format!("{base}/{service}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{service} is not ready");
    }
}
