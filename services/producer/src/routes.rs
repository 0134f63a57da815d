//! The producer's HTTP API: create, update and delete, each answered only after Kafka
//! confirmed the event. A command with an `Idempotency-Key` gets its ids from the key, so
//! sending it again yields the same answer and the same event, which consumers apply once.
//!
//! Every 2xx names where its event was stored in a `Document-Position: <partition>:<offset>`
//! header (from Kafka's delivery report), which a read sends back to see at least this
//! write (`events::position`).

use crate::internal_events::{EventNotConfirmed, EventPublished};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use bytes::Bytes;
use events::idempotency::{self, IdempotencyKey, Request};
use events::{
    CreateDocument, DocumentId, Event, Position, ProblemKind, UpdateDocument, mime, position,
};
use uuid::Uuid;
use web::{ApiError, DocumentIdPath};

use crate::idempotency::RecentKeys;
use crate::kafka::{Keyed, PublishError, Publisher};
use telemetry::current_trace_id;

/// When a client that got a 503 should try again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Commands {
    pub publisher: Publisher,
    pub keys: RecentKeys,
}

/// The producer's OpenAPI description, served at `/openapi.json` and committed as
/// `services/producer/openapi.json`.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "kafka-cqrs producer",
        description = "The command side: each command becomes an event in Kafka, answered \
            once Kafka confirmed it. Send an Idempotency-Key to make a retry safe. Through \
            the gateway its paths start with /producer."
    ),
    paths(create, update, remove)
)]
pub struct ApiDoc;

pub fn router(publisher: Publisher) -> Router {
    let commands = Commands {
        publisher,
        keys: RecentKeys::default(),
    };
    Router::new()
        .route("/documents", post(create).put(update))
        .route("/documents/{id}", delete(remove))
        // Bodies over the limit are refused with 413 by `web::command_body`.
        .layer(DefaultBodyLimit::max(web::MAX_BODY_BYTES))
        .with_state(commands)
        .merge(web::openapi_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// The `Idempotency-Key` of a request, if it has one (400 when it is not a valid key).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = headers.get_all(idempotency::HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::new(
            ProblemKind::InvalidParameter,
            "send one Idempotency-Key header, not several",
        ));
    }
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(|e| ApiError::new(ProblemKind::InvalidParameter, e.to_string()))
}

/// Creates a document.
#[utoipa::path(
    post,
    path = "/documents",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            pattern = r#"^(?:[!-~]|[!#-~][!-~]{0,253}[!-~]|"[!-~]{0,253}[!#-~]|"[!#-\[\]-~]{1,255}")$"#,
            description = "Makes a retry safe: the same key and request yield one event and the same answer"),
    ),
    request_body(content = events::CreateDocument,
        content_type = "application/vnd.kafka-cqrs.create-document.1+json"),
    responses(
        (status = 201, description = "Created; the event is durably in Kafka",
            headers(("Location" = String, description = "Where the reader serves it, through the gateway"),
                ("Document-Position" = String, description = "Where the event was stored, <partition>:<offset> (e.g. 0:42); send it to the reader (Document-Position header or position query parameter) to read at least this write. A repeat with the same Idempotency-Key names the same position")),
            content_type = "application/vnd.kafka-cqrs.document-id.1+json", body = events::DocumentId),
        (status = 400, description = "Malformed JSON, or an Idempotency-Key that is not 1 to 255 visible ASCII characters",
            content_type = "application/problem+json", body = events::Problem),
        (status = 413, description = "A body over 64 KiB",
            content_type = "application/problem+json", body = events::Problem),
        (status = 415, description = "A missing or wrong Content-Type",
            content_type = "application/problem+json", body = events::Problem),
        (status = 422, description = "JSON of the wrong shape, or an Idempotency-Key already used for another request",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "Not queued (type unavailable: nothing was sent, safe to retry) or outcome unknown (type outcome-unknown: retry with the same Idempotency-Key)",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn create(
    State(commands): State<Commands>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let command: CreateDocument = web::command_body(&headers, body, mime::CREATE_DOCUMENT)?;
    let fingerprint = idempotency::fingerprint(Request::Create(&command));
    let id = key
        .as_ref()
        .map_or_else(Uuid::new_v4, IdempotencyKey::document_of_create);
    let event = Event::created(id, command, current_trace_id());
    let stored = publish(&commands, event, key.as_ref(), &fingerprint).await?;
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
            position_header(stored),
        ],
        Body::from(body),
    )
        .into_response())
}

/// Updates the fields a command carries; the others stay as they are.
#[utoipa::path(
    put,
    path = "/documents",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            pattern = r#"^(?:[!-~]|[!#-~][!-~]{0,253}[!-~]|"[!-~]{0,253}[!#-~]|"[!#-\[\]-~]{1,255}")$"#,
            description = "Makes a retry safe: the same key and request yield one event and the same answer"),
    ),
    request_body(content = events::UpdateDocument,
        content_type = "application/vnd.kafka-cqrs.update-document.1+json"),
    responses(
        (status = 200, description = "Updated; the event is durably in Kafka (empty body)",
            headers(("Document-Position" = String, description = "Where the event was stored, <partition>:<offset> (e.g. 0:42); send it to the reader (Document-Position header or position query parameter) to read at least this write. A repeat with the same Idempotency-Key names the same position"))),
        (status = 400, description = "Malformed JSON, or an Idempotency-Key that is not 1 to 255 visible ASCII characters",
            content_type = "application/problem+json", body = events::Problem),
        (status = 413, description = "A body over 64 KiB",
            content_type = "application/problem+json", body = events::Problem),
        (status = 415, description = "A missing or wrong Content-Type",
            content_type = "application/problem+json", body = events::Problem),
        (status = 422, description = "JSON of the wrong shape, or an Idempotency-Key already used for another request",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "Not queued (type unavailable: nothing was sent, safe to retry) or outcome unknown (type outcome-unknown: retry with the same Idempotency-Key)",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn update(
    State(commands): State<Commands>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let command: UpdateDocument = web::command_body(&headers, body, mime::UPDATE_DOCUMENT)?;
    let fingerprint = idempotency::fingerprint(Request::Update(&command));
    let event = Event::updated(command, current_trace_id());
    let stored = publish(&commands, event, key.as_ref(), &fingerprint).await?;
    Ok((StatusCode::OK, [position_header(stored)]).into_response())
}

/// Deletes a document.
#[utoipa::path(
    delete,
    path = "/documents/{id}",
    params(
        ("id" = Uuid, Path, description = "The document's id"),
        ("Idempotency-Key" = Option<String>, Header,
            pattern = r#"^(?:[!-~]|[!#-~][!-~]{0,253}[!-~]|"[!-~]{0,253}[!#-~]|"[!#-\[\]-~]{1,255}")$"#,
            description = "Makes a retry safe: the same key and request yield one event and the same answer"),
    ),
    responses(
        (status = 204, description = "Deleted; the event is durably in Kafka (empty body)",
            headers(("Document-Position" = String, description = "Where the event was stored, <partition>:<offset> (e.g. 0:42); send it to the reader (Document-Position header or position query parameter) to read at least this write. A repeat with the same Idempotency-Key names the same position"))),
        (status = 400, description = "The id is not a UUID, or a bad Idempotency-Key",
            content_type = "application/problem+json", body = events::Problem),
        (status = 422, description = "An Idempotency-Key already used for another request",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "Not queued (type unavailable: nothing was sent, safe to retry) or outcome unknown (type outcome-unknown: retry with the same Idempotency-Key)",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn remove(
    State(commands): State<Commands>,
    headers: HeaderMap,
    DocumentIdPath(id): DocumentIdPath,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let fingerprint = idempotency::fingerprint(Request::Delete(id));
    let event = Event::deleted(id, current_trace_id());
    let stored = publish(&commands, event, key.as_ref(), &fingerprint).await?;
    Ok((StatusCode::NO_CONTENT, [position_header(stored)]).into_response())
}

/// The `Document-Position` header of a 2xx.
fn position_header(stored: Position) -> (header::HeaderName, HeaderValue) {
    (
        header::HeaderName::from_static(position::HEADER),
        HeaderValue::from_str(&stored.to_string()).expect("digits and a colon are a valid header"),
    )
}

/// Publishes `event`; with a key, under the event id the key derives, after checking that
/// the key was not sent with another request. Returns the position to answer: where it
/// was stored, or for a repeat of a keyed command, where its first send was.
async fn publish(
    commands: &Commands,
    event: Event,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
) -> Result<Position, ApiError> {
    let event = match key {
        None => event,
        Some(key) => {
            if commands.keys.check(key, fingerprint).is_err() {
                return Err(reused(key));
            }
            let id = key.event_id(event.header.kind, event.payload.id);
            event.with_id(id)
        }
    };
    let keyed = key.map(|key| Keyed { key, fingerprint });
    match commands.publisher.publish(&event, keyed).await {
        Ok((partition, offset)) => {
            EventPublished {
                event: &event,
                partition,
                offset,
            }
            .emit();
            let stored = Position::new(partition, offset);
            Ok(key.map_or(stored, |key| {
                commands.keys.confirmed(key, fingerprint, stored)
            }))
        }
        Err(error) => {
            EventNotConfirmed {
                event: &event,
                error: &error,
            }
            .emit();
            Err(refusal(&error, key.is_some()))
        }
    }
}

/// The 422 for a key sent before with another request.
fn reused(key: &IdempotencyKey) -> ApiError {
    ApiError::new(
        ProblemKind::IdempotencyKeyReused,
        format!(
            "the Idempotency-Key {key:?} was already used for a different request; send a \
             new key for a new command, or repeat the first request exactly",
            key = key.as_str()
        ),
    )
}

/// The 503 for a publish that failed: "not queued" (nothing was sent, safe to retry) or
/// "outcome unknown" (it may be stored: retry with the same key).
///
/// The body never carries Kafka's own words (they are logged by `EventNotConfirmed`); it
/// names the trace id they are logged under.
fn refusal(error: &PublishError, keyed: bool) -> ApiError {
    let trace = current_trace_id();
    if !error.outcome_unknown() {
        return ApiError::unavailable(
            format!("Kafka did not take the command (trace {trace}); not queued, safe to retry"),
            RETRY_AFTER,
        );
    }
    let advice = if keyed {
        "the command may or may not have been applied: send it again with the same \
         Idempotency-Key, which applies it at most once and answers as the first would have"
    } else {
        "the command may or may not have been applied: check before sending it again, or \
         send commands with an Idempotency-Key header so that a retry is safe"
    };
    ApiError::retry_later(
        ProblemKind::OutcomeUnknown,
        format!("Kafka did not confirm the command in time (trace {trace}); {advice}"),
        RETRY_AFTER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn a_failed_publish_says_whether_a_retry_is_safe() {
        let not_queued =
            PublishError::NotQueued(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        let refused = refusal(&not_queued, false);
        assert_eq!(refused.problem.kind, "urn:kafka-cqrs:problem:unavailable");
        assert!(refused.problem.detail.contains("not queued, safe to retry"));
        assert!(
            !refused.problem.detail.contains("Queue"),
            "Kafka's words in the body"
        );
        assert_eq!(refused.retry_after, Some(RETRY_AFTER));

        let unknown = PublishError::OutcomeUnknown {
            bound: Duration::from_secs(5),
            why: "Message timed out".into(),
        };
        let keyed = refusal(&unknown, true);
        assert_eq!(keyed.problem.status, 503);
        assert_eq!(keyed.problem.kind, "urn:kafka-cqrs:problem:outcome-unknown");
        assert!(keyed.problem.detail.contains("same Idempotency-Key"));
        assert!(
            !keyed.problem.detail.contains("timed out"),
            "Kafka's words in the body"
        );
        assert_eq!(keyed.retry_after, Some(RETRY_AFTER));
        let unkeyed = refusal(&unknown, false);
        assert!(
            unkeyed
                .problem
                .detail
                .contains("may or may not have been applied")
        );
        assert!(unkeyed.problem.detail.contains("Idempotency-Key header"));
    }

    #[test]
    fn the_new_problem_bodies_are_pinned() {
        let unknown = PublishError::OutcomeUnknown {
            bound: Duration::from_secs(5),
            why: "no delivery report in time".into(),
        };
        let not_queued =
            PublishError::NotQueued(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        let key = IdempotencyKey::parse(b"order-42").unwrap();
        let bodies: Vec<String> = [
            refusal(&not_queued, false),
            refusal(&unknown, true),
            refusal(&unknown, false),
            reused(&key),
        ]
        .iter()
        .map(|e| String::from_utf8(e.problem.to_json()).unwrap())
        .collect();
        insta::assert_snapshot!(bodies.join("\n"));
    }

    /// The `Idempotency-Key` pattern of the description, for every operation that takes one.
    fn described_key_patterns() -> Vec<String> {
        let description = serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        let mut patterns = Vec::new();
        for methods in description["paths"].as_object().unwrap().values() {
            for operation in methods.as_object().unwrap().values() {
                for parameter in operation["parameters"].as_array().unwrap() {
                    let name = parameter["name"].as_str().unwrap();
                    if name.eq_ignore_ascii_case(idempotency::HEADER) {
                        patterns.push(parameter["schema"]["pattern"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        patterns
    }

    /// Found by fuzzing: the description let any string be a key, so schema-valid requests
    /// were refused. Its pattern now says exactly what `IdempotencyKey::parse` takes: every
    /// key it generates parses, and every header value it refuses is refused.
    #[test]
    fn the_described_key_pattern_is_what_the_producer_accepts() {
        use proptest::prelude::*;
        use proptest::strategy::ValueTree as _;
        let patterns = described_key_patterns();
        assert_eq!(patterns.len(), 3, "{patterns:?}");
        let pattern = &patterns[0];
        assert!(patterns.iter().all(|p| p == pattern), "{patterns:?}");
        let matcher = regex::Regex::new(pattern).unwrap();
        let mut samples: Vec<String> = [
            "k", "\"", "\"\"", "\"k\"", "\"k", "k\"", "\"a\"b\"", "\"a\\b\"", "a b", "é", "",
            "order-42", "\t", "~!",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for length in [254, 255, 256] {
            samples.push("k".repeat(length));
            samples.push(format!("\"{}\"", "k".repeat(length)));
        }
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        // proptest generates from the pattern without its anchors (whole strings anyway).
        let unanchored = pattern.trim_start_matches('^').trim_end_matches('$');
        let generated = proptest::string::string_regex(unanchored).unwrap();
        let any_ascii = proptest::collection::vec(0u8..0x80, 0..8)
            .prop_map(|bytes| String::from_utf8(bytes).unwrap());
        for _ in 0..2000 {
            samples.push(generated.new_tree(&mut runner).unwrap().current());
            samples.push(any_ascii.new_tree(&mut runner).unwrap().current());
        }
        for sample in &samples {
            assert_eq!(
                matcher.is_match(sample),
                IdempotencyKey::parse(sample.as_bytes()).is_ok(),
                "{sample:?}: the description and the producer disagree"
            );
        }
    }

    #[test]
    fn keys_are_read_from_one_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).unwrap(), None);
        headers.insert(idempotency::HEADER, HeaderValue::from_static("\"k-1\""));
        assert_eq!(idempotency_key(&headers).unwrap().unwrap().as_str(), "k-1");
        headers.append(idempotency::HEADER, HeaderValue::from_static("k-2"));
        assert_eq!(idempotency_key(&headers).unwrap_err().problem.status, 400);
        let mut bad = HeaderMap::new();
        bad.insert(idempotency::HEADER, HeaderValue::from_static("a b"));
        assert_eq!(idempotency_key(&bad).unwrap_err().problem.status, 400);
    }
}
