//! `GET /documents/{id}`: the document as JSON, 404 with an empty body when there is
//! none, 503 when Cassandra does not answer.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::mime;
use store::DocumentReader;
use web::ApiError;

const RETRY_AFTER: Duration = Duration::from_secs(2);

pub fn router(store: DocumentReader) -> Router {
    Router::new()
        .route("/documents/{id}", get(read))
        .with_state(store)
}

async fn read(
    State(store): State<DocumentReader>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = web::document_id(&id)?;
    match store.get(id).await {
        Ok(Some(document)) => Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(mime::DOCUMENT),
            )],
            Body::from(serde_json::to_vec(&document).expect("a document always serialises")),
        )
            .into_response()),
        Ok(None) => Ok(StatusCode::NOT_FOUND.into_response()),
        Err(error) => {
            tracing::warn!(%error, document = %id, "read failed");
            Err(ApiError::unavailable(
                format!("the read model did not answer: {error}"),
                RETRY_AFTER,
            ))
        }
    }
}
