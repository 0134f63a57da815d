//! The bounds on reading older history from Kafka, each against the real Kafka: a token
//! too far behind gets `event: reset` instead of a long replay; a stream waits a bounded
//! time for one of the few replay readers, then gets 503; a client that stops reading
//! mid-replay is let go so that its reader serves others; history deleted during a
//! replay gets `event: reset`, never a silent jump.

use std::time::{Duration, Instant};

use events::{Event, mime};
use notifier::{Application, Config};
use testkit::sse::SseClient;
use testkit::{RunningApp, TestTopic};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// Events of this size fill a client's socket buffers (the kernel's send buffer grows to
/// a few MiB) long before a replay of `BIG_EVENTS` ends.
const BIG_TEXT: usize = 100 * 1024;
const BIG_EVENTS: usize = 200;

async fn start(config: Config) -> RunningApp {
    let app = Application::build(config).await.expect("notifier starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// A notifier that holds `memory` events per partition and `readers` replay readers.
fn config(topic: &TestTopic, memory: usize, readers: usize) -> Config {
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.history_per_partition = memory;
    config.replay_consumers = readers;
    config
}

/// Publishes `count` events of one document with texts of `size` bytes; returns them.
async fn publish(topic: &TestTopic, count: usize, size: usize) -> Vec<Event> {
    let document = Uuid::new_v4();
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let mut text = format!("{i:05}-");
        text.push_str(&"x".repeat(size));
        let command = events::CreateDocument {
            author: Some("author".into()),
            text: Some(text),
        };
        let event = Event::created(document, command, Uuid::new_v4().simple().to_string());
        testkit::produce(
            &topic.name,
            &event.key(),
            &event.to_json(),
            Some(mime::EVENT),
        )
        .await;
        sent.push(event);
    }
    sent
}

/// A client that asks for everything from offset 0, reads its response head, then
/// nothing: its replay cannot finish.
async fn stalled_replay(app: &RunningApp) -> TcpStream {
    crate::sse::stalled_client(app, "Last-Event-ID: 0:0\r\n").await
}

/// Reads `stream` until the server closes it; `false` when it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut sink = vec![0_u8; 256 * 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn text_of(frame: &testkit::sse::Frame) -> String {
    let event = Event::from_json(frame.data.as_deref().unwrap().as_bytes()).unwrap();
    event.payload.text.unwrap()[..5].to_owned()
}

#[tokio::test]
async fn a_token_too_far_behind_gets_a_reset_and_continues_with_recent_history() {
    let topic = testkit::infra().topic(1).await;
    let sent = publish(&topic, 10, 8).await;
    let mut config = config(&topic, 2, 4); // memory holds offsets 8 and 9
    config.max_replay = 3;
    let app = start(config).await;

    // From offset 6: two events to replay, within the bound.
    let mut near = SseClient::connect(&format!("{}/documents", app.address), Some("0:6")).await;
    near.next_frame(WAIT).await.expect("an opening frame");
    let frames = near.events(4, WAIT).await;
    assert_eq!(
        frames.iter().map(text_of).collect::<Vec<_>>(),
        ["00006", "00007", "00008", "00009"]
    );

    // From offset 1: seven to replay, more than three.
    let mut far = SseClient::connect(&format!("{}/documents", app.address), Some("0:1")).await;
    far.next_frame(WAIT).await.expect("an opening frame");
    let reset = far.next_frame(WAIT).await.expect("a reset");
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    assert_eq!(reset.id.as_deref(), Some("0:8"));
    let data: serde_json::Value = serde_json::from_str(reset.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["requestedOffset"], 1);
    assert_eq!(data["continuesFromOffset"], 8);
    let frames = far.events(2, WAIT).await;
    assert_eq!(
        frames.iter().map(text_of).collect::<Vec<_>>(),
        [&sent[8], &sent[9]].map(|e| e.payload.text.clone().unwrap()[..5].to_owned())
    );
}

#[tokio::test]
async fn a_stream_waits_a_bounded_time_for_a_replay_reader_then_gets_503() {
    let topic = testkit::infra().topic(1).await;
    publish(&topic, BIG_EVENTS, BIG_TEXT).await;
    let mut config = config(&topic, 2, 1);
    config.replay_wait_ms = 500;
    let app = start(config).await;

    let stalled = stalled_replay(&app).await;
    let began = Instant::now();
    let refused = testkit::http()
        .get(format!("{}/documents", app.address))
        .header("last-event-id", "0:0")
        .send()
        .await
        .unwrap();
    let waited = began.elapsed();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["content-type"], mime::PROBLEM);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("busy"),
        "{problem}"
    );
    println!("refused after {waited:?} (bound 500 ms)");
    // A stream that needs no replay is not held up by the busy readers.
    let mut live = SseClient::connect(&format!("{}/documents", app.address), None).await;
    assert_eq!(live.status, 200);
    live.next_frame(WAIT).await.expect("an opening frame");

    // Once the stalled client is gone, its reader serves the next replay.
    drop(stalled);
    let mut client = tokio::time::timeout(WAIT, async {
        loop {
            let client =
                SseClient::connect(&format!("{}/documents", app.address), Some("0:190")).await;
            if client.status == 200 {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the freed reader serves a replay");
    client.next_frame(WAIT).await.expect("an opening frame");
    assert_eq!(text_of(&client.next_event(WAIT).await), "00190");
}

#[tokio::test]
async fn a_client_that_stops_reading_mid_replay_is_let_go_and_its_reader_serves_others() {
    let topic = testkit::infra().topic(1).await;
    publish(&topic, BIG_EVENTS, BIG_TEXT).await;
    let mut config = config(&topic, 2, 1);
    config.replay_idle_secs = 1;
    config.replay_wait_ms = 10_000;
    let app = start(config).await;

    let mut stalled = stalled_replay(&app).await;
    // The only reader is held; this stream waits for it, and gets it once the stalled
    // client is let go (about a second), well before its ten-second wait ends.
    let began = Instant::now();
    let mut client = SseClient::connect(&format!("{}/documents", app.address), Some("0:190")).await;
    let waited = began.elapsed();
    assert_eq!(
        client.status, 200,
        "the reader was not freed within the wait"
    );
    client.next_frame(WAIT).await.expect("an opening frame");
    assert_eq!(text_of(&client.next_event(WAIT).await), "00190");
    println!("the stalled client's reader came free after {waited:?} (idle bound 1 s)");
    assert!(
        closed_within(&mut stalled, WAIT).await,
        "the stalled client's connection is still open"
    );
}

#[tokio::test]
async fn history_deleted_during_a_replay_gets_a_reset_then_the_earliest_events() {
    let topic = testkit::infra().topic(1).await;
    publish(&topic, BIG_EVENTS, BIG_TEXT).await;
    let app = start(config(&topic, 2, 1)).await;

    let mut client = SseClient::connect(&format!("{}/documents", app.address), Some("0:0")).await;
    client.next_frame(WAIT).await.expect("an opening frame");
    let first = client.events(3, WAIT).await;
    assert_eq!(
        first.iter().map(text_of).collect::<Vec<_>>(),
        ["00000", "00001", "00002"]
    );
    // Retention removes everything below 150 while the client is still far behind.
    crate::sse::delete_below(&topic, 150).await;

    // What reaches the client: events from 0 on without a gap, one reset, then events
    // from 150 on without a gap, to the end.
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut reset = None;
    while after.last() != Some(&(BIG_EVENTS - 1)) {
        let frame = client
            .next_frame(WAIT)
            .await
            .expect("the stream goes on to the end");
        if frame.event.as_deref() == Some("reset") {
            assert!(reset.is_none(), "one reset");
            reset = Some(frame);
        } else if frame.is_event() {
            let index: usize = text_of(&frame).parse().unwrap();
            if reset.is_none() {
                before.push(index)
            } else {
                after.push(index)
            }
        }
    }
    let reset = reset.expect("an event: reset");
    let data: serde_json::Value = serde_json::from_str(reset.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["continuesFromOffset"], 150, "{data}");
    let requested = data["requestedOffset"].as_u64().unwrap() as usize;
    assert_eq!(
        before,
        (3..requested).collect::<Vec<_>>(),
        "every event up to where the reset says the client stood"
    );
    assert_eq!(after, (150..BIG_EVENTS).collect::<Vec<_>>());
    println!("reset after offset {}: continued at 150", requested - 1);
}
