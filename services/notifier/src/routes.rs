//! `GET /documents`: the event stream. A stream starts with a `retry:` hint and the id of
//! its starting position, replays what the client missed (older history from Kafka,
//! recent history from memory), then follows the live events; `event: reset` says when
//! history the client asked for is gone.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::{ProblemKind, mime};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use web::ApiError;

use crate::hub::{ClientGuard, Hub, Item, Replay, SubscribeError};
use crate::internal_events::{EventSent, ReplayFailed, ReplayStep};
use crate::kafka::{ReplayPool, ReplayReader};
use crate::repeats::RecentIds;
use crate::token::Position;

/// How long a new stream waits for the history to load after a restart.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Streams {
    pub hub: Arc<Hub>,
    pub replays: ReplayPool,
    pub keep_alive: Duration,
    pub retry: Duration,
}

/// Closes the connection a request came on (set by `serve`), for clients too slow to
/// keep.
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub CancellationToken);

pub fn router(streams: Streams) -> Router {
    Router::new()
        .route("/documents", get(listen))
        .with_state(streams)
        .merge(web::openapi_route(<ApiDoc as utoipa::OpenApi>::openapi()))
}

/// The notifier's OpenAPI description, served at `/openapi.json` and committed as
/// `services/notifier/openapi.json`.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "kafka-cqrs notifier",
        description = "Server-Sent Events: every change of every document (or of one), \
            resumable without gap or duplicate. Through the gateway its paths start with \
            /notifier."
    ),
    paths(listen),
    components(schemas(events::Event, events::EventHeader, events::EventType))
)]
pub struct ApiDoc;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListenQuery {
    last_event_id: Option<String>,
    document_id: Option<String>,
}

/// Listens to document events.
///
/// Each event is sent as `id: <resume token>` and `data: <Event JSON>` (schema `Event`);
/// a stream opens with a frame of `retry:` and `id:` only, sends `: keep-alive` comments
/// when idle, and an `event: reset` frame when the position asked for has left the log.
#[utoipa::path(
    get,
    path = "/documents",
    params(
        ("documentId" = Option<Uuid>, Query, description = "Only this document's events"),
        ("lastEventId" = Option<String>, Query,
            description = "Resume after this event's id, for clients that cannot set Last-Event-ID"),
        ("Last-Event-ID" = Option<String>, Header,
            description = "Resume after this event's id (wins over lastEventId)"),
    ),
    responses(
        (status = 200, description = "The event stream",
            content_type = "text/event-stream;charset=UTF-8", body = String),
        (status = 400, description = "documentId is not a UUID, or the resume token is malformed",
            content_type = "application/problem+json", body = events::Problem),
        (status = 429, description = "The notifier serves the most streams it may",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "The notifier is still loading recent history; try again after Retry-After",
            headers(("Retry-After" = u32, description = "Seconds to wait")),
            content_type = "application/problem+json", body = events::Problem),
    )
)]
async fn listen(
    State(streams): State<Streams>,
    Query(query): Query<ListenQuery>,
    headers: HeaderMap,
    kill: Option<axum::Extension<ConnectionKill>>,
) -> Result<Response, ApiError> {
    let filter = query
        .document_id
        .as_deref()
        .map(|id| {
            Uuid::parse_str(id).map_err(|e| {
                ApiError::new(
                    ProblemKind::InvalidParameter,
                    format!("documentId {id:?} is not a UUID: {e}"),
                )
            })
        })
        .transpose()?;
    // The header wins: it is what a browser sends on its own reconnects.
    let token = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .filter(|t| !t.trim().is_empty());
    let partitions = streams.hub.partitions();
    // A token of another partition count names no position here: start again from the
    // earliest events, after an `event: reset` that says so.
    let mut other_layout = None;
    let requested = match token.map(|t| Position::parse(&t, partitions)).transpose() {
        Ok(requested) => requested,
        Err(error) if error.other_layout.is_some() => {
            other_layout = error.other_layout;
            Some(Position::new(vec![0; partitions]))
        }
        Err(error) => {
            return Err(ApiError::new(
                ProblemKind::InvalidParameter,
                format!("{error}; send the id of the last event received, or no Last-Event-ID"),
            ));
        }
    };
    if tokio::time::timeout(CATCH_UP_WAIT, streams.hub.wait_caught_up())
        .await
        .is_err()
    {
        return Err(ApiError::unavailable(
            "the notifier is still loading recent history",
            Duration::from_secs(2),
        ));
    }
    let subscription = streams
        .hub
        .subscribe(requested, filter, kill.map(|k| k.0.0.clone()))
        .map_err(|SubscribeError::TooMany(max)| {
            ApiError::new(
                ProblemKind::TooManyRequests,
                format!("{max} streams are open, the most this notifier serves; try again later"),
            )
        })?;

    let position = subscription.start.clone();
    let mut opening = VecDeque::new();
    opening.push_back(
        SseEvent::default()
            .retry(streams.retry)
            .id(position.to_string()),
    );
    if let Some((partition, wanted)) = other_layout {
        opening.push_back(reset(
            &position,
            partition,
            wanted,
            0,
            &format!(
                "the token names partition {partition}, which this topic ({partitions} partitions) does not have; starting again from the earliest events"
            ),
        ));
    }
    for &(partition, wanted, _end) in &subscription.ahead {
        opening.push_back(reset(
            &position,
            partition,
            wanted,
            position.get(partition),
            "the position is beyond the end of the topic (a token of another deployment, or the topic was recreated); starting again from the earliest events",
        ));
    }
    let state = StreamState {
        position,
        queued: opening,
        replays: subscription.from_kafka.into(),
        reader: None,
        memory: subscription.from_memory.into(),
        live: subscription.live,
        filter,
        pool: streams.replays.clone(),
        hub: Arc::clone(&streams.hub),
        replayed: RecentIds::new(crate::repeats::MIN_WINDOW),
        _guard: subscription.guard,
    };
    let stream = futures::stream::unfold(state, next_frame);
    let mut response = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(streams.keep_alive)
                .text("keep-alive"),
        )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime::EVENT_STREAM),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell proxies that honour it (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The `event: reset` frame for `partition`, with the id of the position it continues at.
fn reset(
    position: &Position,
    partition: usize,
    requested: i64,
    continues: i64,
    why: &str,
) -> SseEvent {
    let data = serde_json::json!({
        "message": format!("history lost: {why}"),
        "partition": partition,
        "requestedOffset": requested,
        "continuesFromOffset": continues,
    });
    SseEvent::default()
        .event("reset")
        .id(position.to_string())
        .data(data.to_string())
}

/// Where one client's stream stands.
struct StreamState {
    position: Position,
    /// Frames ready to go out before anything else.
    queued: VecDeque<SseEvent>,
    /// Ranges still to read from Kafka.
    replays: VecDeque<Replay>,
    reader: Option<ReplayReader>,
    memory: VecDeque<Item>,
    live: tokio::sync::mpsc::Receiver<Item>,
    filter: Option<Uuid>,
    pool: ReplayPool,
    hub: Arc<Hub>,
    /// Event ids sent from history (Kafka and memory) on this stream: the hub keeps
    /// repeats out of what it holds, but a replay reaches back beyond what it has seen.
    replayed: RecentIds,
    _guard: ClientGuard,
}

impl StreamState {
    /// The frame for `item`, advancing the position; `None` when the filter skips it.
    fn frame(&mut self, item: &Item) -> Option<SseEvent> {
        self.position.advance(item.partition, item.offset);
        if self.filter.is_some_and(|id| id != item.document) {
            return None;
        }
        EventSent.emit();
        Some(
            SseEvent::default()
                .id(self.position.to_string())
                .data(item.json.as_str()),
        )
    }

    /// The frame for `item` from history, unless it repeats an event already read.
    fn history_frame(&mut self, item: &Item) -> Option<SseEvent> {
        let repeat = self.replayed.repeat(item.event, item.offset)
            || self.hub.is_repeat(item.partition, item.event, item.offset);
        if repeat {
            // Not sent; the position still moves past it.
            self.position.advance(item.partition, item.offset);
            return None;
        }
        self.frame(item)
    }
}

/// The next frame of a stream: queued frames, then Kafka replays, then memory, then live.
async fn next_frame(mut state: StreamState) -> Option<(Result<SseEvent, Infallible>, StreamState)> {
    loop {
        if let Some(frame) = state.queued.pop_front() {
            return Some((Ok(frame), state));
        }
        if let Some(reader) = state.reader.as_mut() {
            match reader.next().await {
                Ok(Some((offset, item))) => {
                    if let Some(item) = item {
                        if let Some(frame) = state.history_frame(&item) {
                            return Some((Ok(frame), state));
                        }
                    } else if let Some(replay) = state.replays.front() {
                        // Not an event: only the position moves on.
                        state.position.advance(replay.partition, offset);
                    }
                    continue;
                }
                Ok(None) => {
                    state.reader = None;
                    state.replays.pop_front();
                    continue;
                }
                Err(error) => {
                    // End the stream: the client reconnects with its last id and the
                    // replay starts again.
                    ReplayFailed {
                        step: ReplayStep::Read,
                        error: &error,
                    }
                    .emit();
                    return None;
                }
            }
        }
        if let Some(&replay) = state.replays.front() {
            let from = state.position.get(replay.partition).max(replay.from);
            match state.pool.open(replay.partition, from, replay.until).await {
                Ok((reader, start)) => {
                    if let Some(low) = start.lost_below {
                        state.position.set(replay.partition, low);
                        let frame = reset(
                            &state.position,
                            replay.partition,
                            from,
                            low,
                            "the topic no longer holds the requested events; continuing with the earliest it holds",
                        );
                        state.queued.push_back(frame);
                    }
                    if start.from >= replay.until {
                        state.replays.pop_front();
                    } else {
                        state.reader = Some(reader);
                    }
                    continue;
                }
                Err(error) => {
                    ReplayFailed {
                        step: ReplayStep::Open,
                        error: &error,
                    }
                    .emit();
                    return None;
                }
            }
        }
        if let Some(item) = state.memory.pop_front() {
            if let Some(frame) = state.history_frame(&item) {
                return Some((Ok(frame), state));
            }
            continue;
        }
        let item = state.live.recv().await?;
        if let Some(frame) = state.frame(&item) {
            return Some((Ok(frame), state));
        }
    }
}
