//! The producer's HTTP API: create, update and delete, each answered only after Kafka
//! confirmed the event.

use crate::internal_events::{EventNotConfirmed, EventPublished};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use bytes::Bytes;
use events::{CreateDocument, DocumentId, Event, UpdateDocument, mime};
use uuid::Uuid;
use web::ApiError;

use crate::kafka::Publisher;
use telemetry::current_trace_id;

/// When a client that got a 503 should try again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

pub fn router(publisher: Publisher) -> Router {
    Router::new()
        .route("/documents", post(create).put(update))
        .route("/documents/{id}", delete(remove))
        // Bodies over the limit are refused with 413 by `web::command_body`.
        .layer(DefaultBodyLimit::max(web::MAX_BODY_BYTES))
        .with_state(publisher)
}

async fn create(
    State(publisher): State<Publisher>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let command: CreateDocument = web::command_body(&headers, body, mime::CREATE_DOCUMENT)?;
    let id = Uuid::new_v4();
    publish(&publisher, Event::created(id, command, current_trace_id())).await?;
    let body = serde_json::to_vec(&DocumentId { id }).expect("an id always serialises");
    Ok((
        StatusCode::CREATED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(mime::DOCUMENT_ID),
            ),
            (
                header::LOCATION,
                HeaderValue::from_str(&format!("/reader/documents/{id}"))
                    .expect("a UUID path is a valid header"),
            ),
        ],
        Body::from(body),
    )
        .into_response())
}

async fn update(
    State(publisher): State<Publisher>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let command: UpdateDocument = web::command_body(&headers, body, mime::UPDATE_DOCUMENT)?;
    publish(&publisher, Event::updated(command, current_trace_id())).await?;
    Ok(StatusCode::OK.into_response())
}

async fn remove(
    State(publisher): State<Publisher>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = web::document_id(&id)?;
    publish(&publisher, Event::deleted(id, current_trace_id())).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn publish(publisher: &Publisher, event: Event) -> Result<(), ApiError> {
    match publisher.publish(&event).await {
        Ok((partition, offset)) => {
            EventPublished {
                event: &event,
                partition,
                offset,
            }
            .emit();
            Ok(())
        }
        Err(error) => {
            EventNotConfirmed {
                event: &event,
                error: &error,
            }
            .emit();
            Err(ApiError::unavailable(
                format!("{error}; the command was not accepted, send it again later"),
                RETRY_AFTER,
            ))
        }
    }
}
