//! `GET /documents/{id}`: the document as JSON, 404 with an empty body when there is
//! none, 503 when Cassandra does not answer, 500 when a stored row cannot be decoded.
//!
//! A read that names a `Document-Position` (header, or `?position=` for clients that
//! cannot set headers) is answered only once the persister applied that position, or 503
//! with Retry-After when it did not within the bound (`crate::positions`).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::{Position, ProblemKind, mime, position};
use store::{DocumentReader, StoreError};
use uuid::Uuid;
use web::{ApiError, DocumentIdPath};

use crate::positions::{NotCaughtUp, Positions};

const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What the handler shares.
#[derive(Debug, Clone)]
pub struct Reads {
    pub store: DocumentReader,
    pub positions: Positions,
}

/// The query parameters of a read; others are ignored, as before.
#[derive(Debug, serde::Deserialize)]
pub struct ReadQuery {
    position: Option<String>,
}

pub fn router(store: DocumentReader, positions: Positions) -> Router {
    Router::new()
        .route("/documents/{id}", get(read))
        .with_state(Reads { store, positions })
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
    params(
        ("id" = Uuid, Path, description = "The document's id"),
        ("Document-Position" = Option<String>, Header, nullable = false,
            pattern = r"^[0-2]:[0-9]{1,18}$",
            description = "Read at least this write: the <partition>:<offset> a command's \
                answer named in its Document-Position header. The answer waits until the \
                read model has applied it (503 after the reader's bound, 5 s by default)"),
        ("position" = Option<String>, Query, nullable = false,
            pattern = r"^[0-2]:[0-9]{1,18}$",
            description = "The same as the Document-Position header, for clients that \
                cannot set headers (e.g. ?position=0:42); when both are sent, the header wins"),
    ),
    responses(
        (status = 200, description = "The document; null where a field is unset",
            content_type = "application/vnd.kafka-cqrs.document.1+json", body = events::Document),
        (status = 400, description = "The id is not a UUID, or a position is not <partition>:<offset>",
            content_type = "application/problem+json", body = events::Problem),
        (status = 404, description = "No such document (the body is empty, as the seed's)"),
        (status = 500, description = "A stored row cannot be read: our fault, logged under the trace id the detail names",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "Cassandra did not answer in time, or (type not-caught-up) the read model has not applied the requested position within the bound; try again after Retry-After",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn read(
    State(reads): State<Reads>,
    DocumentIdPath(id): DocumentIdPath,
    headers: HeaderMap,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    if let Some(position) = requested_position(&headers, query)? {
        reads
            .positions
            .wait_for(position)
            .await
            .map_err(|behind| not_caught_up(position, &behind, reads.positions.bound()))?;
    }
    match reads.store.get(id).await {
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

/// The position a read asks for, from its header or its query (400 when malformed, when
/// sent twice, or when the two disagree).
fn requested_position(
    headers: &HeaderMap,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Option<Position>, ApiError> {
    let invalid = |detail: String| ApiError::new(ProblemKind::InvalidParameter, detail);
    let mut values = headers.get_all(position::HEADER).iter();
    let from_header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(invalid(
                "send one Document-Position header, not several".to_owned(),
            ));
        }
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| {
                invalid("the Document-Position header must be visible ASCII".to_owned())
            })?;
            Some(
                Position::parse(text)
                    .map_err(|e| invalid(format!("Document-Position header: {e}")))?,
            )
        }
    };
    let Query(query) = query
        .map_err(|rejection| invalid(format!("the query string cannot be read: {rejection}")))?;
    let from_query = query
        .position
        .map(|text| Position::parse(&text).map_err(|e| invalid(format!("position parameter: {e}"))))
        .transpose()?;
    // The header wins, as the notifier's Last-Event-ID wins over its query twin.
    let position = from_header.or(from_query);
    if let Some(position) = position
        && usize::try_from(position.partition).map_or(true, |p| {
            p >= platform::kafka::DOCUMENTS_TOPIC_PARTITIONS as usize
        })
    {
        return Err(invalid(format!(
            "position {position} names partition {}, which the documents topic ({} partitions) does not have",
            position.partition,
            platform::kafka::DOCUMENTS_TOPIC_PARTITIONS
        )));
    }
    Ok(position)
}

// The descriptions' position patterns name the partitions 0-2 (`[0-2]`).
const _: () = assert!(
    platform::kafka::DOCUMENTS_TOPIC_PARTITIONS == 3,
    "update the [0-2] partition patterns of the position parameters"
);

/// The 503 of a read whose position was not applied within the bound.
fn not_caught_up(position: Position, behind: &NotCaughtUp, bound: Duration) -> ApiError {
    let applied = behind.applied.map_or_else(
        || "nothing recorded yet".to_owned(),
        |offset| format!("offset {offset}"),
    );
    ApiError::retry_later(
        ProblemKind::NotCaughtUp,
        format!(
            "the read model has not caught up with position {position} yet (partition {} is \
             applied up to {applied}) after waiting {} ms; the write is stored, try again later",
            position.partition,
            bound.as_millis()
        ),
        RETRY_AFTER,
    )
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
