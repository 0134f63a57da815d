//! The persister against the real Kafka and Cassandra: events become rows, applying is
//! idempotent and ordered by offsets, a replay converges to the same table, poison
//! records go to the dead-letter topic, and shutdown commits what was applied.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use events::{Document, Event, EventType};
use persister::dead_letters::header;
use rdkafka::Message;
use store::DocumentWriter;
use testkit::documents::*;
use uuid::Uuid;

/// The table the contract promises for `events` applied in order.
fn fold(events: &[Event]) -> Vec<Document> {
    let mut table: BTreeMap<Uuid, Document> = BTreeMap::new();
    for event in events {
        let p = &event.payload;
        match event.header.kind {
            EventType::Create => {
                table.insert(p.id, p.clone());
            }
            EventType::Update => {
                let row = table.entry(p.id).or_insert(Document {
                    id: p.id,
                    author: None,
                    text: None,
                });
                if p.author.is_some() {
                    row.author.clone_from(&p.author);
                }
                if p.text.is_some() {
                    row.text.clone_from(&p.text);
                }
            }
            EventType::Delete => {
                table.remove(&p.id);
            }
        }
    }
    table.into_values().collect()
}

#[tokio::test]
async fn replaying_the_topic_into_an_empty_keyspace_gives_the_same_rows() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let (live, replay) = (infra.keyspace().await, infra.keyspace().await);

    // A history with every kind of event, over several documents and all partitions.
    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    let mut history = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        history.push(create(id, &format!("author{i}"), &format!("text{i}")));
    }
    for &id in &ids[..4] {
        history.push(update(id, Some("new author"), None));
    }
    history.push(update(ids[1], None, Some("new text")));
    history.push(Event::deleted(ids[2], trace_id()));
    history.push(Event::deleted(ids[5], trace_id()));
    history.push(create(ids[5], "again", "recreated"));

    let first = spawn_persister(&topic, &dlq, &live).await;
    for event in &history {
        publish(&topic, event).await;
    }
    wait_until_committed(&topic, &first.group).await;
    first.stop().await;
    let expected = fold(&history);
    assert_eq!(
        rows(&live).await,
        expected,
        "the live run follows the contract"
    );

    // A new group reads the whole topic again into an empty keyspace.
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        replay.name(),
    );
    config.group_id = format!("{}-replay", topic.name);
    let second = spawn_with(config).await;
    wait_until_committed(&topic, &second.group).await;
    second.stop().await;
    assert_eq!(rows(&replay).await, expected);
}

/// A backlog over many documents, applied by several lanes side by side: the table is
/// the contract's fold, and the committed offsets reach the end of every partition (the
/// low watermark moved past everything once everything was done).
#[tokio::test]
async fn a_backlog_applied_by_several_lanes_gives_the_fold_and_commits_everything() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let ids: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut history = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        history.push(create(id, &format!("author{i}"), "v0"));
    }
    // Rounds of updates across all documents, so that each lane has several documents
    // with records waiting at once; some documents deleted and created again.
    for round in 1..=6 {
        for (i, &id) in ids.iter().enumerate() {
            if round == 4 && i % 5 == 0 {
                history.push(Event::deleted(id, trace_id()));
                history.push(create(id, "again", &format!("v{round}")));
            } else {
                history.push(update(id, None, Some(&format!("v{round}"))));
            }
        }
    }
    for event in &history {
        publish(&topic, event).await;
    }
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    config.lanes = 8;
    let persister = spawn_with(config).await;
    wait_until_committed(&topic, &persister.group).await;
    persister.stop().await;
    assert_eq!(rows(&keyspace).await, fold(&history));
}

#[tokio::test]
async fn applying_is_idempotent_and_ordered_by_offsets() {
    let keyspace = testkit::infra().keyspace().await;
    let store = DocumentWriter::prepare(keyspace.session.clone(), &keyspace.keyspace)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    let created = create(id, "a1", "t1");
    let updated = update(id, Some("a2"), None);
    let doc = |author: &str, text: &str| {
        vec![Document {
            id,
            author: Some(author.into()),
            text: Some(text.into()),
        }]
    };

    store.apply(&created, 10).await.unwrap();
    store.apply(&updated, 11).await.unwrap();
    assert_eq!(rows(&keyspace).await, doc("a2", "t1"));

    // The same record twice changes nothing.
    store.apply(&updated, 11).await.unwrap();
    assert_eq!(rows(&keyspace).await, doc("a2", "t1"));

    // A stale consumer re-applies the older create after the update: the update stays.
    store.apply(&created, 10).await.unwrap();
    assert_eq!(rows(&keyspace).await, doc("a2", "t1"));

    // Nothing written before a delete brings the document back.
    store
        .apply(&Event::deleted(id, trace_id()), 12)
        .await
        .unwrap();
    store.apply(&created, 10).await.unwrap();
    store.apply(&updated, 11).await.unwrap();
    assert_eq!(rows(&keyspace).await, vec![]);

    // A later create does.
    store.apply(&create(id, "a3", "t3"), 13).await.unwrap();
    assert_eq!(rows(&keyspace).await, doc("a3", "t3"));
}

#[tokio::test]
async fn poison_records_go_to_the_dead_letter_topic_and_the_next_is_applied() {
    // Not JSON, a wrong or missing content type, and a valid event whose key is not its
    // document id: four dead letters, then the valid record is applied.
    let infra = testkit::infra();
    // One partition, so the poison records sit in front of the valid one.
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;

    let not_json =
        testkit::produce(&topic.name, "k1", b"{not json", Some(events::mime::EVENT)).await;
    let wrong_type = testkit::produce(&topic.name, "k2", b"{}", Some("text/plain")).await;
    let no_type = testkit::produce(&topic.name, "k3", b"{}", None).await;
    // A valid event under another key: its partition says nothing about its document.
    let misplaced = create(Uuid::new_v4(), "misplaced", "wrong key");
    let wrong_key = testkit::produce(
        &topic.name,
        "k4",
        &misplaced.to_json(),
        Some(events::mime::EVENT),
    )
    .await;
    let id = Uuid::new_v4();
    publish(&topic, &create(id, "after", "poison")).await;

    testkit::eventually(
        "the valid record to be applied",
        Duration::from_secs(30),
        || async { (rows(&keyspace).await.len() == 1).then_some(()) },
    )
    .await;
    assert_eq!(rows(&keyspace).await[0].id, id);

    let mut letters = testkit::read_records(&dlq.name, 4).await;
    // Records of different keys go through different lanes, so their dead letters may
    // be written in any order; each is matched by its key.
    letters.sort_by(|a, b| a.key().cmp(&b.key()));
    let expected = [
        (not_json, "k1", "unparseable"),
        (wrong_type, "k2", "unknown-content-type"),
        (no_type, "k3", "unknown-content-type"),
        (wrong_key, "k4", "key-mismatch"),
    ];
    for (letter, ((partition, offset), key, reason)) in letters.iter().zip(expected) {
        assert_eq!(letter.key(), Some(key.as_bytes()));
        assert_eq!(
            testkit::header(letter, header::REASON).as_deref(),
            Some(reason)
        );
        assert!(testkit::header(letter, header::ERROR).is_some_and(|e| !e.is_empty()));
        assert_eq!(
            testkit::header(letter, header::ORIGIN_TOPIC),
            Some(topic.name.clone())
        );
        assert_eq!(
            testkit::header(letter, header::ORIGIN_PARTITION),
            Some(partition.to_string())
        );
        assert_eq!(
            testkit::header(letter, header::ORIGIN_OFFSET),
            Some(offset.to_string())
        );
    }
    // The original headers travel along.
    assert_eq!(
        testkit::header(&letters[1], "content-type").as_deref(),
        Some("text/plain")
    );
    persister.stop().await;
}

#[tokio::test]
async fn shutdown_commits_what_was_applied() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(3).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    // Without the client's own commits (the periodic one, and the one librdkafka makes
    // when the consumer closes), only the synchronous commit at shutdown can explain the
    // committed offsets checked below.
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    config.background_commits = false;
    let persister = spawn_with(config).await;
    for i in 0..9 {
        publish(&topic, &create(Uuid::new_v4(), "a", &format!("t{i}"))).await;
    }
    testkit::eventually("9 rows", Duration::from_secs(30), || async {
        (rows(&keyspace).await.len() == 9).then_some(())
    })
    .await;
    let group = persister.group.clone();
    persister.stop().await;

    // Committed at shutdown: the group is done. A partition that the random keys left
    // empty has nothing to commit (Kafka says -1001).
    let end = testkit::end_offsets(&topic.name).await;
    let committed = testkit::committed_offsets(&topic.name, &group).await;
    let expected: Vec<i64> = end
        .iter()
        .map(|&e| if e == 0 { -1001 } else { e })
        .collect();
    let committed: Vec<i64> = committed
        .iter()
        .zip(&end)
        .map(|(&c, &e)| if e == 0 && c == 0 { -1001 } else { c })
        .collect();
    assert_eq!(committed, expected, "end offsets {end:?}");
}

#[tokio::test]
async fn health_and_readiness() {
    let infra = testkit::infra();
    let (topic, dlq) = (infra.topic(1).await, infra.topic(1).await);
    let keyspace = infra.keyspace().await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;
    for path in ["/healthz", "/readyz"] {
        let response = testkit::http()
            .get(format!("{}{path}", persister.app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    persister.stop().await;
}

/// A persister whose dead-letter topic is missing would hold the first record it cannot
/// apply for ever: it refuses to start, and says how to create the topic.
#[tokio::test]
async fn a_missing_dead_letter_topic_stops_the_start() {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let keyspace = infra.keyspace().await;
    let config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &format!("absent-{}", uuid::Uuid::new_v4().simple()),
        &infra.contact_points,
        keyspace.name(),
    );
    let error = persister::Application::build(config)
        .await
        .expect_err("a persister without its dead-letter topic must not start");
    let message = format!("{error:#}");
    assert!(
        message.contains("dead-letter topic") && message.contains("cargo xtask infra up"),
        "{message}"
    );
}
