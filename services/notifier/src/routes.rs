//! `GET /documents`: the event stream. A stream starts with a `retry:` hint and the id of
//! its starting position, replays what the client missed (older history from Kafka,
//! recent history from memory), then follows the live events; `event: reset` says when
//! history the client asked for is gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use events::{ProblemKind, mime};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use web::{ApiError, Query};

use crate::hub::{ClientGuard, Hub, Item, Live, Replay, SubscribeError};
use crate::internal_events::{EventsSent, ReplayFailed, ReplayStep, ReplaysBusy};
use crate::kafka::{ReplayLease, ReplayPool, ReplayReader, Replayed};
use crate::repeats::RecentIds;
use crate::stall::StallWatch;
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
    /// How long a stream waits for a replay reader before it is refused (503).
    pub replay_wait: Duration,
    /// How long a replaying stream may go unread before its connection is closed.
    pub replay_idle: Duration,
    /// The most events per partition a token may replay from Kafka.
    pub max_replay: i64,
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

// The descriptions' position patterns name the partitions 0-2 (`[0-2]`).
const _: () = assert!(
    platform::kafka::DOCUMENTS_TOPIC_PARTITIONS == 3,
    "update the [0-2] partition patterns of the position parameters"
);

/// One Server-Sent Events frame as a client's parser sees it (the fields it sets).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // Only its description is used: frames are written by `sse`.
pub struct SseFrame {
    /// `reset` for a reset frame; absent for an event.
    event: Option<String>,
    /// The resume token after this frame.
    id: Option<String>,
    /// An `Event` as JSON, or a reset's explanation as JSON.
    data: Option<String>,
    /// The reconnection delay suggested, in milliseconds (the opening frame).
    retry: Option<u64>,
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
    components(schemas(SseFrame, events::Event, events::EventHeader, events::EventType))
)]
pub struct ApiDoc;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListenQuery {
    last_event_id: Option<String>,
    document_id: Option<String>,
    position: Option<String>,
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
        ("lastEventId" = Option<String>, Query, nullable = false,
            pattern = r"^(|[0-9]{1,9}:[0-9]{1,18}(,[0-9]{1,9}:[0-9]{1,18})*)$",
            description = "Resume after this event's id, for clients that cannot set Last-Event-ID; each partition at most once; empty: none"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false,
            pattern = r"^(|[0-9]{1,9}:[0-9]{1,18}(,[0-9]{1,9}:[0-9]{1,18})*)$",
            description = "Resume after this event's id (wins over lastEventId); each partition at most once"),
        ("position" = Option<String>, Query, nullable = false,
            pattern = r"^[0-2]:[0-9]{1,18}$",
            description = "Start right after this command's Document-Position (partition:offset): \
                its partition from there, the others live; for clients that cannot set headers"),
        ("Document-Position" = Option<String>, Header, nullable = false,
            pattern = r"^[0-2]:[0-9]{1,18}$",
            description = "Start right after this command's Document-Position (wins over position); \
                a resume token (Last-Event-ID) wins over both"),
    ),
    responses(
        (status = 200, description = "The event stream: one frame per event (`id` the resume \
            token, `data` an `Event` as JSON), an opening frame of `retry` and `id`, and \
            `event: reset` frames whose `data` says what history was lost",
            content_type = "text/event-stream;charset=UTF-8", body = SseFrame),
        (status = 400, description = "documentId is not a UUID, the resume token is malformed, or the Document-Position is malformed or names no partition of the topic",
            content_type = "application/problem+json", body = events::Problem),
        (status = 429, description = "The notifier serves the most streams it may",
            content_type = "application/problem+json", body = events::Problem),
        (status = 503, description = "The notifier is still loading recent history, has not yet read up to the position asked for, or every reader of older history is busy; try again after Retry-After",
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
    let header = headers
        .get("last-event-id")
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new(
                    ProblemKind::InvalidParameter,
                    "Last-Event-ID is not visible ASCII, so it is no event id of this \
                     notifier; send the id of the last event received, or no Last-Event-ID",
                )
            })
        })
        .transpose()?;
    let partitions = streams.hub.partitions();
    // Empty means absent, for either. A malformed query token is refused even where the
    // header wins: a request is either well-formed or not.
    let header = header.filter(|t| !t.trim().is_empty());
    let from_query = query.last_event_id.filter(|t| !t.trim().is_empty());
    if header.is_some()
        && let Some(ignored) = from_query.as_deref()
        && let Err(error) = Position::parse(ignored, partitions)
        && error.other_layout.is_none()
    {
        return Err(ApiError::new(
            ProblemKind::InvalidParameter,
            format!("lastEventId: {error}"),
        ));
    }
    let token = header.or(from_query);
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
    // A command's Document-Position (read-your-writes): the stream starts right after
    // that event in its partition, and live in the others. A resume token wins: it is
    // what the browser sends when it reconnects to the same URL.
    let after = document_position(&headers, query.position.as_deref(), partitions)?
        .filter(|_| requested.is_none());
    if tokio::time::timeout(CATCH_UP_WAIT, streams.hub.wait_caught_up())
        .await
        .is_err()
    {
        return Err(ApiError::unavailable(
            "the notifier is still loading recent history",
            Duration::from_secs(2),
        ));
    }
    let requested = requested.or_else(|| {
        after.map(|after| {
            let mut start = Position::new(
                (0..partitions)
                    .map(|p| streams.hub.next_offset(p))
                    .collect(),
            );
            start.set(after.partition as usize, after.offset + 1);
            start
        })
    });
    if let Some(requested) = requested.as_ref() {
        catch_up_to(&streams, requested).await?;
    }
    let kill = kill.map(|k| k.0.0.clone());
    let subscription = streams
        .hub
        .subscribe(requested, filter, kill.clone())
        .map_err(|SubscribeError::TooMany(max)| {
            ApiError::new(
                ProblemKind::TooManyRequests,
                format!("{max} streams are open, the most this notifier serves; try again later"),
            )
        })?;

    let mut position = subscription.start.clone();
    let mut opening = VecDeque::new();
    opening.push_back(crate::sse::opening(streams.retry, &position.to_string()));
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
    // A token too far behind is not replayed: it continues with the history in memory.
    let mut replays = VecDeque::new();
    for replay in subscription.from_kafka {
        if replay.until - replay.from <= streams.max_replay {
            replays.push_back(replay);
            continue;
        }
        position.set(replay.partition, replay.until);
        opening.push_back(reset(
            &position,
            replay.partition,
            replay.from,
            replay.until,
            &format!(
                "the position is {} events behind, more than the {} a stream replays; continuing with the recent history (reload older state from the reader)",
                replay.until - replay.from,
                streams.max_replay
            ),
        ));
    }
    // A stream that reads older history holds one of the few replay readers for as long
    // as it does; when none comes free in time, the client is told to come back.
    let lease = if replays.is_empty() {
        None
    } else {
        let lease = streams
            .replays
            .lease(streams.replay_wait)
            .await
            .map_err(|_| {
                ReplaysBusy {
                    waited: streams.replay_wait,
                }
                .emit();
                ApiError::unavailable(
                    "every reader of older history is busy with other clients; try again after Retry-After",
                    streams.retry.max(Duration::from_secs(1)),
                )
            })?;
        let watch = kill.map(|kill| StallWatch::start(streams.replay_idle, kill));
        Some(Replaying { lease, watch })
    };
    let state = StreamState {
        position,
        queued: opening,
        replays,
        lease,
        reader: None,
        memory: subscription.from_memory.into(),
        live: subscription.live,
        filter,
        hub: Arc::clone(&streams.hub),
        replayed: RecentIds::new(crate::repeats::MIN_WINDOW),
        sent: EventsSent::new(),
        _guard: subscription.guard,
    };
    // Boxed: a stream's state is large, and `unfold` moves it into each frame's future
    // and back out; a box moves as one pointer (the move showed in the fan-out profile).
    let frames = Box::pin(futures::stream::unfold(Box::new(state), next_frame));
    let mut response = Response::new(crate::sse::body(frames, streams.keep_alive));
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

/// The `Document-Position` of the request (header, else the `position` parameter), checked
/// against the topic's partitions. Each one given is checked, also the one the other wins
/// over: a malformed position is a client's error wherever it stands.
fn document_position(
    headers: &HeaderMap,
    query: Option<&str>,
    partitions: usize,
) -> Result<Option<events::position::Position>, ApiError> {
    let header = headers
        .get(events::position::HEADER)
        .map(|value| value.to_str().unwrap_or("\u{fffd}").to_owned());
    // Present but empty is malformed too: only an absent position means none.
    let from_query = query
        .map(|text| checked_position(text, partitions))
        .transpose()?;
    match header {
        Some(text) => checked_position(&text, partitions).map(Some),
        None => Ok(from_query),
    }
}

/// `text` as a position of one of the topic's `partitions`, or a 400 that says why.
fn checked_position(text: &str, partitions: usize) -> Result<events::position::Position, ApiError> {
    let position = events::position::Position::parse(text)
        .map_err(|error| ApiError::new(ProblemKind::InvalidParameter, error.to_string()))?;
    if usize::try_from(position.partition).map_or(true, |p| p >= partitions) {
        return Err(ApiError::new(
            ProblemKind::InvalidParameter,
            format!(
                "Document-Position {text} names partition {}, which this topic ({partitions} partitions) does not have",
                position.partition
            ),
        ));
    }
    Ok(position)
}

/// Waits, for a bounded time, until this notifier has read up to `requested`, where Kafka
/// holds it. A token ahead of this notifier's consumer comes from another replica that
/// read further (the events exist, and a moment's wait serves them without a gap) or from
/// a topic that was recreated (they do not exist: the stream resets, see `Hub::subscribe`).
/// Kafka's end offsets tell the two apart.
async fn catch_up_to(streams: &Streams, requested: &Position) -> Result<(), ApiError> {
    let hub = &streams.hub;
    let partitions = requested.offsets().len();
    if (0..partitions).all(|p| requested.get(p) <= hub.next_offset(p)) {
        return Ok(());
    }
    let ends = streams.replays.end_offsets().await.map_err(|error| {
        ReplayFailed {
            step: ReplayStep::Offsets,
            error: &error,
        }
        .emit();
        ApiError::unavailable(
            "cannot tell whether the position asked for exists; try again after Retry-After",
            streams.retry.max(Duration::from_secs(1)),
        )
    })?;
    // Where the topic does not reach the position, the stream resets instead.
    let targets: Vec<i64> = (0..partitions)
        .map(|p| {
            let wanted = requested.get(p);
            if ends.get(p).is_some_and(|&end| wanted <= end) {
                wanted
            } else {
                0
            }
        })
        .collect();
    let reached = tokio::time::timeout(CATCH_UP_WAIT, async {
        while !hub.has_reached(&targets) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    reached.map_err(|_| {
        ApiError::unavailable(
            "this notifier has not yet read up to the position asked for; try again after Retry-After",
            streams.retry.max(Duration::from_secs(1)),
        )
    })
}

/// The `event: reset` frame for `partition`, with the id of the position it continues at.
fn reset(
    position: &Position,
    partition: usize,
    requested: i64,
    continues: i64,
    why: &str,
) -> Bytes {
    let data = serde_json::json!({
        "message": format!("history lost: {why}"),
        "partition": partition,
        "requestedOffset": requested,
        "continuesFromOffset": continues,
    });
    crate::sse::typed("reset", &position.to_string(), &data.to_string())
}

/// What a stream holds while it reads older history: its replay reader slot, and the
/// watch that closes it if its client stops reading.
struct Replaying {
    lease: ReplayLease,
    watch: Option<StallWatch>,
}

/// Where one client's stream stands.
struct StreamState {
    position: Position,
    /// Frames ready to go out before anything else.
    queued: VecDeque<Bytes>,
    /// Ranges still to read from Kafka.
    replays: VecDeque<Replay>,
    /// Held while `replays` is not empty.
    lease: Option<Replaying>,
    reader: Option<ReplayReader>,
    memory: VecDeque<Item>,
    live: tokio::sync::mpsc::Receiver<Live>,
    filter: Option<Uuid>,
    hub: Arc<Hub>,
    /// Event ids sent from history (Kafka and memory) on this stream: the hub keeps
    /// repeats out of what it holds, but a replay reaches back beyond what it has seen.
    replayed: RecentIds,
    sent: EventsSent,
    _guard: ClientGuard,
}

impl StreamState {
    /// The frame for `item` at this stream's position, advancing it; `None` when the
    /// filter skips it.
    fn frame(&mut self, item: &Item) -> Option<Bytes> {
        self.position.advance(item.partition, item.offset);
        if self.filter.is_some_and(|id| id != item.document) {
            return None;
        }
        self.sent.emit();
        Some(crate::sse::event(&self.position.to_string(), &item.json))
    }

    /// The frame of a live event: the one the hub encoded for every stream in step with
    /// it, or this stream's own.
    fn live_frame(&mut self, live: Live) -> Option<Bytes> {
        match live {
            Live::Shared {
                partition,
                offset,
                frame,
            } => {
                self.position.advance(partition, offset);
                self.sent.emit();
                Some(frame)
            }
            Live::Own(item) => self.frame(&item),
        }
    }

    /// The frame for `item` from history, unless it repeats an event already read.
    fn history_frame(&mut self, item: &Item) -> Option<Bytes> {
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

/// The next frame of a stream, with the stall watch told when the stream is at work.
async fn next_frame(state: Box<StreamState>) -> Option<(Bytes, Box<StreamState>)> {
    if let Some(watch) = state.lease.as_ref().and_then(|r| r.watch.as_ref()) {
        watch.enter();
    }
    let next = produce_frame(state).await;
    if let Some(watch) = next
        .as_ref()
        .and_then(|(_, state)| state.lease.as_ref())
        .and_then(|r| r.watch.as_ref())
    {
        watch.leave();
    }
    next
}

/// The next frame of a stream: queued frames, then Kafka replays, then memory, then live.
async fn produce_frame(mut state: Box<StreamState>) -> Option<(Bytes, Box<StreamState>)> {
    loop {
        if let Some(frame) = state.queued.pop_front() {
            return Some((frame, state));
        }
        // Boxed: reading older history from Kafka needs a large future, which every
        // stream would otherwise carry, replaying or not, for as long as it is open.
        if state.reader.is_some() || !state.replays.is_empty() {
            match Box::pin(state.next_from_kafka()).await {
                KafkaStep::Frame(frame) => return Some((frame, state)),
                KafkaStep::Again => continue,
                KafkaStep::End => return None,
            }
        }
        if let Some(item) = state.memory.pop_front() {
            if let Some(frame) = state.history_frame(&item) {
                return Some((frame, state));
            }
            continue;
        }
        let live = state.live.recv().await?;
        if let Some(frame) = state.live_frame(live) {
            return Some((frame, state));
        }
    }
}

/// What one step of reading older history from Kafka gave.
enum KafkaStep {
    Frame(Bytes),
    /// Read on (the next record, range or source).
    Again,
    /// End the stream (the client resumes with its last id).
    End,
}

impl StreamState {
    /// One step of the replay from Kafka: the next record of the open range, or the next
    /// range opened. Only called while there is a reader or a range left.
    async fn next_from_kafka(&mut self) -> KafkaStep {
        if let Some(reader) = self.reader.as_mut() {
            return match reader.next().await {
                Ok(Replayed::Record(offset, item)) => {
                    if let Some(item) = item {
                        if let Some(frame) = self.history_frame(&item) {
                            return KafkaStep::Frame(frame);
                        }
                    } else if let Some(replay) = self.replays.front() {
                        // Not an event: only the position moves on.
                        self.position.advance(replay.partition, offset);
                    }
                    KafkaStep::Again
                }
                Ok(Replayed::End) => {
                    self.reader = None;
                    self.replays.pop_front();
                    if self.replays.is_empty() {
                        // Done with older history: free the reader slot for others.
                        self.lease = None;
                    }
                    KafkaStep::Again
                }
                Ok(Replayed::Lost) => {
                    self.reader = None;
                    if self.skip_lost_history().await {
                        KafkaStep::Again
                    } else {
                        KafkaStep::End
                    }
                }
                Err(error) => {
                    // End the stream: the client reconnects with its last id and the
                    // replay starts again.
                    ReplayFailed {
                        step: ReplayStep::Read,
                        error: &error,
                    }
                    .emit();
                    KafkaStep::End
                }
            };
        }
        let Some(&replay) = self.replays.front() else {
            return KafkaStep::Again;
        };
        let from = self.position.get(replay.partition).max(replay.from);
        if from >= replay.until {
            self.replays.pop_front();
            if self.replays.is_empty() {
                self.lease = None;
            }
            return KafkaStep::Again;
        }
        let Some(replaying) = self.lease.as_ref() else {
            // Cannot happen: a stream with replays holds a lease from its start.
            return KafkaStep::End;
        };
        match replaying.lease.open(replay.partition, from, replay.until) {
            Ok(reader) => {
                self.reader = Some(reader);
                KafkaStep::Again
            }
            Err(error) => {
                ReplayFailed {
                    step: ReplayStep::Open,
                    error: &error,
                }
                .emit();
                KafkaStep::End
            }
        }
    }

    /// The replay's next offset is no longer in the topic (retention or a deletion took
    /// it): moves the position to the earliest offset the topic holds and queues an
    /// `event: reset` saying so. `false` when that cannot be done and the stream must end
    /// (the client then resumes with its last id).
    async fn skip_lost_history(&mut self) -> bool {
        let (Some(&replay), Some(replaying)) = (self.replays.front(), self.lease.as_ref()) else {
            return false;
        };
        let wanted = self.position.get(replay.partition).max(replay.from);
        let earliest = match replaying.lease.earliest(replay.partition).await {
            Ok(earliest) => earliest,
            Err(error) => {
                ReplayFailed {
                    step: ReplayStep::Offsets,
                    error: &error,
                }
                .emit();
                return false;
            }
        };
        if earliest <= wanted {
            // Kafka says the offset is out of range, yet it is not below the start: a
            // truncated or recreated topic, which the layout watch deals with.
            return false;
        }
        self.position.set(replay.partition, earliest);
        let frame = reset(
            &self.position,
            replay.partition,
            wanted,
            earliest,
            "the topic no longer holds the requested events; continuing with the earliest it holds",
        );
        self.queued.push_back(frame);
        true
    }
}
