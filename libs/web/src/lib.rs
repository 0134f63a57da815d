//! HTTP plumbing that every kafka-cqrs service shares, so that none writes its own: the
//! HTTP settings, the service shell ([`Shell`]: bind, metrics, health and readiness,
//! instrumentation, serving until shutdown), problem responses (`ApiError`), command
//! bodies checked against the contract (`command_body`) and the shutdown signal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use events::{Problem, ProblemKind, mime};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::de::DeserializeOwned;
use telemetry::http::CallerTrace;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::normalize_path::NormalizePath;
use uuid::Uuid;

/// The largest command body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = events::MAX_COMMAND_BYTES;

/// Loopback: a binary started by hand is not reachable from the network until asked to
/// be. Container images set `HTTP_HOST=0.0.0.0` (deployment/images/Containerfile), as a
/// container must listen on its pod's or host's interface.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// HTTP settings of a service whose port is `PORT` unless configured; services name their
/// port from the table in `libs/platform` (`HttpArgs<{ platform::PRODUCER.port }>`).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs<const PORT: u16> {
    /// Address to listen on; 0.0.0.0 serves every interface (as a container must; the
    /// images set it).
    #[arg(long = "http-host", env = "HTTP_HOST", default_value = DEFAULT_HOST)]
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests do).
    #[arg(long = "http-port", env = "HTTP_PORT", default_value_t = PORT)]
    pub port: u16,
    /// What a caller's `traceparent` does: `link` starts a new trace that links to it,
    /// `continue` joins the caller's trace (only for callers you trust).
    #[arg(long = "caller-trace", env = "HTTP_CALLER_TRACE", default_value = "link", value_parser = parse_caller_trace)]
    pub caller_trace: CallerTrace,
}

fn parse_caller_trace(value: &str) -> Result<CallerTrace, String> {
    match value {
        "link" => Ok(CallerTrace::Link),
        "continue" => Ok(CallerTrace::Continue),
        other => Err(format!("{other:?}: use link or continue")),
    }
}

impl<const PORT: u16> HttpArgs<PORT> {
    /// Loopback on a free port: what tests use.
    pub fn ephemeral() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            caller_trace: CallerTrace::default(),
        }
    }

    /// Binds the listener, with an error that names the address.
    pub async fn bind(&self) -> std::io::Result<TcpListener> {
        let address = format!("{}:{}", self.host, self.port);
        TcpListener::bind(&address).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {address}: {e} (set HTTP_PORT to a free port)"),
            )
        })
    }
}

/// The part every service shares around its own routes: a bound listener, the metrics
/// recorder, `/healthz`, `/readyz` from the service's own check, `/metrics`, a SERVER span
/// and HTTP metrics for every request, and serving until the shutdown token.
#[derive(Debug)]
pub struct Shell {
    listener: TcpListener,
    port: u16,
    caller_trace: CallerTrace,
}

impl Shell {
    /// Installs the metrics recorder (so that metrics recorded while the service builds are
    /// kept) and binds the configured address.
    pub async fn bind<const PORT: u16>(http: &HttpArgs<PORT>) -> std::io::Result<Self> {
        telemetry::install_metrics();
        let listener = http.bind().await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            caller_trace: http.caller_trace,
        })
    }

    /// The port it listens on (useful when configured with 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's `api` with the shared routes, every request instrumented.
    pub fn router(&self, api: Router, ready: ReadinessCheck) -> Router {
        telemetry::http::instrument(
            api.merge(health_routes(ready))
                .merge(telemetry::http::metrics_route())
                .fallback(no_such_route)
                .method_not_allowed_fallback(no_such_method),
            self.caller_trace,
        )
    }

    /// Serves `api` and the shared routes until `shutdown` is cancelled, then lets
    /// requests in flight finish.
    pub async fn serve(
        self,
        api: Router,
        ready: ReadinessCheck,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let router = self.router(api, ready);
        serve(self.listener, router, shutdown).await
    }

    /// The listener, for a service that serves connections its own way (the notifier).
    pub fn into_listener(self) -> TcpListener {
        self.listener
    }
}

/// A path no route has: a problem body, as every other error (a document the reader does
/// not hold is its route's own empty 404, as the contract says).
async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        format!("no route {}; see the API description in README", uri.path()),
    )
}

/// A known path asked with a method it does not serve.
async fn no_such_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ProblemKind::MethodNotAllowed,
        format!("{} does not answer {method}", uri.path()),
    )
}

/// An error answered as an RFC 9457 problem; 503s carry `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    pub problem: Problem,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            problem: Problem::new(kind, detail),
            retry_after: None,
        }
    }

    /// A 503 telling the client when to try again.
    pub fn unavailable(detail: impl Into<String>, retry_after: Duration) -> Self {
        Self::retry_later(ProblemKind::Unavailable, detail, retry_after)
    }

    /// A problem of `kind` telling the client when to try again (`Retry-After`).
    pub fn retry_later(
        kind: ProblemKind,
        detail: impl Into<String>,
        retry_after: Duration,
    ) -> Self {
        Self {
            problem: Problem::new(kind, detail),
            retry_after: Some(retry_after),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(mime::PROBLEM),
            )],
            Body::from(self.problem.to_json()),
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Checks a command's `Content-Type` (415), its size (413) and its JSON (400 when it is
/// not JSON, 422 when it is JSON of the wrong shape), in that order.
pub fn command_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !mime::matches(content_type, expected) {
        let got = if content_type.is_empty() {
            "no Content-Type".to_owned()
        } else {
            format!("Content-Type {content_type:?}")
        };
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            format!("this call takes Content-Type {expected}; the request had {got}"),
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(
                ProblemKind::MalformedJson,
                format!("cannot read the body: {rejection}"),
            )
        }
    })?;
    // JSON first, then its shape: serde would take a struct from a JSON array too
    // (`[null, null]` as the fields in order), and a command is an object.
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            ProblemKind::MalformedJson,
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            ProblemKind::InvalidCommand,
            "invalid command: a command is a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|error| {
        ApiError::new(
            ProblemKind::InvalidCommand,
            format!("invalid command: {error}"),
        )
    })
}

/// Parses a document id from a path segment (400 when it is not a UUID).
pub fn document_id(segment: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(segment).map_err(|e| {
        ApiError::new(
            ProblemKind::InvalidParameter,
            format!("document id {segment:?} is not a UUID: {e}"),
        )
    })
}

/// A document id from the request's path (`/documents/{id}`): a 400 problem when the
/// segment is not a UUID, or is not UTF-8 text once percent-decoded (axum's own `Path`
/// would answer the latter with a text/plain body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for DocumentIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segment) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(path_rejection)?;
        document_id(&segment).map(Self)
    }
}

/// The problem for a path axum could not extract, in our words rather than axum's.
fn path_rejection(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(_) => ApiError::new(
            ProblemKind::InvalidParameter,
            "a path segment is not UTF-8 text once percent-decoded",
        ),
        // A handler that asks for a parameter its route does not have: our bug.
        other => {
            tracing::error!(rejection = %other, "a route's path parameters do not fit its handler");
            ApiError::new(
                ProblemKind::Internal,
                format!(
                    "the request could not be routed; the fault is logged under trace {}",
                    telemetry::current_trace_id()
                ),
            )
        }
    }
}

/// axum's `Query`, with a 400 problem instead of axum's text/plain rejection when the
/// query string does not fit `T` (a value of the wrong type, a field given twice).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| {
                ApiError::new(
                    ProblemKind::InvalidParameter,
                    format!(
                        "the query string does not fit this call: {}",
                        rejection.body_text()
                    ),
                )
            })
    }
}

/// What `/readyz` asks: `Err` says which dependency does not answer.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long one answer of a readiness check serves every `/readyz` that follows. Probes
/// ask every few seconds, so this never delays them; a flood of requests meets at most
/// two checks a second instead of one round trip to Kafka or Cassandra each.
pub const READINESS_REUSED_FOR: Duration = Duration::from_millis(500);

/// A readiness check from an async closure, without the boxing at every call site. One
/// check runs at a time; callers that arrive meanwhile wait for its answer, and an answer
/// is reused for [`READINESS_REUSED_FOR`].
pub fn readiness<F, Fut>(check: F) -> ReadinessCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    type Answer = Option<(std::time::Instant, Result<(), String>)>;
    let last: Arc<tokio::sync::Mutex<Answer>> = Arc::default();
    let check = Arc::new(check);
    Arc::new(move || {
        let last = Arc::clone(&last);
        let check = Arc::clone(&check);
        Box::pin(async move {
            let mut last = last.lock().await;
            if let Some((at, answer)) = last.as_ref()
                && at.elapsed() < READINESS_REUSED_FOR
            {
                return answer.clone();
            }
            let answer = check().await;
            *last = Some((std::time::Instant::now(), answer.clone()));
            answer
        })
    })
}

/// `GET /openapi.json`: the service's OpenAPI description, generated from its code (the
/// `utoipa::path` attributes of its handlers and the wire types of `libs/events`).
pub fn openapi_route(description: utoipa::openapi::OpenApi) -> Router {
    // Rendered once; each answer shares the bytes.
    let json = Bytes::from(
        description
            .to_pretty_json()
            .expect("an OpenAPI description serialises"),
    );
    Router::new().route(
        OPENAPI_PATH,
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json) }
        }),
    )
}

/// Where every service serves its OpenAPI description.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The description as committed next to a service's code (`services/<name>/openapi.json`),
/// checked by each service's test: when the code changed it, the test writes the new file
/// and fails, so that the change is seen and committed (rust-analyzer's codegen check).
pub fn check_committed_openapi(
    description: &utoipa::openapi::OpenApi,
    committed: &std::path::Path,
) {
    let generated = description
        .to_pretty_json()
        .expect("an OpenAPI description serialises")
        + "\n";
    // Media types are written as literals in the attributes: each must be the contract's.
    let known = [
        mime::CREATE_DOCUMENT,
        mime::UPDATE_DOCUMENT,
        mime::DOCUMENT_ID,
        mime::DOCUMENT,
        mime::PROBLEM,
        mime::EVENT_STREAM,
    ];
    let value: serde_json::Value = serde_json::from_str(&generated).expect("JSON");
    let mut media_types = Vec::new();
    collect_media_types(&value, &mut media_types);
    for media_type in media_types {
        assert!(
            known.contains(&media_type.as_str()),
            "{media_type} in the OpenAPI description is not a media type of events::mime"
        );
    }
    let current = std::fs::read_to_string(committed).unwrap_or_default();
    if current != generated {
        std::fs::write(committed, &generated).expect("the committed description is writable");
        panic!(
            "{} was not up to date with the code; it is now: review and commit it",
            committed.display()
        );
    }
}

/// The keys of every `content` object of an OpenAPI description.
fn collect_media_types(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                if key == "content"
                    && let Some(content) = child.as_object()
                {
                    found.extend(content.keys().cloned());
                }
                collect_media_types(child, found);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_media_types(item, found);
            }
        }
        _ => {}
    }
}

/// `/healthz` (the process answers) and `/readyz` (its dependencies answer too).
pub fn health_routes(ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = Arc::clone(&ready);
                async move {
                    match ready().await {
                        Ok(()) => "ready\n".into_response(),
                        Err(detail) => ApiError::unavailable(
                            format!("not ready: {detail}"),
                            Duration::from_secs(1),
                        )
                        .into_response(),
                    }
                }
            }),
        )
}

/// One token that SIGTERM or Ctrl-C cancels; every part of a service watches it.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received: shutting down"),
            () = term => tracing::info!("SIGTERM received: shutting down"),
        }
        cancel.cancel();
    });
    token
}

/// `service` (a router), also answering every route with a trailing slash (`POST /documents/`), as the
/// seed's services did: the seed's own clients call them that way. The slash is removed
/// before routing, so each route is written, and labelled in spans and metrics, once.
pub fn accept_trailing_slashes<S>(service: S) -> NormalizePath<S> {
    NormalizePath::trim_trailing_slash(service)
}

/// How long a client may take to send a request's headers before its connection is
/// closed: a client that opens connections and sends nothing, or a byte a minute, would
/// otherwise hold each of them for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection settings every service serves HTTP/1.1 and HTTP/2 with (the notifier's
/// own connection loop too): a timer, so that the header-read timeout applies.
pub fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish (idle connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let service = accept_trailing_slashes(router);
    let builder = connection_builder();
    let graceful = GracefulShutdown::new();
    loop {
        let socket = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(socket),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that hangs up or breaks the protocol ends only its connection.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    fn status_of(headers: &HeaderMap, body: &str) -> u16 {
        command_body::<events::CreateDocument>(
            headers,
            Ok(Bytes::from(body.to_owned())),
            mime::CREATE_DOCUMENT,
        )
        .map(|_| 200)
        .unwrap_or_else(|e| e.problem.status)
    }

    #[test]
    fn command_bodies_get_the_contract_statuses() {
        let create = headers(mime::CREATE_DOCUMENT);
        assert_eq!(status_of(&create, r#"{"author":"a"}"#), 200);
        assert_eq!(status_of(&HeaderMap::new(), r#"{"author":"a"}"#), 415);
        assert_eq!(status_of(&headers("application/json"), "{}"), 415);
        assert_eq!(status_of(&create, r#"{"author":"#), 400);
        assert_eq!(status_of(&create, "not json"), 400);
        assert_eq!(status_of(&create, r#"{"author":7}"#), 422);
        assert_eq!(status_of(&create, r#"{"extra":"x"}"#), 422);
        // Found by fuzzing: serde takes a struct from an array of its fields in order.
        for not_an_object in ["[null, null]", r#"["a","b"]"#, "null", "7", r#""text""#] {
            assert_eq!(status_of(&create, not_an_object), 422, "{not_an_object}");
        }
    }

    async fn status_through_slashes(path: &str) -> u16 {
        use tower::ServiceExt as _;
        let router = Router::new()
            .route("/documents", get(|| async { "all" }))
            .route(
                "/documents/{id}",
                get(|Path(id): Path<String>| async move { id }),
            );
        let request = axum::extract::Request::get(path)
            .body(Body::empty())
            .unwrap();
        accept_trailing_slashes(router)
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn routes_answer_with_and_without_a_trailing_slash() {
        for path in ["/documents", "/documents/", "/documents/7", "/documents/7/"] {
            assert_eq!(status_through_slashes(path).await, 200, "{path}");
        }
        assert_eq!(status_through_slashes("/documents/7/x").await, 404);
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_problem_bodies() {
        use tower::ServiceExt as _;
        let api = Router::new().route("/documents", axum::routing::post(|| async { "made" }));
        let ready: ReadinessCheck = readiness(|| async { Ok(()) });
        let shell = Shell::bind(&HttpArgs::<0>::ephemeral()).await.unwrap();
        let router = shell.router(api, ready);
        let call = |method: &str, path: &str| {
            let request = axum::extract::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request)
        };
        let missing = call("GET", "/nothing").await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["content-type"], mime::PROBLEM);
        let wrong = call("GET", "/documents").await.unwrap();
        assert_eq!(wrong.status(), 405);
        assert_eq!(wrong.headers()["content-type"], mime::PROBLEM);
        assert_eq!(wrong.headers()["allow"], "POST");
        assert_eq!(call("POST", "/documents").await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn a_flood_of_readiness_requests_meets_one_check() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checks = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&checks);
        let ready = readiness(move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err("kafka: no answer".to_owned())
            }
        });
        let answers = futures::future::join_all((0..100).map(|_| ready())).await;
        assert!(
            answers
                .iter()
                .all(|a| a == &Err("kafka: no answer".to_owned()))
        );
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        tokio::time::sleep(READINESS_REUSED_FOR).await;
        let _ = ready().await;
        assert_eq!(
            checks.load(Ordering::SeqCst),
            2,
            "a stale answer was reused"
        );
    }

    /// A client that sends part of its headers and then nothing has its connection closed
    /// after the header-read timeout (time is paused: tokio moves it on while both sides
    /// wait, so the test takes no 10 s), while a whole request is answered.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let api = Router::new().route("/x", get(|| async { "x" }));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, api, shutdown.clone()));

        let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(HEADER_READ_TIMEOUT * 2, slow.read_to_end(&mut answer))
            .await
            .expect("the connection is still open after twice the header-read timeout");
        assert!(read.is_ok() && answer.is_empty(), "{read:?} {answer:?}");
        assert!(
            started.elapsed() >= HEADER_READ_TIMEOUT,
            "{:?}",
            started.elapsed()
        );

        let mut whole = tokio::net::TcpStream::connect(address).await.unwrap();
        whole
            .write_all(b"GET /x/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        whole.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    /// Found by fuzzing: a path segment that percent-decodes to bytes that are not UTF-8
    /// got axum's own text/plain 400; every refusal is a problem body.
    #[tokio::test]
    async fn path_and_query_refusals_are_problem_bodies() {
        use tower::ServiceExt as _;
        #[derive(Debug, serde::Deserialize)]
        struct Filter {
            #[allow(dead_code, reason = "only its parsing is tested")]
            size: Option<u32>,
        }
        let router = Router::new()
            .route(
                "/documents/{id}",
                get(|DocumentIdPath(id): DocumentIdPath| async move { id.to_string() }),
            )
            .route(
                "/documents",
                get(|Query(_): Query<Filter>| async { "listed" }),
            );
        let call = |path: &str| {
            let request = axum::extract::Request::get(path)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request)
        };
        for path in [
            "/documents/%FF%FE",
            "/documents/42",
            "/documents?size=big",
            "/documents?size=1&size=2",
        ] {
            let response = call(path).await.unwrap();
            assert_eq!(response.status(), 400, "{path}");
            assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], 400, "{path}");
        }
        let id = "0f8e1b4c-9a7d-4e21-8c3b-5d6f7a8b9c0d";
        let found = call(&format!("/documents/{id}")).await.unwrap();
        assert_eq!(found.status(), 200);
        assert_eq!(call("/documents?size=3").await.unwrap().status(), 200);
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(document_id("0f8e1b4c-9a7d-4e21-8c3b-5d6f7a8b9c0d").is_ok());
        assert_eq!(document_id("42").unwrap_err().problem.status, 400);
    }
}
