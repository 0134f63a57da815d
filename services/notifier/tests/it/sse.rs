//! The notifier against the real Kafka: every event to every client, resume by
//! `Last-Event-ID` with no gap and no duplicate (from memory, after a restart, and from
//! Kafka), `event: reset` when history is gone, fan-out that a stalled client cannot
//! hold up, the stream cap, and the wire format of the frames.

use std::collections::BTreeMap;
use std::time::Duration;

use events::{Event, mime};
use futures::StreamExt;
use notifier::{Application, Config};
use rdkafka::TopicPartitionList;
use rdkafka::admin::AdminOptions;
use testkit::sse::{Frame, SseClient};
use testkit::{RunningApp, TestTopic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn start(config: Config) -> RunningApp {
    let app = Application::build(config).await.expect("notifier starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

async fn spawn_notifier(topic: &TestTopic) -> RunningApp {
    start(Config::for_tests(&testkit::infra().bootstrap, &topic.name)).await
}

fn event(document: Uuid, text: &str) -> Event {
    let command = events::CreateDocument {
        author: Some("author".into()),
        text: Some(text.into()),
    };
    Event::created(document, command, Uuid::new_v4().simple().to_string())
}

/// Publishes as the producer does (key = document id, event content type).
async fn publish(topic: &TestTopic, event: &Event) {
    testkit::produce(
        &topic.name,
        &event.key(),
        &event.to_json(),
        Some(mime::EVENT),
    )
    .await;
}

/// Publishes `count` events about `documents` in turn; returns them in order.
async fn publish_many(
    topic: &TestTopic,
    documents: &[Uuid],
    count: usize,
    tag: &str,
) -> Vec<Event> {
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let event = event(documents[i % documents.len()], &format!("{tag}-{i}"));
        publish(topic, &event).await;
        sent.push(event);
    }
    sent
}

async fn listen(app: &RunningApp, last_event_id: Option<&str>) -> SseClient {
    let client = SseClient::connect(&format!("{}/documents", app.address), last_event_id).await;
    assert_eq!(client.status, 200);
    client
}

/// Opens a stream and reads its opening frame (the `retry:` hint and starting id).
async fn listen_ready(app: &RunningApp, last_event_id: Option<&str>) -> (SseClient, Frame) {
    let mut client = listen(app, last_event_id).await;
    let opening = client.next_frame(WAIT).await.expect("an opening frame");
    (client, opening)
}

/// A client with a small receive buffer that sends `GET /documents` with `headers` (each
/// ending in CRLF), reads the response head (200), then nothing.
pub async fn stalled_client(app: &RunningApp, headers: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /documents HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{headers}\r\n"
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0_u8; 256];
    let n = stalled.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stalled
}

/// Deletes the records of partition 0 of `topic` below `offset`, as retention would.
pub async fn delete_below(topic: &TestTopic, offset: i64) {
    let admin = messaging::admin_client(&testkit::infra().bootstrap).unwrap();
    let mut below = TopicPartitionList::new();
    below
        .add_partition_offset(&topic.name, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    admin
        .delete_records(&below, &AdminOptions::new())
        .await
        .expect("delete records");
}

fn parse(frames: &[Frame]) -> Vec<Event> {
    frames
        .iter()
        .map(|f| Event::from_json(f.data.as_deref().unwrap().as_bytes()).unwrap())
        .collect()
}

/// The texts of each document's events, in the order given: per-document order is what
/// the contract keeps (partitions interleave freely).
fn by_document(events: &[Event]) -> BTreeMap<Uuid, Vec<String>> {
    let mut map: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for e in events {
        map.entry(e.payload.id)
            .or_default()
            .push(e.payload.text.clone().unwrap_or_default());
    }
    map
}

fn assert_same_events(received: &[Event], sent: &[Event]) {
    let ids = |events: &[Event]| {
        let mut ids: Vec<Uuid> = events.iter().map(|e| e.header.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(received),
        ids(sent),
        "exactly the events sent, each once"
    );
    assert_eq!(
        by_document(received),
        by_document(sent),
        "each document in order"
    );
}

#[tokio::test]
async fn every_event_reaches_the_stream_as_published() {
    let topic = testkit::infra().topic(3).await;
    let app = spawn_notifier(&topic).await;
    let (mut client, opening) = listen_ready(&app, None).await;
    assert_eq!(client.headers["content-type"], mime::EVENT_STREAM);
    assert_eq!(client.headers["cache-control"], "no-cache");
    assert_eq!(opening.retry, Some(2000));
    assert_eq!(opening.id.as_deref(), Some("0:0,1:0,2:0"));

    let documents: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let sent = publish_many(&topic, &documents, 6, "live").await;
    let frames = client.events(6, WAIT).await;
    for frame in &frames {
        // The data is the record value, byte for byte.
        let event = Event::from_json(frame.data.as_deref().unwrap().as_bytes()).unwrap();
        let original = sent
            .iter()
            .find(|e| e.header.id == event.header.id)
            .unwrap();
        assert_eq!(
            frame.data.as_deref().unwrap().as_bytes(),
            original.to_json()
        );
    }
    assert_same_events(&parse(&frames), &sent);
}

/// Each event frame's id moves in the partition of its event only, also after a record
/// that is no event in another partition (which the stream never receives): a client
/// can tell from two ids where an event sat.
#[tokio::test]
async fn each_frame_id_moves_in_its_events_partition_only() {
    let topic = testkit::infra().topic(2).await;
    let app = spawn_notifier(&topic).await;
    let (mut client, opening) = listen_ready(&app, None).await;
    let mut previous = opening.id.unwrap();
    assert_eq!(previous, "0:0,1:0");
    let (skipped, _) = testkit::produce(&topic.name, "not-an-event", b"{}", None).await;
    for n in 0..20 {
        let event = event(
            Uuid::new_v4(),
            &format!("after the record that is no event {n}"),
        );
        let (partition, offset) = testkit::produce(
            &topic.name,
            &event.key(),
            &event.to_json(),
            Some(mime::EVENT),
        )
        .await;
        let frame = client.events(1, WAIT).await.remove(0);
        let id = frame.id.unwrap();
        let moved: Vec<&str> = previous
            .split(',')
            .zip(id.split(','))
            .filter(|(before, after)| before != after)
            .map(|(_, after)| after)
            .collect();
        assert_eq!(
            moved,
            vec![format!("{partition}:{}", offset + 1)],
            "from {previous} to {id}"
        );
        previous = id;
        if partition != skipped {
            return;
        }
    }
    panic!("twenty events all went to partition {skipped}, the one of the record that is no event");
}

/// Receives some events, disconnects, lets more be published, and reconnects with the
/// last id: exactly the missed events come, then the live ones.
#[tokio::test]
async fn a_reconnect_with_the_last_id_gets_exactly_what_was_missed() {
    let topic = testkit::infra().topic(3).await;
    let app = spawn_notifier(&topic).await;
    let documents: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let (mut client, _) = listen_ready(&app, None).await;
    let seen = publish_many(&topic, &documents, 5, "seen").await;
    let frames = client.events(5, WAIT).await;
    assert_same_events(&parse(&frames), &seen);
    let last_id = frames.last().unwrap().id.clone().unwrap();
    drop(client);

    let missed = publish_many(&topic, &documents, 7, "missed").await;
    let (mut client, opening) = listen_ready(&app, Some(&last_id)).await;
    assert_eq!(
        opening.id.as_deref(),
        Some(last_id.as_str()),
        "starts where it left"
    );
    let frames = client.events(7, WAIT).await;
    assert_same_events(&parse(&frames), &missed);
    // Nothing more was queued: the next event is the next one published.
    let after = event(documents[0], "after");
    publish(&topic, &after).await;
    let next = parse(&[client.next_event(WAIT).await]);
    assert_eq!(next[0].header.id, after.header.id);
}

#[tokio::test]
async fn a_reconnect_after_the_notifier_restarted_is_served_from_the_prefilled_history() {
    let topic = testkit::infra().topic(3).await;
    let app = spawn_notifier(&topic).await;
    let config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    // The first notifier stops after the client disconnected; a new one answers the
    // reconnect from what it loaded at start-up.
    let documents: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let (mut client, _) = listen_ready(&app, None).await;
    let seen = publish_many(&topic, &documents, 5, "seen").await;
    let frames = client.events(5, WAIT).await;
    assert_same_events(&parse(&frames), &seen);
    let last_id = frames.last().unwrap().id.clone().unwrap();
    drop(client);
    app.stop().await;

    let missed = publish_many(&topic, &documents, 7, "missed").await;
    let restarted = start(config).await;
    let (mut client, _) = listen_ready(&restarted, Some(&last_id)).await;
    let frames = client.events(7, WAIT).await;
    assert_same_events(&parse(&frames), &missed);
    let after = event(documents[0], "after");
    publish(&topic, &after).await;
    assert_eq!(
        parse(&[client.next_event(WAIT).await])[0].header.id,
        after.header.id
    );
}

/// A token from another notifier replica that read further than this one: the events
/// exist in Kafka, so the stream waits for this notifier to read them, never a reset.
///
/// To hold this notifier behind for certain, the events are written in a Kafka
/// transaction left open for a moment: Kafka counts them in the end offset at once, but
/// a consumer (read_committed, librdkafka's default) reads them only after the commit.
#[tokio::test]
async fn a_token_ahead_of_this_notifier_but_in_the_topic_waits_instead_of_resetting() {
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

    let topic = testkit::infra().topic(1).await;
    let app = spawn_notifier(&topic).await;
    let document = Uuid::new_v4();
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &testkit::infra().bootstrap)
        .set(
            "transactional.id",
            format!("notifier-test-{}", Uuid::new_v4()),
        )
        .create()
        .unwrap();
    let timeout = Duration::from_secs(10);
    producer.init_transactions(timeout).unwrap();
    producer.begin_transaction().unwrap();
    let mut end = 0;
    for i in 0..3 {
        let event = event(document, &format!("held-{i}"));
        let (json, key) = (event.to_json(), event.key());
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "content-type",
            value: Some(mime::EVENT),
        });
        let record = FutureRecord::to(&topic.name)
            .key(&key)
            .payload(&json)
            .headers(headers);
        let delivered = producer.send(record, timeout).await.unwrap();
        end = delivered.offset + 1;
    }
    let token = format!("0:{end}");
    let committing = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_secs(1));
        producer.commit_transaction(timeout).unwrap();
    });
    let (mut client, opening) = listen_ready(&app, Some(&token)).await;
    assert_eq!(opening.id.as_deref(), Some(token.as_str()), "{opening:?}");
    committing.await.unwrap();
    let after = event(document, "after");
    publish(&topic, &after).await;
    let next = client.next_frame(WAIT).await.unwrap();
    assert_ne!(next.event.as_deref(), Some("reset"), "{next:?}");
    assert_eq!(parse(&[next]), vec![after]);
}

/// The next event of `client` about `document` (others it may see first are passed over).
async fn next_about(client: &mut SseClient, document: Uuid) -> Event {
    loop {
        let event = parse(&[client.next_event(WAIT).await]).remove(0);
        if event.payload.id == document {
            return event;
        }
    }
}

/// A command's Document-Position starts the stream right after that event in its
/// partition (what the client wrote is already in its read; what came after is not), and
/// live in the other partitions.
#[tokio::test]
async fn a_document_position_starts_the_stream_right_after_that_event() {
    let topic = testkit::infra().topic(3).await;
    let app = spawn_notifier(&topic).await;
    let mine = Uuid::new_v4();
    let partition_of = |id: Uuid| messaging::partition_of_key(id.to_string().as_bytes(), 3);
    // A document of another partition, where the stream starts live.
    let other = std::iter::repeat_with(Uuid::new_v4)
        .find(|id| partition_of(*id) != partition_of(mine))
        .unwrap();
    let first = event(mine, "first");
    let (partition, offset) = testkit::produce(
        &topic.name,
        &first.key(),
        &first.to_json(),
        Some(mime::EVENT),
    )
    .await;
    let after: Vec<Event> = vec![event(mine, "second"), event(mine, "third")];
    for e in &after {
        publish(&topic, e).await;
    }
    // Another partition's event from before the stream: seen by the notifier first (a
    // live client gets it), so that "live there" has a definite meaning.
    let (mut watcher, _) = listen_ready(&app, None).await;
    let earlier_other = event(other, "earlier");
    publish(&topic, &earlier_other).await;
    assert_eq!(next_about(&mut watcher, other).await, earlier_other);
    for (how, position_header, query) in [
        (
            "header",
            Some(format!("{partition}:{offset}")),
            String::new(),
        ),
        ("query", None, format!("?position={partition}:{offset}")),
    ] {
        let url = format!("{}/documents{query}", app.address);
        let mut client = match &position_header {
            Some(position) => {
                let response = testkit::http()
                    .get(&url)
                    .header("document-position", position)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{how}");
                SseClient::from_response(response)
            }
            None => SseClient::connect(&url, None).await,
        };
        client.next_frame(WAIT).await.expect("an opening frame");
        let frames = client.events(after.len(), WAIT).await;
        assert_eq!(
            parse(&frames),
            after,
            "{how}: exactly what came after, in order"
        );
        let live = event(other, &format!("live-{how}"));
        publish(&topic, &live).await;
        // The watcher saw it too, so the next stream starts past it in that partition.
        assert_eq!(next_about(&mut watcher, other).await, live);
        let next = client.next_event(WAIT).await;
        assert_eq!(parse(&[next]), vec![live], "{how}: then the live events");
    }
    // A position of a partition the topic does not have, or not a position: 400.
    for bad in ["7:1", "x", ""] {
        let response = testkit::http()
            .get(format!("{}/documents?position={bad}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad:?}");
        assert_eq!(response.headers()["content-type"], mime::PROBLEM);
        // Also where a valid header would win over it (schemathesis found it accepted).
        let response = testkit::http()
            .get(format!("{}/documents?position={bad}", app.address))
            .header("Document-Position", format!("{partition}:0"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad:?} beside a valid header");
    }
}

#[tokio::test]
async fn a_position_older_than_memory_is_replayed_from_kafka() {
    let topic = testkit::infra().topic(1).await;
    let document = Uuid::new_v4();
    let sent = publish_many(&topic, &[document], 10, "old").await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.history_per_partition = 2; // memory holds offsets 8 and 9 only
    let app = start(config).await;

    let (mut client, opening) = listen_ready(&app, Some("0:1")).await;
    assert_eq!(opening.id.as_deref(), Some("0:1"));
    let frames = client.events(9, WAIT).await;
    assert_eq!(
        parse(&frames),
        sent[1..].to_vec(),
        "offsets 1 to 9, in order"
    );
    assert_eq!(frames.last().unwrap().id.as_deref(), Some("0:10"));
}

#[tokio::test]
async fn a_position_the_topic_no_longer_holds_gets_a_reset_then_the_earliest_events() {
    let topic = testkit::infra().topic(1).await;
    let sent = publish_many(&topic, &[Uuid::new_v4()], 6, "kept").await;
    // Delete records below offset 3, as retention would.
    delete_below(&topic, 3).await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.history_per_partition = 1;
    let app = start(config).await;

    let (mut client, _) = listen_ready(&app, Some("0:1")).await;
    let reset = client.next_frame(WAIT).await.unwrap();
    assert_eq!(reset.event.as_deref(), Some("reset"));
    assert_eq!(reset.id.as_deref(), Some("0:3"));
    let data: serde_json::Value = serde_json::from_str(reset.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["requestedOffset"], 1);
    assert_eq!(data["continuesFromOffset"], 3);
    assert!(data["message"].as_str().unwrap().contains("history lost"));
    let frames = client.events(3, WAIT).await;
    assert_eq!(parse(&frames), sent[3..].to_vec());
}

#[tokio::test]
async fn every_client_gets_every_event_and_a_stalled_one_is_let_go() {
    let topic = testkit::infra().topic(3).await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.client_buffer = 8;
    let app = start(config).await;

    // A client that reads its response head, then nothing: its socket fills, then its
    // queue, and the notifier must let it go without slowing anyone else down.
    let mut stalled = stalled_client(&app, "").await;

    // Five clients that read as they should, each on a task of its own. On a loaded
    // machine one of them may still fall a queue behind and be let go too; then it does
    // what every client does, resume with its last id, and must still get every event
    // exactly once.
    const EVENTS: usize = 200;
    let url = format!("{}/documents", app.address);
    let mut readers = Vec::new();
    for _ in 0..5 {
        let (mut client, opening) = listen_ready(&app, None).await;
        let url = url.clone();
        readers.push(tokio::spawn(async move {
            let mut last = opening.id.expect("the opening frame names the position");
            let mut frames = Vec::with_capacity(EVENTS);
            let mut resumed = 0;
            while frames.len() < EVENTS {
                match client.next_frame(WAIT).await {
                    Some(frame) => {
                        if let Some(id) = &frame.id {
                            last = id.clone();
                        }
                        if frame.is_event() {
                            frames.push(frame);
                        }
                    }
                    None => {
                        resumed += 1;
                        assert!(resumed <= 20, "a reading client was let go {resumed} times");
                        client = SseClient::connect(&url, Some(&last)).await;
                    }
                }
            }
            if resumed > 0 {
                eprintln!("a reading client was let go and resumed {resumed} time(s)");
            }
            parse(&frames)
        }));
    }
    // Events large enough to fill the stalled client's socket buffers (the kernel's
    // send buffer grows to a few MiB) and then its queue.
    let big = "x".repeat(32 * 1024);
    let documents: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let sent = publish_many(&topic, &documents, EVENTS, &big).await;
    for reader in readers {
        assert_same_events(&reader.await.expect("reader task"), &sent);
    }

    // The stalled client's connection was closed: draining it ends in EOF or a reset.
    let mut sink = vec![0_u8; 64 * 1024];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled client was never disconnected");
}

#[tokio::test]
async fn the_stream_past_the_cap_gets_429() {
    let topic = testkit::infra().topic(1).await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.max_clients = 2;
    let app = start(config).await;
    let _a = listen_ready(&app, None).await;
    let _b = listen_ready(&app, None).await;
    let refused = testkit::http()
        .get(format!("{}/documents", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["content-type"], mime::PROBLEM);
}

#[tokio::test]
async fn bad_tokens_and_ids_get_400_with_a_problem() {
    let topic = testkit::infra().topic(3).await;
    let app = spawn_notifier(&topic).await;
    let http = testkit::http();
    for (what, request) in [
        (
            "malformed header token",
            http.get(format!("{}/documents", app.address))
                .header("last-event-id", "yesterday"),
        ),
        // A well-formed token of another partition count is not refused: it gets
        // `event: reset` and the earliest events (tests/it/layout.rs).
        (
            "header token that is not visible ASCII",
            http.get(format!("{}/documents", app.address)).header(
                "last-event-id",
                reqwest::header::HeaderValue::from_bytes(b"0:1\xff").unwrap(),
            ),
        ),
        (
            "negative offset",
            http.get(format!("{}/documents?lastEventId=0:-1", app.address)),
        ),
        (
            "document id not a UUID",
            http.get(format!("{}/documents?documentId=42", app.address)),
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{what}");
    }
}

/// One partition, so that the order of the topic is total: had the other document's events
/// got through, they would come before the wanted ones.
#[tokio::test]
async fn a_stream_can_be_narrowed_to_one_document() {
    let topic = testkit::infra().topic(1).await;
    let app = spawn_notifier(&topic).await;
    let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
    let url = format!("{}/documents?documentId={mine}", app.address);
    let mut client = SseClient::connect(&url, None).await;
    client.next_frame(WAIT).await.unwrap();
    let mut wanted = Vec::new();
    for i in 0..3 {
        publish(&topic, &event(other, &format!("not mine {i}"))).await;
        let event = event(mine, &format!("mine {i}"));
        publish(&topic, &event).await;
        wanted.push(event);
    }
    // Exactly the wanted events, in order: nothing of the other document before, between
    // or after them (an event published last marks the end).
    let frames = client.events(3, WAIT).await;
    assert_eq!(parse(&frames), wanted, "only the wanted document's events");
    // Each id is the position after the event, skipped ones included (offsets 1, 3, 5).
    let ids: Vec<_> = frames.iter().map(|f| f.id.clone().unwrap()).collect();
    assert_eq!(ids, ["0:2", "0:4", "0:6"]);
    publish(&topic, &event(other, "not mine, last")).await;
    let last = event(mine, "mine, last");
    publish(&topic, &last).await;
    assert_eq!(parse(&[client.next_event(WAIT).await]), [last]);
}

/// The filter on the replay path: a filtered stream resuming from a position older than
/// the notifier's memory is served from Kafka, and Kafka's records pass the same filter.
#[tokio::test]
async fn a_narrowed_stream_older_than_memory_is_replayed_from_kafka_narrowed() {
    let topic = testkit::infra().topic(1).await;
    let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
    // Offsets 0 to 9, the even ones mine, the odd ones the other document's.
    let sent = publish_many(&topic, &[mine, other], 10, "old").await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.history_per_partition = 2; // memory holds offsets 8 and 9 only
    let app = start(config).await;

    let url = format!("{}/documents?documentId={mine}", app.address);
    let mut client = SseClient::connect(&url, Some("0:1")).await;
    assert_eq!(client.status, 200);
    let opening = client.next_frame(WAIT).await.expect("an opening frame");
    assert_eq!(opening.id.as_deref(), Some("0:1"));
    // Offsets 2, 4 and 6 come from Kafka, 8 from memory; 1, 3, 5, 7 and 9 are skipped.
    let frames = client.events(4, WAIT).await;
    let expected: Vec<Event> = [2, 4, 6, 8].iter().map(|&i| sent[i].clone()).collect();
    assert_eq!(parse(&frames), expected, "mine only, in order");
    let ids: Vec<_> = frames.iter().map(|f| f.id.clone().unwrap()).collect();
    assert_eq!(ids, ["0:3", "0:5", "0:7", "0:9"]);
    // Then live, still narrowed: offset 9 and the next other event are never sent.
    publish(&topic, &event(other, "not mine, live")).await;
    let live = event(mine, "mine, live");
    publish(&topic, &live).await;
    assert_eq!(parse(&[client.next_event(WAIT).await]), [live]);
}

#[tokio::test]
async fn the_query_token_works_like_the_header() {
    let topic = testkit::infra().topic(1).await;
    let sent = publish_many(&topic, &[Uuid::new_v4()], 3, "q").await;
    let app = spawn_notifier(&topic).await;
    let url = format!("{}/documents?lastEventId=0:1", app.address);
    let mut client = SseClient::connect(&url, None).await;
    client.next_frame(WAIT).await.unwrap();
    assert_eq!(parse(&client.events(2, WAIT).await), sent[1..].to_vec());
}

/// A clean end is the chunked body's last chunk, which the client reads as the end of the
/// body; a connection cut (say, after the shutdown grace ran out) is a read error. The
/// test reads the raw body, since `SseClient::next_frame` reports both as `None`.
#[tokio::test]
async fn shutdown_ends_every_stream_cleanly() {
    let topic = testkit::infra().topic(1).await;
    let app = spawn_notifier(&topic).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/documents", app.address))
        .header("accept", mime::EVENT_STREAM)
        .send()
        .await
        .expect("stream request");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    // The opening frame first: the stream is being served when shutdown begins.
    while !received.ends_with(b"\n\n") {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("an opening frame in time")
            .expect("an opening frame before the end")
            .expect("no read error");
        received.extend_from_slice(&chunk);
    }
    let started = std::time::Instant::now();
    app.stop().await;
    loop {
        match tokio::time::timeout(WAIT, body.next()).await {
            Err(_) => panic!("the stream did not end within {WAIT:?}"),
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => received.extend_from_slice(&chunk),
            Ok(Some(Err(error))) => panic!(
                "the stream broke off after {:?} instead of ending: {error:?}; received {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let topic = testkit::infra().topic(1).await;
    let app = spawn_notifier(&topic).await;
    for path in ["/healthz", "/readyz"] {
        let response = testkit::http()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
