//! Keyed events applied once, against the real Kafka and Cassandra. The interleavings are
//! built record by record: a keyed command sent again after an update or a delete of its
//! document must change nothing (without the check, the second create would overwrite the
//! update, or bring the deleted document back), and a key reused for another request is
//! dead-lettered, not mixed in.

use events::idempotency::{self, IdempotencyKey, Request};
use events::{CreateDocument, Document, Event, EventType};
use persister::dead_letters::header;
use testkit::documents::*;
use uuid::Uuid;

use crate::common::*;

/// A create sent with `key`: the ids the producer derives, and the request's fingerprint.
fn keyed_create(key: &IdempotencyKey, author: &str, text: &str) -> (Event, String) {
    let command = CreateDocument {
        author: Some(author.into()),
        text: Some(text.into()),
    };
    let fingerprint = idempotency::fingerprint(Request::Create(&command));
    let document = key.document_of_create();
    let event = Event::created(document, command, trace_id())
        .with_id(key.event_id(EventType::Create, document));
    (event, fingerprint)
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(format!("{text}-{}", Uuid::new_v4()).as_bytes()).unwrap()
}

/// The positions `applied_events` remembers for `document`.
async fn remembered(keyspace: &testkit::TestKeyspace, document: Uuid) -> Vec<(Uuid, i32, i64)> {
    keyspace
        .session
        .query_unpaged(
            format!(
                "SELECT event_id, partition, offset FROM {}.applied_events WHERE document_id = ?",
                keyspace.name()
            ),
            (document,),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows::<(Uuid, i32, i64)>()
        .expect("row type")
        .map(|row| row.expect("row"))
        .collect()
}

#[tokio::test]
async fn a_resent_command_neither_undoes_a_later_write_nor_resurrects_a_document() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;

    // Updated between the create and its re-sent copy.
    let updated_key = key("updated");
    let (create_a, fingerprint_a) = keyed_create(&updated_key, "a", "text a");
    let a = create_a.payload.id;
    let (_, first_a) = publish_keyed(&topic, &create_a, &updated_key, &fingerprint_a).await;
    publish(&topic, &update(a, Some("a, updated"), None)).await;
    // The client retries: the same command, a new record (new time and trace).
    let (resent_a, _) = keyed_create(&updated_key, "a", "text a");
    publish_keyed(&topic, &resent_a, &updated_key, &fingerprint_a).await;

    // Deleted between the create and its re-sent copy.
    let deleted_key = key("deleted");
    let (create_b, fingerprint_b) = keyed_create(&deleted_key, "b", "text b");
    publish_keyed(&topic, &create_b, &deleted_key, &fingerprint_b).await;
    publish(&topic, &Event::deleted(create_b.payload.id, trace_id())).await;
    publish_keyed(&topic, &create_b, &deleted_key, &fingerprint_b).await;

    // The same key sent with another request: dead-lettered, the first stays.
    let reused_key = key("reused");
    let (create_c, fingerprint_c) = keyed_create(&reused_key, "c", "text c");
    let (other_c, other_fingerprint) = keyed_create(&reused_key, "c", "another text");
    assert_ne!(fingerprint_c, other_fingerprint);
    assert_eq!(other_c.header.id, create_c.header.id);
    publish_keyed(&topic, &create_c, &reused_key, &fingerprint_c).await;
    let (_, reused_at) = publish_keyed(&topic, &other_c, &reused_key, &other_fingerprint).await;

    wait_until_committed(&topic, &persister.group).await;
    persister.stop().await;

    let mut expected = vec![
        Document {
            id: a,
            author: Some("a, updated".into()),
            text: Some("text a".into()),
        },
        create_c.payload.clone(),
    ];
    expected.sort_by_key(|d| d.id);
    assert_eq!(
        rows(&keyspace).await,
        expected,
        "the update of a survives its re-sent create, b stays deleted, c keeps its first request"
    );
    // One remembered application per keyed event, at its first position.
    assert_eq!(
        remembered(&keyspace, a).await,
        [(create_a.header.id, 0, first_a)]
    );
    let letters = testkit::read_records(&dlq.name, 1).await;
    assert_eq!(
        testkit::header(&letters[0], header::REASON).as_deref(),
        Some("idempotency-key-reuse")
    );
    assert_eq!(
        testkit::header(&letters[0], header::ORIGIN_OFFSET),
        Some(reused_at.to_string())
    );
    assert_eq!(
        testkit::end_offsets(&dlq.name).await,
        [1],
        "only the reused key is a dead letter; the re-sent commands are skipped"
    );
}

#[tokio::test]
async fn unkeyed_records_are_applied_as_before() {
    // Without the idempotency headers, a record whose event id was seen is still applied:
    // ids of unkeyed commands are random, and the persister does not look them up.
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;
    let id = Uuid::new_v4();
    let created = create(id, "a", "t");
    publish(&topic, &created).await;
    publish(&topic, &update(id, Some("b"), None)).await;
    publish(&topic, &created).await;
    wait_until_committed(&topic, &persister.group).await;
    persister.stop().await;
    assert_eq!(
        rows(&keyspace).await,
        std::slice::from_ref(&created.payload)
    );
    assert!(remembered(&keyspace, id).await.is_empty());
}
