//! HTTP telemetry: the axum layer that gives each request a SERVER span (continuing the
//! caller's trace from its `traceparent`) and its `http_server_request_duration_seconds`
//! sample, and the `/metrics` route.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::names;

/// Routes that are probed all day long: timed, but no trace of their own.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Adds request spans and HTTP metrics to every route of `router`.
pub fn instrument<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(middleware::from_fn(track))
}

/// `GET /metrics`: the Prometheus text format of this process's metrics.
pub fn metrics_route() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                crate::install_metrics().render(),
            )
                .into_response()
        }),
    )
}

async fn track(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = if UNTRACED.contains(&route.as_str()) {
        next.run(request).await
    } else {
        let span = tracing::info_span!(
            "http request",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            "http.request.method" = method,
            "http.route" = %route,
            "http.response.status_code" = tracing::field::Empty,
        );
        let _ = span.set_parent(extract(request.headers()));
        let response = next.run(request).instrument(span.clone()).await;
        let status = response.status().as_u16();
        span.record("http.response.status_code", status);
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
        }
        response
    };
    metrics::histogram!(
        names::HTTP_SERVER_REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A bounded label: the standard methods, else `_OTHER` (as the conventions say).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// The trace context of an incoming request (W3C `traceparent` / `tracestate`).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    crate::PROPAGATOR.extract(&HeaderExtractor(headers))
}

/// The headers that carry the current span's context to a server we call.
pub fn inject_current() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    crate::PROPAGATOR.inject_context(&context, &mut carrier);
    carrier
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
