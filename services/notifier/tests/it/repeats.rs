//! A repeated event id is one event: a keyed command sent twice becomes two records with
//! one event id, and every stream (live, resumed from memory, replayed from Kafka) carries
//! it once, while its position still moves past the repeat.

use std::time::Duration;

use events::{Event, mime};
use notifier::{Application, Config};
use testkit::sse::SseClient;
use testkit::{RunningApp, TestTopic};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn start(config: Config) -> RunningApp {
    let app = Application::build(config).await.expect("notifier starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

fn created(document: Uuid, text: &str) -> Event {
    let command = events::CreateDocument {
        author: Some("author".into()),
        text: Some(text.into()),
    };
    Event::created(document, command, testkit::documents::trace_id())
}

async fn publish(topic: &TestTopic, event: &Event) {
    testkit::produce(
        &topic.name,
        &event.key(),
        &event.to_json(),
        Some(mime::EVENT),
    )
    .await;
}

/// Publishes an event, the same event id again (with a text that tells it apart, so a
/// failure shows which record came through), and a third event: offsets 0, 1, 2.
async fn publish_with_a_repeat(topic: &TestTopic) -> (Event, Event) {
    let document = Uuid::new_v4();
    let first = created(document, "first");
    let mut repeat = created(document, "repeat");
    repeat.header.id = first.header.id;
    let next = created(document, "next");
    for event in [&first, &repeat, &next] {
        publish(topic, event).await;
    }
    (first, next)
}

/// The texts of the next `count` events, and the id of the last frame.
async fn texts(client: &mut SseClient, count: usize) -> (Vec<String>, String) {
    let frames = client.events(count, WAIT).await;
    let last = frames.last().and_then(|f| f.id.clone()).unwrap_or_default();
    let texts = frames
        .iter()
        .map(|f| {
            let event = Event::from_json(f.data.as_deref().unwrap().as_bytes()).unwrap();
            event.payload.text.unwrap_or_default()
        })
        .collect();
    (texts, last)
}

#[tokio::test]
async fn a_repeated_event_id_is_sent_once_live_from_memory_and_from_kafka() {
    let infra = testkit::infra();
    let topic = infra.topic(1).await;
    let app = start(Config::for_tests(&infra.bootstrap, &topic.name)).await;
    let url = format!("{}/documents", app.address);

    // Live: connected before the records exist.
    let mut live = SseClient::connect(&url, None).await;
    live.next_frame(WAIT).await.expect("the opening frame");
    publish_with_a_repeat(&topic).await;
    let (got, last) = texts(&mut live, 2).await;
    assert_eq!(got, ["first", "next"], "live");
    assert_eq!(last, "0:3", "the position moved past the repeat");

    // Resumed from the start: from memory.
    let mut resumed = SseClient::connect(&url, Some("0:0")).await;
    let (got, last) = texts(&mut resumed, 2).await;
    assert_eq!(got, ["first", "next"], "from memory");
    assert_eq!(last, "0:3");

    // A notifier started afterwards whose memory holds the last two records only: the
    // first event comes from Kafka, the repeat and the next from memory; and this
    // notifier never read the first record itself.
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.history_per_partition = 2;
    let short = start(config).await;
    let mut replayed =
        SseClient::connect(&format!("{}/documents", short.address), Some("0:0")).await;
    let (got, last) = texts(&mut replayed, 2).await;
    assert_eq!(got, ["first", "next"], "replayed from Kafka, then memory");
    assert_eq!(last, "0:3");
}

#[tokio::test]
async fn a_replay_from_kafka_sends_a_repeat_once() {
    let infra = testkit::infra();
    let topic = infra.topic(1).await;
    publish_with_a_repeat(&topic).await;
    // Two more events, so that memory (one record) holds none of the three above.
    let document = Uuid::new_v4();
    publish(&topic, &created(document, "later-1")).await;
    publish(&topic, &created(document, "later-2")).await;
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.history_per_partition = 1;
    let app = start(config).await;
    let mut client = SseClient::connect(&format!("{}/documents", app.address), Some("0:0")).await;
    let (got, last) = texts(&mut client, 4).await;
    assert_eq!(got, ["first", "next", "later-1", "later-2"]);
    assert_eq!(last, "0:5");
}
