//! The producer's OpenAPI description: the committed copy is the code's, and the service
//! serves it.

use std::path::Path;

use utoipa::OpenApi as _;

#[test]
fn the_committed_description_is_the_codes() {
    web::check_committed_openapi(
        &producer::routes::ApiDoc::openapi(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json"),
    );
}

#[tokio::test]
async fn the_service_serves_its_description() {
    let topic = testkit::infra().topic(1).await;
    let app = producer::Application::build(producer::Config::for_tests(
        &testkit::infra().bootstrap,
        &topic.name,
    ))
    .await
    .expect("producer starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    testkit::assert_serves_openapi(
        &app.address,
        serde_json::to_value(producer::routes::ApiDoc::openapi()).unwrap(),
    )
    .await;
}
