//! The seed's create / read / update / delete calls, and the contract's error table,
//! through the gateway of a running deployment.

use std::time::Duration;

use events::{Document, mime};
use reqwest::StatusCode;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_location_of_a_created_document_is_a_gateway_path() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let created = client
        .post(format!("{base}/producer/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"text":"located"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = created.json::<events::DocumentId>().await.unwrap().id;
    assert_eq!(location, format!("/reader/documents/{id}"));
    let document: Document =
        testkit::eventually("the Location to be readable", DEADLINE, || async {
            let response = client.get(format!("{base}{location}")).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(response.json().await.ok()?)
        })
        .await;
    assert_eq!(document.text.as_deref(), Some("located"));
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
