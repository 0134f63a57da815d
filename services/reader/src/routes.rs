//! `GET /documents/{id}`: the document as JSON, 404 with an empty body when there is
//! none, 503 when Cassandra does not answer, 500 when a stored row cannot be decoded.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::{ProblemKind, mime};
use store::{DocumentReader, StoreError};
use uuid::Uuid;
use web::{ApiError, DocumentIdPath};

const RETRY_AFTER: Duration = Duration::from_secs(2);

pub fn router(store: DocumentReader) -> Router {
    Router::new()
        .route("/documents/{id}", get(read))
        .with_state(store)
        .merge(web::openapi_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// The reader's OpenAPI description, served at `/openapi.json` and committed as
/// `services/reader/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kafka-cqrs reader",
        description = "The query side: documents as the persister applied them. Through the \
            gateway its paths start with /reader."
    ),
    paths(read)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Reads one document.
#[utoipa::path(
    get,
    path = "/documents/{id}",
    params(("id" = Uuid, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document; null where a field is unset",
            content_type = "application/vnd.kafka-cqrs.document.1+json", body = events::Document),
        (status = 400, description = "The id is not a UUID",
            content_type = "application/problem+json", body = events::Problem),
        (status = 404, description = "No such document (the body is empty, as the seed's)"),
        (status = 500, description = "A stored row cannot be read: our fault, logged under the trace id the detail names",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "Cassandra did not answer in time; try again after Retry-After",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn read(
    State(store): State<DocumentReader>,
    DocumentIdPath(id): DocumentIdPath,
) -> Result<Response, ApiError> {
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
        Err(error) => Err(read_failed(&error, id)),
    }
}

/// A failed read, answered without the driver's words: they are logged with the trace id,
/// and the body names that id, so an operator finds the cause and a client learns nothing
/// of the inside. A row that cannot be decoded is our fault (500, retrying cannot help);
/// anything else is Cassandra not answering (503, retry later).
fn read_failed(error: &StoreError, id: Uuid) -> ApiError {
    let trace = telemetry::current_trace_id();
    if let StoreError::Decode { .. } = error {
        tracing::error!(%error, document = %id, "a stored document cannot be decoded");
        return ApiError::new(
            ProblemKind::Internal,
            format!("the stored document cannot be read; the fault is logged under trace {trace}"),
        );
    }
    tracing::warn!(%error, document = %id, "read failed");
    ApiError::unavailable(
        format!("the read model did not answer in time; try again (trace {trace})"),
        RETRY_AFTER,
    )
}
