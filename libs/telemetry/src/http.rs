//! HTTP telemetry: the axum layer that gives each request a SERVER span and its
//! `http_server_request_duration_seconds` sample, and the `/metrics` route. A caller's
//! `traceparent` is, by default, kept as a link of a new trace rather than continued.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::names;

/// Routes that are probed all day long: timed, but no trace of their own.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// What a request's own `traceparent` (W3C Trace Context) does to its SERVER span.
///
/// The services are called only from outside the platform (they talk to each other
/// through Kafka), so each service's HTTP layer is the platform's edge. An outside
/// caller's context is untrusted: continuing it would let anyone choose the platform's
/// trace ids and sampling, and join our spans to traces we do not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerTrace {
    /// A new trace for every request, with a link to the caller's span (the default).
    #[default]
    Link,
    /// The request's span continues the caller's trace (a caller you trust, e.g. a
    /// gateway that traces itself).
    Continue,
}

/// Adds request spans and HTTP metrics to every route of `router`.
pub fn instrument<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    caller_trace: CallerTrace,
) -> Router<S> {
    router.layer(middleware::from_fn_with_state(caller_trace, track))
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

async fn track(
    axum::extract::State(caller_trace): axum::extract::State<CallerTrace>,
    request: Request,
    next: Next,
) -> Response {
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
        let caller = extract(request.headers());
        match caller_trace {
            CallerTrace::Continue => {
                let _ = span.set_parent(caller);
            }
            CallerTrace::Link => {
                let caller = caller.span().span_context().clone();
                if caller.is_valid() {
                    span.add_link(caller);
                }
            }
        }
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
