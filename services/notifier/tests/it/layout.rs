//! The notifier when the topic changes under it. Its resume tokens are offsets per
//! partition: partitions added while it runs end every stream and stop it with the fix
//! named; a token that does not fit the topic (a recreated one, or another partition
//! count) gets `event: reset`, then the earliest events, never a silent gap.

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

fn event(text: &str) -> Event {
    let command = events::CreateDocument {
        author: Some("author".into()),
        text: Some(text.into()),
    };
    Event::created(Uuid::new_v4(), command, Uuid::new_v4().simple().to_string())
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

async fn listen(app: &RunningApp, last_event_id: Option<&str>) -> SseClient {
    let mut client = SseClient::connect(&format!("{}/documents", app.address), last_event_id).await;
    assert_eq!(client.status, 200);
    let opening = client.next_frame(WAIT).await.expect("an opening frame");
    assert!(opening.retry.is_some(), "{opening:?}");
    client
}

fn parse(frame: &testkit::sse::Frame) -> Event {
    Event::from_json(frame.data.as_deref().expect("data").as_bytes()).expect("an event")
}

#[tokio::test]
async fn partitions_added_while_running_end_every_stream_and_stop_the_notifier() {
    let topic = testkit::infra().topic(1).await;
    let mut config = Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    config.topic_check_secs = 1;
    let app = start(config).await;
    let mut client = listen(&app, None).await;
    let first = event("before");
    publish(&topic, &first).await;
    assert_eq!(parse(&client.next_event(WAIT).await), first);

    topic.add_partitions(2).await;
    // The stream ends (cleanly: the body closes), after nothing but keep-alives.
    tokio::time::timeout(WAIT, async {
        while let Some(frame) = client.next_frame(WAIT).await {
            assert!(!frame.is_event(), "no event after the change: {frame:?}");
        }
    })
    .await
    .expect("the stream must end when partitions are added");
    let error = app
        .ended(WAIT)
        .await
        .expect_err("the notifier must stop when partitions are added");
    let message = format!("{error:#}");
    assert!(
        message.contains("partition count") && message.contains("restart the notifier"),
        "{message}"
    );
}

#[tokio::test]
async fn a_token_from_before_a_recreate_gets_a_reset_then_the_earliest_events() {
    let topic = testkit::infra().topic(1).await;
    for i in 0..3 {
        publish(&topic, &event(&format!("old-{i}"))).await;
    }
    // A client held "0:3" (it had offsets 0 to 2) when the topic was recreated.
    topic.recreate().await;
    let fresh = event("new");
    publish(&topic, &fresh).await;
    let app = start(Config::for_tests(&testkit::infra().bootstrap, &topic.name)).await;

    let mut client = listen(&app, Some("0:3")).await;
    let reset = client.next_frame(WAIT).await.expect("a reset");
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    let data: serde_json::Value = serde_json::from_str(reset.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["requestedOffset"], 3);
    assert_eq!(data["continuesFromOffset"], 0);
    assert_eq!(reset.id.as_deref(), Some("0:0"));
    // Then the new topic's first event: nothing of it is skipped.
    let next = client.next_event(WAIT).await;
    assert_eq!(parse(&next), fresh);
    assert_eq!(next.id.as_deref(), Some("0:1"));
    app.stop().await;
}

#[tokio::test]
async fn a_token_of_another_partition_count_gets_a_reset_then_the_earliest_events() {
    let topic = testkit::infra().topic(1).await;
    let first = event("first");
    publish(&topic, &first).await;
    let app = start(Config::for_tests(&testkit::infra().bootstrap, &topic.name)).await;

    let mut client = listen(&app, Some("0:1,1:4")).await;
    let reset = client.next_frame(WAIT).await.expect("a reset");
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    let data: serde_json::Value = serde_json::from_str(reset.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["partition"], 1);
    assert_eq!(data["requestedOffset"], 4);
    assert_eq!(parse(&client.next_event(WAIT).await), first);
    app.stop().await;
}
