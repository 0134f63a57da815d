//! A real OTLP receiver for tests, over HTTP/protobuf or gRPC: services export their
//! spans to it over the network, as they would to Jaeger or a collector, and tests read
//! back what arrived.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// A span as received, with what tests check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER` or `INTERNAL`.
    pub kind: String,
    pub service: String,
    pub attributes: BTreeMap<String, String>,
    /// The spans it links to, as `trace_id:span_id`.
    #[serde(default)]
    pub links: Vec<String>,
    /// The names of its span events (a log event inside the span: its message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

type Spans = Arc<Mutex<VecDeque<ReceivedSpan>>>;

/// The most spans kept; older ones are dropped first (a long-running local backend).
const KEEP: usize = 200_000;

/// The receiver; it stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// Base URL, e.g. `http://127.0.0.1:40123` (exporters add `/v1/traces`).
    pub endpoint: String,
    spans: Spans,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver port");
        Self::serve(listener)
    }

    /// Serves OTLP/HTTP (`POST /v1/traces`) and the spans of a trace as JSON
    /// (`GET /api/traces/{trace_id}`) on `listener`.
    pub fn serve(listener: tokio::net::TcpListener) -> Self {
        let spans: Spans = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .route("/api/traces/{trace_id}", get(trace))
            .with_state(Arc::clone(&spans));
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            spans,
            task,
        }
    }

    /// Listens for OTLP over gRPC on a free loopback port.
    pub async fn start_grpc() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver port");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let spans: Spans = Arc::default();
        let service = TraceServiceServer::new(Grpc(Arc::clone(&spans)));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        Self {
            endpoint,
            spans,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").iter().cloned().collect()
    }

    /// Serves until the task ends (never, unless aborted).
    pub async fn wait(mut self) {
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

async fn receive(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, "not an OTLP trace export").into_response();
    };
    collect(request, &spans);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// The gRPC flavour of the receiver.
struct Grpc(Spans);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        collect(request.into_inner(), &self.0);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Keeps the spans of one export request.
fn collect(request: ExportTraceServiceRequest, spans: &Spans) {
    let mut received = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: match span.kind {
                        1 => "INTERNAL",
                        2 => "SERVER",
                        3 => "CLIENT",
                        4 => "PRODUCER",
                        5 => "CONSUMER",
                        _ => "UNSPECIFIED",
                    }
                    .to_owned(),
                    links: span
                        .links
                        .iter()
                        .map(|l| format!("{}:{}", hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    events: span.events.iter().map(|e| e.name.clone()).collect(),
                    name: span.name,
                    service: service.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| {
                            let value = a.value.as_ref().and_then(|v| v.value.as_ref());
                            (a.key.clone(), value.map(text).unwrap_or_default())
                        })
                        .collect(),
                });
            }
        }
    }
    let mut kept = spans.lock().expect("spans");
    kept.extend(received);
    let excess = kept.len().saturating_sub(KEEP);
    kept.drain(..excess);
}

async fn trace(
    State(spans): State<Spans>,
    axum::extract::Path(trace_id): axum::extract::Path<String>,
) -> axum::Json<Vec<ReceivedSpan>> {
    let spans = spans.lock().expect("spans");
    axum::Json(
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect(),
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
