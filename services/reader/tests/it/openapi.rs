//! The reader's OpenAPI description: the committed copy is the code's, and the service
//! serves it.

use std::path::Path;

use utoipa::OpenApi as _;

#[test]
fn the_committed_description_is_the_codes() {
    web::check_committed_openapi(
        &reader::routes::ApiDoc::openapi(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json"),
    );
}

#[tokio::test]
async fn the_service_serves_its_description() {
    let infra = testkit::infra();
    let keyspace = infra.keyspace().await;
    let app = reader::Application::build(reader::Config::for_tests(
        &infra.contact_points,
        keyspace.name(),
    ))
    .await
    .expect("reader starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    testkit::assert_serves_openapi(
        &app.address,
        serde_json::to_value(reader::routes::ApiDoc::openapi()).unwrap(),
    )
    .await;
}
