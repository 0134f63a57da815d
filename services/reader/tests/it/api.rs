//! The reader against the real Cassandra: a stored document as JSON, 404 with an empty
//! body for none, 400 for an id that is not a UUID.

use events::{Document, Event, mime};
use reader::{Application, Config};
use reqwest::StatusCode;
use store::DocumentWriter;
use testkit::{RunningApp, TestKeyspace};
use uuid::Uuid;

/// A reader on a free port, reading a keyspace of its own.
struct TestApp {
    /// Keeps the service running until the test ends.
    _app: RunningApp,
    address: String,
    keyspace: TestKeyspace,
}

async fn spawn_app() -> TestApp {
    let infra = testkit::infra();
    let keyspace = infra.keyspace().await;
    let app = Application::build(Config::for_tests(&infra.contact_points, keyspace.name()))
        .await
        .expect("reader starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    TestApp {
        address: app.address.clone(),
        _app: app,
        keyspace,
    }
}

#[tokio::test]
async fn a_stored_document_is_served_as_json() {
    let app = spawn_app().await;
    let store = DocumentWriter::prepare(app.keyspace.session.clone(), &app.keyspace.keyspace)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    let create = events::CreateDocument {
        author: Some("Author1".into()),
        text: None,
    };
    store
        .apply(&Event::created(id, create, "0".repeat(32)), 0)
        .await
        .unwrap();

    let response = testkit::http()
        .get(format!("{}/documents/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], mime::DOCUMENT);
    let body = response.text().await.unwrap();
    assert_eq!(
        body,
        format!(r#"{{"id":"{id}","author":"Author1","text":null}}"#)
    );
    let document: Document = serde_json::from_str(&body).unwrap();
    assert_eq!(document.author.as_deref(), Some("Author1"));
}

#[tokio::test]
async fn a_missing_document_is_404_with_an_empty_body() {
    let app = spawn_app().await;
    let response = testkit::http()
        .get(format!("{}/documents/{}", app.address, Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text().await.unwrap(), "");
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_400_with_a_problem() {
    let app = spawn_app().await;
    let response = testkit::http()
        .get(format!("{}/documents/42", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    let problem: events::Problem = response.json().await.unwrap();
    assert!(problem.detail.contains("42"), "{}", problem.detail);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = testkit::http()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

/// The reader runs no DDL: on a keyspace without the schema it refuses to start, and says
/// who applies the schema, instead of creating the table itself.
#[tokio::test]
async fn the_reader_does_not_create_the_schema() {
    let infra = testkit::infra();
    let absent = format!("absent_{}", Uuid::new_v4().simple());
    let error = Application::build(Config::for_tests(&infra.contact_points, &absent))
        .await
        .expect_err("a keyspace without the schema must not be served");
    let message = format!("{error:#}");
    assert!(message.contains("persister"), "{message}");
    let session = store::connect(&infra.contact_points, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let keyspaces = session
        .query_unpaged(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (absent.as_str(),),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num();
    assert_eq!(keyspaces, 0, "the reader created keyspace {absent}");
}

/// The trace id a problem body names, checked to be a real one.
fn named_trace(detail: &str) -> String {
    let trace = detail
        .rsplit("trace ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_owned();
    assert!(
        trace.len() == 32
            && trace.chars().all(|c| c.is_ascii_hexdigit())
            && trace.chars().any(|c| c != '0'),
        "no trace id in {detail:?}"
    );
    trace
}

/// A row the reader cannot decode (here: a table whose `author` is an int) is the
/// service's fault: 500, not a 503 that clients would retry forever, and the body names
/// the trace under which the driver's error is logged instead of carrying its words.
#[tokio::test]
async fn an_undecodable_row_is_500_without_internal_words() {
    let infra = testkit::infra();
    let session = store::connect(&infra.contact_points, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let keyspace = format!("undecodable_{}", Uuid::new_v4().simple());
    for statement in [
        format!(
            "CREATE KEYSPACE {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!("CREATE TABLE {keyspace}.documents (id uuid PRIMARY KEY, author int, text text)"),
        format!(
            "CREATE TABLE {keyspace}.applied_positions (partition int PRIMARY KEY, offset bigint)"
        ),
    ] {
        session.query_unpaged(statement, ()).await.unwrap();
    }
    let id = Uuid::new_v4();
    session
        .query_unpaged(
            format!("INSERT INTO {keyspace}.documents (id, author) VALUES (?, 7)"),
            (id,),
        )
        .await
        .unwrap();
    let app = Application::build(Config::for_tests(&infra.contact_points, &keyspace))
        .await
        .expect("reader starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));

    let response = testkit::http()
        .get(format!("{}/documents/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    let problem: serde_json::Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        !detail.contains("Int") && !detail.contains("int") && !detail.contains("deserializ"),
        "driver words in {detail:?}"
    );
    named_trace(detail);
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .unwrap();
}
