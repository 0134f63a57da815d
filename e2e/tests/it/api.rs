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

/// Public through the gateway: the API and `/healthz`. Metrics and readiness are for
/// Prometheus and the probes, which reach each service directly: the gateway answers 404
/// with a problem body, with or without a trailing slash.
#[tokio::test]
async fn only_public_paths_are_routed() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    for service in platform::SERVICES {
        let Some(route) = service.route else { continue };
        let prefix = format!("{base}{}", route.prefix);
        let health = client
            .get(format!("{prefix}{}", service.liveness_path))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK, "{} /healthz", service.name);
        for path in [service.metrics_path, service.readiness_path] {
            for url in [format!("{prefix}{path}"), format!("{prefix}{path}/")] {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
                assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{url}");
            }
        }
        // Still served to whoever reaches the service itself.
        if let Some(direct) = e2e::service_url(service) {
            let direct = client
                .get(format!("{direct}{}", service.metrics_path))
                .send()
                .await
                .unwrap();
            assert_eq!(direct.status(), StatusCode::OK, "{} metrics", service.name);
        }
    }
}

/// Of Jaeger, only the look-up of one trace by its id is public, and only to read: its
/// searches, services list and UI stay unrouted (404 problem, as any unrouted path), and a
/// write method is refused (405).
#[tokio::test]
async fn only_trace_lookups_are_routed_to_jaeger() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let prefix = format!("{base}{}", platform::gateway::TRACES_PREFIX);
    // A trace id Jaeger has never seen: Jaeger's own answer, so the route reaches it.
    let unknown = format!("{prefix}/api/traces/{:032x}", 0x5eed_u128);
    let response = client.get(&unknown).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
    assert_ne!(
        response.headers()["content-type"],
        mime::PROBLEM,
        "{unknown}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["errors"].is_array(), "not Jaeger's answer: {body}");

    for path in [
        "/",
        "/search",
        "/api/services",
        "/api/traces?service=producer",
        "/api/traces/not-a-trace-id",
        "/api/traces/0123456789abcdef0123456789abcdef/extra",
        "/api/v3/traces/0123456789abcdef0123456789abcdef",
    ] {
        let url = format!("{prefix}{path}");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
        assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{url}");
    }
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let response = client
            .request(method.clone(), &unknown)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {unknown}"
        );
    }
}

/// A body well over the command limit stops at the gateway, answered as a problem; a
/// body just over it still reaches the producer, whose 413 says so (the error table).
#[tokio::test]
async fn the_gateway_stops_large_bodies() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let body = format!(
        r#"{{"text":"{}"}}"#,
        "x".repeat(platform::gateway::MAX_BODY_KIB as usize * 1024 * 2)
    );
    let response = client
        .post(format!("{base}/producer/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    let detail = response.json::<events::Problem>().await.unwrap().detail;
    assert!(
        detail.contains("gateway"),
        "not the gateway's refusal: {detail}"
    );
}

/// Each service's OpenAPI 3.1 description is public through the gateway, under its prefix.
#[tokio::test]
async fn every_service_describes_its_api_through_the_gateway() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    for service in platform::SERVICES {
        let Some(route) = service.route else { continue };
        let url = format!("{base}{}/openapi.json", route.prefix);
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let description: serde_json::Value = response.json().await.unwrap();
        assert_eq!(description["openapi"], "3.1.0", "{url}");
        assert!(
            description["paths"]
                .as_object()
                .is_some_and(|paths| paths.keys().any(|p| p.starts_with("/documents"))),
            "{url} describes no /documents path"
        );
    }
}
