//! What the persister's tests share: spawning it on a topic and keyspace of their own,
//! writing events, and reading the table back.

#![allow(dead_code)] // each test file uses its own part of this module

use events::{Document, Event, mime};
use persister::{Application, Config};
use testkit::{RunningApp, TestKeyspace, TestTopic};
use uuid::Uuid;

/// A running persister and its consumer group.
pub struct Persister {
    pub group: String,
    pub app: RunningApp,
}

impl Persister {
    /// Stops it and waits until it has committed and closed.
    pub async fn stop(self) {
        self.app.stop().await;
    }
}

pub async fn spawn_persister(
    topic: &TestTopic,
    dlq: &TestTopic,
    keyspace: &TestKeyspace,
) -> Persister {
    let infra = testkit::infra();
    let config = Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    spawn_with(config).await
}

pub async fn spawn_with(config: Config) -> Persister {
    let group = config.group_id.clone();
    let app = Application::build(config).await.expect("persister starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    Persister { group, app }
}

/// A producer publishing to `topic`.
pub async fn spawn_producer(topic: &TestTopic) -> RunningApp {
    let config = producer::Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    let app = producer::Application::build(config)
        .await
        .expect("producer starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// A reader of `keyspace`.
pub async fn spawn_reader(keyspace: &TestKeyspace) -> RunningApp {
    let config = reader::Config::for_tests(&testkit::infra().contact_points, keyspace.name());
    let app = reader::Application::build(config)
        .await
        .expect("reader starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// A notifier of `topic`.
pub async fn spawn_notifier(topic: &TestTopic) -> RunningApp {
    let config = notifier::Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    let app = notifier::Application::build(config)
        .await
        .expect("notifier starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// Publishes `event` as the producer would; returns its partition and offset.
pub async fn publish(topic: &TestTopic, event: &Event) -> (i32, i64) {
    testkit::produce(
        &topic.name,
        &event.key(),
        &event.to_json(),
        Some(mime::EVENT),
    )
    .await
}

pub fn trace() -> String {
    Uuid::new_v4().simple().to_string()
}

pub fn create(id: Uuid, author: &str, text: &str) -> Event {
    let command = events::CreateDocument {
        author: Some(author.into()),
        text: Some(text.into()),
    };
    Event::created(id, command, trace())
}

pub fn update(id: Uuid, author: Option<&str>, text: Option<&str>) -> Event {
    let command = events::UpdateDocument {
        id,
        author: author.map(Into::into),
        text: text.map(Into::into),
    };
    Event::updated(command, trace())
}

/// Every row of the keyspace's documents table, sorted by id.
pub async fn rows(keyspace: &TestKeyspace) -> Vec<Document> {
    let mut rows: Vec<Document> = keyspace
        .session
        .query_unpaged(
            format!("SELECT id, author, text FROM {}.documents", keyspace.name()),
            (),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows::<(Uuid, Option<String>, Option<String>)>()
        .expect("row type")
        .map(|row| {
            let (id, author, text) = row.expect("row");
            Document { id, author, text }
        })
        .collect();
    rows.sort_by_key(|d| d.id);
    rows
}

/// Waits until the group has committed every record of the topic.
pub async fn wait_until_committed(topic: &TestTopic, group: &str) {
    let end = testkit::end_offsets(&topic.name).await;
    testkit::eventually(
        &format!("group {group} to commit up to {end:?}"),
        std::time::Duration::from_secs(60),
        || async {
            let committed = testkit::committed_offsets(&topic.name, group).await;
            let done = committed.iter().zip(&end).all(|(&c, &e)| e == 0 || c >= e);
            done.then_some(())
        },
    )
    .await;
}
