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
    let app = crate::spawn_app().await;
    testkit::assert_serves_openapi(
        &app.address,
        serde_json::to_value(producer::routes::ApiDoc::openapi()).unwrap(),
    )
    .await;
}
