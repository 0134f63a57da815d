//! HTTP plumbing that every kafka-cqrs service shares, so that none writes its own: the
//! HTTP settings, the service shell ([`Shell`]: bind, metrics, health and readiness,
//! instrumentation, serving until shutdown), problem responses (`ApiError`), command
//! bodies checked against the contract (`command_body`) and the shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use events::{Problem, ProblemKind, mime};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The largest command body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = events::MAX_COMMAND_BYTES;

/// Every interface: what a container must listen on.
pub const DEFAULT_HOST: &str = "0.0.0.0";

/// HTTP settings of a service whose port is `PORT` unless configured; services name their
/// port from the table in `libs/platform` (`HttpArgs<{ platform::PRODUCER.port }>`).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs<const PORT: u16> {
    /// Address to listen on; 0.0.0.0 serves every interface (as a container must).
    #[arg(long = "http-host", env = "HTTP_HOST", default_value = DEFAULT_HOST)]
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests do).
    #[arg(long = "http-port", env = "HTTP_PORT", default_value_t = PORT)]
    pub port: u16,
}

impl<const PORT: u16> HttpArgs<PORT> {
    /// Loopback on a free port: what tests use.
    pub fn ephemeral() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
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
}

impl Shell {
    /// Installs the metrics recorder (so that metrics recorded while the service builds are
    /// kept) and binds the configured address.
    pub async fn bind<const PORT: u16>(http: &HttpArgs<PORT>) -> std::io::Result<Self> {
        telemetry::install_metrics();
        let listener = http.bind().await?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, port })
    }

    /// The port it listens on (useful when configured with 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's `api` with the shared routes, every request instrumented.
    pub fn router(api: Router, ready: ReadinessCheck) -> Router {
        telemetry::http::instrument(
            api.merge(health_routes(ready))
                .merge(telemetry::http::metrics_route()),
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
        serve(self.listener, Self::router(api, ready), shutdown).await
    }

    /// The listener, for a service that serves connections its own way (the notifier).
    pub fn into_listener(self) -> TcpListener {
        self.listener
    }
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
    serde_json::from_slice(&body).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => ApiError::new(
                ProblemKind::InvalidCommand,
                format!("invalid command: {error}"),
            ),
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                ProblemKind::MalformedJson,
                format!("the body is not valid JSON: {error}"),
            ),
        }
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

/// What `/readyz` asks: `Err` says which dependency does not answer.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A readiness check from an async closure, without the boxing at every call site.
pub fn readiness<F, Fut>(check: F) -> ReadinessCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(check()))
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

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
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
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(document_id("0f8e1b4c-9a7d-4e21-8c3b-5d6f7a8b9c0d").is_ok());
        assert_eq!(document_id("42").unwrap_err().problem.status, 400);
    }
}
