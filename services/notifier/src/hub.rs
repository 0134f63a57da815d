//! The fan-out hub: the in-memory history of recent events per partition, the position
//! the Kafka consumer has reached, and the connected clients with their bounded queues.
//!
//! One lock guards all three, so that a client's snapshot of the history and its
//! registration for live events happen at one instant of the consumer's progress: every
//! event is either in the snapshot or in the live queue, never both, never neither.
//! Publishing never waits for a client: a full queue gets its client disconnected.
//! A live event's frame is encoded once, here, and shared by every stream whose position
//! it names (see `Live`).
//!
//! A repeated event id (a keyed command sent again) is one event: the hub keeps it out of
//! memory and live queues, as a record that only moves the position on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::internal_events::{RepeatSkipped, SlowStreamsClosed, StreamsOpen};
use crate::repeats::{self, RecentIds};
use crate::token::Position;

/// One event as it is delivered: where it sits in Kafka and its JSON.
#[derive(Debug)]
pub struct Delivered {
    pub partition: usize,
    pub offset: i64,
    pub document: Uuid,
    /// The event id (`header.id`): a record that repeats an earlier one's is not sent.
    pub event: Uuid,
    pub timestamp: DateTime<Utc>,
    /// The record value, sent as the SSE `data` unchanged.
    pub json: String,
}

pub type Item = Arc<Delivered>;

/// A live event as a stream receives it.
///
/// A stream's resume token moves, with each frame, in the partition of that frame's event
/// only. An unfiltered stream that has been sent every event since it subscribed is at
/// the hub's `delivered` position, so its frame of the next event is the same bytes as
/// every such stream's: the hub encodes it once, and they share it. Other streams (a
/// narrowed one; one that started past a partition's last event, after records that are
/// no events) get the event and encode their own frame, until they are in step.
#[derive(Debug, Clone)]
pub enum Live {
    /// The frame, encoded for every stream in step.
    Shared {
        partition: usize,
        offset: i64,
        frame: Bytes,
    },
    /// The event, for the stream to frame at its own position.
    Own(Item),
}

/// What a new stream gets: where it starts, what to read from Kafka first, what the
/// memory already holds, and the queue of live events after that.
#[derive(Debug)]
pub struct Subscription {
    /// The client's position before the first event below.
    pub start: Position,
    /// Partitions whose requested position is older than memory: read `from..until`
    /// from Kafka first.
    pub from_kafka: Vec<Replay>,
    /// Partitions whose requested position lies beyond what the topic holds (a token of
    /// another topic, or of a topic that was recreated), as (partition, requested, end):
    /// they start again from the earliest event the topic holds.
    pub ahead: Vec<(usize, i64, i64)>,
    /// History held in memory from the requested position on, in delivery order.
    pub from_memory: Vec<Item>,
    /// Live events from the moment of subscription.
    pub live: mpsc::Receiver<Live>,
    pub guard: ClientGuard,
}

/// A range of one partition to replay from Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    pub partition: usize,
    pub from: i64,
    pub until: i64,
}

/// Why a stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("{0} streams are open, the most this notifier serves; try again later")]
    TooMany(usize),
}

struct Client {
    id: u64,
    filter: Option<Uuid>,
    /// The position the stream started at, while it is ahead of `delivered` in some
    /// partition (it started after records that are no events); `None` once the stream is
    /// at `delivered`, where the shared frames name its position.
    out_of_step: Option<Box<[i64]>>,
    queue: mpsc::Sender<Live>,
    /// Closes the client's connection at once, even while it is blocked on a client that
    /// stopped reading.
    kill: Option<CancellationToken>,
}

struct State {
    history: Vec<VecDeque<Item>>,
    /// Per partition, the lowest offset from which memory holds every event.
    floor: Vec<i64>,
    /// Per partition, the next offset the consumer will read.
    next: Vec<i64>,
    /// Per partition, the offset after the last event sent live (or `next` at start): the
    /// position of every unfiltered stream in step, which the shared frames name.
    delivered: Vec<i64>,
    /// Per partition, the first offset of each recent event id.
    seen: Vec<RecentIds>,
    clients: Vec<Client>,
}

/// Shared by the consumer (which publishes) and the HTTP handlers (which subscribe).
pub struct Hub {
    state: Mutex<State>,
    history_per_partition: usize,
    client_buffer: usize,
    max_clients: usize,
    open: AtomicUsize,
    /// Serialises the reports of `open` (see `report_open`).
    reporting: Mutex<()>,
    next_client: AtomicU64,
    caught_up: watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose consumer starts reading each partition at `start`.
    pub fn new(
        start: Vec<i64>,
        history_per_partition: usize,
        client_buffer: usize,
        max_clients: usize,
    ) -> Arc<Self> {
        let partitions = start.len();
        let window = history_per_partition.max(repeats::MIN_WINDOW);
        Arc::new(Self {
            state: Mutex::new(State {
                history: vec![VecDeque::new(); partitions],
                floor: start.clone(),
                delivered: start.clone(),
                next: start,
                seen: (0..partitions).map(|_| RecentIds::new(window)).collect(),
                clients: Vec::new(),
            }),
            history_per_partition: history_per_partition.max(1),
            client_buffer: client_buffer.max(1),
            max_clients,
            open: AtomicUsize::new(0),
            reporting: Mutex::new(()),
            next_client: AtomicU64::new(0),
            caught_up: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than stopping every stream would.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn partitions(&self) -> usize {
        self.lock().next.len()
    }

    /// The next offset the consumer is expected to read from `partition`.
    pub fn next_offset(&self, partition: usize) -> i64 {
        self.lock().next.get(partition).copied().unwrap_or(0)
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The consumer read the history that was in the topic when the notifier started.
    pub fn mark_caught_up(&self) {
        self.caught_up.send_replace(true);
    }

    /// Whether the consumer has read up to `targets` (per partition, exclusive).
    pub fn has_reached(&self, targets: &[i64]) -> bool {
        let state = self.lock();
        state
            .next
            .iter()
            .zip(targets)
            .all(|(next, target)| next >= target)
    }

    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Waits until the history is loaded; new streams must not start before.
    pub async fn wait_caught_up(&self) {
        let mut ready = self.caught_up.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// The consumer read the record at `offset` of `partition`; `item` is its event, or
    /// `None` for a record that is not one (it only moves the position on). Returns the
    /// number of clients it was queued for.
    pub fn publish(&self, partition: usize, offset: i64, item: Option<Item>) -> usize {
        let mut state = self.lock();
        state.next[partition] = state.next[partition].max(offset + 1);
        let Some(item) = item else {
            return 0;
        };
        if state.seen[partition].repeat(item.event, offset) {
            RepeatSkipped {
                event: item.event,
                partition,
                offset,
            }
            .emit();
            return 0;
        }
        let history = &mut state.history[partition];
        history.push_back(Arc::clone(&item));
        if history.len() > self.history_per_partition
            && let Some(dropped) = history.pop_front()
        {
            state.floor[partition] = dropped.offset + 1;
        }
        state.delivered[partition] = state.delivered[partition].max(offset + 1);
        let (mut kicked, mut reached) = (0, 0);
        let State {
            clients, delivered, ..
        } = &mut *state;
        // Encoded when the first stream in step takes it.
        let mut shared: Option<Bytes> = None;
        clients.retain_mut(|client| {
            if client.filter.is_some_and(|id| id != item.document) {
                return true;
            }
            if client
                .out_of_step
                .as_ref()
                .is_some_and(|start| start.iter().zip(delivered.iter()).all(|(s, d)| s <= d))
            {
                client.out_of_step = None;
            }
            let live = if client.filter.is_none() && client.out_of_step.is_none() {
                Live::Shared {
                    partition,
                    offset,
                    frame: shared
                        .get_or_insert_with(|| {
                            let id = Position::new(delivered.clone()).to_string();
                            crate::sse::event(&id, &item.json)
                        })
                        .clone(),
                }
            } else {
                Live::Own(Arc::clone(&item))
            };
            match client.queue.try_send(live) {
                Ok(()) => {
                    reached += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Too slow: let it go rather than hold anyone else up. It resumes
                    // with the id of the last event it received.
                    if let Some(kill) = &client.kill {
                        kill.cancel();
                    }
                    kicked += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if kicked > 0 {
            SlowStreamsClosed { count: kicked }.emit();
        }
        reached
    }

    /// Whether the record at `offset` of `partition` repeats an event the consumer read
    /// at a lower offset (for replays from Kafka, which bypass the hub).
    pub fn is_repeat(&self, partition: usize, event: Uuid, offset: i64) -> bool {
        self.lock()
            .seen
            .get(partition)
            .is_some_and(|seen| seen.is_repeat(event, offset))
    }

    /// Registers a stream that resumes at `requested` (or starts live when `None`),
    /// narrowed to one document when `filter` is set.
    pub fn subscribe(
        self: &Arc<Self>,
        requested: Option<Position>,
        filter: Option<Uuid>,
        kill: Option<CancellationToken>,
    ) -> Result<Subscription, SubscribeError> {
        if self.open.fetch_add(1, Ordering::SeqCst) + 1 > self.max_clients {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return Err(SubscribeError::TooMany(self.max_clients));
        }
        let guard = ClientGuard {
            hub: Arc::clone(self),
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
        };
        self.report_open();
        let (queue, live) = mpsc::channel(self.client_buffer);

        let mut state = self.lock();
        let mut start = requested.unwrap_or_else(|| Position::new(state.next.clone()));
        let mut from_kafka = Vec::new();
        let mut ahead = Vec::new();
        let mut memory: Vec<VecDeque<Item>> = Vec::with_capacity(state.next.len());
        for partition in 0..state.next.len() {
            let wanted = start.get(partition);
            let (floor, next) = (state.floor[partition], state.next[partition]);
            if wanted > next {
                // The position does not exist in this topic (a recreated topic, or a
                // token of another deployment): the client gets `event: reset`, then
                // everything the topic holds, never a silent gap.
                ahead.push((partition, wanted, next));
                start.set(partition, 0);
            }
            if start.get(partition) < floor {
                from_kafka.push(Replay {
                    partition,
                    from: start.get(partition),
                    until: floor,
                });
            }
            let from = start.get(partition);
            memory.push(
                state.history[partition]
                    .iter()
                    .filter(|item| item.offset >= from)
                    .filter(|item| filter.is_none_or(|id| id == item.document))
                    .cloned()
                    .collect(),
            );
        }
        let out_of_step = start
            .offsets()
            .iter()
            .zip(&state.delivered)
            .any(|(s, d)| s > d)
            .then(|| start.offsets().into());
        state.clients.push(Client {
            id: guard.id,
            filter,
            out_of_step,
            queue,
            kill,
        });
        drop(state);
        Ok(Subscription {
            start,
            from_kafka,
            ahead,
            from_memory: merge_by_time(memory),
            live,
            guard,
        })
    }

    /// Ends every stream: each client gets what is queued for it, then the end of the
    /// stream.
    pub fn close_all(&self) {
        self.lock().clients.clear();
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().clients.retain(|client| client.id != id);
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.report_open();
    }

    /// Sets the open-streams gauge. Setting it from the value each change returned would
    /// let a late report of an older value win; reports here run one at a time and each
    /// reads the count anew, so the last one always reports every change before it.
    fn report_open(&self) {
        let _one_at_a_time = self
            .reporting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        StreamsOpen {
            open: self.open.load(Ordering::SeqCst),
        }
        .emit();
    }
}

/// Removes its client from the hub when the stream ends, however it ends.
#[derive(Debug)]
pub struct ClientGuard {
    hub: Arc<Hub>,
    id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

/// Merges per-partition queues (each in offset order) into one sequence by event time,
/// never reordering a partition: a reconnecting client sees history roughly as it
/// happened, and each document's events exactly in order.
fn merge_by_time(mut partitions: Vec<VecDeque<Item>>) -> Vec<Item> {
    let mut merged = Vec::with_capacity(partitions.iter().map(VecDeque::len).sum());
    loop {
        let earliest = partitions
            .iter()
            .enumerate()
            .filter_map(|(p, queue)| queue.front().map(|item| (item.timestamp, p)))
            .min();
        let Some((_, partition)) = earliest else {
            return merged;
        };
        if let Some(item) = partitions[partition].pop_front() {
            merged.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(partition: usize, offset: i64, document: Uuid, millis: i64) -> Item {
        Arc::new(Delivered {
            partition,
            offset,
            document,
            event: Uuid::new_v4(),
            timestamp: DateTime::from_timestamp_millis(millis).unwrap(),
            json: format!("{partition}:{offset}"),
        })
    }

    fn offsets(items: &[Item]) -> Vec<(usize, i64)> {
        items.iter().map(|i| (i.partition, i.offset)).collect()
    }

    #[test]
    fn a_resume_gets_memory_after_its_position_then_live_without_overlap() {
        let hub = Hub::new(vec![0, 0], 10, 8, 100);
        let doc = Uuid::new_v4();
        hub.publish(0, 0, Some(item(0, 0, doc, 1)));
        hub.publish(1, 0, Some(item(1, 0, doc, 2)));
        hub.publish(0, 1, Some(item(0, 1, doc, 3)));

        let mut sub = hub
            .subscribe(Some(Position::new(vec![1, 0])), None, None)
            .unwrap();
        assert_eq!(offsets(&sub.from_memory), vec![(1, 0), (0, 1)]);
        assert!(sub.from_kafka.is_empty());

        hub.publish(1, 1, Some(item(1, 1, doc, 4)));
        let live = sub.live.try_recv().unwrap();
        assert_eq!(at(&live), (1, 1));
        assert!(sub.live.try_recv().is_err());
    }

    /// Where a live event sits: (partition, offset).
    fn at(live: &Live) -> (usize, i64) {
        match live {
            Live::Shared {
                partition, offset, ..
            } => (*partition, *offset),
            Live::Own(item) => (item.partition, item.offset),
        }
    }

    fn shared(live: Live) -> Bytes {
        match live {
            Live::Shared { frame, .. } => frame,
            Live::Own(item) => panic!("its own frame for {}:{}", item.partition, item.offset),
        }
    }

    /// Streams in step share one encoding of a live frame, whose id moves in the event's
    /// partition only: a record that is no event does not move it.
    #[test]
    fn streams_in_step_share_a_live_frame_encoded_once() {
        let hub = Hub::new(vec![4, 0, 9], 10, 8, 100);
        let doc = Uuid::new_v4();
        let mut a = hub.subscribe(None, None, None).unwrap();
        let mut b = hub.subscribe(None, None, None).unwrap();
        hub.publish(2, 9, None);
        assert_eq!(hub.publish(1, 0, Some(item(1, 0, doc, 1))), 2);
        let (a, b) = (
            shared(a.live.try_recv().unwrap()),
            shared(b.live.try_recv().unwrap()),
        );
        assert_eq!(
            std::str::from_utf8(&a).unwrap(),
            "id: 0:4,1:1,2:9\ndata: 1:0\n\n"
        );
        assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
    }

    /// A stream that started past a partition's last event (after a record that is no
    /// event) frames events at its own position until an event of that partition brings
    /// it in step; a narrowed stream always does.
    #[test]
    fn streams_out_of_step_frame_their_own_until_in_step() {
        let hub = Hub::new(vec![0, 0], 10, 8, 100);
        let doc = Uuid::new_v4();
        hub.publish(0, 0, None);
        let mut late = hub.subscribe(None, None, None).unwrap();
        let mut narrowed = hub.subscribe(None, Some(doc), None).unwrap();
        assert_eq!(late.start, Position::new(vec![1, 0]));
        hub.publish(1, 0, Some(item(1, 0, doc, 1)));
        assert!(matches!(late.live.try_recv().unwrap(), Live::Own(_)));
        assert!(matches!(narrowed.live.try_recv().unwrap(), Live::Own(_)));
        hub.publish(0, 1, Some(item(0, 1, doc, 2)));
        let frame = shared(late.live.try_recv().unwrap());
        assert!(
            std::str::from_utf8(&frame)
                .unwrap()
                .starts_with("id: 0:2,1:1\n")
        );
        assert!(matches!(narrowed.live.try_recv().unwrap(), Live::Own(_)));
    }

    #[test]
    fn positions_older_than_memory_are_replayed_from_kafka() {
        let hub = Hub::new(vec![5], 2, 8, 100);
        let doc = Uuid::new_v4();
        for offset in 5..9 {
            hub.publish(0, offset, Some(item(0, offset, doc, offset)));
        }
        // Memory holds 7 and 8 only.
        let sub = hub
            .subscribe(Some(Position::new(vec![3])), None, None)
            .unwrap();
        assert_eq!(
            sub.from_kafka,
            vec![Replay {
                partition: 0,
                from: 3,
                until: 7
            }]
        );
        assert_eq!(offsets(&sub.from_memory), vec![(0, 7), (0, 8)]);
    }

    #[test]
    fn a_position_beyond_the_topic_starts_again_from_the_earliest_event() {
        // Memory holds offsets 5..=8 of a topic whose history starts at 0: a token at 20
        // (of a topic recreated since) gets all of it, from Kafka then from memory.
        let hub = Hub::new(vec![5], 10, 8, 100);
        let doc = Uuid::new_v4();
        for offset in 5..9 {
            hub.publish(0, offset, Some(item(0, offset, doc, offset)));
        }
        let sub = hub
            .subscribe(Some(Position::new(vec![20])), None, None)
            .unwrap();
        assert_eq!(sub.ahead, vec![(0, 20, 9)]);
        assert_eq!(sub.start, Position::new(vec![0]));
        assert_eq!(
            sub.from_kafka,
            vec![Replay {
                partition: 0,
                from: 0,
                until: 5
            }]
        );
        assert_eq!(
            offsets(&sub.from_memory),
            vec![(0, 5), (0, 6), (0, 7), (0, 8)]
        );
    }

    #[test]
    fn a_full_queue_disconnects_its_client_and_nobody_else() {
        let hub = Hub::new(vec![0], 100, 2, 100);
        let doc = Uuid::new_v4();
        let kill = CancellationToken::new();
        let slow = hub.subscribe(None, None, Some(kill.clone())).unwrap();
        let mut fast = hub.subscribe(None, None, None).unwrap();
        for offset in 0..5 {
            hub.publish(0, offset, Some(item(0, offset, doc, offset)));
            assert!(fast.live.try_recv().is_ok(), "fast client got {offset}");
        }
        assert!(
            kill.is_cancelled(),
            "the slow client's connection is closed"
        );
        drop(slow);
        assert_eq!(hub.open_streams(), 1);
    }

    #[test]
    fn the_cap_refuses_one_stream_too_many() {
        let hub = Hub::new(vec![0], 10, 8, 2);
        let _a = hub.subscribe(None, None, None).unwrap();
        let b = hub.subscribe(None, None, None).unwrap();
        assert!(hub.subscribe(None, None, None).is_err());
        drop(b);
        assert!(hub.subscribe(None, None, None).is_ok());
    }

    #[test]
    fn a_filter_narrows_memory_and_live_to_one_document() {
        let hub = Hub::new(vec![0], 10, 8, 100);
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        hub.publish(0, 0, Some(item(0, 0, other, 1)));
        hub.publish(0, 1, Some(item(0, 1, mine, 2)));
        let mut sub = hub
            .subscribe(Some(Position::new(vec![0])), Some(mine), None)
            .unwrap();
        assert_eq!(offsets(&sub.from_memory), vec![(0, 1)]);
        hub.publish(0, 2, Some(item(0, 2, other, 3)));
        hub.publish(0, 3, Some(item(0, 3, mine, 4)));
        assert_eq!(at(&sub.live.try_recv().unwrap()).1, 3);
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn a_repeated_event_id_is_one_event_in_memory_and_live() {
        let hub = Hub::new(vec![0], 10, 8, 100);
        let doc = Uuid::new_v4();
        let first = item(0, 0, doc, 1);
        let event = first.event;
        let repeat = |offset| {
            Arc::new(Delivered {
                partition: 0,
                offset,
                document: doc,
                event,
                timestamp: DateTime::from_timestamp_millis(offset).unwrap(),
                json: String::new(),
            })
        };
        hub.publish(0, 0, Some(first));
        let mut live = hub.subscribe(None, None, None).unwrap();
        assert_eq!(hub.publish(0, 1, Some(repeat(1))), 0, "not sent live");
        assert!(live.live.try_recv().is_err());
        hub.publish(0, 2, Some(item(0, 2, doc, 3)));
        assert_eq!(at(&live.live.try_recv().unwrap()).1, 2);
        // Memory holds the event once; the position still moved past the repeat.
        let resumed = hub
            .subscribe(Some(Position::new(vec![0])), None, None)
            .unwrap();
        assert_eq!(offsets(&resumed.from_memory), vec![(0, 0), (0, 2)]);
        assert!(hub.has_reached(&[3]));
        // A replay from Kafka asks the same question.
        assert!(hub.is_repeat(0, event, 1));
        assert!(!hub.is_repeat(0, event, 0));
    }

    /// The gauge of open streams equals the count once concurrent connects and
    /// disconnects settle. The metrics recorder is global to a process, so the check runs
    /// in a child process of this test binary, alone.
    #[test]
    fn the_open_streams_gauge_is_exact_under_concurrent_connects_and_disconnects() {
        const CHILD: &str = "NOTIFIER_GAUGE_TEST_CHILD";
        let name =
            "hub::tests::the_open_streams_gauge_is_exact_under_concurrent_connects_and_disconnects";
        if std::env::var_os(CHILD).is_none() {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .status()
                .expect("the test binary runs");
            assert!(status.success(), "the check in the child process failed");
            return;
        }
        let metrics = telemetry::install_metrics();
        let gauge = || {
            let rendered = metrics.render();
            rendered
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{} ", telemetry::names::SSE_CLIENTS)))
                .map(|value| value.trim().parse::<f64>().unwrap())
                .unwrap_or_else(|| panic!("no gauge in:\n{rendered}"))
        };
        // Rounds of eight threads connecting (or disconnecting) at the same instant, the
        // gauge read after each round: a report of a stale count that lands last shows.
        const WORKERS: usize = 8;
        const ROUNDS: usize = 400;
        let hub = Hub::new(vec![0], 10, 8, 1_000_000);
        let barrier = std::sync::Barrier::new(WORKERS + 1);
        let wrong = std::thread::scope(|scope| {
            for _ in 0..WORKERS {
                scope.spawn(|| {
                    let mut open = Vec::new();
                    for round in 0..ROUNDS {
                        barrier.wait();
                        if round % 2 == 0 {
                            open.push(hub.subscribe(None, None, None).unwrap());
                        } else {
                            open.pop();
                        }
                        barrier.wait();
                        barrier.wait();
                    }
                });
            }
            let mut wrong = Vec::new();
            for round in 0..ROUNDS {
                barrier.wait();
                barrier.wait();
                let (gauge, open) = (gauge(), hub.open_streams());
                if gauge != open as f64 {
                    wrong.push((round, gauge, open));
                }
                barrier.wait();
            }
            wrong
        });
        assert_eq!(
            wrong,
            Vec::new(),
            "rounds where the gauge (second) was not the count (third)"
        );
    }

    #[test]
    fn history_is_merged_by_time_without_reordering_a_partition() {
        let doc = Uuid::new_v4();
        let p0 = VecDeque::from(vec![item(0, 0, doc, 10), item(0, 1, doc, 5)]);
        let p1 = VecDeque::from(vec![item(1, 0, doc, 7)]);
        // Partition 0's clock went backwards: its order still wins.
        assert_eq!(
            offsets(&merge_by_time(vec![p0, p1])),
            vec![(1, 0), (0, 0), (0, 1)]
        );
    }
}
