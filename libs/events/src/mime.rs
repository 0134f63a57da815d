//! The MIME types of the contract. Commands are told apart by their content type, so a
//! create body sent as an update is refused (415) instead of misread.

pub const CREATE_DOCUMENT: &str = "application/vnd.kafka-cqrs.create-document.1+json";
pub const UPDATE_DOCUMENT: &str = "application/vnd.kafka-cqrs.update-document.1+json";
pub const DOCUMENT_ID: &str = "application/vnd.kafka-cqrs.document-id.1+json";
pub const DOCUMENT: &str = "application/vnd.kafka-cqrs.document.1+json";
/// The `content-type` header of every event record in Kafka.
pub const EVENT: &str = "application/vnd.kafka-cqrs.event.1+json";
pub const PROBLEM: &str = "application/problem+json";
pub const EVENT_STREAM: &str = "text/event-stream;charset=UTF-8";

/// Whether a `Content-Type` header value names `expected`, ignoring case, spaces and
/// parameters such as `charset=utf-8`.
pub fn matches(header: &str, expected: &str) -> bool {
    header
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_match_on_their_essence() {
        assert!(matches(CREATE_DOCUMENT, CREATE_DOCUMENT));
        assert!(matches(
            "Application/VND.kafka-cqrs.create-document.1+JSON ; charset=utf-8",
            CREATE_DOCUMENT
        ));
        assert!(!matches("application/json", CREATE_DOCUMENT));
        assert!(!matches(UPDATE_DOCUMENT, CREATE_DOCUMENT));
        assert!(!matches("", CREATE_DOCUMENT));
    }
}
