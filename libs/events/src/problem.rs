//! Problem bodies (RFC 9457, `application/problem+json`), and the one table that says
//! which HTTP status each kind of problem gets.

use serde::{Deserialize, Serialize};

/// Every kind of error a client of the platform can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Wrong or missing `Content-Type`.
    UnsupportedMediaType,
    /// The body is not JSON at all.
    MalformedJson,
    /// JSON of the wrong shape: wrong field types, unknown fields, a missing `id`.
    InvalidCommand,
    /// A body over the limit.
    PayloadTooLarge,
    /// A path or query parameter that is not what it must be (e.g. not a UUID).
    InvalidParameter,
    /// An `Idempotency-Key` sent earlier with a different request (the draft's key-reuse
    /// rule): never a silent mix of two commands.
    IdempotencyKeyReused,
    /// Kafka or Cassandra did not answer in time; nothing was done, try again later.
    Unavailable,
    /// The command was handed to Kafka but not confirmed in time: it may or may not be
    /// stored. A retry with the same `Idempotency-Key` is safe and gets the same answer.
    OutcomeUnknown,
    /// A read asked for a `Document-Position` the read model has not applied within the
    /// reader's bound: the event is stored, the projection is behind; retry later.
    NotCaughtUp,
    /// Too many concurrent streams.
    TooManyRequests,
    /// No route has this path.
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// A bug on our side.
    Internal,
}

impl ProblemKind {
    /// The HTTP status of this kind of problem.
    pub fn status(self) -> u16 {
        match self {
            Self::UnsupportedMediaType => 415,
            Self::MalformedJson => 400,
            Self::InvalidCommand => 422,
            Self::PayloadTooLarge => 413,
            Self::InvalidParameter => 400,
            Self::IdempotencyKeyReused => 422,
            Self::Unavailable => 503,
            Self::OutcomeUnknown => 503,
            Self::NotCaughtUp => 503,
            Self::TooManyRequests => 429,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Internal => 500,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::MalformedJson => "malformed-json",
            Self::InvalidCommand => "invalid-command",
            Self::PayloadTooLarge => "payload-too-large",
            Self::InvalidParameter => "invalid-parameter",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::Unavailable => "unavailable",
            Self::OutcomeUnknown => "outcome-unknown",
            Self::NotCaughtUp => "not-caught-up",
            Self::TooManyRequests => "too-many-requests",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::MalformedJson => "Malformed JSON",
            Self::InvalidCommand => "Invalid command",
            Self::PayloadTooLarge => "Payload too large",
            Self::InvalidParameter => "Invalid parameter",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::Unavailable => "Service unavailable",
            Self::OutcomeUnknown => "Outcome unknown",
            Self::NotCaughtUp => "Read model not caught up",
            Self::TooManyRequests => "Too many requests",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Internal => "Internal error",
        }
    }
}

/// An RFC 9457 problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URN naming the kind of problem, stable for clients to match on.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What was wrong with this request, and how to fix it.
    pub detail: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:kafka-cqrs:problem:{}", kind.slug()),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: detail.into(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a problem always serialises")
    }
}
