//! The contract's table of bad commands, shared by the producer's tests (against the
//! service itself) and the e2e tests (through a gateway), so both hold the same table.

use events::mime;
use uuid::Uuid;

/// One bad request and the status the contract gives it.
#[derive(Debug, Clone)]
pub struct BadCommand {
    pub what: &'static str,
    pub method: &'static str,
    /// Relative to the producer's root (`/documents...`).
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: String,
    pub status: u16,
}

/// Every error of the contract's table that a command can meet.
pub fn bad_commands() -> Vec<BadCommand> {
    let id = Uuid::new_v4();
    let too_big = format!(r#"{{"text":"{}"}}"#, "x".repeat(events::MAX_COMMAND_BYTES));
    let case = |what, method, path: &str, content_type, body: &str, status| BadCommand {
        what,
        method,
        path: path.to_owned(),
        content_type,
        body: body.to_owned(),
        status,
    };
    let create = Some(mime::CREATE_DOCUMENT);
    let update = Some(mime::UPDATE_DOCUMENT);
    vec![
        case(
            "no content type",
            "POST",
            "/documents",
            None,
            r#"{"author":"a"}"#,
            415,
        ),
        case(
            "plain JSON",
            "POST",
            "/documents",
            Some("application/json"),
            "{}",
            415,
        ),
        case(
            "update type on create",
            "POST",
            "/documents",
            update,
            "{}",
            415,
        ),
        case(
            "create type on update",
            "PUT",
            "/documents",
            create,
            &format!(r#"{{"id":"{id}"}}"#),
            415,
        ),
        case("not JSON", "POST", "/documents", create, "author=a", 400),
        case(
            "truncated JSON",
            "POST",
            "/documents",
            create,
            r#"{"author":"#,
            400,
        ),
        case(
            "wrong field type",
            "POST",
            "/documents",
            create,
            r#"{"author":42}"#,
            422,
        ),
        case(
            "unknown field",
            "POST",
            "/documents",
            create,
            r#"{"title":"t"}"#,
            422,
        ),
        case(
            "update without id",
            "PUT",
            "/documents",
            update,
            r#"{"author":"a"}"#,
            422,
        ),
        case(
            "update with a bad id",
            "PUT",
            "/documents",
            update,
            r#"{"id":"42"}"#,
            422,
        ),
        case(
            "body over 64 KiB",
            "POST",
            "/documents",
            create,
            &too_big,
            413,
        ),
        case(
            "path id not a UUID",
            "DELETE",
            "/documents/not-a-uuid",
            None,
            "",
            400,
        ),
    ]
}

/// Sends `case` to the producer at `base` and checks the answer: its status, a problem
/// body, and a detail. Panics naming the case otherwise.
pub async fn assert_refused(client: &reqwest::Client, base: &str, case: &BadCommand) {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{base}{}", case.path))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status().as_u16(), case.status, "{}", case.what);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(mime::PROBLEM),
        "{}",
        case.what
    );
    let problem: events::Problem = response.json().await.expect("problem body");
    assert_eq!(problem.status, case.status, "{}", case.what);
    assert!(
        problem.kind.starts_with("urn:kafka-cqrs:problem:"),
        "{}",
        case.what
    );
    assert!(!problem.detail.is_empty(), "{}", case.what);
}
