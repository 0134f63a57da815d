//! The notifier's OpenAPI description: the committed copy is the code's, and the service
//! serves it.

use std::path::Path;

use notifier::{Application, Config};
use utoipa::OpenApi as _;

#[test]
fn the_committed_description_is_the_codes() {
    web::check_committed_openapi(
        &notifier::routes::ApiDoc::openapi(),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json"),
    );
}

#[tokio::test]
async fn the_service_serves_its_description() {
    let topic = testkit::infra().topic(1).await;
    let app = Application::build(Config::for_tests(&testkit::infra().bootstrap, &topic.name))
        .await
        .expect("notifier starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    testkit::assert_serves_openapi(
        &app.address,
        serde_json::to_value(notifier::routes::ApiDoc::openapi()).unwrap(),
    )
    .await;
}
