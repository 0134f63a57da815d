//! Idempotency keys (the IETF httpapi `Idempotency-Key` header): what a valid key is, and
//! the ids derived from one. The derivation is a pure function of the key and the
//! command, so a command repeated with its key gets the same document id and event id in
//! any producer replica, before and after any restart, without shared state.

use uuid::Uuid;

use crate::{CreateDocument, EventType, UpdateDocument};

/// The HTTP request header (header names are case-insensitive; this is the lowercase
/// form that `http` stores).
pub const HEADER: &str = "idempotency-key";

/// The longest key accepted, in characters (the error messages say 255 too).
pub const MAX_KEY_LENGTH: usize = 255;

/// The name space of every UUID derived here (RFC 9562 version 5). Fixed for the life of
/// the project: changing it would give a retried command new ids, i.e. a second document.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x248a_1d08_a62b_4db8_8a8c_7a0b_3ea9_0813);

/// The Kafka record headers a keyed command adds; the event JSON keeps its shape.
pub mod record_header {
    /// The key as the client sent it (without sf-string quotes).
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// [`super::fingerprint`] of the request, so that a consumer can tell a repeated
    /// command (same fingerprint) from a key reused for another one.
    pub const REQUEST_FINGERPRINT: &str = "request-fingerprint";
}

/// Why a header value is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the Idempotency-Key header is empty; send 1 to 255 visible ASCII characters")]
    Empty,
    #[error("the Idempotency-Key header is {0} characters long; the most is 255")]
    TooLong(usize),
    #[error(
        "the Idempotency-Key header may hold visible ASCII characters only (0x21 to 0x7E, no spaces), optionally as a quoted string; found {0:?}"
    )]
    Invalid(String),
}

/// A validated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header value: 1 to 255 visible ASCII characters, or the draft's sf-string
    /// form `"..."` whose quotes are stripped (the key is what lies between them).
    pub fn parse(value: &[u8]) -> Result<Self, KeyError> {
        let unquoted = match value {
            [b'"', inner @ .., b'"'] => inner,
            other => other,
        };
        if unquoted.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(&bad) = unquoted.iter().find(|b| !b.is_ascii_graphic()) {
            return Err(KeyError::Invalid(char::from(bad).to_string()));
        }
        // Within quotes an sf-string escapes `"` and `\`; a key never needs them, so
        // they are refused rather than half-unescaped.
        if unquoted.len() != value.len()
            && let Some(&bad) = unquoted.iter().find(|b| matches!(b, b'"' | b'\\'))
        {
            return Err(KeyError::Invalid(char::from(bad).to_string()));
        }
        if unquoted.len() > MAX_KEY_LENGTH {
            return Err(KeyError::TooLong(unquoted.len()));
        }
        let text = std::str::from_utf8(unquoted).expect("visible ASCII is UTF-8");
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the document a create with this key makes.
    pub fn document_of_create(&self) -> Uuid {
        Uuid::new_v5(&NAMESPACE, format!("create:{}", self.0).as_bytes())
    }

    /// The id of the event a command of `kind` on `document` with this key publishes:
    /// one key, one event, however often the command is sent.
    pub fn event_id(&self, kind: EventType, document: Uuid) -> Uuid {
        let method = Request::method_of(kind);
        Uuid::new_v5(
            &NAMESPACE,
            format!("event:{method}:{document}:{}", self.0).as_bytes(),
        )
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command as the fingerprint sees it: the method, the target and the normalised
/// command (parsed and serialised again, so that spacing and field order do not count).
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    Create(&'a CreateDocument),
    Update(&'a UpdateDocument),
    Delete(Uuid),
}

impl Request<'_> {
    fn method_of(kind: EventType) -> &'static str {
        match kind {
            EventType::Create => "POST",
            EventType::Update => "PUT",
            EventType::Delete => "DELETE",
        }
    }

    /// `METHOD path body`, one line each: what two requests must share to be "the same".
    fn canonical(&self) -> String {
        match self {
            Self::Create(command) => format!("POST\n/documents\n{}", json(command)),
            Self::Update(command) => format!("PUT\n/documents\n{}", json(command)),
            Self::Delete(id) => format!("DELETE\n/documents/{id}\n"),
        }
    }
}

/// What tells a repeated request from a different one sent with the same key: a name-based
/// UUID (SHA-1, RFC 9562 version 5) of the canonical request, as 32 hex digits. It is a
/// stable label, not a security measure: a client can only confuse its own keys.
pub fn fingerprint(request: Request<'_>) -> String {
    Uuid::new_v5(&NAMESPACE, request.canonical().as_bytes())
        .simple()
        .to_string()
}

/// The headers a keyed command's Kafka record carries, in order.
pub fn record_headers(key: &IdempotencyKey, fingerprint: &str) -> [(&'static str, String); 2] {
    [
        (record_header::IDEMPOTENCY_KEY, key.as_str().to_owned()),
        (record_header::REQUEST_FINGERPRINT, fingerprint.to_owned()),
    ]
}

fn json(command: &impl serde::Serialize) -> String {
    serde_json::to_string(command).expect("a command always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(key("abc-123_X.~").as_str(), "abc-123_X.~");
        assert_eq!(key(&"k".repeat(255)).as_str().len(), 255);
        // The sf-string form: the quotes are not part of the key.
        assert_eq!(key("\"8e03978e-40d5\"").as_str(), "8e03978e-40d5");
        assert_eq!(IdempotencyKey::parse(b""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::parse(b"\"\""), Err(KeyError::Empty));
        assert_eq!(
            IdempotencyKey::parse("k".repeat(256).as_bytes()),
            Err(KeyError::TooLong(256))
        );
        assert!(matches!(
            IdempotencyKey::parse(b"two words"),
            Err(KeyError::Invalid(_))
        ));
        assert!(matches!(
            IdempotencyKey::parse("caf\u{e9}".as_bytes()),
            Err(KeyError::Invalid(_))
        ));
        assert!(matches!(
            IdempotencyKey::parse(b"\"a\\\"b\""),
            Err(KeyError::Invalid(_))
        ));
        assert!(matches!(
            IdempotencyKey::parse(b"tab\there"),
            Err(KeyError::Invalid(_))
        ));
    }

    #[test]
    fn derived_ids_are_pinned() {
        // Pinned values: a change here gives every retried command a new document.
        let k = key("order-42");
        assert_eq!(
            k.document_of_create().to_string(),
            "8b5e51fa-b449-577e-98e3-7ae388be2e65"
        );
        let document = k.document_of_create();
        assert_eq!(
            k.event_id(EventType::Create, document).to_string(),
            "bad3bd52-12c2-5d93-b082-9383cc63abce"
        );
    }

    #[test]
    fn one_key_one_id_per_command_and_target() {
        let (a, b) = (key("a"), key("b"));
        assert_eq!(a.document_of_create(), key("\"a\"").document_of_create());
        assert_ne!(a.document_of_create(), b.document_of_create());
        let doc = Uuid::from_u128(7);
        let other = Uuid::from_u128(8);
        assert_eq!(
            a.event_id(EventType::Update, doc),
            a.event_id(EventType::Update, doc)
        );
        assert_ne!(
            a.event_id(EventType::Update, doc),
            a.event_id(EventType::Delete, doc)
        );
        assert_ne!(
            a.event_id(EventType::Update, doc),
            a.event_id(EventType::Update, other)
        );
        assert_ne!(
            a.event_id(EventType::Update, doc),
            b.event_id(EventType::Update, doc)
        );
        assert_eq!(a.event_id(EventType::Update, doc).get_version_num(), 5);
    }

    #[test]
    fn fingerprints_ignore_spelling_but_not_content() {
        let parse = |json: &str| serde_json::from_str::<CreateDocument>(json).unwrap();
        let one = parse(r#"{"author":"A","text":"T"}"#);
        let same = parse(r#"{ "text": "T",  "author": "A" }"#);
        let other = parse(r#"{"author":"A","text":"U"}"#);
        assert_eq!(
            fingerprint(Request::Create(&one)),
            fingerprint(Request::Create(&same))
        );
        assert_ne!(
            fingerprint(Request::Create(&one)),
            fingerprint(Request::Create(&other))
        );
        assert_ne!(
            fingerprint(Request::Delete(Uuid::from_u128(1))),
            fingerprint(Request::Delete(Uuid::from_u128(2)))
        );
        assert_eq!(fingerprint(Request::Create(&one)).len(), 32);
    }
}
