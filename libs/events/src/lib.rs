//! The wire formats of kafka-cqrs, exactly as the contract fixes them (ARCHITECTURE.md,
//! "The contract"): the commands the producer accepts, the responses of producer and
//! reader, the event that travels through Kafka and out of the notifier, the problem
//! bodies of errors, and their MIME types.

pub mod idempotency;
pub mod mime;
pub mod position;
mod problem;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use position::Position;
pub use problem::{Problem, ProblemKind};

/// The largest command body the API accepts; larger ones get 413.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// `POST /documents`: both fields optional; anything else in the body is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// `PUT /documents`: `id` required; a field left out (or null) stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateDocument {
    pub id: Uuid,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// The body of `201 Created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentId {
    pub id: Uuid,
}

/// A document as the reader returns it and as an event carries it (null where unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: Uuid,
    pub author: Option<String>,
    pub text: Option<String>,
}

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Create,
    Update,
    Delete,
}

impl EventType {
    /// The name on the wire, also a bounded metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// Metadata of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventHeader {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The id of this event (not of the document).
    pub id: Uuid,
    /// Wall-clock time of the command, RFC 3339 in UTC with milliseconds.
    #[serde(with = "rfc3339_millis")]
    pub timestamp: DateTime<Utc>,
    /// The trace of the command that caused the event: 32 lowercase hex digits.
    pub trace_id: String,
}

/// The Kafka record value, and the `data` of each SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub header: EventHeader,
    pub payload: Document,
}

impl Event {
    /// An event of `kind` about `payload`, stamped now.
    pub fn new(kind: EventType, payload: Document, trace_id: String) -> Self {
        Self {
            header: EventHeader {
                kind,
                id: Uuid::new_v4(),
                timestamp: now_millis(),
                trace_id,
            },
            payload,
        }
    }

    pub fn created(id: Uuid, command: CreateDocument, trace_id: String) -> Self {
        let payload = Document {
            id,
            author: command.author,
            text: command.text,
        };
        Self::new(EventType::Create, payload, trace_id)
    }

    pub fn updated(command: UpdateDocument, trace_id: String) -> Self {
        let payload = Document {
            id: command.id,
            author: command.author,
            text: command.text,
        };
        Self::new(EventType::Update, payload, trace_id)
    }

    pub fn deleted(id: Uuid, trace_id: String) -> Self {
        let payload = Document {
            id,
            author: None,
            text: None,
        };
        Self::new(EventType::Delete, payload, trace_id)
    }

    /// The same event under the id `id` (one derived from an idempotency key).
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.header.id = id;
        self
    }

    /// The Kafka record key: the document id, so one document's events stay in order.
    pub fn key(&self) -> String {
        self.payload.id.to_string()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serialises")
    }

    /// Parses a record value; the error says what is wrong, for the dead-letter header.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Now, cut to the millisecond the wire carries, so an event equals its own round trip.
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_timestamp(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("timestamp {text:?} is not RFC 3339: {e}")))
    }
}

/// RFC 3339, UTC, milliseconds: `2026-11-27T14:09:11.123Z`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
