//! Events and rows as the tests of every consumer need them: events built as the producer
//! builds them, published as it publishes them, and the table read back.

use events::{Document, Event, mime};
use uuid::Uuid;

use crate::{TestKeyspace, TestTopic};

/// A fresh trace id (32 lowercase hex digits), for events made outside a trace.
pub fn trace_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A CREATE of document `id`.
pub fn create(id: Uuid, author: &str, text: &str) -> Event {
    let command = events::CreateDocument {
        author: Some(author.into()),
        text: Some(text.into()),
    };
    Event::created(id, command, trace_id())
}

/// An UPDATE of document `id` carrying the fields given.
pub fn update(id: Uuid, author: Option<&str>, text: Option<&str>) -> Event {
    let command = events::UpdateDocument {
        id,
        author: author.map(Into::into),
        text: text.map(Into::into),
    };
    Event::updated(command, trace_id())
}

/// Publishes `event` as the producer would; returns its partition and offset.
pub async fn publish(topic: &TestTopic, event: &Event) -> (i32, i64) {
    crate::produce(
        &topic.name,
        &event.key(),
        &event.to_json(),
        Some(mime::EVENT),
    )
    .await
}

/// Publishes `event` as the producer publishes a command sent with idempotency key
/// `key` and request fingerprint `fingerprint`: the event is sent as given (give it the
/// key's ids), with the idempotency headers. Returns its partition and offset.
pub async fn publish_keyed(
    topic: &TestTopic,
    event: &Event,
    key: &events::idempotency::IdempotencyKey,
    fingerprint: &str,
) -> (i32, i64) {
    let extra = events::idempotency::record_headers(key, fingerprint);
    let mut headers = vec![("content-type", mime::EVENT)];
    headers.extend(extra.iter().map(|(name, value)| (*name, value.as_str())));
    crate::produce_with_headers(&topic.name, &event.key(), &event.to_json(), &headers).await
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

/// Waits until `group` has committed every record of the topic.
pub async fn wait_until_committed(topic: &TestTopic, group: &str) {
    let end = crate::end_offsets(&topic.name).await;
    crate::eventually(
        &format!("group {group} to commit up to {end:?}"),
        std::time::Duration::from_secs(60),
        || async {
            let committed = crate::committed_offsets(&topic.name, group).await;
            let done = committed.iter().zip(&end).all(|(&c, &e)| e == 0 || c >= e);
            done.then_some(())
        },
    )
    .await;
}
